"""Every statistic on fixed records, against numbers computed by hand (docs/statistics.md).

Queue "support", service level threshold T = 20 s, short abandons under S = 5 s, all calls in the
interval starting at T0 (an exact quarter hour)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.reporting.core.stats import (
    AgentCounters,
    AgentHistory,
    CallRecord,
    QueueCounters,
    StateChange,
    agent_intervals,
    agent_metrics,
    bucket,
    open_period,
    queue_intervals,
    queue_metrics,
)

T0 = 1_700_000_100.0  # 2023-11-14 22:15:00 UTC
assert T0 % 900 == 0


def call(offset, outcome, wait=None, talk=None, **kw):
    entered = T0 + offset
    answered_at = entered + wait if outcome == "answered" and wait is not None else None
    ended_at = None
    if outcome == "answered" and talk is not None:
        ended_at = answered_at + talk
    elif outcome != "answered" and wait is not None:
        ended_at = entered + wait
    return CallRecord(queue="support", entered_at=entered, outcome=outcome, answered_at=answered_at,
                      ended_at=ended_at, left_at=ended_at or entered, **kw)


FIXED = [
    call(0, "answered", wait=10, talk=100, wrap=20.0),              # in SL, handled
    call(5, "answered", wait=30, talk=200, hold=15.0, wrap=10.0),   # not in SL, handled
    call(10, "answered", wait=20),                                  # in SL (wait == T), still talking
    call(20, "abandoned", wait=3),                                  # short abandon
    call(30, "abandoned", wait=12),                                 # abandoned within T
    call(40, "abandoned", wait=45),                                 # abandoned after T
    call(50, "timeout", wait=180),
    call(60, "exitkey", wait=8),
    call(70, "callback", wait=25),
    call(80, "full", wait=0),
    call(90, None),                                                 # still waiting
    CallRecord(queue="support", entered_at=T0 + 100, outcome="answered", answered_at=T0 + 101,
               ended_at=T0 + 200, direction="callback"),            # not inbound: not counted
]

EXPECTED = QueueCounters(offered=11, answered=3, answered_in_sl=2, abandoned=3, abandoned_short=1,
                         abandoned_after_sl=1, timeout=1, exitkey=1, callback=1, other_exit=1, in_progress=1,
                         wait_answered_sum=60.0, wait_answered_max=30.0, wait_abandoned_sum=60.0, handled=2,
                         talk_sum=300.0, hold_sum=15.0, wrap_sum=30.0)


def test_queue_counters_on_fixed_records():
    out = queue_intervals(FIXED, threshold=20.0, short_abandon=5.0)
    assert list(out) == [("support", T0)]
    assert out[("support", T0)] == EXPECTED


def test_queue_metrics_by_hand():
    m = queue_metrics(EXPECTED)
    assert m["service_level"] == pytest.approx(2 / (3 + 1))           # 0.5
    assert m["abandon_rate"] == pytest.approx((3 - 1) / (11 - 1))     # 0.2
    assert m["asa"] == pytest.approx(60 / 3)                         # 20 s
    assert m["aht"] == pytest.approx((300 + 15 + 30) / 2)            # 172.5 s
    assert m["avg_talk"] == pytest.approx(150)
    assert m["avg_wrap"] == pytest.approx(15)
    assert m["avg_abandon_wait"] == pytest.approx(20)
    assert m["answer_rate"] == pytest.approx(3 / 11)


def test_no_calls_is_no_figure_not_zero():
    assert all(v is None for v in queue_metrics(QueueCounters()).values())


def test_threshold_per_queue_and_interval_split():
    calls = [CallRecord("a", T0 + 899, "answered", answered_at=T0 + 929, ended_at=T0 + 1000),
             CallRecord("a", T0 + 900, "answered", answered_at=T0 + 930, ended_at=T0 + 1000),
             CallRecord("b", T0, "answered", answered_at=T0 + 30, ended_at=T0 + 100)]
    out = queue_intervals(calls, threshold={"a": 30.0, "b": 20.0}, short_abandon=5)
    assert set(out) == {("a", T0), ("a", T0 + 900), ("b", T0)}
    assert out[("a", T0)].answered_in_sl == 1 and out[("b", T0)].answered_in_sl == 0


def test_short_abandon_longer_than_threshold_is_only_short():
    out = queue_intervals([call(0, "abandoned", wait=25)], threshold=20, short_abandon=30)
    c = out[("support", T0)]
    assert (c.abandoned_short, c.abandoned_after_sl) == (1, 0)
    assert queue_metrics(c)["service_level"] is None and queue_metrics(c)["abandon_rate"] is None


def test_counters_add_up():
    a, b = QueueCounters(offered=2, wait_answered_max=5.0, talk_sum=1.5), QueueCounters(offered=1, wait_answered_max=9.0)
    a.add(b)
    assert (a.offered, a.wait_answered_max, a.talk_sum) == (3, 9.0, 1.5)


# ---------------------------------------------------------------------------------- agents

HISTORY = AgentHistory(
    states=[StateChange(T0 - 300, "available"), StateChange(T0 + 60, "ringing"), StateChange(T0 + 70, "on_call"),
            StateChange(T0 + 170, "wrapup"), StateChange(T0 + 190, "available"), StateChange(T0 + 800, "paused"),
            StateChange(T0 + 1000, "available"), StateChange(T0 + 1200, "logged_out")],
    connects=[T0 + 70], noanswers=[T0 + 500])


def test_agent_counters_on_fixed_records():
    out = agent_intervals(HISTORY)
    assert out[T0 - 900] == AgentCounters(staffed=300, available=300)
    assert out[T0] == AgentCounters(calls_handled=1, ring_noanswer=1, staffed=900, available=670, ringing=10,
                                    on_call=100, wrapup=20, paused=100)
    assert out[T0 + 900] == AgentCounters(staffed=300, paused=100, available=200)
    assert set(out) == {T0 - 900, T0, T0 + 900}


def test_agent_metrics_by_hand():
    m = agent_metrics(agent_intervals(HISTORY)[T0])
    assert m["occupancy"] == pytest.approx((100 + 20) / (100 + 20 + 670 + 10))   # 0.15
    assert m["avg_handle"] == pytest.approx(120)
    assert agent_metrics(AgentCounters())["occupancy"] is None


def test_the_current_period_counts_only_with_a_now():
    h = AgentHistory(states=[StateChange(T0, "available"), StateChange(T0 + 100, "on_call")])
    assert agent_intervals(h)[T0] == AgentCounters(staffed=100, available=100)
    live = agent_intervals(h, now=T0 + 1000)
    assert live[T0].on_call == 800 and live[T0 + 900].on_call == 100
    assert open_period("on_call", T0 + 100, T0, T0 + 1000) == {
        T0: AgentCounters(staffed=800, on_call=800), T0 + 900: AgentCounters(staffed=100, on_call=100)}
    assert open_period("logged_out", T0, T0, T0 + 1000) == {T0: AgentCounters(), T0 + 900: AgentCounters()}


@given(st.lists(st.tuples(st.floats(0, 20_000), st.sampled_from(["available", "ringing", "on_call", "wrapup",
                                                                "paused", "logged_out"])), max_size=30))
def test_state_time_is_conserved_across_intervals(changes):
    changes = sorted(changes)
    h = AgentHistory(states=[StateChange(T0 + t, s) for t, s in changes])
    out = agent_intervals(h)
    expected = sum(changes[i + 1][0] - changes[i][0] for i in range(len(changes) - 1)
                   if changes[i][1] != "logged_out")
    total = sum(c.staffed for c in out.values())
    assert total == pytest.approx(expected, abs=1e-6)
    for b, c in out.items():
        assert b % 900 == 0 and c.staffed <= 900 + 1e-6
        assert c.staffed == pytest.approx(c.available + c.ringing + c.on_call + c.wrapup + c.paused, abs=1e-6)


def test_bucket():
    assert bucket(T0 + 899.9) == T0 and bucket(T0 + 900) == T0 + 900
