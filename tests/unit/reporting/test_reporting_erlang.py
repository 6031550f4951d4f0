"""Erlang C against published worked examples, Erlang A against exact special cases and a
simulation; staffing searches against brute force.

Reference numbers:

- Mike Tanner's step-by-step Erlang-C example (mitan.co.uk, "The Erlang-C formula", reproduced
  in many call-centre texts): 360 calls per half hour, 4-minute calls, 55 agents, 15-second
  target. Traffic 48 Erlangs, occupancy 0.873, probability of waiting 0.2387 (24%), ASA 8.2 s,
  84.6% answered within 15 s.
- Call Centre Helper, "Erlang C Formula - Made Simple with an Easy Worked Example": 100 calls
  per 30 minutes, AHT 180 s, target 80% in 20 s. Traffic 10 Erlangs; with 11 agents the
  probability of waiting is 68.21% and the service level 39%; 14 agents are the first to
  reach the target (88.8%).
"""

from __future__ import annotations

import heapq
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.reporting.core.erlang import (
    ErlangError,
    Forecast,
    agents_needed,
    erlang_b,
    erlang_c,
    predict,
    predict_a,
    predict_c,
)


def test_tanner_360_calls_55_agents():
    f = Forecast(calls=360, aht=240, interval=1800, threshold=15)
    p = predict_c(f, 55)
    assert f.traffic == pytest.approx(48.0)
    assert p.occupancy == pytest.approx(0.873, abs=5e-4)
    assert p.probability_wait == pytest.approx(0.2387, abs=5e-5)
    assert p.asa == pytest.approx(8.2, abs=0.05)
    assert p.service_level == pytest.approx(0.846, abs=5e-4)


def test_call_centre_helper_100_calls_80_20():
    f = Forecast(calls=100, aht=180, interval=1800, threshold=20, target_sl=0.8)
    assert f.traffic == pytest.approx(10.0)
    p11 = predict_c(f, 11)
    assert p11.probability_wait == pytest.approx(0.6821, abs=5e-5)
    assert p11.service_level == pytest.approx(0.39, abs=5e-3)
    assert predict_c(f, 13).service_level < 0.8
    best = agents_needed(f)
    assert best.agents == 14
    assert best.service_level == pytest.approx(0.888, abs=5e-4)


def test_erlang_b_recursion_matches_the_closed_form():
    for n in range(1, 30):
        for a in (0.5, 3.0, 9.7, 25.0):
            direct = (a ** n / math.factorial(n)) / sum(a ** k / math.factorial(k) for k in range(n + 1))
            assert erlang_b(n, a) == pytest.approx(direct, rel=1e-12)
            if a < n:
                top = a ** n / math.factorial(n) * n / (n - a)
                c = top / (sum(a ** k / math.factorial(k) for k in range(n)) + top)
                assert erlang_c(n, a) == pytest.approx(c, rel=1e-10)


def test_overloaded_erlang_c_never_meets_a_target_and_says_so():
    f = Forecast(calls=100, aht=180, interval=1800)
    p = predict_c(f, 10)  # A = N
    assert p.service_level == 0.0 and p.probability_wait == 1.0 and math.isinf(p.asa)


@settings(max_examples=60, deadline=None)
@given(calls=st.floats(1, 2000), aht=st.floats(10, 900), threshold=st.floats(0, 120),
       target=st.floats(0.05, 0.95))
def test_agents_needed_is_the_fewest_that_meet_the_target(calls, aht, threshold, target):
    f = Forecast(calls=calls, aht=aht, interval=1800, threshold=threshold, target_sl=target)
    best = agents_needed(f)
    assert best.service_level >= target
    assert best.agents > f.traffic
    below = predict_c(f, best.agents - 1)
    assert below.service_level < target


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), a=st.floats(0.1, 80))
def test_service_level_rises_with_agents(n, a):
    f = Forecast(calls=a * 1800 / 180, aht=180, interval=1800, threshold=20)
    assert predict_c(f, n + 1).service_level >= predict_c(f, n).service_level - 1e-12
    assert 0.0 <= predict_c(f, n).probability_wait <= 1.0


