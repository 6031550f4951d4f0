"""What happens to items and agents, as reusable transitions: joining and leaving a queue
(full/empty/overflow), item timers (max wait, escalation, announcements...), offers ending
(answered elsewhere, failed, timed out), calls completing, agents freed/paused/logged off.

The event handlers in ``handlers.py`` are thin calls into these.
"""

from __future__ import annotations

import math
from typing import Any

from .commands import (
    Announce,
    CancelOffer,
    CancelReason,
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


class Lifecycle(Router):
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
            self.count(q, "full")
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
            self.count(q, "joinempty")
            self._leave(
                item, q.name, "empty", cfg.empty_destination, new=new, seq=seq, visited=visited
            )
            return
        it = self.new_item(item, q, seq=seq, boost=boost)
        self.count(q, "entered")
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
        self.count(q, log_event.lower())
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
        self.count(q, "abandoned")
        if waited <= q.config.service_level_threshold:
            self.count(q, "abandoned_in_sl")
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
            self.touched_items.add(it.id)
        if a is not None:
            if reason in UNANSWERED:
                a.unanswered += 1
                self.touched_agents.add(a.id)
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
            self.touched_items.add(it.id)
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

    def _complete(self, it: ItemRt, by: str, *, event: str | None = None, **extra: Any) -> None:
        q = self.queues.get(it.queue)
        a = self.agents.get(it.agent_id or "")
        connected = it.connected_at if it.connected_at is not None else self.now
        talk = self.now - connected
        self.log(
            event or ("COMPLETECALLER" if by == "caller" else "COMPLETEAGENT"),
            it.queue,
            it.id,
            it.agent_id,
            holdtime=connected - it.joined_at,
            calltime=talk,
            origposition=it.orig_position,
            **extra,
        )
        del self.items[it.id]
        self.touched_items.add(it.id)
        wrapup = 0.0
        if a is not None and a.config.wrapup_time is not None:
            wrapup = a.config.wrapup_time
        elif q is not None:
            wrapup = q.config.wrapup_time
        if q is not None:
            q.handle.add(talk + wrapup)
            self.count(q, "completed")
        if a is None or a.item_id != it.id:
            return
        self.touched_agents.add(a.id)
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
