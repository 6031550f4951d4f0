"""Mutable runtime records of the engine and the bookkeeping primitives shared by the
routing and event-handling layers (see ``routing.py`` and ``engine.py``).

Derived indexes (per-queue sorted keys, skill buckets, available/serving sets, member order)
are rebuilt from the primary records on restore, so a snapshot stores only the latter.

Incremental persistence: every change to a primary record (or to a timer, which belongs to
the item, agent or offer it is named after) adds the record's key to a ``touched_*`` set;
:meth:`State.take_changes` resolves them against the records that exist then (present: to
write, gone: to delete), so a persist costs O(changes), not O(state). The sets grow until
taken: whoever persists takes them after every batch of events.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .commands import AgentStateChanged, CancelReason, Command, QueueLog
from .ewt import HandleTimes
from .model import AgentConfig, AgentStatus, DeviceState, QueueConfig, QueueItem
from .strategies import AgentKey, SplitMix64, metric
from .timers import Timers
from .waitlist import ItemKey, SortedKeys

ItemStatus = Literal["waiting", "retry", "offering", "connected"]
Reqs = tuple[tuple[str, int], ...]
ITEM_TIMERS = (
    "maxwait",
    "escalate",
    "fallback",
    "announce",
    "periodic",
    "cboffer",
    "retry",
    "progress",
)


KINDS = ("queue", "agent", "item", "offer")


@dataclass
class Changes:
    """Keys of the records changed since the last :meth:`State.take_changes`, per kind
    (``queue``, ``agent``, ``item``, ``offer``): ``changed`` exist now, ``removed`` are gone.
    The engine's scalars (sequence counters, random state, clock) change with nearly every
    event and are always part of a persist."""

    changed: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    removed: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})

    def __bool__(self) -> bool:
        return any(self.changed.values()) or any(self.removed.values())

    def __len__(self) -> int:
        return sum(map(len, self.changed.values())) + sum(map(len, self.removed.values()))


@dataclass(eq=False)
class OfferRt:
    id: str
    item_id: str
    agent_id: str
    queue: str
    started_at: float


@dataclass(eq=False)
class ItemRt:
    item: QueueItem  # entered_at is always set
    queue: str
    seq: int
    joined_at: float  # time it joined its current queue (timers run from here)
    orig_position: int
    boost: int = 0
    status: ItemStatus = "waiting"
    offers: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)  # agents who let it ring out
    rung: list[str] = field(default_factory=list)  # agents rung in the current attempt
    reqs: Reqs = ()  # skill requirements after escalation
    preferred: str | None = None  # preferred agent until fallback
    agent_id: str | None = None
    offer_id: str | None = None
    connected_at: float | None = None

    @property
    def id(self) -> str:
        return self.item.id

    @property
    def entered_at(self) -> float:
        assert self.item.entered_at is not None
        return self.item.entered_at

    @property
    def key(self) -> ItemKey:
        return (-self.boost, -self.item.priority, self.entered_at, self.seq, self.item.id)


@dataclass(eq=False)
class AgentRt:
    config: AgentConfig
    reg: int  # registration order = member order in every queue
    status: AgentStatus = "logged_out"
    since: float = 0.0
    pause_reason: str = ""
    pending: Literal["pause", "logout"] | None = None
    pending_reason: str = ""
    device: DeviceState = "idle"
    offer_id: str | None = None
    item_id: str | None = None
    logged_in_at: float | None = None
    last_call_end: float | None = None
    calls_taken: int = 0
    talk_time: float = 0.0
    unanswered: int = 0  # consecutive unanswered offers
    wrapup_until: float | None = None

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def idle_since(self) -> float:
        if self.last_call_end is not None:
            return self.last_call_end
        return self.logged_in_at if self.logged_in_at is not None else -math.inf

    def conditions(self) -> set[str]:
        """app_queue member conditions for join_empty/leave_empty (empty set = usable)."""
        out: set[str] = set()
        if self.status == "logged_out":
            out.add("loggedout")
        if self.device == "unavailable":
            out.add("unavailable")
        if self.status in ("paused", "wrapup", "ringing"):
            out.add(self.status)
        if self.status == "on_call" or self.device == "inuse":
            out.add("inuse")
        return out


@dataclass(eq=False)
class QueueRt:
    config: QueueConfig
    members: list[str] = field(default_factory=list)  # agent ids in registration order
    index: dict[str, int] = field(default_factory=dict)
    penalty: dict[str, int] = field(default_factory=dict)
    order: SortedKeys = field(default_factory=SortedKeys)  # every item not yet connected
    # dispatchable items by preferred agent (None = anyone), then skill requirements
    buckets: dict[str | None, dict[Reqs, SortedKeys]] = field(default_factory=dict)
    # members an offer may go to now, with their strategy key; ``idle`` holds the keys sorted
    available: dict[str, AgentKey] = field(default_factory=dict)
    idle: list[AgentKey] = field(default_factory=list)
    serving: set[str] = field(default_factory=set)  # logged in, not paused, reachable
    rr_last: str | None = None
    max_boost: int = 0
    handle: HandleTimes = field(default_factory=HandleTimes)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    def count(self, stat: str) -> None:
        self.stats[stat] = self.stats.get(stat, 0) + 1

    def handle_time(self) -> float:
        mean = self.handle.mean()
        return self.config.expected_handle_time if mean is None else mean

    def reindex(self) -> None:
        self.index = {aid: i for i, aid in enumerate(self.members)}

    def add_available(self, key: AgentKey) -> None:
        self.available[key[3]] = key
        insort(self.idle, key)

    def remove_available(self, agent_id: str) -> None:
        key = self.available.pop(agent_id, None)
        if key is not None:
            i = bisect_left(self.idle, key)
            if i < len(self.idle) and self.idle[i] == key:
                del self.idle[i]


class State:
    """All engine state plus the primitives that keep the indexes consistent."""

    def __init__(self, *, seed: int = 0x5EED, id_prefix: str = "") -> None:
        self.queues: dict[str, QueueRt] = {}
        self.agents: dict[str, AgentRt] = {}
        self.items: dict[str, ItemRt] = {}
        self.offers: dict[str, OfferRt] = {}
        self.timers = Timers()
        self.now = -math.inf
        self.seq = 0
        self.offer_seq = 0
        self.agent_reg = 0
        self.rng = SplitMix64(seed)
        self.id_prefix = id_prefix
        # per-handle scratch
        self.out: list[Command] = []
        self.dirty_items: dict[str, None] = {}
        self.dirty_agents: dict[str, None] = {}
        self.check_empty: dict[str, None] = {}
        # records changed since take_changes (see the module docstring)
        self.touched_queues: set[str] = set()
        self.touched_agents: set[str] = set()
        self.touched_items: set[str] = set()
        self.touched_offers: set[str] = set()

    # -- change tracking ----------------------------------------------------------------

    def take_changes(self, *, everything: bool = False) -> Changes:
        """What changed since the last call (``everything``: every record, as changed)."""
        touched = {
            "queue": self.touched_queues,
            "agent": self.touched_agents,
            "item": self.touched_items,
            "offer": self.touched_offers,
        }
        for kind, key in self.timers.take_touched():
            if kind == "offer":
                self.touched_offers.add(key)
            elif kind == "wrapup":
                self.touched_agents.add(key)
            else:
                self.touched_items.add(key)
        self.touched_queues, self.touched_agents = set(), set()
        self.touched_items, self.touched_offers = set(), set()
        records: dict[str, dict[str, Any]] = {
            "queue": self.queues,
            "agent": self.agents,
            "item": self.items,
            "offer": self.offers,
        }
        out = Changes()
        for kind, keys in touched.items():
            present = records[kind]
            if everything:
                out.changed[kind] = set(present)
                continue
            for key in keys:
                (out.changed if key in present else out.removed)[kind].add(key)
        return out

    # -- output -------------------------------------------------------------------------

    def emit(self, command: Command) -> None:
        self.out.append(command)

    def log(
        self, event: str, queue: str, item_id: str | None, agent_id: str | None, **data: Any
    ) -> None:
        self.emit(QueueLog(event, queue, item_id, agent_id, data, self.now))

    def agent_log(self, a: AgentRt, event: str, **data: Any) -> None:
        """Agent-wide queue_log rows: one per queue the agent belongs to, else queue NONE."""
        queues = [q for q in a.config.memberships if q in self.queues] or ["NONE"]
        for q in queues:
            self.log(event, q, None, a.id, **data)

    def count(self, q: QueueRt, stat: str) -> None:
        q.count(stat)
        self.touched_queues.add(q.name)

    # -- agents -------------------------------------------------------------------------

    def set_status(self, a: AgentRt, new: AgentStatus, reason: str) -> None:
        old = a.status
        self.touched_agents.add(a.id)
        a.status = new
        a.since = self.now
        if new != "wrapup":
            a.wrapup_until = None
            self.timers.cancel(("wrapup", a.id))
        self.emit(AgentStateChanged(a.id, old, new, reason, self.now))
        self.refresh_agent(a)

    def offerable(self, a: AgentRt, q: QueueRt) -> bool:
        return (
            a.status == "available"
            and a.device != "unavailable"
            and (a.device == "idle" or q.config.ring_in_use)
        )

    def refresh_agent(self, a: AgentRt) -> None:
        """Recompute the agent's place in every member queue's available/serving sets."""
        for qname in a.config.memberships:
            q = self.queues.get(qname)
            if q is None:
                continue
            if self.offerable(a, q):
                if a.id not in q.available:
                    q.add_available(self.agent_key(a, q))
                    self.dirty_agents[a.id] = None
            else:
                q.remove_available(a.id)
            serving = a.status not in ("logged_out", "paused") and a.device != "unavailable"
            if serving:
                q.serving.add(a.id)
            else:
                q.serving.discard(a.id)
            if q.config.leave_empty:
                self.check_empty[qname] = None

    def agent_key(self, a: AgentRt, q: QueueRt) -> AgentKey:
        value = metric(
            q.config.strategy,
            idle_since=a.idle_since,
            calls_taken=a.calls_taken,
            talk_time=a.talk_time,
        )
        return (q.penalty[a.id], value, q.index[a.id], a.id)

    def rekey(self, q: QueueRt) -> None:
        """Recompute the available agents' keys (member order, penalty or strategy changed)."""
        keys = [self.agent_key(self.agents[aid], q) for aid in q.available]
        q.available = {key[3]: key for key in keys}
        q.idle = sorted(keys)

    def attach(self, a: AgentRt, qname: str) -> None:
        q = self.queues.get(qname)
        if q is None:
            return
        changed = q.penalty.get(a.id) != a.config.memberships[qname]
        if a.id not in q.index:
            pos = len(q.members)
            while pos > 0 and self.agents[q.members[pos - 1]].reg > a.reg:
                pos -= 1
            q.members.insert(pos, a.id)
            q.reindex()
            changed = True
        q.penalty[a.id] = a.config.memberships[qname]
        if changed and q.available:
            self.rekey(q)

    def detach(self, a: AgentRt, qname: str) -> None:
        q = self.queues.get(qname)
        if q is None or a.id not in q.index:
            return
        q.remove_available(a.id)
        q.members.remove(a.id)
        q.reindex()
        q.penalty.pop(a.id, None)
        q.serving.discard(a.id)
        if q.rr_last == a.id:
            q.rr_last = None
            self.touched_queues.add(qname)
        if q.available:
            self.rekey(q)
        if q.config.leave_empty:
            self.check_empty[qname] = None

    def has_usable(self, q: QueueRt, conditions: frozenset[str]) -> bool:
        return any(not (self.agents[aid].conditions() & conditions) for aid in q.members)

    # -- items --------------------------------------------------------------------------

    def new_item(self, item: QueueItem, q: QueueRt, *, seq: int | None, boost: int) -> ItemRt:
        if seq is None:
            self.seq += 1
            seq = self.seq
        it = ItemRt(
            item=item, queue=q.name, seq=seq, joined_at=self.now, orig_position=0, boost=boost
        )
        it.preferred = item.preferred_agent
        if item.preferred_agent is not None and item.preferred_fallback_after == 0:
            it.preferred = None
        it.reqs = q.config.relaxed(item.required_skills, 0.0)
        self.items[it.id] = it
        self.touched_items.add(it.id)
        q.order.add(it.key)
        it.orig_position = q.order.rank(it.key) + 1
        return it

    def position_of(self, it: ItemRt) -> int:
        return self.queues[it.queue].order.rank(it.key) + 1

    def bucket(self, it: ItemRt, q: QueueRt, *, create: bool) -> SortedKeys | None:
        group = q.buckets.get(it.preferred)
        if group is None:
            if not create:
                return None
            group = q.buckets[it.preferred] = {}
        keys = group.get(it.reqs)
        if keys is None and create:
            keys = group[it.reqs] = SortedKeys()
        return keys

    def make_waiting(self, it: ItemRt) -> None:
        """Make an item dispatchable (status waiting, in its bucket, marked for routing)."""
        q = self.queues[it.queue]
        self.touched_items.add(it.id)
        it.status = "waiting"
        keys = self.bucket(it, q, create=True)
        assert keys is not None
        keys.add(it.key)
        self.dirty_items[it.id] = None

    def unbucket(self, it: ItemRt) -> None:
        if it.status != "waiting":
            return
        q = self.queues[it.queue]
        keys = self.bucket(it, q, create=False)
        if keys is None:
            return
        keys.remove(it.key)
        if not keys:
            group = q.buckets[it.preferred]
            del group[it.reqs]
            if not group:
                del q.buckets[it.preferred]

    def rebucket(self, it: ItemRt, *, reqs: Reqs, preferred: str | None) -> None:
        if (reqs, preferred) == (it.reqs, it.preferred):
            return
        waiting = it.status == "waiting"
        if waiting:
            self.unbucket(it)
        self.touched_items.add(it.id)
        it.reqs, it.preferred = reqs, preferred
        if waiting:
            self.make_waiting(it)

    def forget_item(self, it: ItemRt) -> None:
        """Remove a non-connected item from its queue's indexes and cancel its timers."""
        self.touched_items.add(it.id)
        q = self.queues.get(it.queue)
        if q is not None:
            self.unbucket(it)
            q.order.remove(it.key)
        for name in ITEM_TIMERS:
            self.timers.cancel((name, it.id))

    def with_entered_at(self, item: QueueItem) -> QueueItem:
        return item if item.entered_at is not None else replace(item, entered_at=self.now)

    # -- offers -------------------------------------------------------------------------

    def next_offer_id(self) -> str:
        self.offer_seq += 1
        return f"{self.id_prefix}o{self.offer_seq}"

    def drop_offer(self, o: OfferRt) -> None:
        del self.offers[o.id]
        self.touched_offers.add(o.id)
        self.timers.cancel(("offer", o.id))
        it = self.items.get(o.item_id)
        if it is not None and o.id in it.offers:
            it.offers.remove(o.id)
            self.touched_items.add(it.id)
        a = self.agents.get(o.agent_id)
        if a is not None and a.offer_id == o.id:
            self.touched_agents.add(a.id)
            a.offer_id = None
            a.item_id = None

    def cancel_reason_log(self, o: OfferRt, reason: CancelReason) -> None:
        self.log(
            "RINGCANCELED",
            o.queue,
            o.item_id,
            o.agent_id,
            ringtime_ms=round((self.now - o.started_at) * 1000),
            reason=reason,
        )
