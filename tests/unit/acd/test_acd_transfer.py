"""Blind transfers of a connected caller by the agent (CallTransferred)."""

from __future__ import annotations

from acd_support import Sim, logs, of, offered

from ari_app.acd.core import (
    AgentConfig,
    CallTransferred,
    ExitQueue,
    Offer,
    QueueConfig,
    StartHold,
)


def _sim(**q2: object) -> Sim:
    return Sim(
        QueueConfig("q", strategy="linear", wrapup_time=10),
        QueueConfig("billing", strategy="linear", **q2),  # type: ignore[arg-type]
        agents=(
            AgentConfig("a1", "PJSIP/a1", memberships={"q": 0, "billing": 0}),
            AgentConfig("b1", "PJSIP/b1", memberships={"billing": 0}),
        ),
    )


def test_transfer_to_a_queue_completes_for_the_agent_and_queues_the_caller_keeping_its_place() -> None:
    sim = _sim()
    sim.do(CallTransferred("x", "queue:billing"))  # unknown item: nothing
    sim.do(CallTransferred("c1", "queue:billing"))
    sim.arrive("c1", priority=3, at=1)
    sim.answer(of(sim.out, Offer)[0], at=2)
    out = sim.do(CallTransferred("c1", "queue:billing"), at=30)
    (bt,) = logs(out, "BLINDTRANSFER")
    assert (bt.queue, bt.agent_id, bt.data["target"], bt.data["calltime"]) == ("q", "a1", "queue:billing", 28)
    assert not logs(out, "COMPLETEAGENT") and not logs(out, "COMPLETECALLER")
    assert sim.status("a1") == "wrapup"
    (enter,) = logs(out, "ENTERQUEUE")
    assert enter.queue == "billing" and enter.data["priority"] == 3
    assert of(out, StartHold) == [StartHold("c1")]
    assert offered(out) == [("c1", "b1")]
    item = sim.engine.item("c1")
    assert item is not None and item.queue == "billing" and item.item.entered_at == 1  # FIFO place kept
    assert item.joined_at == 30  # the new queue's timers run from now
    stats = sim.engine.queue("q")
    assert stats is not None and stats.stats["completed"] == 1


def test_the_transferring_agent_comes_last_in_the_target_queue() -> None:
    sim = Sim(
        QueueConfig("q", strategy="linear", wrapup_time=0),
        QueueConfig("billing", strategy="linear"),
        agents=(
            AgentConfig("a1", "PJSIP/a1", memberships={"q": 0, "billing": 0}),
            AgentConfig("b1", "PJSIP/b1", memberships={"billing": 1}),
        ),
    )
    sim.arrive("c1")
    sim.answer(of(sim.out, Offer)[0])
    out = sim.do(CallTransferred("c1", "queue:billing"))
    assert sim.status("a1") == "available"
    assert offered(out) == [("c1", "b1")]  # a1 has the lower penalty but transferred it away


def test_transfer_to_a_number_ends_the_item_and_an_unknown_queue_exits() -> None:
    sim = _sim()
    sim.arrive("c1")
    sim.answer(of(sim.out, Offer)[0])
    out = sim.do(CallTransferred("c1", "number:0612345678"))
    assert [c.data["target"] for c in logs(out, "BLINDTRANSFER")] == ["number:0612345678"]
    assert sim.engine.item("c1") is None and not of(out, ExitQueue) and not logs(out, "ENTERQUEUE")
    sim.arrive("c2", at=20)  # a1 out of wrap-up
    sim.answer([o for o in of(sim.out, Offer) if o.item_id == "c2"][0])
    out = sim.do(CallTransferred("c2", "queue:gone"))
    assert of(out, ExitQueue) == [ExitQueue("c2", "unknown", None)]


def test_transfer_into_a_full_queue_follows_its_full_destination() -> None:
    sim = _sim(max_len=1, full_destination="context:overflow,s")
    sim.do(CallTransferred("c0", "queue:billing"))
    sim.arrive("w1", queue="billing", required_skills={"never": 1})  # fills billing
    sim.arrive("c1")
    sim.answer([o for o in of(sim.out, Offer) if o.item_id == "c1"][0])
    out = sim.do(CallTransferred("c1", "queue:billing"))
    assert logs(out, "FULL") and of(out, ExitQueue) == [ExitQueue("c1", "full", "context:overflow,s")]


def test_a_transferred_callback_waits_as_a_call_with_music() -> None:
    sim = _sim()
    sim.arrive("cb1", kind="callback")
    sim.answer(of(sim.out, Offer)[0])
    out = sim.do(CallTransferred("cb1", "queue:billing"))
    item = sim.engine.item("cb1")
    assert item is not None and item.item.kind == "call"  # the customer is on a line now
    assert of(out, StartHold) == [StartHold("cb1")]
