"""Click-to-call on the ACD: admitted requests become calls, their progress becomes statuses.

Agent-first (default) is a channel-less ACD item: the adapter rings an agent, whispers, dials
the visitor and bridges (and frees the agent at once if the visitor does not answer).
Customer-first and the agents' click to dial are in `flows.py`. Every request, accepted or
refused, is a row of `click_to_call_requests`, written through the batched writer; statuses
also go to live listeners (the API's server-sent events).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ari_app.acd.core.model import QueueItem
from ari_app.acd.links import ItemUpdate
from ari_app.ari import events as ev
from ari_app.clicktocall import flows
from ari_app.clicktocall.config import TargetConfig
from ari_app.clicktocall.core.limits import AbuseLimiter, Limits
from ari_app.clicktocall.core.status import Change, RequestStatus, from_item_update
from ari_app.clicktocall.core.tokens import NonceLedger
from ari_app.numbers import national
from ari_app.store.writer import Upsert

if TYPE_CHECKING:
    from ari_app.service import Service

log = logging.getLogger(__name__)

TABLE = "click_to_call_requests"
#: Finished requests kept in memory for status reads (older ones are read from the database).
KEEP_FINISHED = 2000


@dataclass
class Request:
    """An admitted request: everything needed to place the call."""

    id: str
    source: str                 # web | token | agent
    number: str                 # E.164
    dial: str
    target: str                 # queue:NAME | agent:ID
    queue: str
    agent: str | None
    config: TargetConfig
    order: str                  # agent-first | customer-first | agent-dial
    context: dict[str, str] = field(default_factory=dict)
    ip: str | None = None
    endpoint: str | None = None  # click to dial: the agent's phone


@dataclass
class Tracked:
    status: RequestStatus
    request: Request
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


class ClickToCall:
    def __init__(self, service: Service) -> None:
        from ari_app.clicktocall import api

        self.s = service
        self.cfg = service.settings.click_to_call
        self.policy = self.cfg.number_policy()
        self.limiter = AbuseLimiter(Limits(**self.cfg.limits.model_dump()))
        self.nonces = NonceLedger()
        self.tracked: dict[str, Tracked] = {}
        self.closing = asyncio.Event()
        service.routes["click2call-leg"] = self._stray_leg
        service.shutdown_hooks.append(self.stop)
        api.register(service.api, service, self)

    @staticmethod
    def now() -> float:
        return time.time()

    async def start(self) -> None:
        """After a restart: limits count the last hour's accepted calls again, and requests still
        in progress are followed again when their ACD item survived (the queue snapshot)."""
        try:
            async with self.s.db.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT id, source, ip, number, target, call_order, status, data, created_at, finished_at "
                    f"FROM {TABLE} WHERE accepted AND number IS NOT NULL "
                    "AND (created_at > now() - interval '1 hour' OR finished_at IS NULL)")
        except Exception as exc:  # noqa: BLE001 - start without history rather than not at all
            log.warning("could not load click-to-call history", extra={"error": type(exc).__name__})
            return
        now = self.now()
        for r in rows:
            ended = r["finished_at"].timestamp() if r["finished_at"] else None
            self.limiter.restore(r["number"], r["created_at"].timestamp(), ended, now)
            if r["finished_at"] is None:
                self._resume(dict(r))

    def _resume(self, r: dict[str, Any]) -> None:
        data = json.loads(r["data"]) if isinstance(r["data"], str) else dict(r["data"] or {})
        order = r["call_order"] or "agent-first"
        status = RequestStatus(r["id"], order, [Change(**h) for h in data.get("history", [])])
        target = r["target"] or ""
        req = Request(r["id"], r["source"] or "web", r["number"], "", target, "", None, self.cfg.target(target),
                      order, data.get("context", {}), r["ip"])
        self.tracked[req.id] = Tracked(status, req)
        link = self.s.acd.items.get(req.id)
        if link is not None and order != "agent-dial":
            if order == "customer-first" and link.channel_id:
                self.s.acd.observers[req.id] = flows.connected_observer(self, req, link.channel_id)
            else:
                self.s.acd.observers[req.id] = self.observer(req.id)
            self.limiter.resume(req.id, r["ip"] or "", r["number"])
            log.info("following a click-to-call request again", extra={"request_id": req.id})
            return
        if status.status == "connected":  # a click to dial in conversation: it goes on, unfollowed
            self.advance(req.id, "completed", reason="app-restart")
            return
        # It lived in the previous process only: end what is left of it.
        for channel_id, leg in list(self.s.recorder.legs.items()):
            if leg.call_id == req.id:
                self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=channel_id)))
        self.advance(req.id, "failed", reason="app-restart")

    async def stop(self) -> None:
        self.closing.set()  # ends the event streams so the HTTP server can stop

    def _stray_leg(self, e: ev.StasisStart) -> None:
        """A visitor leg we no longer track (after a restart): hang it up."""
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=e.channel.id)))

    # ------------------------------------------------------------------ records
    def record(self, request_id: str, **fields: Any) -> None:
        self.s.writer.submit(Upsert(TABLE, request_id, fields))

    def dial_string(self, e164: str) -> str:
        return self.cfg.dial_string(e164)

    # ------------------------------------------------------------------ statuses
    def advance(self, request_id: str, status: str, *, agent_id: str | None = None,
                reason: str | None = None) -> None:
        t = self.tracked.get(request_id)
        if t is None or not t.status.advance(status, self.now(), agent_id=agent_id, reason=reason):
            return
        st = t.status
        fields: dict[str, Any] = {"status": st.status, "status_reason": st.reason,
                                  "data": {"history": st.to_dict()["history"]}}
        if st.agent_id:
            fields["agent_id"] = st.agent_id
        if st.done:
            fields["finished_at"] = utc(st.history[-1].at)
            self.limiter.finish(request_id, self.now())
            self._trim()
        self.record(request_id, **fields)
        old, t.changed = t.changed, asyncio.Event()
        old.set()

    def _trim(self) -> None:
        done = [k for k, t in self.tracked.items() if t.status.done]
        for k in done[:max(0, len(done) - KEEP_FINISHED)]:
            del self.tracked[k]

    def observer(self, request_id: str) -> Any:
        def on_update(u: ItemUpdate) -> None:
            mapped = from_item_update(u.kind, u.detail)
            if mapped is not None:
                self.advance(request_id, mapped[0], agent_id=u.agent_id, reason=mapped[1])
        return on_update

    # ------------------------------------------------------------------ placing calls
    def place(self, req: Request) -> Tracked:
        """Start the call of an admitted request (the limiter has counted it)."""
        tracked = Tracked(RequestStatus(req.id, req.order), req)
        self.tracked[req.id] = tracked
        self.record(req.id, call_order=req.order, call_id=req.id)
        if req.order == "agent-first":
            self._agent_first(req)
        elif req.order == "customer-first":
            self.s.spawn(flows.customer_first(self, req), name=f"c2c-{req.id}")
        else:
            self.s.spawn(flows.agent_dial(self, req), name=f"c2d-{req.id}")
        return tracked

    def queue_item(self, req: Request, *, default_priority: int) -> QueueItem:
        priority = req.config.priority if req.config.priority is not None else default_priority
        return QueueItem(id=req.id, queue=req.queue, kind="click2call", priority=priority,
                         entered_at=self.now(), caller_id=req.number, preferred_agent=req.agent,
                         data={"click_to_call": dict(req.context)})

    def call_data(self, req: Request) -> dict[str, Any]:
        """What the agent's desktop shows (GET /api/v1/calls/{id}): who, from where, the note."""
        return {"click_to_call": {"request_id": req.id, "number": req.number, "target": req.target,
                                  "order": req.order, **req.context}}

    def _agent_first(self, req: Request) -> None:
        whisper = list(req.config.whisper)
        if req.config.whisper_number:
            whisper.append(f"digits:{national(req.number)}")
        self.advance(req.id, "queued")
        self.s.acd.enqueue(self.queue_item(req, default_priority=0), channel_id=None,
                           direction="click2call", dial=req.dial, dial_caller_id=self.cfg.caller_id or None,
                           dial_timeout=req.config.ring_timeout, whisper=whisper,
                           observer=self.observer(req.id))
        self.s.recorder.set_call(req.id, callee=req.number, data=self.call_data(req))



