"""Queue rules for a waiting caller: max wait/overflow, full, join/leave empty, exit and
callback keys, abandon, announcements and EWT, supervisor moves, queue removal."""

from __future__ import annotations

import pytest
from acd_support import Sim, agents, logs, of, offered

from ari_app.acd.core import (
    AgentLogin,
    AgentLogout,
    AgentPause,
    Announce,
    CallEnded,
    CallLeft,
    CancelOffer,
    DtmfPressed,
    ExitQueue,
    ItemMoved,
    MoveItem,
    Offer,
    QueueConfig,
    RemoveQueue,
    StartHold,
    UpsertQueue,
)
from ari_app.acd.core.ewt import HandleTimes, estimate_wait


def test_max_wait_exits_to_the_overflow_destination() -> None:
    sim = Sim(
        QueueConfig("q", max_wait=60, max_wait_destination="voicemail:100"),
        agents=agents(1),
        login=False,
    )
    sim.arrive("c0", at=0)
    sim.arrive("c1", at=10)
    out = sim.advance(70)
    assert of(out, ExitQueue) == [
        ExitQueue("c0", "timeout", "voicemail:100"),
        ExitQueue("c1", "timeout", "voicemail:100"),
    ]
    first, second = logs(out, "EXITWITHTIMEOUT")
    assert first.data == {"position": 1, "origposition": 1, "waittime": 60}
    assert second.data == {"position": 1, "origposition": 2, "waittime": 60}
    assert sim.engine.waiting("q") == []


def test_max_wait_while_ringing_cancels_the_offer() -> None:
    sim = Sim(QueueConfig("q", max_wait=10, ring_timeout=30), agents=agents(1))
    offer = of(sim.arrive("c1"), Offer)[0]
    out = sim.advance(10)
    assert of(out, CancelOffer) == [CancelOffer(offer.offer_id, "exit", "c1", "a1")]
    assert of(out, ExitQueue) == [ExitQueue("c1", "timeout", None)]
    assert sim.status("a1") == "available"


def test_overflow_into_another_queue_keeps_the_callers_place() -> None:
    sim = Sim(
        QueueConfig("q", max_wait=30, max_wait_destination="queue:backup"),
        QueueConfig("backup"),
        agents=agents(1, "backup"),
        login=False,
    )
    sim.arrive("early", "q", at=0)
    sim.arrive("late", "backup", at=10)
    out = sim.advance(30)
    assert of(out, ItemMoved) == [ItemMoved("early", "q", "backup", "overflow")]
    assert of(out, ExitQueue) == [] and of(out, StartHold) == []
    assert [e.event for e in logs(out)] == ["EXITWITHTIMEOUT", "ENTERQUEUE"]
    assert [i.item.id for i in sim.engine.waiting("backup")] == ["early", "late"]
    assert offered(sim.do(AgentLogin("a1"))) == [("early", "a1")]


def test_full_queue_rejects() -> None:
    sim = Sim(
        QueueConfig("q", max_len=2, full_destination="context:busy,s"),
        agents=agents(1),
        login=False,
    )
    sim.arrive("c1")
    sim.arrive("c2")
    out = sim.arrive("c3")
    assert logs(out, "FULL") and of(out, ExitQueue) == [ExitQueue("c3", "full", "context:busy,s")]
    assert of(out, StartHold) == [] and sim.engine.item("c3") is None


def test_full_overflow_to_a_queue_starts_hold_there() -> None:
    sim = Sim(QueueConfig("q", max_len=1, full_destination="queue:r"), QueueConfig("r"))
    sim.arrive("c1")
    out = sim.arrive("c2")
    assert of(out, ItemMoved) == [ItemMoved("c2", "q", "r", "overflow")]
    assert of(out, StartHold) == [StartHold("c2")]


def test_overflow_cycles_end_in_an_exit() -> None:
    sim = Sim(
        QueueConfig("q", max_len=1, full_destination="queue:r"),
        QueueConfig("r", max_len=1, full_destination="queue:q"),
    )
    sim.arrive("c1", "q")
    sim.arrive("c2", "r")
    out = sim.arrive("c3", "q")
    assert of(out, ItemMoved) == [ItemMoved("c3", "q", "r", "overflow")]
    assert of(out, ExitQueue) == [ExitQueue("c3", "full", None)]


JOIN_EMPTY = frozenset({"paused", "unavailable", "loggedout", "wrapup"})


