"""Event handlers: what each event does, in terms of the transitions in ``lifecycle.py``.

``Core.step`` fires due timers, applies the event, evicts items of queues that became
empty (leave_empty), then routes (see ``routing.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import events as ev
from .commands import CancelOffer, Command, Connect, ExitQueue, ItemMoved
from .lifecycle import Lifecycle
from .model import queue_destination
from .state import AgentRt, ItemRt, QueueRt


class Core(Lifecycle):
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
        self.count(q, "answered")
        if within:
            self.count(q, "answered_in_sl")
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

    def on_call_transferred(self, e: ev.CallTransferred) -> None:
        it = self.items.get(e.item_id)
        if it is None or it.status != "connected":
            return
        self._complete(it, "agent", event="BLINDTRANSFER", target=e.target)
        target = queue_destination(e.target)
        if target is None:
            return
        q = self.queues.get(target)
        if q is None:
            self.emit(ExitQueue(it.id, "unknown", None))
        else:
            item = it.item if it.item.has_channel else replace(it.item, kind="call")  # on a line now
            self.join(item, q, new=True)
            again = self.items.get(it.id)
            if again is not None and it.agent_id is not None:
                again.tried.append(it.agent_id)  # the agent who transferred comes last
                self.touched_items.add(it.id)

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
            self.touched_agents.add(a.id)
            a.pending = None

    def on_agent_logout(self, e: ev.AgentLogout) -> None:
        a = self.agents.get(e.agent_id)
        if a is None or a.status == "logged_out":
            return
        if a.status == "on_call":
            self.touched_agents.add(a.id)
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
                self.touched_agents.add(a.id)
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
            self.touched_agents.add(a.id)
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
                self.touched_agents.add(a.id)
                a.item_id = None
                self._agent_free(a, "leg-lost")

    def on_device_state(self, e: ev.AgentDeviceState) -> None:
        a = self.agents.get(e.agent_id)
        if a is not None and a.device != e.state:
            self.touched_agents.add(a.id)
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
        self.touched_queues.add(cfg.name)
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
        self.touched_queues.add(e.name)

    def on_upsert_agent(self, e: ev.UpsertAgent) -> None:
        cfg = e.config
        self.touched_agents.add(cfg.id)
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
        self.touched_agents.add(a.id)

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
            self.touched_queues.add(target.name)
        self.emit(ItemMoved(it.id, q.name, target.name, "supervisor"))
        self.join(it.item, target, new=False, seq=it.seq, boost=boost, check=False)

    def _to_head(self, it: ItemRt, q: QueueRt) -> None:
        dispatchable = it.status in ("waiting", "retry")
        self.unbucket(it)
        q.order.remove(it.key)
        it.boost = q.max_boost = q.max_boost + 1
        self.touched_items.add(it.id)
        self.touched_queues.add(q.name)
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
    ev.CallTransferred: Core.on_call_transferred,
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
