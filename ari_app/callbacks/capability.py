"""The callbacks capability: callbacks from PostgreSQL into the ACD, attempts and retries back.

A callback waits in its queue as a channel-less ACD item carrying the caller's original entry
time and priority, so it keeps the caller's place among live callers. Agent-first (default): the
ACD rings the agent, whispers, then (after this capability has claimed the callback in the
database) dials the customer. Customer-first: the callback is held here, in line by the same
order, and the customer is dialled when nobody waiting is ahead of it; once they answer they wait
for the next agent with top priority.

A loop (every `poll_interval`, and at once when something changed) expires callbacks whose window
closed, claims the due ones into this instance's queues and starts customer-first dials. After a
restart the first pass re-attaches the callbacks the restored ACD snapshot still holds and
re-enqueues the others: each is in the queue exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from ari_app.acd.core.model import QueueItem
from ari_app.acd.links import ItemUpdate
from ari_app.ari import events as ev
from ari_app.callbacks import store
from ari_app.callbacks.core import (
    NOT_COUNTED,
    CallbackPolicy,
    Next,
    after_attempt,
    customer_first_ready,
    expired,
    order_key,
)
from ari_app.callbacks.hold import VirtualHold, play
from ari_app.calls.direct import dial_failure
from ari_app.numbers import national
from ari_app.store.db import is_transient

if TYPE_CHECKING:
    from ari_app.service import Service

log = logging.getLogger(__name__)

DEFAULT_POLICY = CallbackPolicy()


@dataclass
class Placed:
    """A callback this instance holds in a queue (or is dialling), as claimed from its row."""

    cb_id: str
    item_id: str
    queue: str
    number: str
    entered_at: float
    priority: int
    skills: dict[str, int]
    agent: str | None
    fallback_after: float | None
    not_after: float | None
    attempts: int
    max_attempts: int
    retry_delay: float
    #: The running attempt's number once claimed for a dial.
    attempt: int | None = None
    connected: bool = False
    #: The database said no to the dial (cancelled, expired, no longer ours): nothing to write.
    refused: bool = False
    customer_first: bool = False

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> Placed:
        skills = r["skills"]
        if isinstance(skills, str):
            import json
            skills = json.loads(skills)
        return cls(r["id"], r["item_id"], r["queue"], r["number"], r["entered_at"].timestamp(), r["priority"],
                   dict(skills or {}), r["agent"], r["fallback_after"], store.secs(r["not_after"]),
                   r["attempts"], r["max_attempts"], r["retry_delay"])



class Callbacks:
    def __init__(self, service: Service) -> None:
        from ari_app.callbacks import api
        self.s = service
        self.acd = service.acd
        self.cfg = service.settings.callbacks
        self.owner = service.settings.app_name
        self.numbers = self.cfg.number_policy()
        self.policies: dict[str, CallbackPolicy] = {}
        #: item id -> agent-first callbacks in the ACD and customer-first ones dialled/in queue.
        self.placed: dict[str, Placed] = {}
        #: Customer-first callbacks waiting for their turn (not in the ACD), and those being dialled.
        self.held: dict[str, Placed] = {}
        self.dialling: dict[str, str] = {}
        #: Item ids that ended here: never re-placed from a row read before their end was written.
        self.done_items: set[str] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0  # completed passes (tests wait on it)
        self.hold = VirtualHold(self)
        self.acd.exit_handlers["callback"] = self.hold.on_exit
        self.acd.announce_filters["callback-offer"] = self._offer_allowed
        self.acd.dtmf_filters.append(self._key_allowed)
        service.routes["callback-customer"] = self._unexpected_customer
        service.shutdown_hooks.append(self.stop)
        api.register(service.api, service, self)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        try:
            async with self.s.db.acquire() as conn:
                self.policies = await store.load_policies(conn)
        except Exception as exc:  # noqa: BLE001 - defaults until the database answers
            log.warning("could not load callback policies", extra={"error": type(exc).__name__})
        self._task = asyncio.create_task(self._loop(), name="callbacks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def wake(self) -> None:
        self._wakeup.set()

    async def _loop(self) -> None:
        await self.s.reconciled.wait()  # ARI events flow: offers we cause are not missed
        first = True
        while True:
            self._wakeup.clear()
            try:
                await self.sweep(first=first)
                first = False
                self.sweeps += 1
            except Exception as exc:  # noqa: BLE001 - try again next round
                if is_transient(exc):
                    log.warning("callbacks: database unavailable", extra={"error": type(exc).__name__})
                else:
                    log.exception("callbacks sweep failed")
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.cfg.poll_interval)
            except TimeoutError:
                pass

    def policy(self, queue: str) -> CallbackPolicy:
        return self.policies.get(queue, DEFAULT_POLICY)

    def normalise(self, raw: str) -> str:
        return self.numbers.normalise(raw)

    def dial_string(self, e164: str) -> str:
        return self.cfg.dial_string(e164)

    @staticmethod
    def now() -> float:
        return time.time()

    # ------------------------------------------------------------------ the sweep
    async def sweep(self, *, first: bool = False) -> None:
        now = self.now()
        async with self.s.db.acquire() as conn:
            owned = await store.owned(conn, self.owner)
            if first:
                await self._recover(conn, owned)
            else:
                for row in owned:  # e.g. a dial refused while the database was down
                    if row["state"] == "pending" and self._lost(row["item_id"]):
                        self._place(Placed.from_row(row))
            for row in await store.expire(conn, now):
                log.info("callback expired", extra={"callback_id": row["id"]})
            for p in [p for p in self.placed.values() if p.attempt is None and expired(p.not_after, now)]:
                if self.acd.withdraw(p.item_id, outcome="callback-expired"):
                    self._forget(p)
                    await store.fail(conn, p.cb_id, "expired")
            rows = await store.claim_due(conn, self.owner, self.acd.engine.queues(), now)
        for row in rows:
            self._place(Placed.from_row(row))
        self._dispatch_customer_first(now)

    def _lost(self, item_id: str) -> bool:
        return (item_id not in self.done_items and item_id not in self.placed and item_id not in self.held
                and item_id not in self.dialling and item_id not in self.acd.items)

    async def _recover(self, conn: asyncpg.Connection, owned: list[asyncpg.Record]) -> None:
        """First pass after a start: the restored ACD may hold some of our callbacks already."""
        known = {r["item_id"] for r in owned}
        for row in owned:
            p = Placed.from_row(row)
            if row["state"] == "pending":
                self._place(p)
                continue
            # in-progress: a dial attempt was running when we stopped.
            p.attempt = await conn.fetchval("SELECT max(attempt) FROM callback_attempts WHERE callback_id = $1",
                                            p.cb_id)
            link = self.acd.items.get(p.item_id)
            if link is not None and (link.connected or link.channel_id is not None):
                self.placed[p.item_id] = p
                p.customer_first = link.dial is None
                p.connected = link.connected and link.channel_id is not None
                self.acd.observers[p.item_id] = self._observer(p)
                continue
            bridged = await conn.fetchval("SELECT bridged_at FROM calls WHERE id = $1", p.item_id)
            outcome = "connected" if bridged is not None else "lost"
            await self._end(conn, p, outcome, connected_at=bridged.timestamp() if bridged else None)
        for item_id in list(self.acd.items):
            info = self.acd.engine.item(item_id)
            if info is not None and info.item.data.get("callback_id") and item_id not in known:
                self.acd.withdraw(item_id, outcome="callback-closed")  # closed while we were away

    # ------------------------------------------------------------------ into the queue
    def _place(self, p: Placed) -> None:
        if p.queue not in self.acd.engine.queues():
            log.debug("callback for an unknown queue waits", extra={"callback_id": p.cb_id, "queue": p.queue})
            return
        policy = self.policy(p.queue)
        p.customer_first = policy.mode == "customer-first"
        if p.item_id in self.acd.items:  # restored from the ACD snapshot: the same item, re-attached
            self.placed[p.item_id] = p
            self.acd.observers[p.item_id] = self._observer(p)
            if self.acd.items[p.item_id].channel_id is None:
                self.acd.before_dial[p.item_id] = self._claim(p)
            return
        if policy.mode == "customer-first":
            self.held[p.item_id] = p
            return
        self.placed[p.item_id] = p
        whisper = [*policy.whisper, *([f"digits:{national(p.number)}"] if policy.whisper_number else [])]
        self.acd.enqueue(self.queue_item(p), channel_id=None, direction="callback",
                         dial=self.dial_string(p.number), dial_caller_id=self.cfg.caller_id or None,
                         dial_timeout=policy.dial_timeout, whisper=whisper, observer=self._observer(p),
                         before_dial=self._claim(p), amd=policy.amd)
        self.s.recorder.set_call(p.item_id, callee=p.number, data={"callback_id": p.cb_id})

    def queue_item(self, p: Placed, *, priority: int | None = None, kind: str = "callback") -> QueueItem:
        return QueueItem(id=p.item_id, queue=p.queue, kind=kind, priority=p.priority if priority is None else priority,  # type: ignore[arg-type]
                         entered_at=p.entered_at, required_skills=p.skills, preferred_agent=p.agent,
                         preferred_fallback_after=p.fallback_after if p.agent else None, caller_id=p.number,
                         data={"callback_id": p.cb_id})

    def _claim(self, p: Placed) -> Callable[[], Awaitable[bool]]:
        """Before the customer is dialled: claim the row (never dial a callback twice, never one
        cancelled or expired meanwhile). A database that can't answer means no dial."""
        async def check() -> bool:
            link = self.acd.items.get(p.item_id)
            agent = link.agent_id if link is not None else None
            try:
                async with self.s.db.acquire() as conn:
                    n = await store.begin_attempt(conn, p.cb_id, p.item_id, self.owner, agent, self.now())
            except Exception as exc:  # noqa: BLE001
                log.warning("callback claim failed; not dialling", extra={"callback_id": p.cb_id,
                                                                           "error": type(exc).__name__})
                return False
            if n is None:
                p.refused = True
                return False
            p.attempt = n
            return True
        return check

    # ------------------------------------------------------------------ outcomes
    def _observer(self, p: Placed) -> Callable[[ItemUpdate], None]:
        # Agent-first: "connected" once the customer answered; customer-first: the customer is
        # on the line already, so the agent answering connects them.
        connected = "agent-answered" if p.customer_first else "connected"

        def on_update(u: ItemUpdate) -> None:
            if u.kind == connected and p.attempt is not None and not p.connected:
                p.connected = True
                at = self.now()
                self._write(lambda conn: self._end(conn, p, "connected", connected_at=at, agent_id=u.agent_id,
                                                   keep=True))
            elif u.kind == "customer-failed":
                self._finish(p, u.detail or "failed")
            elif u.kind == "completed":
                if p.connected:
                    self._forget(p)
                    self._write(lambda conn: store.call_ended(conn, p.cb_id, p.attempt))
                else:
                    self._finish(p, "agent-hangup")
            elif u.kind == "abandoned":
                self._finish(p, "customer-abandoned")
            elif u.kind == "exited":
                self._finish(p, "exited")
        return on_update

    def _finish(self, p: Placed, outcome: str) -> None:
        self._forget(p)
        if p.refused:
            return
        self._write(lambda conn: self._end(conn, p, outcome))

    def _forget(self, p: Placed) -> None:
        self.placed.pop(p.item_id, None)
        self.held.pop(p.item_id, None)
        self.done_items.add(p.item_id)

    async def _end(self, conn: asyncpg.Connection, p: Placed, outcome: str, *, connected_at: float | None = None,
                   agent_id: str | None = None, keep: bool = False) -> None:
        now = self.now()
        if p.attempt is None:  # never dialled: back to its place, nothing counted
            delay = p.retry_delay if outcome == "exited" else 0.0
            nxt = Next("pending", p.attempts, now + delay, outcome)
        else:
            nxt = after_attempt(outcome, attempts=p.attempts, max_attempts=p.max_attempts,
                                retry_delay=p.retry_delay, now=now, not_after=p.not_after)
        await store.end_attempt(conn, p.cb_id, p.attempt, outcome=outcome, counted=outcome not in NOT_COUNTED,
                                nxt=nxt, connected_at=connected_at, agent_id=agent_id)
        log.info("callback attempt ended", extra={"callback_id": p.cb_id, "outcome": outcome, "state": nxt.state})
        if not keep:
            self._forget(p)

    def _write(self, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> None:
        """Write an outcome, retrying through a database outage (in order per callback is not
        needed: each write is the whole truth of its step)."""
        async def run() -> None:
            delay = 0.2
            while True:
                try:
                    async with self.s.db.acquire() as conn:
                        await fn(conn)
                    break
                except Exception as exc:
                    if not is_transient(exc):
                        log.exception("callback write failed")
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            self.wake()
        self.s.spawn(run(), name="callback-write")

    # ------------------------------------------------------------------ customer-first
    def _dispatch_customer_first(self, now: float) -> None:
        for p in sorted(self.held.values(), key=lambda p: order_key(p.priority, p.entered_at)):
            info = self.acd.engine.queue(p.queue)
            if info is None:
                continue
            waiting = [(i.item.priority, i.item.entered_at if i.item.entered_at is not None else now)
                       for i in self.acd.engine.waiting(p.queue)]
            waiting += [(o.priority, o.entered_at) for o in self.held.values()
                        if o.queue == p.queue and o is not p]
            dialling = sum(1 for q in self.dialling.values() if q == p.queue)
            if customer_first_ready((p.priority, p.entered_at), waiting, serving=info.serving, dialling=dialling):
                self.held.pop(p.item_id, None)
                self.dialling[p.item_id] = p.queue
                self.s.spawn(self._customer_first(p), name=f"callback-cf-{p.item_id}")

    async def _customer_first(self, p: Placed) -> None:
        try:
            if await self._claim(p)():
                await self._dial_customer(p)
            else:
                self._finish(p, "withdrawn")
        finally:
            self.dialling.pop(p.item_id, None)

    async def _dial_customer(self, p: Placed) -> None:
        ari, rest, rec = self.s.ari, self.s.ari.rest, self.s.recorder
        policy, channel, dial = self.policy(p.queue), p.item_id, self.dial_string(p.number)
        gone = asyncio.Event()
        self.s.own_channel(channel, lambda e: gone.set() if isinstance(e, ev.StasisEnd | ev.ChannelDestroyed)
                           else None)
        rec.start_call(p.item_id, direction="callback", caller=p.number, callee=p.number, queue=p.queue,
                       entered_queue_at=store.ts(p.entered_at), data={"callback_id": p.cb_id})
        rec.add_leg(channel, call_id=p.item_id, role="customer", endpoint=dial)
        answered = ari.expect(lambda e: isinstance(e, ev.StasisStart | ev.ChannelDestroyed)
                              and e.channel.id == channel, timeout=policy.dial_timeout + 15)
        try:
            await rest.channels.originate(endpoint=dial, app=self.s.settings.app_name,
                                          app_args=f"callback-customer,{p.cb_id}", channel_id=channel,
                                          caller_id=self.cfg.caller_id or None, timeout=policy.dial_timeout)
            first = await answered
        except Exception as exc:  # noqa: BLE001 - a failed originate is a failed attempt
            answered.cancel()
            log.warning("callback originate failed", extra={"callback_id": p.cb_id, "error": str(exc)})
            rec.set_leg(channel, outcome="failed")
            self._finish(p, "failed")
            return
        if isinstance(first, ev.ChannelDestroyed):
            outcome = dial_failure(first.cause)
            rec.set_leg(channel, outcome=outcome)
            rec.set_call(p.item_id, outcome=f"customer-{outcome}")
            self._finish(p, outcome)
            return
        rec.set_leg(channel, outcome="answered")
        await play(self.s, channel, policy.customer_message, gone)
        if gone.is_set():
            self._finish(p, "customer-abandoned")
            return
        self.placed[p.item_id] = p
        self.acd.enqueue(self.queue_item(p, priority=policy.customer_first_priority, kind="call"),
                         channel_id=channel, created_at=first.timestamp, already_up=True, from_dialplan=False,
                         direction="callback", observer=self._observer(p))

    def _unexpected_customer(self, e: ev.StasisStart) -> None:
        """A customer leg we no longer track (we restarted while it rang): hang it up."""
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=e.channel.id)))

    # ------------------------------------------------------------------ offers in queue
    def _offer_allowed(self, link: Any, c: Any) -> bool:
        info = self.acd.engine.queue(link.queue)
        return self.policy(link.queue).should_offer(waiting=info.waiting if info else 0, ewt=c.ewt_seconds)

    def _key_allowed(self, link: Any, digit: str) -> bool:
        info = self.acd.engine.queue(link.queue)
        if info is None or digit != info.config.callback_key:
            return True
        return self.policy(link.queue).should_offer(waiting=info.waiting, ewt=self.acd.engine.ewt(link.item_id))

    def withdraw(self, item_id: str | None) -> None:
        """A cancelled callback leaves its queue (or the customer-first line) at once."""
        if not item_id:
            return
        p = self.placed.get(item_id) or self.held.get(item_id)
        self.acd.withdraw(item_id, outcome="callback-cancelled")
        if p is not None:
            p.refused = True
            self._forget(p)

    # ------------------------------------------------------------------ creating callbacks
    def new_id(self) -> str:
        return f"cb-{uuid.uuid4().hex[:16]}"

    async def create(self, row: dict[str, Any], *, place_now: bool) -> asyncpg.Record:
        """Insert a callback (durably, before anyone is told); when it is due now, claim it into
        this instance's queue in the same statement and put it there at once.
        Raises asyncpg.UniqueViolationError for a duplicate open callback (number, queue)."""
        if place_now:
            row = {**row, "owner": self.owner, "item_id": f"{row['id']}-1", "enqueued": 1}
        async with self.s.db.acquire() as conn:
            rec = await store.insert(conn, row)
        if place_now:
            self._place(Placed.from_row(rec))
            self._dispatch_customer_first(self.now())
        else:
            self.wake()
        return rec
