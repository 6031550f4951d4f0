"""Abandon ledger: budget arithmetic, ageing, Ofcom false-positive estimate, and the worst-case bound."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.dialer.core import AbandonLedger, AbandonRule, may_release_idle_agent


def test_budget_simple_tsr() -> None:
    rule = AbandonRule.ftc_tsr()
    led = AbandonLedger([rule])
    for i in range(100):
        led.record_human(1000.0 + i)
    b = led.budget(2000.0)
    # 3 abandons on top of 100 answers: 3/103 = 2.9% ok; 4/104 = 3.8% not
    assert b.abandons_affordable() == 3
    assert b.affordable(3, 0) and not b.affordable(4, 0)
    assert b.rules[0].now_counts.humans == 100
    assert math.isclose(b.rules[0].affordable_abandons, 3.0 / 0.97)
    led.record_abandon(2001.0)
    assert led.budget(2002.0).abandons_affordable() == 2  # (3 - 1 - 0.03) / 0.97 = 2.03
    assert math.isclose(led.rate(rule, 2002.0), 1 / 101)


def test_empty_ledger_has_no_budget_so_pacing_is_progressive() -> None:
    b = AbandonLedger([AbandonRule.ftc_tsr()]).budget(0.0)
    assert b.abandons_affordable() == 0
    # 5 idle agents, 2 calls in flight: exactly 3 covered calls, nothing at risk
    assert b.max_new_calls(idle=5, in_flight=2, amd_in_flight=0) == 3
    assert b.max_new_calls(idle=2, in_flight=5, amd_in_flight=0) == 0


def test_ageing_answers_reduce_the_budget_before_they_leave() -> None:
    rule = AbandonRule(cap=0.1, window_seconds=100.0, guard_seconds=50.0)
    led = AbandonLedger([rule])
    for _ in range(20):
        led.record_human(10.0)
    for _ in range(20):
        led.record_human(80.0)
    # Window now holds 40 answers, but windows ending up to t=150 only keep the 20 from t=80:
    # 2 abandons -> 2/22 = 9.1% ok, 3 -> 3/23 = 13% not.
    b = led.budget(100.0)
    assert b.rules[0].now_counts.humans == 40
    assert b.abandons_affordable() == 2
    # with no guard only the present window counts: 4/44 = 9.1% ok, 5/45 = 11% not
    led0 = AbandonLedger([AbandonRule(cap=0.1, window_seconds=100.0, guard_seconds=0.0)])
    for t in [10.0] * 20 + [80.0] * 20:
        led0.record_human(t)
    assert led0.budget(100.0).abandons_affordable() == 4


def test_old_abandons_ageing_out_do_not_count_against_the_future() -> None:
    rule = AbandonRule(cap=0.1, window_seconds=100.0, guard_seconds=50.0)
    led = AbandonLedger([rule])
    for _ in range(2):
        led.record_abandon(5.0)  # leaves all windows ending after t=105
    for _ in range(30):
        led.record_human(60.0)
    # now=100: window holds 2 abandons + 30 answers (6.25%). The worst window ending in [100, 150]
    # is the one at t=100 (slack 3.2 - 2 = 1.2 -> 1 more abandon: 3/33 = 9.1% ok, 4/34 = 11.8% not).
    assert led.budget(100.0).abandons_affordable() == 1
    # at 106 the old abandons are gone: 3 more -> 3/33 ok, 4/34 not
    assert led.budget(106.0).abandons_affordable() == 3


def test_ofcom_false_positive_estimate() -> None:
    rule = AbandonRule.ofcom(amd_false_positive_rate=0.02)
    led = AbandonLedger([rule])
    for i in range(100):
        led.record_human(float(i))
    for i in range(50):
        led.record_machine(100.0 + i)
    c = led.counts(-1.0, 200.0, rule)
    assert (c.humans, c.machines, c.abandons) == (100, 50, 0)
    # 50 machine classifications x 2% = 1 estimated abandoned live call (in numerator and denominator)
    assert math.isclose(c.numerator, 1.0) and math.isclose(c.denominator, 101.0)
    assert math.isclose(led.rate(rule, 200.0), 1.0 / 101.0)
    b = led.budget(200.0)
    slack = Fraction(3, 100) * 101 - 1  # in abandons
    cost_abandon = 1 - Fraction(3, 100)
    cost_amd = Fraction(2, 100) * cost_abandon
    assert b.abandons_affordable() == math.floor(slack / cost_abandon)
    assert b.amd_allowance(at_risk=0, amd_in_flight=0) == math.floor(slack / cost_amd)
    assert b.amd_allowance(at_risk=1, amd_in_flight=10) == math.floor((slack - cost_abandon - 10 * cost_amd) / cost_amd)
    # AMD calls in flight eat into the at-risk budget
    assert b.abandons_affordable(amd_in_flight=50) == math.floor((slack - 50 * cost_amd) / cost_abandon)
    # the TSR rule ignores machine classifications
    tsr = AbandonLedger([AbandonRule.ftc_tsr()])
    tsr.record_machine(1.0)
    assert tsr.counts(0.0, 2.0).rate == 0.0
    assert tsr.budget(2.0).amd_allowance(0, 0) > 10**9


def test_max_new_calls_with_amd_for_new_calls() -> None:
    rule = AbandonRule(cap=0.1, window_seconds=1000.0, count_amd_false_positives=True, amd_false_positive_rate=0.5)
    led = AbandonLedger([rule])
    for _ in range(100):
        led.record_human(1.0)
    b = led.budget(2.0)
    # slack = 10 abandons worth; abandon costs 0.9, AMD call costs 0.45
    assert b.max_new_calls(idle=0, in_flight=0, amd_in_flight=0) == 11
    assert b.max_new_calls(idle=0, in_flight=0, amd_in_flight=0, amd_for_new=True) == 7  # 7*1.35 <= 10
    assert b.max_new_calls(idle=30, in_flight=0, amd_in_flight=0, amd_for_new=True) == 22  # 22*0.45 <= 10
    for n in range(0, 40):
        for idle in (0, 5, 30):
            ok = b.affordable(max(0, n - idle), n)
            assert ok == (n <= b.max_new_calls(idle, 0, 0, amd_for_new=True)), (n, idle)


def test_may_release_idle_agent() -> None:
    assert may_release_idle_agent(idle_agents=3, calls_in_flight=2)
    assert not may_release_idle_agent(idle_agents=3, calls_in_flight=3)


def _naive_worst(
    events: list[tuple[float, int]], rule: AbandonRule, ends: list[float], after: float = -math.inf
) -> float:
    """Worst rate of windows (end - W, end] and, just before `end`, [end - W, end) for end > after."""
    worst = 0.0
    f = rule.fp_weight
    for end in ends:
        for closed in (False, True):
            if closed and end <= after:
                continue
            num = den = 0.0
            for t, k in events:
                inside = (end - rule.window_seconds <= t < end) if closed else (end - rule.window_seconds < t <= end)
                if not inside:
                    continue
                num += (0.0, 1.0, f)[k]
                den += (1.0, 1.0, f)[k]
            if den > 0:
                worst = max(worst, num / den)
    return worst


quarter_seconds = st.integers(0, 1200).map(lambda x: x / 4)  # exact float arithmetic
event_lists = st.lists(
    st.tuples(quarter_seconds, st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2])),
    min_size=0,
    max_size=80,
).map(sorted)


@settings(max_examples=200, deadline=None)
@given(
    events=event_lists,
    cap=st.sampled_from([0.03, 0.1, 0.25]),
    window=st.integers(80, 800).map(lambda x: x / 4),
    guard_frac=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
    fp=st.sampled_from([0.0, 0.02, 0.3]),
    amd=st.integers(0, 30),
    now_off=st.integers(0, 200).map(lambda x: x / 4),
)
def test_budget_is_safe_and_tight(
    events: list[tuple[float, int]],
    cap: float,
    window: float,
    guard_frac: float,
    fp: float,
    amd: int,
    now_off: float,
) -> None:
    """The worst case the budget admits never breaks any window ending in [now, now + guard];
    one more at-risk call would (when the budget is not negative)."""
    rule = AbandonRule(
        cap=cap,
        window_seconds=window,
        count_amd_false_positives=fp > 0,
        amd_false_positive_rate=fp,
        guard_seconds=guard_frac * window,
    )
    led = AbandonLedger([rule])
    for t, k in events:
        (led.record_human, led.record_abandon, led.record_machine)[k](t)
    now = (events[-1][0] if events else 0.0) + now_off
    b = led.budget(now)
    r = b.abandons_affordable(amd_in_flight=amd)
    guard = rule.guard
    past_times = [t for t, _ in events]
    # candidate window ends: now, now+guard, and every age-out instant in between
    ends = [now, now + guard] + [t + window for t in past_times if now <= t + window <= now + guard]
    if r >= 0:
        future = [(now, 1)] * r + [(now, 2)] * (amd if rule.fp_weight else 0)
        worst = _naive_worst(events + future, rule, [e for e in ends if e >= now], after=now)
        assert worst <= cap + 1e-9
    # tightness: one more abandon breaks some window ending in [now, now + guard]
    future = [(now, 1)] * (max(r, 0) + 1) + [(now, 2)] * (amd if rule.fp_weight else 0)
    if r >= 0:
        assert _naive_worst(events + future, rule, [e for e in ends if e >= now], after=now) > cap - 1e-9


@settings(max_examples=100, deadline=None)
@given(events=event_lists, window=st.integers(20, 600).map(lambda x: x / 4), fp=st.sampled_from([0.0, 0.5]))
def test_worst_window_matches_brute_force(events: list[tuple[float, int]], window: float, fp: float) -> None:
    rule = AbandonRule(cap=0.03, window_seconds=window, count_amd_false_positives=fp > 0, amd_false_positive_rate=fp)
    led = AbandonLedger([rule], keep_history=True)
    for t, k in events:
        (led.record_human, led.record_abandon, led.record_machine)[k](t)
    ends = sorted({t for t, _ in events} | {t + window for t, _ in events})
    expected = _naive_worst(events, rule, ends)
    assert led.worst_window(rule) == pytest.approx(expected)


def test_queries_out_of_order_fall_back_to_a_scan() -> None:
    rule = AbandonRule(cap=0.1, window_seconds=100.0, guard_seconds=50.0)
    led = AbandonLedger([rule])
    for t in range(0, 100, 5):
        led.record_human(float(t))
    late = led.budget(120.0).abandons_affordable()
    early = led.budget(100.0).abandons_affordable()
    fresh = AbandonLedger([rule])
    for t in range(0, 100, 5):
        fresh.record_human(float(t))
    assert early == fresh.budget(100.0).abandons_affordable()
    assert late == led.budget(120.0).abandons_affordable()


def test_pruning_keeps_budgets_exact() -> None:
    rule = AbandonRule(cap=0.03, window_seconds=1000.0, guard_seconds=400.0)
    pruned = AbandonLedger([rule])
    full = AbandonLedger([rule], keep_history=True)
    t = 0.0
    for i in range(30000):
        t += 0.37
        kind = 1 if i % 41 == 0 else 0
        for led in (pruned, full):
            (led.record_human, led.record_abandon)[kind](t)
        if i % 997 == 0:
            assert pruned.budget(t).rules[0].slack_units == full.budget(t).rules[0].slack_units
    assert pruned.budget(t).abandons_affordable() == full.budget(t).abandons_affordable()


def test_another_instances_calls_in_flight_are_withheld_from_the_budget() -> None:
    """A campaign taken over with the previous owner's calls still in flight: no agent here can take
    them, so each costs a whole at-risk unit whatever the idle agents (and an AMD one its machine
    estimate under Ofcom)."""
    led = AbandonLedger([AbandonRule.ftc_tsr()])
    for i in range(100):
        led.record_human(1000.0 + i)
    b = led.budget(2000.0)
    assert b.abandons_affordable() == 3
    assert b.withheld(0) is b
    held = b.withheld(2)
    assert held.abandons_affordable() == 1
    assert held.max_new_calls(idle=4, in_flight=0, amd_in_flight=0) == 5  # 4 covered + 1 at risk
    assert b.withheld(3).max_new_calls(idle=4, in_flight=0, amd_in_flight=0) == 4  # covered only
    assert b.withheld(5).max_new_calls(idle=4, in_flight=1, amd_in_flight=0) == 3  # over budget: covered only
    ofcom = AbandonLedger([AbandonRule.ofcom(0.5)])
    for i in range(100):
        ofcom.record_human(1000.0 + i)
    ob = ofcom.budget(2000.0)
    assert ob.withheld(0, 2).abandons_affordable() == ob.abandons_affordable(amd_in_flight=2)


@settings(max_examples=200, deadline=None)
@given(
    events=event_lists,
    cap=st.sampled_from([0.03, 0.1, 0.25]),
    window=st.integers(80, 800).map(lambda x: x / 4),
    fp=st.sampled_from([0.0, 0.3]),
    amd=st.integers(0, 10),
    foreign=st.integers(0, 10),
    foreign_amd=st.integers(0, 10),
)
def test_withheld_budget_survives_every_foreign_call_abandoning(
    events: list[tuple[float, int]], cap: float, window: float, fp: float, amd: int, foreign: int,
    foreign_amd: int,
) -> None:
    """What the budget still admits after withholding another instance's calls stays safe when all of
    those abandon (or are counted machines) too."""
    rule = AbandonRule(cap=cap, window_seconds=window, count_amd_false_positives=fp > 0,
                       amd_false_positive_rate=fp, guard_seconds=0.5 * window)
    led = AbandonLedger([rule])
    for t, k in events:
        (led.record_human, led.record_abandon, led.record_machine)[k](t)
    now = events[-1][0] if events else 0.0
    r = led.budget(now).withheld(foreign, foreign_amd).abandons_affordable(amd_in_flight=amd)
    if r < 0:
        return
    machines = amd + foreign_amd if rule.fp_weight else 0
    future = [(now, 1)] * (r + foreign) + [(now, 2)] * machines
    ends = [now, now + rule.guard] + [t + window for t, _ in events if now <= t + window <= now + rule.guard]
    assert _naive_worst(events + future, rule, ends, after=now) <= cap + 1e-9


def test_daily_rule_is_24_hours_at_the_cap_without_amd_estimate() -> None:
    rule = AbandonRule.daily()
    assert (rule.name, rule.cap, rule.window_seconds, rule.fp_weight) == ("DAILY", 0.03, 86400.0, 0.0)
    assert AbandonRule.daily(0.02).cap == 0.02


def test_a_second_daily_rule_stops_a_day_spending_what_earlier_days_banked() -> None:
    """Day 1 banks budget under the 30-day rule (1000 answers, no abandon); on day 2 with 100 answers
    so far the 30-day rule alone would allow 34 abandons at once (34/1134 < 3%), a day of 34/134;
    with the 24 h rule as well it is 3 (3/103)."""
    day = 86400.0
    ftc = AbandonLedger([AbandonRule.ftc_tsr()])
    both = AbandonLedger([AbandonRule.ftc_tsr(), AbandonRule.daily()])
    for led in (ftc, both):
        for i in range(1000):
            led.record_human(3600.0 + i)
        for i in range(100):
            led.record_human(day + 7200.0 + i)
    now = day + 7300.0
    assert ftc.budget(now).abandons_affordable() == 34
    assert both.budget(now).abandons_affordable() == 3
    assert [r.rule.name for r in both.budget(now).rules] == ["FTC_TSR", "DAILY"]


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 8), st.integers(0, 6)),
        min_size=1,
        max_size=40,
    ),
    cap=st.sampled_from([0.03, 0.1, 0.25]),
    day=st.integers(2, 10).map(lambda x: x * 4.0),
    long_days=st.sampled_from([3, 30]),
)
def test_with_a_long_and_a_daily_rule_no_window_of_either_exceeds_the_cap(
    steps: list[tuple[int, int]], cap: float, day: float, long_days: int
) -> None:
    """A campaign under a long rule (FTC's 30 days, scaled) plus the daily rule (its 24 h, scaled)
    that spends the whole budget at every decision (all at-risk calls it may place abandon at once),
    for many 'days', live answers arriving in between: after each decision, however nothing more is
    answered, no window of either rule ending within that rule's guard exceeds the cap. So no single
    day spends what quiet earlier days banked under the long rule."""
    long_rule = AbandonRule(cap=cap, window_seconds=long_days * day, name="LONG")
    daily = AbandonRule(cap=cap, window_seconds=day, name="DAILY")
    led = AbandonLedger([long_rule, daily])
    events: list[tuple[float, int]] = []
    t = 0.0
    for sixteenths, humans in steps:
        t += day * sixteenths / 16  # decisions at most half a day apart
        for _ in range(humans):
            led.record_human(t)
            events.append((t, 0))
        spent = led.budget(t).abandons_affordable()
        if spent < 0:
            continue
        for _ in range(spent):
            led.record_abandon(t)
            events.append((t, 1))
        for rule in (long_rule, daily):
            w = rule.window_seconds
            ends = [t, t + rule.guard] + [e + w for e, _ in events if t <= e + w <= t + rule.guard]
            assert _naive_worst(events, rule, ends, after=t) <= cap + 1e-9


def test_with_the_daily_rule_the_pacer_holds_each_day_the_long_rule_alone_does_not() -> None:
    """The same spending campaign as above, made concrete: a quiet first day banks answers, the second
    day spends. With the long rule alone day 2's own rate goes over the cap; with the daily rule too
    it stays within."""
    day = 86400.0

    def day2_rate(rules: list[AbandonRule]) -> float:
        led = AbandonLedger(rules, keep_history=True)
        for i in range(2000):
            led.record_human(3600.0 + i)  # day 1: answers only
        abandons = humans = 0
        for i in range(200):
            now = day + 3600.0 + 10 * i
            led.record_human(now)
            humans += 1
            for _ in range(max(0, led.budget(now).abandons_affordable())):
                led.record_abandon(now)
                abandons += 1
        return abandons / (abandons + humans)

    assert day2_rate([AbandonRule.ftc_tsr()]) > 0.2
    assert day2_rate([AbandonRule.ftc_tsr(), AbandonRule.daily()]) <= 0.03