def test_erlang_a_with_patience_equal_to_handle_time_is_poisson():
    """With theta = mu every caller in the system leaves at the same rate whether waiting or
    served, so the number in system is Poisson(A) (the M/M/infinity distribution)."""
    a = 10.0
    f = Forecast(calls=100, aht=180, interval=1800, threshold=20, patience=180)

    def pois(k: int) -> float:
        return math.exp(-a + k * math.log(a) - math.lgamma(k + 1))

    for n in (6, 10, 14):
        p = predict_a(f, n)
        assert p.probability_wait == pytest.approx(sum(pois(k) for k in range(n, 200)), abs=1e-9)
        assert p.abandon_rate == pytest.approx(sum((k - n) * pois(k) for k in range(n, 200)) / a, abs=1e-9)
        assert p.occupancy == pytest.approx(sum(min(k, n) * pois(k) for k in range(200)) / n, abs=1e-9)


def test_erlang_a_tends_to_erlang_c_for_patient_callers():
    c = predict_c(Forecast(calls=360, aht=240, interval=1800, threshold=15), 55)
    a = predict_a(Forecast(calls=360, aht=240, interval=1800, threshold=15, patience=1e8), 55)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-5)
    assert a.probability_wait == pytest.approx(c.probability_wait, abs=1e-5)
    assert a.asa == pytest.approx(c.asa, abs=1e-3)


def _simulate(lam: float, mu: float, theta: float, n: int, threshold: float, callers: int,
              seed: int) -> tuple[float, float]:
    """FCFS M/M/N+M by discrete events: (our service level, abandon rate)."""
    rng = random.Random(seed)
    t = 0.0
    free = n
    queue: list[tuple[float, float, int]] = []  # (arrival, give-up time, id) in FCFS order
    qpos = 0
    busy_until: list[float] = []  # heap of service completions
    answered_in = answered = abandoned_after = abandoned = 0
    gone: set[int] = set()
    for i in range(callers):
        t += rng.expovariate(lam)
        # serve waiting callers as agents free up before t
        while busy_until and busy_until[0] <= t:
            done = heapq.heappop(busy_until)
            free += 1
            while free and qpos < len(queue):
                arr, give_up, cid = queue[qpos]
                qpos += 1
                if give_up <= done:
                    continue  # hung up before this agent was free (counted when it hung up)
                free -= 1
                wait = done - arr
                answered += 1
                answered_in += wait <= threshold
                gone.add(cid)
                heapq.heappush(busy_until, done + rng.expovariate(mu))
        patience = rng.expovariate(theta)
        if free and qpos >= len(queue):
            free -= 1
            answered += 1
            answered_in += 1
            heapq.heappush(busy_until, t + rng.expovariate(mu))
        else:
            queue.append((t, t + patience, i))
    # callers still queued: settle who hung up (only those whose give-up time passed count)
    for arr, give_up, cid in queue:
        if cid not in gone and give_up <= t:
            abandoned += 1
            abandoned_after += (give_up - arr) > threshold
    return answered_in / (answered + abandoned_after), abandoned / callers


def test_erlang_a_matches_a_simulation():
    lam, aht, patience, n, threshold = 100 / 1800, 180.0, 120.0, 11, 20.0
    f = Forecast(calls=100, aht=aht, interval=1800, threshold=threshold, patience=patience)
    p = predict_a(f, n)
    sl, ab = _simulate(lam, 1 / aht, 1 / patience, n, threshold, 200_000, seed=7)
    assert sl == pytest.approx(p.service_level, abs=0.015)
    assert ab == pytest.approx(p.abandon_rate, abs=0.01)


def test_erlang_a_staffing_can_be_below_the_load():
    f = Forecast(calls=360, aht=240, interval=1800, threshold=20, target_sl=0.8, patience=60)
    best = agents_needed(f)
    assert best.model == "erlang_a" and best.service_level >= 0.8
    assert predict(f, best.agents - 1).service_level < 0.8
    assert 0 < best.abandon_rate < 0.5


@pytest.mark.parametrize(("field", "kwargs"), [
    ("aht", {"calls": 10, "aht": 0}), ("calls", {"calls": -1, "aht": 10}),
    ("target_sl", {"calls": 10, "aht": 10, "target_sl": 1.0}),
    ("patience", {"calls": 10, "aht": 10, "patience": 0}), ("aht", {"calls": 10, "aht": math.inf}),
])
def test_bad_forecasts_name_the_field(field, kwargs):
    with pytest.raises(ErlangError) as exc:
        Forecast(**kwargs)
    assert exc.value.field == field
