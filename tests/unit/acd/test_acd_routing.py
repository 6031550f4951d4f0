"""Routing decisions: priority, FIFO, cross-queue weight, penalties, skills, escalation."""

from __future__ import annotations

from acd_support import Sim, agents, of, offered

from ari_app.acd.core import (
    AgentConfig,
    AgentDeviceState,
    AgentLogin,
    AgentPause,
    AgentUnpause,
    CallEnded,
    Offer,
    QueueConfig,
    UpsertAgent,
)


def finish(sim: Sim, item_id: str) -> None:
    sim.answer(of(sim.out, Offer)[-1])
    sim.do(CallEnded(item_id))


def test_priority_first_then_fifo() -> None:
    sim = Sim(QueueConfig("q", strategy="linear"), agents=agents(1), login=False)
    sim.arrive("c1", at=1, priority=0)
    sim.arrive("c2", at=2, priority=5)
    sim.arrive("c3", at=3, priority=0)
    sim.arrive("c4", at=4, priority=5)
    assert [i.item.id for i in sim.engine.waiting("q")] == ["c2", "c4", "c1", "c3"]
    assert [sim.engine.position(i) for i in ("c1", "c2", "c3", "c4")] == [3, 1, 4, 2]
    served = []
    sim.do(AgentLogin("a1"), at=10)
    for _ in range(4):
        served.append(of(sim.out, Offer)[-1].item_id)
        finish(sim, served[-1])
    assert served == ["c2", "c4", "c1", "c3"]


def test_a_callback_keeps_the_original_callers_place() -> None:
    sim = Sim(QueueConfig("q"), agents=agents(1), login=False)
    sim.arrive("c1", at=10)
    out = sim.arrive("cb", at=20, kind="callback", entered_at=5.0, data={"number": "+3312345678"})
    assert sim.engine.position("cb") == 1 and sim.engine.position("c1") == 2
    assert not [c for c in out if type(c).__name__ == "StartHold"]  # no channel to play to


def test_cross_queue_oldest_item_first_at_equal_weight() -> None:
    member = AgentConfig("a1", "PJSIP/a1", memberships={"q1": 0, "q2": 0})
    sim = Sim(QueueConfig("q1"), QueueConfig("q2"), agents=(member,), login=False)
    sim.arrive("old", "q2", at=1)
    sim.arrive("young", "q1", at=2)
    out = sim.do(AgentLogin("a1"), at=5)
    assert offered(out) == [("old", "a1")]


def test_cross_queue_higher_weight_goes_first() -> None:
    member = AgentConfig("a1", "PJSIP/a1", memberships={"q1": 0, "q2": 0})
    sim = Sim(QueueConfig("q1", weight=10), QueueConfig("q2"), agents=(member,), login=False)
    sim.arrive("old", "q2", at=1, priority=3)
    sim.arrive("young", "q1", at=2)
    out = sim.do(AgentLogin("a1"), at=5)
    assert offered(out) == [("young", "a1")]


def test_lower_penalty_first_but_higher_penalty_serves_when_the_others_are_busy() -> None:
    members = (
        AgentConfig("a1", "PJSIP/a1", memberships={"q": 1}),
        AgentConfig("a2", "PJSIP/a2", memberships={"q": 0}),
    )
    sim = Sim(QueueConfig("q", strategy="longest-idle"), agents=members)
    assert offered(sim.arrive("c1")) == [("c1", "a2")]
    assert offered(sim.arrive("c2")) == [("c2", "a1")]


def test_skills_pick_a_qualified_agent_or_wait() -> None:
    members = (
        AgentConfig("a1", "PJSIP/a1", skills={"fr": 3}, memberships={"q": 0}),
        AgentConfig("a2", "PJSIP/a2", skills={"fr": 7, "de": 2}, memberships={"q": 0}),
    )
    sim = Sim(QueueConfig("q", strategy="linear"), agents=members)
    assert offered(sim.arrive("c1", required_skills={"fr": 5})) == [("c1", "a2")]
    assert offered(sim.arrive("c2", required_skills={"fr": 5})) == []
    assert offered(sim.arrive("c3", required_skills={"de": 1})) == []  # a1 lacks de
    assert offered(sim.arrive("c4", required_skills={"fr": 1})) == [("c4", "a1")]


def test_escalation_relaxes_requirements_over_time() -> None:
    members = (
        AgentConfig("a1", "PJSIP/a1", skills={"fr": 2}, memberships={"q": 0}),
        AgentConfig("a2", "PJSIP/a2", memberships={"q": 0}),
    )
    cfg = QueueConfig("q", skill_escalation=((30, 2), (60, 0)), strategy="linear")
    sim = Sim(cfg, agents=members)
    sim.do(AgentPause("a1", "x"))
    assert offered(sim.arrive("c1", required_skills={"fr": 5})) == []
    sim.do(AgentUnpause("a1"), at=10)
    assert offered(sim.out) == []
    assert offered(sim.advance(30)) == [("c1", "a1")]  # fr>=2 accepted after 30 s
    sim.answer(of(sim.out, Offer)[-1])
    sim.arrive("c2", at=31, required_skills={"fr": 9})
    assert offered(sim.advance(90)) == []
    assert offered(sim.advance(91)) == [("c2", "a2")]  # anyone after 60 s in queue


