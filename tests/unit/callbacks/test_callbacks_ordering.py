"""A callback is a queue item without a channel that carries the caller's original entry time and
priority: in the ACD core it keeps the caller's place among live callers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.acd.core import (
    AcdEngine,
    AgentConfig,
    AgentLogin,
    CallArrived,
    CallEnded,
    Command,
    DtmfPressed,
    ExitQueue,
    Offer,
    OfferAnswered,
    QueueConfig,
    QueueItem,
    UpsertAgent,
    UpsertQueue,
)
from ari_app.callbacks.core import order_key


def engine(**cfg: object) -> AcdEngine:
    e = AcdEngine(seed=1)
    e.handle(UpsertQueue(QueueConfig("q", strategy="linear", wrapup_time=0, **cfg)), 0)  # type: ignore[arg-type]
    e.handle(UpsertAgent(AgentConfig("a1", "PJSIP/a1", memberships={"q": 0})), 0)
    return e


def serve_all(e: AcdEngine, at: float) -> list[str]:
    """Log the one agent in and let it take every waiting item, one after the other."""
    served: list[str] = []
    out: list[Command] = e.handle(AgentLogin("a1"), at)
    while offers := [c for c in out if isinstance(c, Offer)]:
        offer = offers[0]
        served.append(offer.item_id)
        at += 1
        e.handle(OfferAnswered(offer.offer_id), at)
        at += 1
        out = e.handle(CallEnded(offer.item_id), at)
    return served


def test_callback_keeps_the_callers_place_and_later_callers_stay_behind() -> None:
    e = engine(callback_key="9")
    e.handle(CallArrived(QueueItem("c1", "q", entered_at=0.0)), 0)
    e.handle(CallArrived(QueueItem("c2", "q", entered_at=10.0)), 10)
    out = e.handle(DtmfPressed("c1", "9"), 20)
    assert [c for c in out if isinstance(c, ExitQueue)] == [ExitQueue("c1", "callback", "callback")]
    # The callbacks capability confirms the number, then enqueues the callback with c1's entry time.
    e.handle(CallArrived(QueueItem("cb-1", "q", kind="callback", entered_at=0.0)), 45)
    e.handle(CallArrived(QueueItem("c3", "q", entered_at=50.0)), 50)
    assert [i.item.id for i in e.waiting("q")] == ["cb-1", "c2", "c3"]
    assert e.position("cb-1") == 1
    assert serve_all(e, 60) == ["cb-1", "c2", "c3"]


def test_callback_keeps_the_callers_priority() -> None:
    e = engine()
    e.handle(CallArrived(QueueItem("c1", "q", entered_at=0.0)), 0)
    e.handle(CallArrived(QueueItem("cb-vip", "q", kind="callback", priority=5, entered_at=30.0)), 40)
    e.handle(CallArrived(QueueItem("c2", "q", entered_at=50.0, priority=5)), 50)
    assert serve_all(e, 60) == ["cb-vip", "c2", "c1"]


def test_scheduled_callback_with_a_priority_goes_ahead_of_ordinary_callers() -> None:
    e = engine()
    e.handle(CallArrived(QueueItem("c1", "q", entered_at=0.0)), 0)
    e.handle(CallArrived(QueueItem("sched", "q", kind="callback", priority=10, entered_at=100.0)), 100)
    assert serve_all(e, 110) == ["sched", "c1"]


def test_a_callback_waits_without_hold_music_or_announcements() -> None:
    e = AcdEngine()
    e.handle(UpsertQueue(QueueConfig("q", announce_position=True, announce_frequency=10,
                                     callback_offer_after=0, callback_key="9")), 0)
    out = e.handle(CallArrived(QueueItem("cb", "q", kind="callback", entered_at=0.0)), 0)
    out += e.handle(DtmfPressed("cb", "9"), 30)
    assert [type(c).__name__ for c in out if type(c).__name__ in ("StartHold", "Announce", "ExitQueue")] == []


items = st.lists(
    st.tuples(st.sampled_from(["call", "callback"]), st.integers(0, 2), st.floats(0, 1000)),
    min_size=1, max_size=12, unique_by=lambda t: t[2])


@settings(max_examples=200, deadline=None)
@given(items, st.randoms(use_true_random=False))
def test_items_are_served_by_priority_then_original_entry_whatever_the_arrival_order(spec, rnd) -> None:
    """Callbacks arrive late (after the caller's confirmation, a restart, a retry) but carry their
    original entry: the service order depends on (priority, entered_at) only."""
    e = engine()
    arrivals = list(enumerate(spec))
    rnd.shuffle(arrivals)
    for t, (i, (kind, prio, entered)) in enumerate(arrivals):
        e.handle(CallArrived(QueueItem(f"i{i}", "q", kind=kind, priority=prio, entered_at=entered)), 1000 + t)
    expected = [f"i{i}" for i, (_, prio, entered) in sorted(enumerate(spec), key=lambda x: order_key(x[1][1],
                                                                                                  x[1][2]))]
    assert serve_all(e, 2000) == expected
