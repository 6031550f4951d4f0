"""Agent states: wrap-up, pause/logout (immediate or after the call), membership changes."""

from __future__ import annotations

from acd_support import Sim, agents, logs, of, offered

from ari_app.acd.core import (
    AgentConfig,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentStateChanged,
    AgentUnpause,
    CallEnded,
    Offer,
    QueueConfig,
    RemoveAgent,
    UpsertAgent,
)


def connect(sim: Sim, item_id: str) -> None:
    sim.answer(of(sim.arrive(item_id), Offer)[0])


def test_wrapup_then_available_takes_the_waiting_item() -> None:
    sim = Sim(QueueConfig("q", wrapup_time=30), agents=agents(1))
    connect(sim, "c1")
    sim.arrive("c2", at=5)
    out = sim.do(CallEnded("c1", by="agent"), at=60)
    (done,) = logs(out, "COMPLETEAGENT")
    assert done.data == {"holdtime": 0, "calltime": 60, "origposition": 1}
    assert sim.status("a1") == "wrapup" and offered(out) == []
    assert sim.engine.next_deadline() == 90
    out = sim.advance(90)
    assert of(out, AgentStateChanged)[0] == AgentStateChanged(
        "a1", "wrapup", "available", "wrapup-end", 90
    )
    assert offered(out) == [("c2", "a1")]


def test_agent_wrapup_override_and_caller_completion() -> None:
    member = AgentConfig("a1", "PJSIP/a1", memberships={"q": 0}, wrapup_time=5)
    sim = Sim(QueueConfig("q", wrapup_time=30), agents=(member,))
    connect(sim, "c1")
    out = sim.do(CallEnded("c1", by="caller"), at=10)
    assert logs(out, "COMPLETECALLER")
    assert sim.engine.next_deadline() == 15


def test_call_stats_feed_the_agent() -> None:
    sim = Sim(QueueConfig("q"), agents=agents(1))
    connect(sim, "c1")
    sim.do(CallEnded("c1"), at=40)
    info = sim.engine.agent("a1")
    assert info is not None
    assert (info.calls_taken, info.talk_time, info.last_call_end) == (1, 40, 40)


def test_pause_and_unpause_log_per_queue() -> None:
    member = AgentConfig("a1", "PJSIP/a1", memberships={"q": 0, "r": 1})
    sim = Sim(QueueConfig("q"), QueueConfig("r"), agents=(member,))
    out = sim.do(AgentPause("a1", "lunch"))
    assert [(e.event, e.queue, e.data) for e in logs(out)] == [
        ("PAUSE", "q", {"reason": "lunch"}),
        ("PAUSE", "r", {"reason": "lunch"}),
    ]
    assert of(out, AgentStateChanged)[0].new == "paused"
    out = sim.do(AgentUnpause("a1"))
    assert [e.event for e in logs(out)] == ["UNPAUSE", "UNPAUSE"]
    assert sim.status("a1") == "available"


def test_pause_during_a_call_applies_after_it_without_wrapup() -> None:
    sim = Sim(QueueConfig("q", wrapup_time=30), agents=agents(1))
    connect(sim, "c1")
    assert logs(sim.do(AgentPause("a1", "break")), "PAUSE") == []
    assert sim.engine.agent("a1").pending == "pause"  # type: ignore[union-attr]
    sim.arrive("c2")
    out = sim.do(CallEnded("c1"), at=20)
    assert logs(out, "PAUSE")[0].data == {"reason": "break"}
    assert sim.status("a1") == "paused" and offered(out) == []


def test_unpause_during_the_call_cancels_the_pending_pause() -> None:
    sim = Sim(QueueConfig("q"), agents=agents(1))
    connect(sim, "c1")
    sim.do(AgentPause("a1", "break"))
    sim.do(AgentUnpause("a1"))
    sim.do(CallEnded("c1"))
    assert sim.status("a1") == "available"


def test_pause_while_ringing_applies_when_the_offer_ends() -> None:
    sim = Sim(QueueConfig("q", ring_timeout=5), agents=agents(1))
    sim.arrive("c1")
    sim.do(AgentPause("a1", "coffee"))
    assert sim.status("a1") == "ringing"
    sim.advance(5)
    assert sim.status("a1") == "paused"


def test_logout_during_a_call_applies_after_it() -> None:
    sim = Sim(QueueConfig("q", wrapup_time=10), agents=agents(1))
    connect(sim, "c1")
    sim.do(AgentLogout("a1"), at=5)
    assert sim.status("a1") == "on_call"
    out = sim.do(CallEnded("c1"), at=50)
    (off,) = logs(out, "AGENTLOGOFF")
    assert off.data["logintime"] == 50
    assert sim.status("a1") == "logged_out"


def test_pause_in_wrapup_is_immediate_and_login_twice_is_a_no_op() -> None:
    sim = Sim(QueueConfig("q", wrapup_time=10), agents=agents(1))
    assert sim.do(AgentLogin("a1")) == []
    connect(sim, "c1")
    sim.do(CallEnded("c1"), at=5)
    sim.do(AgentPause("a1", "x"), at=6)
    assert sim.status("a1") == "paused"
    assert sim.engine.next_deadline() is None


def test_membership_changes_are_logged_and_agent_removal_frees_the_queue() -> None:
    sim = Sim(QueueConfig("q"), QueueConfig("r"), agents=agents(1))
    out = sim.do(UpsertAgent(AgentConfig("a1", "PJSIP/a1", memberships={"r": 2})))
    assert [(e.event, e.queue) for e in logs(out)] == [("REMOVEMEMBER", "q"), ("ADDMEMBER", "r")]
    info = sim.engine.queue("q")
    assert info is not None and info.members == ()
    out = sim.do(RemoveAgent("a1"))
    assert [e.event for e in logs(out)] == ["AGENTLOGOFF", "REMOVEMEMBER"]
    assert sim.engine.agent("a1") is None


def test_agent_state_changes_are_reported_in_order() -> None:
    sim = Sim(QueueConfig("q", wrapup_time=2), agents=agents(1))
    connect(sim, "c1")
    sim.do(CallEnded("c1"), at=10)
    sim.advance(12)
    trail = [(c.old, c.new) for c in of(sim.out, AgentStateChanged)]
    assert trail == [
        ("logged_out", "available"),
        ("available", "ringing"),
        ("ringing", "on_call"),
        ("on_call", "wrapup"),
        ("wrapup", "available"),
    ]