def test_escalated_item_keeps_its_place_ahead_of_younger_items() -> None:
    member = AgentConfig("a1", "PJSIP/a1", skills={"fr": 3}, memberships={"q": 0})
    sim = Sim(QueueConfig("q", skill_escalation=((30, 3),)), agents=(member,), login=False)
    sim.arrive("c1", at=0, required_skills={"fr": 5})
    sim.arrive("c2", at=10)
    assert sim.engine.item("c1").required_now == {"fr": 5}  # type: ignore[union-attr]
    sim.advance(30)
    assert sim.engine.item("c1").required_now == {"fr": 3}  # type: ignore[union-attr]
    out = sim.do(AgentLogin("a1"), at=40)
    assert offered(out) == [("c1", "a1")]


def test_an_agent_takes_the_oldest_item_it_is_eligible_for() -> None:
    member = AgentConfig("a1", "PJSIP/a1", skills={"x": 5}, memberships={"q": 0})
    sim = Sim(QueueConfig("q"), agents=(member,), login=False)
    sim.arrive("needs-y", at=1, required_skills={"y": 1})
    sim.arrive("needs-x", at=2, required_skills={"x": 4})
    sim.arrive("plain", at=3)
    out = sim.do(AgentLogin("a1"), at=5)
    assert offered(out) == [("needs-x", "a1")]


def test_preferred_agent_then_fallback_to_anyone() -> None:
    sim = Sim(QueueConfig("q", strategy="linear"), agents=agents(2))
    sim.do(AgentPause("a2", "lunch"))
    out = sim.arrive(
        "cb", at=0, kind="callback", preferred_agent="a2", preferred_fallback_after=60.0
    )
    assert offered(out) == []
    assert offered(sim.advance(59)) == []
    assert offered(sim.advance(60)) == [("cb", "a1")]


def test_preferred_agent_gets_it_when_free() -> None:
    sim = Sim(QueueConfig("q", strategy="linear"), agents=agents(2))
    sim.do(AgentPause("a2", "lunch"))
    sim.arrive("cb", kind="callback", preferred_agent="a2", preferred_fallback_after=60.0)
    out = sim.do(AgentUnpause("a2"), at=20)
    assert offered(out) == [("cb", "a2")]


def test_ring_in_use_off_skips_agents_whose_device_is_busy() -> None:
    sim = Sim(
        QueueConfig("q"),
        QueueConfig("r", ring_in_use=True),
        agents=(AgentConfig("a1", "PJSIP/a1", memberships={"q": 0, "r": 0}),),
    )
    sim.do(AgentDeviceState("a1", "inuse"))
    assert offered(sim.arrive("c1", "q")) == []
    assert offered(sim.arrive("c2", "r")) == [("c2", "a1")]


def test_agent_on_a_call_is_never_offered_even_with_ring_in_use() -> None:
    sim = Sim(QueueConfig("q", ring_in_use=True), agents=agents(1))
    sim.answer(of(sim.arrive("c1"), Offer)[0])
    assert offered(sim.arrive("c2")) == []
    assert sim.status("a1") == "on_call"


def test_unavailable_device_is_never_offered_and_coming_back_routes() -> None:
    sim = Sim(QueueConfig("q", ring_in_use=True), agents=agents(1))
    sim.do(AgentDeviceState("a1", "unavailable"))
    assert offered(sim.arrive("c1")) == []
    assert offered(sim.do(AgentDeviceState("a1", "idle"))) == [("c1", "a1")]


def test_adding_a_membership_routes_waiting_items_at_once() -> None:
    sim = Sim(
        QueueConfig("q"),
        QueueConfig("r"),
        agents=(AgentConfig("a1", "PJSIP/a1", memberships={"r": 0}),),
    )
    sim.arrive("c1", "q")
    out = sim.do(UpsertAgent(AgentConfig("a1", "PJSIP/a1", memberships={"r": 0, "q": 3})))
    assert offered(out) == [("c1", "a1")]


def test_several_free_agents_and_items_are_matched_in_one_step() -> None:
    sim = Sim(QueueConfig("q", strategy="linear"), agents=agents(3), login=False)
    for n in range(5):
        sim.arrive(f"c{n}", at=n)
    sim.do(AgentLogin("a3"), at=10)
    sim.do(AgentLogin("a1"), at=10)
    sim.do(AgentLogin("a2"), at=10)
    assert offered(sim.out) == [("c0", "a3"), ("c1", "a1"), ("c2", "a2")]
