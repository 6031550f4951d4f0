"""Abuse limits of the public endpoint: pure logic, time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.clicktocall.core.limits import AbuseLimiter, Limits, SlidingWindow

LOOSE = dict(per_ip_per_minute=100, per_ip_concurrent=100, per_number_per_hour=100, number_cooldown=0.0,
             global_per_minute=100, global_concurrent=100)


def limiter(**kw: float) -> AbuseLimiter:
    return AbuseLimiter(Limits(**{**LOOSE, **kw}))  # type: ignore[arg-type]


def test_sliding_window_is_exact():
    w = SlidingWindow(2, 60.0)
    assert w.wait(0) == 0
    w.add(0)
    w.add(10)
    assert w.wait(10) == 50          # the first event leaves the window at t=60
    assert w.wait(59.5) == 0.5
    assert w.wait(60) == 0
    w.add(60)
    assert w.wait(60) == 10          # now the one at t=10 must leave


def test_per_address_rate_refuses_with_exact_retry_after_and_does_not_count_refusals():
    lim = limiter(per_ip_per_minute=3)
    for t in (0, 1, 2):
        assert lim.attempt("1.2.3.4", t) is None
    refusal = lim.attempt("1.2.3.4", 30)
    assert refusal is not None and refusal.reason == "rate-ip" and refusal.retry_after == 30
    assert lim.attempt("1.2.3.4", 45) is not None      # still refused, and not counted
    assert lim.attempt("5.6.7.8", 45) is None           # another address is not affected
    assert lim.attempt("1.2.3.4", 60) is None           # exactly when Retry-After said


@pytest.mark.parametrize(("limits", "calls", "reason", "retry_after"), [
    # limits, admitted calls (id, ip, number, t) before the probe at t=100 -> refusal
    ({"per_ip_concurrent": 1}, [("a", "ip1", "+33611111111", 0)], "concurrent-ip", 30),
    ({}, [("a", "ip2", "+33612345678", 0)], "number-busy", 30),
    ({"global_concurrent": 1}, [("a", "ip2", "+33611111111", 0)], "concurrent-global", 30),
    ({"global_per_minute": 1}, [("a", "ip2", "+33611111111", 90)], "rate-global", 50),
])
def test_limits_that_count_calls(limits, calls, reason, retry_after):
    lim = limiter(concurrent_retry_after=30, **limits)
    for rid, ip, number, t in calls:
        assert lim.admit(rid, ip, number, t) is None
    refusal = lim.admit("probe", "ip1", "+33612345678", 100)
    assert refusal is not None and refusal.reason == reason
    assert refusal.retry_after == pytest.approx(retry_after)


def test_cool_down_runs_from_the_end_of_the_call():
    lim = limiter(number_cooldown=120)
    assert lim.admit("a", "ip", "+33612345678", 0) is None
    lim.finish("a", 50)
    refusal = lim.admit("b", "ip", "+33612345678", 100)
    assert refusal is not None and refusal.reason == "cooldown" and refusal.retry_after == 70
    assert lim.admit("b", "ip", "+33612345678", 170) is None


def test_per_number_hourly_limit():
    lim = limiter(per_number_per_hour=2)
    for i, t in enumerate((0, 100)):
        assert lim.admit(str(i), f"ip{i}", "+33612345678", t) is None
        lim.finish(str(i), t + 1)
    refusal = lim.admit("c", "ip9", "+33612345678", 200)
    assert refusal is not None and refusal.reason == "rate-number" and refusal.retry_after == 3400


def test_the_longest_wait_is_reported_when_several_limits_refuse():
    lim = limiter(number_cooldown=500, global_per_minute=1)
    assert lim.admit("a", "ip", "+33612345678", 0) is None
    lim.finish("a", 10)
    refusal = lim.admit("b", "ip", "+33612345678", 20)
    assert refusal is not None and refusal.reason == "cooldown" and refusal.retry_after == 490


def test_finish_frees_slots_and_is_idempotent():
    lim = limiter(per_ip_concurrent=1, global_concurrent=1)
    assert lim.admit("a", "ip", "+33611111111", 0) is None
    assert lim.active() == 1
    lim.finish("a", 1)
    lim.finish("a", 2)
    assert lim.active() == 0
    assert lim.admit("b", "ip", "+33622222222", 3) is None


def test_restore_counts_calls_from_before_a_restart():
    lim = limiter(number_cooldown=120, per_number_per_hour=1)
    lim.restore("+33612345678", accepted_at=1000, ended_at=1030, now=1100)
    refusal = lim.admit("a", "ip", "+33612345678", 1100)
    assert refusal is not None and refusal.reason == "rate-number"
    lim2 = limiter(number_cooldown=120)
    lim2.restore("+33612345678", accepted_at=1000, ended_at=1030, now=1100)
    refusal = lim2.admit("a", "ip", "+33612345678", 1100)
    assert refusal is not None and refusal.reason == "cooldown" and refusal.retry_after == 50


def test_prune_forgets_idle_keys():
    lim = limiter(number_cooldown=10)
    for i in range(50):
        lim.attempt(f"ip{i}", 0)
        assert lim.admit(str(i), f"ip{i}", f"+336{i:08d}", 0) is None
        lim.finish(str(i), 0)
    lim.prune(4000)
    assert not lim._ip and not lim._number and not lim._cooldown_from


# --------------------------------------------------------------------------- properties
events = st.lists(st.tuples(st.floats(0, 5, allow_nan=False), st.sampled_from(["ip1", "ip2", "ip3"]),
                            st.sampled_from(["+33611111111", "+33622222222", "+33633333333"]),
                            st.booleans()), max_size=60)


@settings(max_examples=200, deadline=None)
@given(events)
def test_no_window_ever_holds_more_than_its_limit(evts):
    """Whatever the traffic: at most N admitted calls in any minute, per number per hour, per
    address per minute, and never more calls at once than allowed."""
    lim = AbuseLimiter(Limits(per_ip_per_minute=4, per_ip_concurrent=2, per_number_per_hour=3, number_cooldown=7,
                              global_per_minute=5, global_concurrent=3))
    now, admitted, attempts, active = 0.0, [], [], []
    for i, (dt, ip, number, end_one) in enumerate(evts):
        now += dt
        if end_one and active:
            lim.finish(active.pop(0), now)
        if lim.attempt(ip, now) is None:
            attempts.append((now, ip))
            if lim.admit(str(i), ip, number, now) is None:
                admitted.append((now, ip, number))
                active.append(str(i))
        assert lim.active() == len(active) <= 3
    for t, _, number in admitted:
        assert sum(1 for u, _, _ in admitted if t <= u < t + 60) <= 5
        assert sum(1 for u, _, n in admitted if n == number and t <= u < t + 3600) <= 3
    for t, ip in attempts:
        assert sum(1 for u, i in attempts if i == ip and t <= u < t + 60) <= 4


@settings(max_examples=200, deadline=None)
@given(events, st.floats(0, 200, allow_nan=False))
def test_obeying_retry_after_of_a_time_limit_succeeds(evts, gap):
    """A refusal by a time-based limit says exactly how long to wait: after that, with nothing
    else happening, the same request is admitted."""
    lim = AbuseLimiter(Limits(per_ip_per_minute=1000, per_ip_concurrent=1000, per_number_per_hour=3,
                              number_cooldown=gap, global_per_minute=4, global_concurrent=1000))
    now = 0.0
    for i, (dt, ip, number, _) in enumerate(evts):
        now += dt
        if lim.admit(str(i), ip, number, now) is None:
            lim.finish(str(i), now)
    refusal = lim.admit("probe", "ip1", "+33611111111", now)
    if refusal is not None:
        assert refusal.retry_after > 0
        assert lim.admit("probe", "ip1", "+33611111111", now + refusal.retry_after) is None


def test_resume_marks_a_restored_call_active_without_counting_it_twice():
    lim = limiter(per_number_per_hour=2, number_cooldown=0)
    lim.restore("+33612345678", accepted_at=0, ended_at=None, now=10)
    lim.resume("a", "ip", "+33612345678")
    lim.resume("a", "ip", "+33612345678")
    assert lim.active() == 1
    refusal = lim.admit("b", "ip", "+33612345678", 10)
    assert refusal is not None and refusal.reason == "number-busy"
    lim.finish("a", 20)
    assert lim.admit("b", "ip", "+33612345678", 20) is None     # 2 in the hour: the restored one and this
