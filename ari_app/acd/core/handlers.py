"""Event handlers and timers: what each event does to items, agents and offers.

``Core.step`` fires due timers, applies the event, evicts items of queues that became
empty (leave_empty), then routes (see ``routing.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import events as ev
from .commands import (
    Announce,
    CancelOffer,
    CancelReason,
    Command,
    Connect,
    ExitQueue,
    ExitReason,
    ItemMoved,
    StartHold,
)
from .ewt import estimate_wait
from .model import QueueItem, queue_destination
from .routing import Router
from .state import AgentRt, ItemRt, OfferRt, QueueRt
from .timers import TimerName

UNANSWERED = ("noanswer", "rejected")


def _next_multiple(start: float, period: float, now: float) -> float:
    """First ``start + k*period`` strictly after ``now`` (k >= 1 when now == start)."""
    return start + period * (math.floor((now - start) / period) + 1)


class Core(Router):
    def step(self, event: ev.Event, now: float) -> list[Command]:
        self.out = []
        if now > self.now:
            self.now = now
        while (name := self.timers.pop_due(self.now)) is not None:
            self._on_timer(name)
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not an ACD event: {event!r}")
        handler(self, event)
        for _ in range(1000):
            if self.check_empty:
                queues, self.check_empty = list(self.check_empty), {}
                for qname in queues:
                    self._evict_if_empty(qname)
            elif self.dirty_items or self.dirty_agents:
                self.dispatch()
            else:
                break
        out, self.out = self.out, []
        return out

    # -- items entering and leaving ------------------------------------------------------

    def join(
        self,
        item: QueueItem,
        q: QueueRt,
        *,
        new: bool,
        seq: int | None = None,
        boost: int = 0,
        visited: tuple[str, ...] = (),
        check: bool = True,
    ) -> None:
        cfg = q.config
        if check and cfg.max_len and len(q.order) >= cfg.max_len:
            self.log("FULL", q.name, item.id, None, position=len(q.order) + 1)
            q.count("full")
            self._leave(
                item, q.name, "full", cfg.full_destination, new=new, seq=seq, visited=visited
            )
            return
        if check and cfg.join_empty and not self.has_usable(q, cfg.join_empty):
            self.log(
                "JOINEMPTY",
                q.name,
                item.id,
                None,
                position=len(q.order) + 1,
                origposition=0,
                waittime=0.0,
            )
            q.count("joinempty")
            self._leave(
                item, q.name, "empty", cfg.empty_destination, new=new, seq=seq, visited=visited
            )
            return
        it = self.new_item(item, q, seq=seq, boost=boost)
        q.count("entered")
        self.log(
            "ENTERQUEUE",
            q.name,
            item.id,
            None,
            caller_id=item.caller_id or "",
            position=it.orig_position,
            kind=item.kind,
            priority=item.priority,
        )
        if new and item.has_channel:
            self.emit(StartHold(item.id))
        self._arm(it, fresh=True)
        self.make_waiting(it)

    def _leave(
        self,
        item: QueueItem,
        from_queue: str,
        reason: ExitReason,
        destination: str | None,
        *,
        new: bool,
        seq: int | None,
        visited: tuple[str, ...] = (),
    ) -> None:
        """Route an item out of ``from_queue``: into another queue of this engine for a
        ``queue:X`` destination (unless that would loop), else out of the ACD. ExitQueue
        never carries a ``queue:`` destination: one that can't be followed becomes None."""
        target = queue_destination(destination)
        visited = (*visited, from_queue)
        if target is not None and target in self.queues and target not in visited:
            self.emit(ItemMoved(item.id, from_queue, target, "overflow"))
            self.join(item, self.queues[target], new=new, seq=seq, visited=visited)
        else:
            self.emit(ExitQueue(item.id, reason, None if target is not None else destination))

    def _exit(
        self, it: ItemRt, reason: ExitReason, log_event: str, destination: str | None, **extra: Any
    ) -> None:
        q = self.queues[it.queue]
        position = self.position_of(it)
        self._cancel_offers(it, "exit")
        self.log(
            log_event,
            q.name,
            it.id,
            None,
            **extra,
            position=position,
            origposition=it.orig_position,
            waittime=self.now - it.joined_at,
        )
        q.count(log_event.lower())
        self.forget_item(it)
        del self.items[it.id]
        self._leave(it.item, q.name, reason, destination, new=False, seq=it.seq)

    def _abandon(self, it: ItemRt, reason: str) -> None:
        q = self.queues[it.queue]
        position = self.position_of(it)
        self._cancel_offers(it, "caller-left")
        waited = self.now - it.joined_at
        self.log(
            "ABANDON",
            q.name,
            it.id,
            None,
            position=position,
            origposition=it.orig_position,
            waittime=waited,
            reason=reason,
        )
        q.count("abandoned")
        if waited <= q.config.service_level_threshold:
            q.count("abandoned_in_sl")
        self.forget_item(it)
        del self.items[it.id]

    def _evict_if_empty(self, qname: str) -> None:
        q = self.queues.get(qname)
        if q is None or not q.config.leave_empty or not q.order:
            return
        if self.has_usable(q, q.config.leave_empty):
            return
        for key in list(q.order):
            it = self.items.get(key[-1])
            if it is not None and it.queue == qname:
                self._exit(it, "empty", "EXITEMPTY", q.config.empty_destination)

    # -- item timers --------------------------------------------------------------------

    def _arm(self, it: ItemRt, *, fresh: bool) -> None:
        """(Re)schedule an item's timers from the time it joined its queue."""
        cfg = self.queues[it.queue].config
        joined, now, iid, timers = it.joined_at, self.now, it.id, self.timers

        def put(kind: str, deadline: float | None) -> None:
            if deadline is None:
                timers.cancel((kind, iid))
            else:
                timers.set((kind, iid), deadline)

        put("maxwait", joined + cfg.max_wait if cfg.max_wait else None)
        step = cfg.next_escalation(now - joined)
        put("escalate", None if step is None else joined + step)
        fallback = it.item.preferred_fallback_after
        put(
            "fallback",
            joined + fallback if it.preferred is not None and fallback is not None else None,
        )
        channel = it.item.has_channel
        announce = cfg.announce_frequency if cfg.announce_position or cfg.announce_ewt else 0.0
        if not channel or announce <= 0:
            put("announce", None)
        elif fresh:
            put("announce", now)
        elif timers.get(("announce", iid)) is None:
            put("announce", _next_multiple(joined, announce, now))
        periodic = cfg.periodic_announce_frequency if cfg.periodic_announce else 0.0
        put("periodic", _next_multiple(joined, periodic, now) if channel and periodic > 0 else None)
        if not channel or cfg.callback_offer_after is None:
            put("cboffer", None)
        else:
            start, freq = joined + cfg.callback_offer_after, cfg.callback_offer_frequency
            if fresh or start > now:
                put("cboffer", start)
            elif freq > 0:
                put("cboffer", _next_multiple(start, freq, now))

    def _on_timer(self, name: TimerName) -> None:
        kind, key = name
        if kind == "offer":
            o = self.offers.get(key)
            if o is not None:
                self._offer_failed(o, "noanswer", timed_out=True)
            return
        if kind == "wrapup":
            a = self.agents.get(key)
            if a is not None and a.status == "wrapup":
                self._agent_free(a, "wrapup-end")
            return
        it = self.items.get(key)
        if it is None or it.status == "connected":
            return
        q = self.queues[it.queue]
        cfg = q.config
        if kind == "retry":
            if it.status == "retry":
                self.make_waiting(it)
        elif kind == "maxwait":
            self._exit(it, "timeout", "EXITWITHTIMEOUT", cfg.max_wait_destination)
        elif kind == "escalate":
            waited = self.now - it.joined_at
            self.rebucket(
                it, reqs=cfg.relaxed(it.item.required_skills, waited), preferred=it.preferred
            )
            step = cfg.next_escalation(waited)
            if step is not None:
                self.timers.set(("escalate", it.id), it.joined_at + step)
        elif kind == "fallback":
            self.rebucket(it, reqs=it.reqs, preferred=None)
        elif kind == "announce":
            if it.status != "offering":
                position = self.position_of(it)
                ewt = self.ewt(q, position) if cfg.announce_ewt else None
                self.emit(
                    Announce(it.id, "position" if cfg.announce_position else "ewt", position, ewt)
                )
            self.timers.set(("announce", it.id), self.now + cfg.announce_frequency)
        elif kind == "periodic":
            if it.status != "offering":
                self.emit(
                    Announce(it.id, "periodic", self.position_of(it), None, cfg.periodic_announce)
                )
            self.timers.set(("periodic", it.id), self.now + cfg.periodic_announce_frequency)
        elif kind == "cboffer":
            position = self.position_of(it)
            self.emit(Announce(it.id, "callback-offer", position, self.ewt(q, position)))
            if cfg.callback_offer_frequency > 0:
                self.timers.set(("cboffer", it.id), self.now + cfg.callback_offer_frequency)
        elif kind == "progress":
            self.progress_step(it)

    def ewt(self, q: QueueRt, position: int) -> float | None:
        return estimate_wait(position, len(q.serving), len(q.available), q.handle_time())

    # -- offers -------------------------------------------------------------------------

    def _cancel_offers(self, it: ItemRt, reason: CancelReason) -> None:
        for oid in list(it.offers):
            o = self.offers[oid]
            self.emit(CancelOffer(oid, reason, it.id, o.agent_id))
            if reason != "answered-elsewhere":
                self.cancel_reason_log(o, reason)
            self.drop_offer(o)
            a = self.agents.get(o.agent_id)
            if a is not None:
                self._agent_free(a, reason)

    def _offer_failed(self, o: OfferRt, reason: str, *, timed_out: bool) -> None:
        it = self.items.get(o.item_id)
        a = self.agents.get(o.agent_id)
        q = self.queues.get(o.queue)
        if timed_out:
            self.emit(CancelOffer(o.id, "timeout", o.item_id, o.agent_id))
        self.log(
            "RINGNOANSWER",
            o.queue,
            o.item_id,
            o.agent_id,
            ringtime_ms=round((self.now - o.started_at) * 1000),
            reason=reason,
        )
        self.drop_offer(o)
        if it is not None and o.agent_id not in it.tried:
            it.tried.append(o.agent_id)
        if a is not None:
            if reason in UNANSWERED:
                a.unanswered += 1
            cfg = q.config if q is not None else None
            auto = cfg is not None and (
                (reason in UNANSWERED and 0 < cfg.autopause_after <= a.unanswered)
                or (reason == "busy" and cfg.autopause_busy)
                or (reason in ("unavailable", "congestion") and cfg.autopause_unavail)
            )
            if auto and a.pending is None:
                a.unanswered = 0
                self._pause_now(a, "autopause", auto=True)
            else:
                self._agent_free(a, reason)
        if it is not None and it.status == "offering" and not it.offers:
            self._attempt_over(it)

    def _attempt_over(self, it: ItemRt, delay: float | None = None) -> None:
        self.timers.cancel(("progress", it.id))
        wait = self.queues[it.queue].config.retry_delay if delay is None else delay
        if wait > 0:
            it.status = "retry"
            self.timers.set(("retry", it.id), self.now + wait)
        else:
            self.make_waiting(it)

    def _cancel_agent_offer(self, a: AgentRt) -> None:
        """The ringing agent leaves: cancel its offer; the item goes straight back to waiting."""
        o = self.offers.get(a.offer_id or "")
        if o is None:
            return
        self.emit(CancelOffer(o.id, "agent-logout", o.item_id, a.id))
        self.cancel_reason_log(o, "agent-logout")
        self.drop_offer(o)
        it = self.items.get(o.item_id)
        if it is not None and it.status == "offering" and not it.offers:
            self._attempt_over(it, delay=0.0)

    def _complete(self, it: ItemRt, by: str, **extra: Any) -> None:
        q = self.queues.get(it.queue)
        a = self.agents.get(it.agent_id or "")
        connected = it.connected_at if it.connected_at is not None else self.now
        talk = self.now - connected
        self.log(
            "COMPLETECALLER" if by == "caller" else "COMPLETEAGENT",
            it.queue,
            it.id,
            it.agent_id,
            holdtime=connected - it.joined_at,
            calltime=talk,
            origposition=it.orig_position,
            **extra,
        )
        del self.items[it.id]
        wrapup = 0.0
        if a is not None and a.config.wrapup_time is not None:
            wrapup = a.config.wrapup_time
        elif q is not None:
            wrapup = q.config.wrapup_time
        if q is not None:
            q.handle.add(talk + wrapup)
            q.count("completed")
        if a is None or a.item_id != it.id:
            return
        a.item_id = None
        a.calls_taken += 1
        a.talk_time += talk
        a.last_call_end = self.now
        if a.pending is not None or wrapup <= 0:
            self._agent_free(a, "call-ended")
        else:
            self.set_status(a, "wrapup", "call-ended")
            a.wrapup_until = self.now + wrapup
            self.timers.set(("wrapup", a.id), a.wrapup_until)

    # -- agent transitions --------------------------------------------------------------

    def _agent_free(self, a: AgentRt, reason: str) -> None:
        """The agent's offer/call/wrap-up is over: apply a pending logout/pause, else available."""
        pending, a.pending = a.pending, None
        if pending == "logout":
            self._logoff(a, a.pending_reason)
        elif pending == "pause":
            self._pause_now(a, a.pending_reason)
        else:
            self.set_status(a, "available", reason)

    def _logoff(self, a: AgentRt, reason: str) -> None:
        since = a.logged_in_at if a.logged_in_at is not None else self.now
        self.agent_log(a, "AGENTLOGOFF", logintime=self.now - since, reason=reason)
        a.logged_in_at = None
        self.set_status(a, "logged_out", "logout")

    def _pause_now(self, a: AgentRt, reason: str, *, auto: bool = False) -> None:
        a.pause_reason = reason
        self.agent_log(a, "AUTOPAUSE" if auto else "PAUSE", reason=reason)
        self.set_status(a, "paused", reason or "pause")

    # -- event handlers -----------------------------------------------------------------

    def on_call_arrived(self, e: ev.CallArrived) -> None:
        item = e.item
        if item.id in self.items:
            return
        q = self.queues.get(item.queue)
        if q is None:
            self.emit(ExitQueue(item.id, "unknown", None))
            return
        self.join(self.with_entered_at(item), q, new=True)

    def on_call_left(self, e: ev.CallLeft) -> None:
        it = self.items.get(e.item_id)
        if it is None:
            return
        if it.status == "connected":
            self._complete(it, "caller")
        else:
            self._abandon(it, e.reason)

    def on_offer_answered(self, e: ev.OfferAnswered) -> None:
        o = self.offers.get(e.offer_id)
        it = self.items.get(o.item_id) if o else None
        a = self.agents.get(o.agent_id) if o else None
        if o is None or it is None or a is None:
            self.emit(
                CancelOffer(
                    e.offer_id, "stale", o.item_id if o else None, o.agent_id if o else None
                )
            )
            return
        q = self.queues[it.queue]
        self.drop_offer(o)
        self.forget_item(it)
        it.status, it.agent_id, it.offer_id, it.connected_at = "connected", a.id, o.id, self.now
        a.unanswered = 0
        a.item_id = it.id
        hold = self.now - it.joined_at
        within = hold <= q.config.service_level_threshold
        q.count("answered")
        if within:
            q.count("answered_in_sl")
        self.log(
            "CONNECT",
            q.name,
            it.id,
            a.id,
            holdtime=hold,
            ringtime_ms=round((self.now - o.started_at) * 1000),
            offer_id=o.id,
            within_sl=within,
        )
        self.emit(Connect(it.id, a.id, o.id))
        self.set_status(a, "on_call", "answered")
        self._cancel_offers(it, "answered-elsewhere")

    def on_offer_failed(self, e: ev.OfferFailed) -> None:
        o = self.offers.get(e.offer_id)
        if o is not None:
            self._offer_failed(o, e.reason, timed_out=False)

    def on_call_ended(self, e: ev.CallEnded) -> None:
        it = self.items.get(e.item_id)
        if it is None:
            return
        if it.status == "connected":
            self._complete(it, e.by)
        else:
            self._abandon(it, "hangup")

    def on_agent_login(self, e: ev.AgentLogin) -> None:
        a = self.agents.get(e.agent_id)
        if a is None:
            return
        if a.status == "logged_out":
            a.logged_in_at = self.now
            a.unanswered = 0
            self.agent_log(a, "AGENTLOGIN")
            self.set_status(a, "available", "login")
        elif a.pending == "logout":
            a.pending = None

    def on_agent_logout(self, e: ev.AgentLogout) -> None:
        a = self.agents.get(e.agent_id)
        if a is None or a.status == "logged_out":
            return
        if a.status == "on_call":
            a.pending, a.pending_reason = "logout", e.reason
            return
        if a.status == "ringing":
            self._cancel_agent_offer(a)
        a.pending = None
        self._logoff(a, e.reason)

    def on_agent_pause(self, e: ev.AgentPause) -> None:
        a = self.agents.get(e.agent_id)
        if a is None or a.status == "logged_out":
            return
        if a.status in ("ringing", "on_call"):
            if a.pending != "logout":
                a.pending, a.pending_reason = "pause", e.reason
            return
        self._pause_now(a, e.reason)

    def on_agent_unpause(self, e: ev.AgentUnpause) -> None:
        a = self.agents.get(e.agent_id)
        if a is None:
            return
        if a.status == "paused":
            a.unanswered = 0
            a.pause_reason = ""
            self.agent_log(a, "UNPAUSE")
            self.set_status(a, "available", "unpause")
        elif a.pending == "pause":
            a.pending = None

    def on_agent_leg_lost(self, e: ev.AgentLegLost) -> None:
        a = self.agents.get(e.agent_id)
        if a is None:
            return
        o = self.offers.get(a.offer_id or "")
        if a.status == "ringing" and o is not None:
            self.emit(CancelOffer(o.id, "leg-lost", o.item_id, a.id))
            self._offer_failed(o, "unavailable", timed_out=False)
        elif a.status == "on_call":
            it = self.items.get(a.item_id or "")
            if it is not None and it.status == "connected":
                self._complete(it, "agent", reason="leg-lost")
            else:
                a.item_id = None
                self._agent_free(a, "leg-lost")

    def on_device_state(self, e: ev.AgentDeviceState) -> None:
        a = self.agents.get(e.agent_id)
        if a is not None and a.device != e.state:
            a.device = e.state
            self.refresh_agent(a)

    def on_dtmf(self, e: ev.DtmfPressed) -> None:
        it = self.items.get(e.item_id)
        if it is None or it.status == "connected" or not it.item.has_channel:
            return
        cfg = self.queues[it.queue].config
        if e.digit == cfg.exit_key:
            self._exit(it, "exitkey", "EXITWITHKEY", cfg.exit_key_destination, key=e.digit)
        elif e.digit == cfg.callback_key:
            self._exit(it, "callback", "EXITWITHKEY", "callback", key=e.digit)

    def on_tick(self, e: ev.Tick) -> None:
        pass

    def on_upsert_queue(self, e: ev.UpsertQueue) -> None:
        cfg = e.config
        q = self.queues.get(cfg.name)
        if q is None:
            q = self.queues[cfg.name] = QueueRt(cfg)
            for a in self.agents.values():
                if cfg.name in a.config.memberships:
                    self.attach(a, cfg.name)
        q.config = cfg
        self.rekey(q)  # the strategy decides the available agents' order
        for aid in q.members:
            a = self.agents[aid]
            self.refresh_agent(a)
            if aid in q.available:
                self.dirty_agents[aid] = None
        for key in list(q.order):
            it = self.items[key[-1]]
            self.rebucket(
                it,
                reqs=cfg.relaxed(it.item.required_skills, self.now - it.joined_at),
                preferred=it.preferred,
            )
            self._arm(it, fresh=False)
            if it.status == "waiting":
                self.dirty_items[it.id] = None
        self.check_empty[cfg.name] = None

    def on_remove_queue(self, e: ev.RemoveQueue) -> None:
        q = self.queues.get(e.name)
        if q is None:
            return
        for key in list(q.order):
            it = self.items.get(key[-1])
            if it is not None and it.queue == e.name:
                self._exit(it, "empty", "EXITEMPTY", None)
        del self.queues[e.name]

    def on_upsert_agent(self, e: ev.UpsertAgent) -> None:
        cfg = e.config
        a = self.agents.get(cfg.id)
        if a is None:
            self.agent_reg += 1
            a = self.agents[cfg.id] = AgentRt(cfg, reg=self.agent_reg, since=self.now)
            old: set[str] = set()
        else:
            old = set(a.config.memberships)
            for qname in old - set(cfg.memberships):
                self.detach(a, qname)
                if qname in self.queues:
                    self.log("REMOVEMEMBER", qname, None, a.id)
            a.config = cfg
        for qname in cfg.memberships:
            self.attach(a, qname)
            if qname not in old and qname in self.queues:
                self.log("ADDMEMBER", qname, None, a.id, penalty=cfg.memberships[qname])
        self.refresh_agent(a)
        if a.status == "available":
            self.dirty_agents[a.id] = None

    def on_remove_agent(self, e: ev.RemoveAgent) -> None:
        a = self.agents.get(e.agent_id)
        if a is None:
            return
        if a.status == "ringing":
            self._cancel_agent_offer(a)
        if a.status != "logged_out":
            a.pending = None
            self._logoff(a, "removed")
        for qname in a.config.memberships:
            if qname in self.queues:
                self.detach(a, qname)
                self.log("REMOVEMEMBER", qname, None, a.id)
        del self.agents[a.id]

    def on_move_item(self, e: ev.MoveItem) -> None:
        it = self.items.get(e.item_id)
        target = self.queues.get(e.queue)
        if it is None or target is None or it.status == "connected":
            return
        q = self.queues[it.queue]
        if target is q:
            if e.to_head:
                self._to_head(it, q)
            return
        position = self.position_of(it)
        self._cancel_offers(it, "exit")
        self.log(
            "MOVE",
            q.name,
            it.id,
            None,
            to=target.name,
            to_head=e.to_head,
            position=position,
            origposition=it.orig_position,
            waittime=self.now - it.joined_at,
        )
        self.forget_item(it)
        del self.items[it.id]
        boost = 0
        if e.to_head:
            boost = target.max_boost = target.max_boost + 1
        self.emit(ItemMoved(it.id, q.name, target.name, "supervisor"))
        self.join(it.item, target, new=False, seq=it.seq, boost=boost, check=False)

    def _to_head(self, it: ItemRt, q: QueueRt) -> None:
        dispatchable = it.status in ("waiting", "retry")
        self.unbucket(it)
        q.order.remove(it.key)
        it.boost = q.max_boost = q.max_boost + 1
        q.order.add(it.key)
        self.log(
            "MOVE",
            q.name,
            it.id,
            None,
            to=q.name,
            to_head=True,
            position=1,
            origposition=it.orig_position,
            waittime=self.now - it.joined_at,
        )
        self.emit(ItemMoved(it.id, q.name, q.name, "supervisor"))
        if dispatchable:
            self.timers.cancel(("retry", it.id))
            self.make_waiting(it)


_HANDLERS: dict[type, Callable[[Core, Any], None]] = {
    ev.CallArrived: Core.on_call_arrived,
    ev.CallLeft: Core.on_call_left,
    ev.OfferAnswered: Core.on_offer_answered,
    ev.OfferFailed: Core.on_offer_failed,
    ev.CallEnded: Core.on_call_ended,
    ev.AgentLogin: Core.on_agent_login,
    ev.AgentLogout: Core.on_agent_logout,
    ev.AgentPause: Core.on_agent_pause,
    ev.AgentUnpause: Core.on_agent_unpause,
    ev.AgentLegLost: Core.on_agent_leg_lost,
    ev.AgentDeviceState: Core.on_device_state,
    ev.DtmfPressed: Core.on_dtmf,
    ev.Tick: Core.on_tick,
    ev.UpsertQueue: Core.on_upsert_queue,
    ev.RemoveQueue: Core.on_remove_queue,
    ev.UpsertAgent: Core.on_upsert_agent,
    ev.RemoveAgent: Core.on_remove_agent,
    ev.MoveItem: Core.on_move_item,
}
