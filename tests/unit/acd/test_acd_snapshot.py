"""Snapshot/restore: callers keep their order across restarts and decisions continue alike."""

from __future__ import annotations

import json

import pytest
from acd_support import Sim, agents, of

from ari_app.acd.core import (
    AcdEngine,
    AgentConfig,
    AgentLogin,
    AgentPause,
    CallEnded,
    Offer,
    OfferFailed,
    QueueConfig,
)


def busy_sim() -> Sim:
    members = agents(3, skills={"fr": 3}) + (
        AgentConfig("a9", "PJSIP/a9", memberships={"q": 0, "r": 1}),
    )
    sim = Sim(
        QueueConfig(
            "q",
            strategy="round-robin",
            wrapup_time=10,
            retry_delay=5,
            ring_timeout=8,
            announce_position=True,
            announce_frequency=15,
            skill_escalation=((20, 1),),
        ),
        QueueConfig("r", strategy="random", weight=2),
        agents=members,
    )
    for n in range(6):
        sim.arrive(f"c{n}", at=n, priority=n % 2, required_skills={"fr": 5} if n == 3 else {})
    sim.arrive("cb", "r", at=6, kind="callback", entered_at=0.0, data={"number": "+4930123"})
    offers = of(sim.out, Offer)
    sim.answer(offers[0], at=7)  # connected
    sim.do(OfferFailed(offers[1].offer_id, "busy"), at=7)  # retry pending
    sim.do(CallEnded(offers[0].item_id), at=9)  # agent in wrap-up
    sim.do(AgentPause("a2", "lunch"), at=9)
    return sim


def test_snapshot_is_json_and_restores_the_same_queue() -> None:
    sim = busy_sim()
    snap = sim.engine.snapshot()
    restored = AcdEngine.restore(json.loads(json.dumps(snap)))
    for q in ("q", "r"):
        assert restored.waiting(q) == sim.engine.waiting(q)
    assert restored.agents() == sim.engine.agents()
    assert restored.offers() == sim.engine.offers()
    assert restored.next_deadline() == sim.engine.next_deadline()
    assert restored.snapshot() == snap


def test_restore_then_continue_gives_the_same_decisions() -> None:
    a, b = busy_sim(), busy_sim()
    b.engine = AcdEngine.restore(json.loads(json.dumps(b.engine.snapshot())))
    for sim in (a, b):
        mark = len(sim.out)
        sim.do(AgentLogin("a2"), at=10)
        sim.arrive("late", at=11)
        sim.advance(200)
        sim.out = sim.out[mark:]
    assert a.out == b.out and a.out


def test_restore_can_change_the_offer_id_prefix() -> None:
    sim = busy_sim()
    sim.engine = AcdEngine.restore(sim.engine.snapshot(), id_prefix="boot2-")
    mark = len(sim.out)
    sim.advance(100)
    ids = [o.offer_id for o in of(sim.out[mark:], Offer)]
    assert ids and all(i.startswith("boot2-") for i in ids)


def test_unknown_snapshot_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        AcdEngine.restore({"version": 99})
