"""JSON-serialisable snapshot of the engine (persisted so callers keep their order across
restarts). Only primary records are stored; indexes are rebuilt by :func:`load`."""

from __future__ import annotations

import math
from typing import Any

from .ewt import HandleTimes
from .handlers import Core
from .model import AgentConfig, QueueConfig, QueueItem
from .state import AgentRt, ItemRt, OfferRt, QueueRt

VERSION = 1

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


def dump(core: Core) -> dict[str, Any]:
    return {
        "version": VERSION,
        "now": core.now if math.isfinite(core.now) else None,
        "seq": core.seq,
        "offer_seq": core.offer_seq,
        "agent_reg": core.agent_reg,
        "rng": core.rng.state,
        "id_prefix": core.id_prefix,
        "queues": [
            {
                "config": q.config.to_dict(),
                "rr_last": q.rr_last,
                "max_boost": q.max_boost,
                "handle_times": q.handle.samples(),
                "stats": dict(q.stats),
            }
            for q in core.queues.values()
        ],
        "agents": [
            {"config": a.config.to_dict(), **{f: getattr(a, f) for f in _AGENT_FIELDS}}
            for a in core.agents.values()
        ],
        "items": [
            {
                "item": it.item.to_dict(),
                "reqs": [list(r) for r in it.reqs],
                **{f: _copy(getattr(it, f)) for f in _ITEM_FIELDS},
            }
            for it in core.items.values()
        ],
        "offers": [{f: getattr(o, f) for f in _OFFER_FIELDS} for o in core.offers.values()],
        "timers": [[kind, key, deadline] for (kind, key), deadline in core.timers.items()],
    }


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def load(data: dict[str, Any], *, id_prefix: str | None = None) -> Core:
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported ACD snapshot version {data.get('version')!r}")
    core = Core(id_prefix=data["id_prefix"] if id_prefix is None else id_prefix)
    core.now = -math.inf if data["now"] is None else float(data["now"])
    core.seq, core.offer_seq, core.agent_reg = data["seq"], data["offer_seq"], data["agent_reg"]
    core.rng.state = data["rng"]
    for qd in data["queues"]:
        q = QueueRt(
            QueueConfig.from_dict(qd["config"]),
            rr_last=qd["rr_last"],
            max_boost=qd["max_boost"],
            handle=HandleTimes(qd["handle_times"]),
            stats=dict(qd["stats"]),
        )
        core.queues[q.name] = q
    for ad in sorted(data["agents"], key=lambda d: d["reg"]):
        a = AgentRt(AgentConfig.from_dict(ad["config"]), reg=ad["reg"])
        for f in _AGENT_FIELDS:
            setattr(a, f, ad[f])
        core.agents[a.id] = a
        for qname in a.config.memberships:
            core.attach(a, qname)
    for od in data["offers"]:
        o = OfferRt(**{f: od[f] for f in _OFFER_FIELDS})
        core.offers[o.id] = o
    for idata in data["items"]:
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
        if it.status != "connected":
            core.queues[it.queue].order.add(it.key)
            if it.status == "waiting":
                keys = core.bucket(it, core.queues[it.queue], create=True)
                assert keys is not None
                keys.add(it.key)
    for kind, key, deadline in data["timers"]:
        core.timers.set((kind, key), deadline)
    for a in core.agents.values():
        core.refresh_agent(a)
    core.dirty_agents.clear()
    core.check_empty.clear()
    return core