def test_join_empty_refuses_when_no_member_can_serve() -> None:
    sim = Sim(
        QueueConfig("q", join_empty=JOIN_EMPTY, empty_destination="voicemail:1"), agents=agents(2)
    )
    sim.do(AgentPause("a1", "x"))
    sim.do(AgentLogout("a2"))
    out = sim.arrive("c1")
    assert logs(out, "JOINEMPTY") and of(out, ExitQueue) == [
        ExitQueue("c1", "empty", "voicemail:1")
    ]


def test_join_empty_accepts_when_a_member_is_merely_busy() -> None:
    sim = Sim(QueueConfig("q", join_empty=JOIN_EMPTY), agents=agents(1))
    sim.answer(of(sim.arrive("c1"), Offer)[0])
    out = sim.arrive("c2")
    assert logs(out, "ENTERQUEUE") and of(out, ExitQueue) == []


def test_leave_empty_evicts_waiting_callers_when_the_last_member_pauses() -> None:
    sim = Sim(QueueConfig("q", leave_empty=JOIN_EMPTY), agents=agents(1))
    sim.answer(of(sim.arrive("c1"), Offer)[0])
    sim.arrive("c2", at=3)
    sim.arrive("c3", at=4)
    sim.do(AgentPause("a1", "x"), at=5)  # pending: still on the call, so still serving
    assert sim.engine.position("c2") == 1
    out = sim.do(CallEnded("c1"), at=9)
    assert of(out, ExitQueue) == [ExitQueue("c2", "empty", None), ExitQueue("c3", "empty", None)]
    assert [e.data["waittime"] for e in logs(out, "EXITEMPTY")] == [6, 5]


def test_exit_key_leaves_the_queue_even_while_ringing() -> None:
    sim = Sim(
        QueueConfig("q", exit_key="0", exit_key_destination="context:operator,s"), agents=agents(1)
    )
    offer = of(sim.arrive("c1"), Offer)[0]
    assert sim.do(DtmfPressed("c1", "5")) == []
    out = sim.do(DtmfPressed("c1", "0"), at=2)
    assert of(out, CancelOffer)[0].offer_id == offer.offer_id
    assert of(out, ExitQueue) == [ExitQueue("c1", "exitkey", "context:operator,s")]
    assert logs(out, "EXITWITHKEY")[0].data["key"] == "0"


def test_callback_offer_and_key() -> None:
    cfg = QueueConfig("q", callback_offer_after=30, callback_offer_frequency=60, callback_key="1")
    sim = Sim(cfg, agents=agents(1), login=False)
    sim.arrive("c1")
    out = sim.advance(30)
    assert [(a.kind, a.position) for a in of(out, Announce)] == [("callback-offer", 1)]
    assert sim.engine.next_deadline() == 90
    out = sim.do(DtmfPressed("c1", "1"), at=40)
    assert of(out, ExitQueue) == [ExitQueue("c1", "callback", "callback")]


def test_callbacks_get_no_hold_announcements_or_dtmf() -> None:
    cfg = QueueConfig(
        "q",
        exit_key="0",
        announce_position=True,
        announce_frequency=10,
        periodic_announce="p",
        periodic_announce_frequency=10,
    )
    sim = Sim(cfg, agents=agents(1), login=False)
    out = sim.arrive("cb", kind="callback")
    assert of(out, StartHold) == [] and sim.engine.next_deadline() is None
    assert sim.do(DtmfPressed("cb", "0")) == []


def test_abandon_while_waiting_logs_position_original_position_and_wait() -> None:
    sim = Sim(QueueConfig("q"), agents=agents(1), login=False)
    sim.arrive("c1", at=0)
    sim.arrive("c2", at=1)
    sim.do(CallLeft("c1"), at=2)
    out = sim.do(CallLeft("c2"), at=11)
    (abandon,) = logs(out, "ABANDON")
    assert abandon.data == {"position": 1, "origposition": 2, "waittime": 10, "reason": "hangup"}
    assert sim.do(CallLeft("c2")) == []  # replayed: ignored


