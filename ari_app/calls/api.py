"""GET /api/v1/calls: call records with filters."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ari_app.http.api import Api, json_response, read_query
from ari_app.http.errors import not_found

if TYPE_CHECKING:
    from ari_app.service import Service

CALL_COLUMNS = """id, direction, caller, callee, queue, agent_id, created_at, answered_at, entered_queue_at,
    bridged_at, ended_at, position_on_entry, hangup_cause, hangup_cause_txt, hangup_by, outcome, data,
    extract(epoch FROM (coalesce(bridged_at, ended_at) - entered_queue_at)) AS wait_seconds,
    extract(epoch FROM (ended_at - bridged_at)) AS talk_seconds"""


class CallQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: str | None = None
    agent_id: str | None = None
    direction: Literal["inbound", "outbound", "callback", "click2call", "internal"] | None = None
    outcome: str | None = None
    since: datetime | None = Field(None, description="created_at >= since (ISO 8601)")
    until: datetime | None = Field(None, description="created_at < until (ISO 8601)")
    open: bool | None = Field(None, description="true: calls not ended yet; false: ended calls")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    for k in ("wait_seconds", "talk_seconds"):
        if d.get(k) is not None:
            d[k] = float(d[k])
    if isinstance(d.get("data"), str):
        import json
        d["data"] = json.loads(d["data"])
    return d


def register(api: Api, service: Service) -> None:
    @api.route("GET", "/calls", summary="List call records", tag="calls", query=CallQuery)
    async def list_calls(request: web.Request) -> web.Response:
        q = read_query(request, CallQuery)
        where, args = [], []
        for col in ("queue", "agent_id", "direction", "outcome"):
            val = getattr(q, col)
            if val is not None:
                args.append(val)
                where.append(f"{col} = ${len(args)}")
        if q.since is not None:
            args.append(q.since)
            where.append(f"created_at >= ${len(args)}")
        if q.until is not None:
            args.append(q.until)
            where.append(f"created_at < ${len(args)}")
        if q.open is not None:
            where.append("ended_at IS NULL" if q.open else "ended_at IS NOT NULL")
        sql = f"SELECT {CALL_COLUMNS} FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        args += [q.limit, q.offset]
        sql += f" ORDER BY created_at DESC LIMIT ${len(args) - 1} OFFSET ${len(args)}"
        async with service.db.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        return json_response({"calls": [_row(r) for r in rows], "limit": q.limit, "offset": q.offset})

    @api.route("GET", "/calls/{call_id}", summary="One call with its legs and queue events", tag="calls")
    async def get_call(request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        async with service.db.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {CALL_COLUMNS} FROM calls WHERE id = $1", call_id)
            if row is None:
                raise not_found("call", call_id)
            legs = await conn.fetch("SELECT * FROM call_legs WHERE call_id = $1 ORDER BY created_at", call_id)
            qev = await conn.fetch("SELECT at, queue, agent_id, event, data FROM queue_events WHERE call_id = $1 ORDER BY id",
                                   call_id)
        out = _row(row)
        out["legs"] = [_row(x) for x in legs]
        out["queue_events"] = [_row(x) for x in qev]
        return json_response(out)
