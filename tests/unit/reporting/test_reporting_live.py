"""The live snapshot from engine views (an AcdEngine driven by hand) and today's counters."""

from __future__ import annotations

from ari_app.acd.core import (
    AcdEngine,
    AgentConfig,
    AgentLogin,
    CallArrived,
    QueueConfig,
    QueueItem,
    UpsertAgent,
    UpsertQueue,
)
from ari_app.reporting.core import live
from ari_app.reporting.core.prometheus import Family, render
from ari_app.reporting.core.stats import AgentCounters, QueueCounters


def engine_with_a_caller(now: float) -> AcdEngine:
    e = AcdEngine()
    e.handle(UpsertQueue(QueueConfig("support", service_level_threshold=30)), now - 100)
    for aid in ("a1", "a2"):
        e.handle(UpsertAgent(AgentConfig(aid, f"Local/{aid}@sim-agent", memberships={"support": 0})), now - 100)
    e.handle(CallArrived(QueueItem("c1", "support", entered_at=now - 12)), now - 12)
    e.handle(CallArrived(QueueItem("cb1", "support", kind="callback", entered_at=now - 5)), now - 5)
    return e


def test_snapshot_shows_waiting_callers_agents_and_today():
    now = 1_700_000_500.0
    e = engine_with_a_caller(now)
    today = live.QueueToday(QueueCounters(offered=10, answered=8, answered_in_sl=6, abandoned=2, abandoned_short=1,
                                          abandoned_after_sl=1, wait_answered_sum=80.0, handled=8,
                                          talk_sum=800.0, wrap_sum=160.0),
                            QueueCounters(offered=10), series=[(1_700_000_100.0, QueueCounters(offered=10))])
    snap = live.snapshot([e.queue("support")], {"support": e.waiting("support")}, e.agents(), {"support": today},
                         {"a1": AgentCounters(calls_handled=3, on_call=60.0, available=60.0, staffed=120.0)},
                         now=now, sl_target=0.8, with_series=True)
    q = snap["queues"][0]
    assert q["waiting"] == 1 and q["callbacks_waiting"] == 1
    assert q["longest_wait"] == 12.0
    assert q["agents"]["logged_out"] == 2 and q["logged_in"] == 0
    assert q["today"]["service_level"] == round(6 / 9, 4) and q["today"]["abandon_rate"] == round(1 / 9, 4)
    assert q["today"]["aht"] == 120.0 and q["today"]["asa"] == 10.0
    assert q["sl_threshold"] == 30 and q["series"][0]["offered"] == 10
    assert q["erlang"]["agents"] == 0 and q["erlang"]["predicted_service_level"] == 0.0
    assert q["erlang"]["agents_needed"] >= 1 and q["erlang"]["model"] == "erlang_a"  # callers gave up: Erlang A
    agents = {a["id"]: a for a in snap["agents"]}
    assert agents["a1"]["today"]["calls_handled"] == 3 and agents["a1"]["today"]["occupancy"] == 0.5
    assert agents["a2"]["today"]["occupancy"] is None
    assert snap["agent_states"]["logged_out"] == 2


def test_logged_in_agents_and_occupancy_now():
    now = 1_700_000_500.0
    e = engine_with_a_caller(now)
    cmds = e.handle(AgentLogin("a1"), now)
    assert any(type(c).__name__ == "Offer" for c in cmds)  # a1 rings for c1
    e.handle(AgentLogin("a2"), now)
    q = live.snapshot([e.queue("support")], {"support": e.waiting("support")}, e.agents(), {}, {}, now=now,
                      sl_target=0.8)["queues"][0]
    assert q["logged_in"] == 2 and q["agents"]["ringing"] + q["agents"]["available"] == 2
    assert q["today"]["offered"] == 0 and q["today"]["service_level"] is None and q["erlang"] is None


def test_patience_estimate_is_wait_over_abandons():
    c = QueueCounters(abandoned=4, wait_answered_sum=300.0, wait_abandoned_sum=100.0)
    assert live.patience_estimate(c) == 100.0
    assert live.patience_estimate(QueueCounters()) is None


def test_prometheus_text_format():
    text = render([Family("ari_app_queue_callers_waiting", "gauge", "Callers waiting\nnow").add(3, queue='s"1\\'),
                   Family("ari_app_calls_total", "counter", "Calls").add(7, queue="s", outcome="answered").add(0.5)])
    assert text == ('# HELP ari_app_queue_callers_waiting Callers waiting\\nnow\n'
                    '# TYPE ari_app_queue_callers_waiting gauge\n'
                    'ari_app_queue_callers_waiting{queue="s\\"1\\\\"} 3\n'
                    '# HELP ari_app_calls_total Calls\n# TYPE ari_app_calls_total counter\n'
                    'ari_app_calls_total{outcome="answered",queue="s"} 7\n'
                    'ari_app_calls_total 0.5\n')
