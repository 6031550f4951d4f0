"""JSON-serialisable state of the engine (persisted so callers keep their order across
restarts). Only primary records are stored; indexes are rebuilt on load.

The state is a set of records, each dumped on its own so that it can be persisted on its own
(one row per record, rewritten only when it changed, see ``State.take_changes``):

* ``scalars``: the engine's counters, random state and clock (one small record);
* one record per queue (runtime only: round-robin position, boosts, handle times, stats,
  and its config), agent (state + config), item (waiting or connected) and offer;
* a timer belongs to the record it is named after (``("offer", id)`` to the offer,
  ``("wrapup", id)`` to the agent, the others to the item) and is stored in it as
  ``{kind: [deadline, creation order]}``, the creation order breaking deadline ties.

:func:`dump` is all of them in one dict, in a canonical order (queues by name, agents by
registration, items by seq, offers by start), so two engines in the same state dump equal;
:func:`load_records` rebuilds an engine from the records however they were stored, and
:func:`load` reads a :func:`dump` (and a version-1 snapshot, from before per-record storage).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .ewt import HandleTimes
from .handlers import Core
from .model import AgentConfig, QueueConfig, QueueItem
from .state import ITEM_TIMERS, AgentRt, ItemRt, OfferRt, QueueRt
from .timers import TimerName

VERSION = 2

_AGENT_FIELDS = (
    "reg",
    "status",
    "since",
    "pause_reason",
    "pending",
    "pending_reason",
    "device",
    "offer_id",
    "item_id",
    "logged_in_at",
    "last_call_end",
    "calls_taken",
    "talk_time",
    "unanswered",
    "wrapup_until",
)
_ITEM_FIELDS = (
    "queue",
    "seq",
    "joined_at",
    "orig_position",
    "boost",
    "status",
    "offers",
    "tried",
    "rung",
    "preferred",
    "agent_id",
    "offer_id",
    "connected_at",
)
_OFFER_FIELDS = ("id", "item_id", "agent_id", "queue", "started_at")
_TIMER_KINDS = {"agent": ("wrapup",), "item": ITEM_TIMERS, "offer": ("offer",)}


# -- one record at a time ------------------------------------------------------------------


def dump_scalars(core: Core) -> dict[str, Any]:
    return {
        "version": VERSION,
        "now": core.now if math.isfinite(core.now) else None,
        "seq": core.seq,
        "offer_seq": core.offer_seq,
        "agent_reg": core.agent_reg,
        "rng": core.rng.state,
        "id_prefix": core.id_prefix,
        "timer_seq": core.timers.seq,
    }


def dump_record(core: Core, kind: str, key: str) -> dict[str, Any] | None:
    """One record (``queue``, ``agent``, ``item`` or ``offer``), or None if there is none."""
    if kind == "queue":
        q = core.queues.get(key)
        return None if q is None else _dump_queue(q)
    if kind == "agent":
        a = core.agents.get(key)
        return None if a is None else _dump_agent(core, a)
    if kind == "item":
        it = core.items.get(key)
        return None if it is None else _dump_item(core, it)
    if kind == "offer":
        o = core.offers.get(key)
        return None if o is None else _dump_offer(core, o)
    raise ValueError(f"unknown ACD record kind {kind!r}")


def _timers(core: Core, kind: str, key: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name in _TIMER_KINDS[kind]:
        entry = core.timers.entry((name, key))
        if entry is not None:
            out[name] = [entry[0], entry[1]]
    return out


def _dump_queue(q: QueueRt) -> dict[str, Any]:
    return {
        "config": q.config.to_dict(),
        "rr_last": q.rr_last,
        "max_boost": q.max_boost,
        "handle_times": q.handle.samples(),
        "stats": dict(q.stats),
    }


def _dump_agent(core: Core, a: AgentRt) -> dict[str, Any]:
    return {
        "config": a.config.to_dict(),
        **{f: getattr(a, f) for f in _AGENT_FIELDS},
        "timers": _timers(core, "agent", a.id),
    }


def _dump_item(core: Core, it: ItemRt) -> dict[str, Any]:
    return {
        "item": it.item.to_dict(),
        "reqs": [list(r) for r in it.reqs],
        **{f: _copy(getattr(it, f)) for f in _ITEM_FIELDS},
        "timers": _timers(core, "item", it.id),
    }


def _dump_offer(core: Core, o: OfferRt) -> dict[str, Any]:
    return {**{f: getattr(o, f) for f in _OFFER_FIELDS}, "timers": _timers(core, "offer", o.id)}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# -- the whole state -------------------------------------------------------------------------


def _offer_order(od: dict[str, Any]) -> tuple[float, int, str]:
    # creation order within one process incarnation (ids are prefix + "o" + counter)
    return (od["started_at"], len(od["id"]), od["id"])


def dump(core: Core) -> dict[str, Any]:
    return {
        **dump_scalars(core),
        "queues": [_dump_queue(core.queues[name]) for name in sorted(core.queues)],
        "agents": [_dump_agent(core, a) for a in sorted(core.agents.values(), key=_reg)],
        "items": [_dump_item(core, it) for it in sorted(core.items.values(), key=_seq)],
        "offers": sorted((_dump_offer(core, o) for o in core.offers.values()), key=_offer_order),
    }


def _reg(a: AgentRt) -> int:
    return a.reg


def _seq(it: ItemRt) -> tuple[int, str]:
    return (it.seq, it.id)


def load(data: dict[str, Any], *, id_prefix: str | None = None) -> Core:
    """Rebuild an engine from :func:`dump` (or a version-1 snapshot)."""
    if data.get("version") == 1:
        data = _from_v1(data)
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported ACD snapshot version {data.get('version')!r}")
    return load_records(
        data, data["queues"], data["agents"], data["items"], data["offers"], id_prefix=id_prefix
    )


def load_records(
    scalars: dict[str, Any],
    queues: Iterable[dict[str, Any]],
    agents: Iterable[dict[str, Any]],
    items: Iterable[dict[str, Any]],
    offers: Iterable[dict[str, Any]],
    *,
    id_prefix: str | None = None,
) -> Core:
    """Rebuild an engine from its records, in any order (as :func:`dump_record` wrote them)."""
    if scalars.get("version") != VERSION:
        raise ValueError(f"unsupported ACD snapshot version {scalars.get('version')!r}")
    core = Core(id_prefix=scalars["id_prefix"] if id_prefix is None else id_prefix)
    core.now = -math.inf if scalars["now"] is None else float(scalars["now"])
    core.seq, core.offer_seq = scalars["seq"], scalars["offer_seq"]
    core.agent_reg = scalars["agent_reg"]
    core.rng.state = scalars["rng"]
    timers: list[tuple[TimerName, float, int]] = []

    def add_timers(key: str, data: dict[str, Any]) -> None:
        for name, (deadline, order) in data["timers"].items():
            timers.append(((name, key), deadline, int(order)))

    for qd in sorted(queues, key=lambda d: str(d["config"]["name"])):
        q = QueueRt(
            QueueConfig.from_dict(qd["config"]),
            rr_last=qd["rr_last"],
            max_boost=qd["max_boost"],
            handle=HandleTimes(qd["handle_times"]),
            stats=dict(qd["stats"]),
        )
        core.queues[q.name] = q
    for ad in sorted(agents, key=lambda d: int(d["reg"])):
        a = AgentRt(AgentConfig.from_dict(ad["config"]), reg=ad["reg"])
        for f in _AGENT_FIELDS:
            setattr(a, f, ad[f])
        core.agents[a.id] = a
        for qname in a.config.memberships:
            core.attach(a, qname)
        add_timers(a.id, ad)
    for od in sorted(offers, key=_offer_order):
        o = OfferRt(**{f: od[f] for f in _OFFER_FIELDS})
        core.offers[o.id] = o
        add_timers(o.id, od)
    for idata in sorted(items, key=lambda d: (int(d["seq"]), str(d["item"]["id"]))):
        it = ItemRt(
            item=QueueItem.from_dict(idata["item"]),
            queue=idata["queue"],
            seq=idata["seq"],
            joined_at=idata["joined_at"],
            orig_position=idata["orig_position"],
        )
        for f in _ITEM_FIELDS[4:]:
            setattr(it, f, _copy(idata[f]))
        it.reqs = tuple((s, int(lvl)) for s, lvl in idata["reqs"])
        core.items[it.id] = it
        add_timers(it.id, idata)
        if it.status != "connected":
            core.queues[it.queue].order.add(it.key)
            if it.status == "waiting":
                keys = core.bucket(it, core.queues[it.queue], create=True)
                assert keys is not None
                keys.add(it.key)
    timers.sort(key=lambda t: t[2])
    core.timers.restore(timers, int(scalars.get("timer_seq", 0)))
    for a in core.agents.values():
        core.refresh_agent(a)
    core.dirty_agents.clear()
    core.check_empty.clear()
    core.take_changes()  # the records as loaded are the baseline
    return core


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 snapshot (one timers list for the whole engine, in firing order) as a
    version-2 one: each timer moves into the record it belongs to, its place in the list
    becoming its creation order."""
    agents = [dict(d, timers={}) for d in data["agents"]]
    items = [dict(d, timers={}) for d in data["items"]]
    offers = [dict(d, timers={}) for d in data["offers"]]
    by_owner: dict[tuple[str, str], dict[str, Any]] = {}
    by_owner.update((("agent", d["config"]["id"]), d) for d in agents)
    by_owner.update((("item", d["item"]["id"]), d) for d in items)
    by_owner.update((("offer", d["id"]), d) for d in offers)
    for order, (kind, key, deadline) in enumerate(data["timers"], start=1):
        owner_kind = "offer" if kind == "offer" else "agent" if kind == "wrapup" else "item"
        owner = by_owner.get((owner_kind, key))
        if owner is not None:  # a timer without its record would fire as a no-op
            owner["timers"][kind] = [deadline, order]
    return {
        **{k: v for k, v in data.items() if k != "timers"},
        "version": VERSION,
        "timer_seq": len(data["timers"]),
        "agents": agents,
        "items": items,
        "offers": offers,
    }
