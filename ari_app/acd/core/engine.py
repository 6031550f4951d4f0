"""The public face of the ACD core: ``AcdEngine.handle(event, now) -> [Command]``.

Pure and synchronous: no I/O, no wall clock. ``now`` is seconds on any monotonic scale;
a ``now`` earlier than one already seen is treated as the latest one. Due timers fire at
the start of every ``handle`` call, so ``Tick`` is just "no event, time passed"; call
``handle(Tick(), t)`` at ``t = next_deadline()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import snapshot as _snapshot
from .commands import Command
from .events import Event
from .handlers import Core
from .model import AgentConfig
from .routing import eligible
from .state import Changes, ItemRt
from .views import AgentInfo, ItemInfo, OfferInfo, QueueInfo


class AcdEngine:
    def __init__(self, *, seed: int = 0x5EED, id_prefix: str = "") -> None:
        """``seed`` drives the random strategies; ``id_prefix`` is prepended to offer ids
        (give each process incarnation its own so ids never repeat across restarts)."""
        self._core = Core(seed=seed, id_prefix=id_prefix)

    # -- driving ------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        return self._core.step(event, now)

    def next_deadline(self) -> float | None:
        """When the next timer fires (offer timeout, retry, wrap-up end, max wait,
        escalation, announcement...), or None when nothing is scheduled."""
        return self._core.timers.next_deadline()

    @property
    def now(self) -> float:
        return self._core.now

    # -- persistence --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state (plain dicts/lists/str/int/float/bool/None)."""
        return _snapshot.dump(self._core)

    @classmethod
    def restore(cls, data: dict[str, Any], *, id_prefix: str | None = None) -> AcdEngine:
        engine = cls.__new__(cls)
        engine._core = _snapshot.load(data, id_prefix=id_prefix)
        return engine

    # Incremental persistence: after each batch of events, ``take_changes()`` names the
    # records to rewrite (``dump_record``) or delete, plus ``dump_scalars()``; the stored
    # records give back the same engine through ``restore_records``.

    def take_changes(self, *, everything: bool = False) -> Changes:
        """Keys of the queue/agent/item/offer records changed or removed since the last call
        (``everything``: every record, as changed: a first full write)."""
        return self._core.take_changes(everything=everything)

    def dump_record(self, kind: str, key: str) -> dict[str, Any] | None:
        return _snapshot.dump_record(self._core, kind, key)

    def dump_scalars(self) -> dict[str, Any]:
        return _snapshot.dump_scalars(self._core)

    @classmethod
    def restore_records(
        cls,
        scalars: dict[str, Any],
        queues: Iterable[dict[str, Any]],
        agents: Iterable[dict[str, Any]],
        items: Iterable[dict[str, Any]],
        offers: Iterable[dict[str, Any]],
        *,
        id_prefix: str | None = None,
    ) -> AcdEngine:
        engine = cls.__new__(cls)
        engine._core = _snapshot.load_records(
            scalars, queues, agents, items, offers, id_prefix=id_prefix
        )
        return engine

    # -- reporting ----------------------------------------------------------------------

    def position(self, item_id: str) -> int | None:
        it = self._core.items.get(item_id)
        if it is None or it.status == "connected":
            return None
        return self._core.position_of(it)

    def item(self, item_id: str) -> ItemInfo | None:
        it = self._core.items.get(item_id)
        return None if it is None else self._item_info(it)

    def waiting(self, queue: str) -> list[ItemInfo]:
        """Items of ``queue`` not yet connected, in queue order (position 1 first)."""
        q = self._core.queues.get(queue)
        if q is None:
            return []
        return [self._item_info(self._core.items[key[-1]], i + 1) for i, key in enumerate(q.order)]

    def agents(self) -> list[AgentInfo]:
        return [self._agent_info(aid) for aid in self._core.agents]

    def agent(self, agent_id: str) -> AgentInfo | None:
        return self._agent_info(agent_id) if agent_id in self._core.agents else None

    def agent_config(self, agent_id: str) -> AgentConfig | None:
        a = self._core.agents.get(agent_id)
        return None if a is None else a.config

    def offers(self) -> list[OfferInfo]:
        timers = self._core.timers
        return [
            OfferInfo(
                o.id, o.item_id, o.agent_id, o.queue, o.started_at, timers.get(("offer", o.id))
            )
            for o in self._core.offers.values()
        ]

    def queues(self) -> list[str]:
        return list(self._core.queues)

    def queue(self, name: str) -> QueueInfo | None:
        core = self._core
        q = core.queues.get(name)
        if q is None:
            return None
        longest = 0.0
        if q.order:
            longest = max(core.now - core.items[key[-1]].joined_at for key in q.order)
        answered = q.stats.get("answered", 0)
        sl = q.stats.get("answered_in_sl", 0) / answered if answered else None
        return QueueInfo(
            q.config,
            len(q.order),
            longest,
            tuple(q.members),
            len(q.available),
            len(q.serving),
            q.handle_time(),
            sl,
            dict(q.stats),
        )

    def ewt(self, item_id: str) -> float | None:
        """Estimated wait of a waiting item, computed now."""
        position = self.position(item_id)
        if position is None:
            return None
        return self._core.ewt(self._core.queues[self._core.items[item_id].queue], position)

    def eligible(self, agent_id: str, item_id: str) -> bool:
        """Skills/preference match now (regardless of the agent's state)."""
        a, it = self._core.agents.get(agent_id), self._core.items.get(item_id)
        return (
            a is not None
            and it is not None
            and it.queue in a.config.memberships
            and eligible(a, it)
        )

    # -- helpers ------------------------------------------------------------------------

    def _item_info(self, it: ItemRt, position: int | None = None) -> ItemInfo:
        if position is None and it.status != "connected":
            position = self._core.position_of(it)
        return ItemInfo(
            it.item,
            it.queue,
            it.status,
            position,
            it.orig_position,
            it.joined_at,
            dict(it.reqs),
            it.preferred,
            tuple(it.offers),
            it.agent_id,
        )

    def _agent_info(self, agent_id: str) -> AgentInfo:
        a = self._core.agents[agent_id]
        return AgentInfo(
            a.id,
            a.status,
            a.since,
            a.pause_reason,
            a.pending,
            a.device,
            a.offer_id,
            a.item_id,
            a.logged_in_at,
            a.last_call_end,
            a.calls_taken,
            a.talk_time,
            a.unanswered,
            a.wrapup_until,
            tuple(a.config.memberships),
        )
