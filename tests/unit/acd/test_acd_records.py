"""Incremental persistence: the records ``take_changes`` names, stored one row each, always
rebuild the engine a full snapshot would; a persist touches only what changed."""

from __future__ import annotations

import json
from typing import Any

from acd_support import Sim, agents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_acd_properties import Driver, action, setup

from ari_app.acd.core import (
    AcdEngine,
    AgentConfig,
    AgentPause,
    AgentUnpause,
    CallArrived,
    CallEnded,
    Offer,
    QueueConfig,
    QueueItem,
)
from ari_app.acd.core.state import KINDS

Rows = dict[tuple[str, str], dict[str, Any]]


def persist(engine: AcdEngine, rows: Rows) -> int:
    """Apply the changes since the last persist to ``rows`` (as the adapter does to its table,
    through JSON); return how many rows were written or deleted."""
    changes = engine.take_changes()
    for kind, keys in changes.changed.items():
        for key in keys:
            rows[(kind, key)] = json.loads(json.dumps(engine.dump_record(kind, key)))
    for kind, keys in changes.removed.items():
        for key in keys:
            rows.pop((kind, key), None)
    rows[("engine", "")] = json.loads(json.dumps(engine.dump_scalars()))
    return len(changes)


def restore(rows: Rows) -> AcdEngine:
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for (kind, _), data in rows.items():
        if kind != "engine":
            by_kind[kind].append(data)
    return AcdEngine.restore_records(
        rows[("engine", "")], by_kind["queue"], by_kind["agent"], by_kind["item"], by_kind["offer"]
    )


def expected_rows(engine: AcdEngine) -> Rows:
    """One row per record that exists now, as it is now."""
    snap = engine.snapshot()
    keys = {
        "queue": [q["config"]["name"] for q in snap["queues"]],
        "agent": [a["config"]["id"] for a in snap["agents"]],
        "item": [i["item"]["id"] for i in snap["items"]],
        "offer": [o["id"] for o in snap["offers"]],
    }
    out: Rows = {("engine", ""): engine.dump_scalars()}
    for kind, ids in keys.items():
        for key in ids:
            data = engine.dump_record(kind, key)
            assert data is not None
            out[(kind, key)] = json.loads(json.dumps(data))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, st.lists(st.tuples(action, st.booleans()), min_size=10, max_size=60))
def test_rows_applied_after_each_persist_restore_the_full_snapshot(
    start: tuple[list[QueueConfig], list[AgentConfig]], steps: list[tuple[tuple[Any, ...], bool]]
) -> None:
    driver = Driver(AcdEngine(seed=11), check=False)
    rows: Rows = {}
    driver.start(*start)
    persist(driver.engine, rows)
    for act, persist_now in [*steps, (("tick", 0.5), True)]:
        driver.run(act)
        if not persist_now:  # several event batches between two persists
            continue
        persist(driver.engine, rows)
        # exactly one row per existing record, up to date: nothing missed, no orphan
        assert rows == expected_rows(driver.engine)
        full = AcdEngine.restore(json.loads(json.dumps(driver.engine.snapshot())))
        assert restore(rows).snapshot() == full.snapshot() == driver.engine.snapshot()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, st.lists(action, min_size=10, max_size=60), st.integers(0, 60))
def test_restore_from_rows_then_continue_makes_the_same_decisions(
    start: tuple[list[QueueConfig], list[AgentConfig]], actions: list[tuple[Any, ...]], cut: int
) -> None:
    original = Driver(AcdEngine(seed=7), check=False)
    rows: Rows = {}
    original.start(*start)
    for act in actions[:cut]:
        original.run(act)
        persist(original.engine, rows)
    persist(original.engine, rows)
    restored = Driver(restore(rows), now=original.now, check=False)
    restored.n = original.n
    restored.outstanding = set(original.outstanding)
    mark = len(original.trace)
    for act in actions[cut:]:
        original.run(act)
        restored.run(act)
        # the restored engine tracks its own changes from where the rows left off
        persist(restored.engine, rows)
    assert restored.trace == original.trace[mark:]
    assert restored.engine.snapshot() == original.engine.snapshot()
    assert restore(rows).snapshot() == original.engine.snapshot()