def test_position_and_ewt_announcements_are_fresh() -> None:
    cfg = QueueConfig(
        "q",
        announce_position=True,
        announce_ewt=True,
        announce_frequency=30,
        expected_handle_time=120,
    )
    sim = Sim(cfg, agents=agents(2))
    sim.answer(of(sim.arrive("x1"), Offer)[0])
    sim.answer(of(sim.arrive("x2"), Offer)[0])
    mark = len(sim.out)
    sim.arrive("c1", at=1)
    sim.arrive("c2", at=1)
    sim.advance(1)
    out = sim.out[mark:]
    # position 2, nobody free, 2 serving, 120 s handle time -> 2 * 120 / 2
    assert [(a.item_id, a.kind, a.position, a.ewt_seconds) for a in of(out, Announce)] == [
        ("c1", "position", 1, 60.0),
        ("c2", "position", 2, 120.0),
    ]
    sim.do(CallLeft("c1"), at=5)
    sim.do(CallEnded("x1"), at=10)  # a1 frees and takes c2
    sim.answer(of(sim.out, Offer)[-1])
    sim.do(CallEnded("x2"), at=10)  # 10 s handle times now
    sim.arrive("c3", at=11)
    sim.answer(of(sim.out, Offer)[-1])  # a2 takes c3
    mark = len(sim.out)
    sim.arrive("c4", at=12)
    sim.advance(12)
    out = sim.out[mark:]
    assert [(a.item_id, a.position, a.ewt_seconds) for a in of(out, Announce)] == [
        ("c4", 1, pytest.approx(10 / 2))
    ]


def test_periodic_announcement_repeats_with_its_prompt() -> None:
    sim = Sim(
        QueueConfig("q", periodic_announce="queue-periodic", periodic_announce_frequency=20),
        login=False,
    )
    sim.arrive("c1")
    out = sim.advance(65)
    assert [(a.kind, a.prompt) for a in of(out, Announce)] == [("periodic", "queue-periodic")] * 3


def test_ewt_inputs() -> None:
    assert estimate_wait(1, serving=0, available=0, handle_time=60) is None
    assert estimate_wait(1, serving=3, available=1, handle_time=60) == 0
    assert estimate_wait(4, serving=3, available=1, handle_time=60) == 60
    ht = HandleTimes(decay=0.5)
    for value in (100.0, 100.0, 10.0):
        ht.add(value)
    assert ht.mean() == pytest.approx((10 + 0.5 * 100 + 0.25 * 100) / 1.75)


def test_supervisor_moves_keep_place_or_go_to_the_head() -> None:
    sim = Sim(QueueConfig("q"), QueueConfig("r"), agents=agents(1, "r"), login=False)
    sim.arrive("r1", "r", at=1)
    sim.arrive("q1", "q", at=0.5)  # clock already at 1: entered at 1
    sim.arrive("r2", "r", at=5)
    sim.arrive("old", "q", at=6, entered_at=2.0)
    out = sim.do(MoveItem("old", "r"))
    assert of(out, ItemMoved) == [ItemMoved("old", "q", "r", "supervisor")]
    assert [i.item.id for i in sim.engine.waiting("r")] == ["r1", "old", "r2"]
    sim.do(MoveItem("r2", "r", to_head=True))
    assert [i.item.id for i in sim.engine.waiting("r")] == ["r2", "r1", "old"]
    sim.do(MoveItem("q1", "r", to_head=True))
    assert [i.item.id for i in sim.engine.waiting("r")] == ["q1", "r2", "r1", "old"]
    assert offered(sim.do(AgentLogin("a1"))) == [("q1", "a1")]


def test_remove_queue_sends_waiting_callers_out() -> None:
    sim = Sim(QueueConfig("q"), agents=agents(1), login=False)
    sim.arrive("c1")
    out = sim.do(RemoveQueue("q"))
    assert of(out, ExitQueue) == [ExitQueue("c1", "empty", None)]
    assert sim.engine.queues() == []
    out = sim.arrive("c2")
    assert of(out, ExitQueue) == [ExitQueue("c2", "unknown", None)]


def test_duplicate_arrival_is_ignored() -> None:
    sim = Sim(QueueConfig("q"), login=False)
    sim.arrive("c1")
    assert sim.arrive("c1") == []


def test_reconfiguring_a_queue_applies_to_waiting_items() -> None:
    sim = Sim(QueueConfig("q"), agents=agents(1), login=False)
    sim.arrive("c1", at=0, required_skills={"x": 5})
    sim.do(AgentLogin("a1"), at=1)
    assert offered(sim.out) == []
    out = sim.do(UpsertQueue(QueueConfig("q", skill_escalation=((10, 0),), max_wait=100)), at=20)
    assert offered(out) == [("c1", "a1")]


def test_service_level_stats() -> None:
    sim = Sim(QueueConfig("q", service_level_threshold=20), agents=agents(1))
    sim.answer(of(sim.arrive("c1"), Offer)[0], at=5)
    sim.arrive("c2", at=5)
    sim.do(CallEnded("c1"), at=30)
    sim.answer(of(sim.out, Offer)[-1], at=31)
    info = sim.engine.queue("q")
    assert info is not None
    assert info.service_level == 0.5 and info.stats["answered"] == 2 and info.handle_time == 25
