"""`/api/v1/callbacks`: schedule, look at, cancel and count callbacks; per-queue callback policy
at `/api/v1/queues/{name}/callback`.

Every refusal is a 4xx naming the field, and nothing is written: the number goes through the
dialling policy, the queue/agent must exist, the window must still be open, and a second open
callback for the same number and queue is refused by a unique index (so also when two requests
race).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ari_app.acd.core.model import ConfigError
from ari_app.callbacks import store
from ari_app.callbacks.core import CallbackPolicy, WindowError, check_window
from ari_app.http.api import Api, json_response, read_body, read_query
from ari_app.http.errors import ApiError, not_found
from ari_app.numbers import NumberRefused
from ari_app.store.db import is_transient

if TYPE_CHECKING:
    from ari_app.callbacks.capability import Callbacks
    from ari_app.service import Service

T = TypeVar("T")
State = Literal["scheduled", "pending", "in-progress", "completed", "failed", "cancelled"]


class CallbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(max_length=32, description="The number to call back (national or E.164)")
    queue: str | None = Field(None, description="Queue that places it (default: the agent's first queue)")
    agent: str | None = Field(None, description="Agent it goes to first")
    not_before: datetime | None = None
    not_after: datetime | None = None
    timezone: str | None = Field(None, description="IANA zone for not_before/not_after without an offset "
                                                    "(default UTC)")
    notes: str | None = Field(None, max_length=2000)
    fallback_after: float | None = Field(None, ge=0, le=7 * 86400,
                                         description="Seconds the agent has before any agent may take it")
    call_id: str | None = Field(None, max_length=200, description="The call it was scheduled from (wrap-up)")


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: State | None = None
    queue: str | None = None
    limit: int = Field(100, ge=1, le=1000)


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: str | None = None
    since: datetime | None = None


def view(cb: Callbacks, row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for k in ("owner", "enqueued"):
        out.pop(k, None)
    if isinstance(out.get("skills"), str):
        out["skills"] = json.loads(out["skills"])
    item = out.get("item_id")
    out["position"] = cb.acd.engine.position(item) if item and out["state"] in ("pending", "in-progress") else None
    return out


def _when(value: datetime | None, zone: ZoneInfo) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.timestamp()


async def _guard(work: Awaitable[T]) -> T:
    try:
        return await work
    except Exception as exc:
        if is_transient(exc):
            raise ApiError(503, "database unavailable; nothing was changed") from None
        raise


async def _db(service: Service, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def run() -> T:
        async with service.db.acquire() as conn:
            return await fn(conn)
    return await _guard(run())


def _target(cb: Callbacks, body: CallbackBody) -> str:
    engine = cb.acd.engine
    if body.queue is None and body.agent is None:
        raise ApiError(422, "queue or agent is required", field="queue")
    if body.queue is not None and body.queue not in engine.queues():
        raise ApiError(422, f"unknown queue {body.queue!r}", field="queue")
    if body.agent is None:
        assert body.queue is not None
        return body.queue
    agent = engine.agent(body.agent)
    if agent is None:
        raise ApiError(422, f"unknown agent {body.agent!r}", field="agent")
    if body.queue is not None:
        if body.queue not in agent.queues:
            raise ApiError(422, f"agent {body.agent!r} is not a member of queue {body.queue!r}", field="agent")
        return body.queue
    queues = [q for q in agent.queues if q in engine.queues()]
    if not queues:
        raise ApiError(422, f"agent {body.agent!r} is in no queue; give a queue", field="agent")
    return queues[0]


def register(api: Api, service: Service, cb: Callbacks) -> None:
    @api.route("GET", "/callbacks/stats", summary="Callbacks requested, completed, failed (never abandons)",
               tag="callbacks", query=StatsQuery)
    async def stats(request: web.Request) -> web.Response:
        q = read_query(request, StatsQuery)
        return json_response(await _db(service, lambda c: store.stats(c, queue=q.queue, since=q.since)))

    @api.route("POST", "/callbacks", summary="Schedule a callback", tag="callbacks", body=CallbackBody,
               status=201, extra_responses={409: "an open callback exists for this number and queue",
                                            503: "database unavailable"})
    async def create(request: web.Request) -> web.Response:
        body = await read_body(request, CallbackBody)
        try:
            number = cb.normalise(body.number)
        except NumberRefused as exc:
            raise ApiError(422, f"number: {exc}", field="number") from None
        queue = _target(cb, body)
        try:
            zone = ZoneInfo(body.timezone) if body.timezone else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(422, f"unknown time zone {body.timezone!r}", field="timezone") from None
        now = time.time()
        not_before, not_after = _when(body.not_before, zone), _when(body.not_after, zone)
        try:
            check_window(not_before=not_before, not_after=not_after, now=now)
        except WindowError as exc:
            raise ApiError(422, str(exc), field=exc.field) from None
        policy = cb.policy(queue)
        due_now = not_before is None or not_before <= now
        row = {"id": cb.new_id(), "number": number, "queue": queue, "agent": body.agent,
               "fallback_after": (body.fallback_after if body.fallback_after is not None
                                  else policy.agent_fallback_after) if body.agent else None,
               "state": "pending" if due_now else "scheduled", "source": "api", "origin_call_id": body.call_id,
               "entered_at": store.ts(max(now, not_before or now)), "priority": policy.scheduled_priority,
               "not_before": store.ts(not_before), "not_after": store.ts(not_after),
               "timezone": body.timezone, "max_attempts": policy.max_attempts,
               "retry_delay": policy.retry_delay, "notes": body.notes}
        try:
            created = await _guard(cb.create(row, place_now=due_now))
        except asyncpg.UniqueViolationError:
            existing = await _db(service, lambda c: store.find_open(c, number, queue))
            ident = f" ({existing['id']})" if existing else ""
            raise ApiError(409, f"an open callback for {number} in queue {queue!r} exists{ident}",
                           field="number") from None
        return json_response(view(cb, created), status=201)

    @api.route("GET", "/callbacks", summary="Callbacks, newest first", tag="callbacks", query=ListQuery)
    async def listing(request: web.Request) -> web.Response:
        q = read_query(request, ListQuery)
        rows = await _db(service, lambda c: store.listing(c, state=q.state, queue=q.queue, limit=q.limit))
        return json_response({"callbacks": [view(cb, r) for r in rows]})

    @api.route("GET", "/callbacks/{id}", summary="A callback and its attempts", tag="callbacks")
    async def get_one(request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        row = await _db(service, lambda c: store.get(c, cid))
        if row is None:
            raise not_found("callback", cid)
        out = view(cb, row)
        out["attempt_log"] = [dict(a) for a in await _db(service, lambda c: store.attempts(c, cid))]
        return json_response(out)

    @api.route("DELETE", "/callbacks/{id}", summary="Cancel a callback (not while it is being dialled)",
               tag="callbacks", extra_responses={409: "already being dialled or over"})
    async def cancel(request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        row = await _db(service, lambda c: store.cancel(c, cid))
        if row is None:
            current = await _db(service, lambda c: store.get(c, cid))
            if current is None:
                raise not_found("callback", cid)
            raise ApiError(409, f"callback is {current['state']}; it can no longer be cancelled", field="id")
        cb.withdraw(row["item_id"])
        return json_response(view(cb, row))

    @api.route("GET", "/queues/{name}/callback", summary="A queue's callback policy", tag="callbacks")
    async def get_policy(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in cb.acd.engine.queues():
            raise not_found("queue", name)
        return json_response(cb.policy(name).to_dict())

    @api.route("PUT", "/queues/{name}/callback", summary="Set a queue's callback policy", tag="callbacks",
               extra_responses={404: "unknown queue", 503: "database unavailable"})
    async def put_policy(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in cb.acd.engine.queues():
            raise not_found("queue", name)
        raw = await request.read()
        try:
            data = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc.msg}", field="body") from None
        try:
            policy = CallbackPolicy.from_dict(data)
        except ConfigError as exc:
            raise ApiError(422, str(exc), field=exc.field) from None
        await _db(service, lambda c: store.save_policy(c, name, policy))
        cb.policies[name] = policy
        return json_response(policy.to_dict())