def _as_v1(snap: dict[str, Any]) -> dict[str, Any]:
    """The snapshot as version 1 wrote it: records without timers, one timers list in
    firing order."""
    timers = []
    for kind, key_of in (
        ("agents", lambda d: d["config"]["id"]),
        ("items", lambda d: d["item"]["id"]),
        ("offers", lambda d: d["id"]),
    ):
        for record in snap[kind]:
            for name, (deadline, order) in record.pop("timers").items():
                timers.append((order, [name, key_of(record), deadline]))
    snap = {k: v for k, v in snap.items() if k != "timer_seq"}
    return {**snap, "version": 1, "timers": [t for _, t in sorted(timers)]}


def _renumbered(snap: dict[str, Any]) -> dict[str, Any]:
    """Timer creation orders as ranks (version 1 kept the order, not the numbers)."""
    snap = json.loads(json.dumps(snap))
    timers = [t for kind in ("agents", "items", "offers") for r in snap[kind]
              for t in r["timers"].values()]
    for rank, t in enumerate(sorted(timers, key=lambda t: t[1]), start=1):
        t[1] = rank
    return {**snap, "timer_seq": None}


def busy() -> Sim:
    """a1 in wrap-up, a2 on a call, a3 paused, c3-c5 waiting."""
    sim = Sim(QueueConfig("q", strategy="linear", wrapup_time=10, max_wait=600),
              agents=agents(3))
    for n in range(6):
        sim.arrive(f"c{n}", at=n)
    for offer in [c for c in sim.out if isinstance(c, Offer)]:
        sim.answer(offer, at=6)
    sim.do(AgentPause("a3", "lunch"), at=7)  # pending until its call ends
    sim.do(CallEnded("c0"), at=9)
    sim.do(CallEnded("c2"), at=9)
    assert [a.status for a in sim.engine.agents()] == ["wrapup", "on_call", "paused"]
    return sim


def test_a_version_1_snapshot_still_restores() -> None:
    sim = busy()
    snap = sim.engine.snapshot()
    old = _as_v1(json.loads(json.dumps(snap)))
    restored = AcdEngine.restore(old)
    assert _renumbered(restored.snapshot()) == _renumbered(snap)
    assert restored.next_deadline() == sim.engine.next_deadline()


def test_a_persist_after_one_event_names_only_what_it_touched() -> None:
    sim = busy()
    eng = sim.engine
    everything = eng.take_changes(everything=True)
    assert everything.changed["item"] == {"c1", "c3", "c4", "c5"}
    assert everything.changed["agent"] == {"a1", "a2", "a3"}
    assert not eng.take_changes()  # taken
    sim.do(CallArrived(QueueItem("late", "q")), at=10)
    changes = eng.take_changes()
    assert changes.changed == {"queue": {"q"}, "agent": set(), "item": {"late"}, "offer": set()}
    assert not any(changes.removed.values())
    sim.do(AgentUnpause("a3"), at=11)  # a3 free: rung for the head of the queue
    offer = next(c for c in sim.out[::-1] if isinstance(c, Offer))
    assert (offer.agent_id, offer.item_id) == ("a3", "c3")
    changes = eng.take_changes()
    assert changes.changed == {
        "queue": {"q"},  # the strategy's memory
        "agent": {"a3"},
        "item": {"c3"},
        "offer": {offer.offer_id},
    }
    sim.do(CallEnded("c3", by="caller"), at=12)  # the caller hangs up while it rings
    changes = eng.take_changes()
    assert changes.removed == {"queue": set(), "agent": set(), "item": {"c3"},
                               "offer": {offer.offer_id}}
    assert changes.changed["agent"] == {"a3"} and changes.changed["item"] == {"c4"}  # rung next
