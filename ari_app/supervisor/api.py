"""Supervisor tools over HTTP: `POST /supervisor/{listen|whisper|barge}`, sessions, history."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ari_app.http.api import Api, json_response, read_body, read_query
from ari_app.http.errors import ApiError, not_found
from ari_app.store.db import is_transient

if TYPE_CHECKING:
    from ari_app.service import Service
    from ari_app.supervisor.tools import Supervisor

#: An Asterisk dial string: TECH/resource (PJSIP/101, Local/ans0@sim-agent, ...). No commas or
#: parentheses: nothing that could smuggle dialplan application arguments.
_ENDPOINT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/[^\s,()&|;]+$")


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1)
    supervisor_endpoint: str = Field(description="the supervisor's phone, e.g. PJSIP/201")
    timeout: int = Field(30, ge=5, le=120, description="seconds the supervisor's phone rings")
    requested_by: str | None = Field(None, max_length=200, description="who asked (for the record)")

    @field_validator("supervisor_endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not _ENDPOINT.match(v):
            raise ValueError("expected an Asterisk endpoint like PJSIP/201")
        return v


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str | None = None
    limit: int = Field(100, ge=1, le=1000)


def register(api: Api, service: Service, sup: Supervisor) -> None:
    from ari_app.supervisor.tools import NotOnCall

    @api.route("POST", "/supervisor/{mode}", body=SessionBody, status=201, tag="supervisor",
               summary="Listen to, whisper to (coach) or barge into an agent's call: rings the supervisor's phone",
               extra_responses={404: "unknown agent or mode", 409: "the agent is not on a call"})
    async def start(request: web.Request) -> web.Response:
        mode = request.match_info["mode"]
        if mode not in ("listen", "whisper", "barge"):
            raise ApiError(404, f"mode must be listen, whisper or barge, got {mode!r}", field="mode")
        body = await read_body(request, SessionBody)
        if service.acd.engine.agent(body.agent_id) is None:
            raise not_found("agent", body.agent_id)
        try:
            session = sup.begin(mode, body.agent_id, body.supervisor_endpoint, timeout=body.timeout,
                                requested_by=body.requested_by)
        except NotOnCall:
            raise ApiError(409, f"agent {body.agent_id!r} is not on a call", field="agent_id") from None
        return json_response(session.view(), status=201)

    @api.route("GET", "/supervisor/sessions", query=HistoryQuery, tag="supervisor",
               summary="Supervisor sessions, newest first (live and recorded)")
    async def history(request: web.Request) -> web.Response:
        q = read_query(request, HistoryQuery)
        try:
            async with service.db.acquire() as conn:
                rows = await conn.fetch(
                    """SELECT id, mode, agent_id, call_id, supervisor_endpoint, requested_by, created_at,
                              connected_at, ended_at, outcome, data
                         FROM supervisor_sessions WHERE ($1::text IS NULL OR agent_id = $1)
                        ORDER BY created_at DESC LIMIT $2""", q.agent_id, q.limit)
        except Exception as exc:
            if is_transient(exc):
                raise ApiError(503, "database unavailable") from None
            raise
        live = {s.id: s.status for s in sup.sessions.values()}
        return json_response({"sessions": [{**dict(r), "status": live.get(r["id"], "ended")} for r in rows]})

    @api.route("GET", "/supervisor/sessions/{session_id}", tag="supervisor", summary="A live supervisor session")
    async def get_session(request: web.Request) -> web.Response:
        sid = request.match_info["session_id"]
        s = sup.sessions.get(sid)
        if s is None:
            raise not_found("live supervisor session", sid)
        return json_response(s.view())

    @api.route("DELETE", "/supervisor/sessions/{session_id}", tag="supervisor",
               summary="End a supervisor session (hangs up the supervisor's leg; the call goes on)")
    async def end_session(request: web.Request) -> web.Response:
        sid = request.match_info["session_id"]
        s = await sup.end(sid)
        if s is None:
            raise not_found("live supervisor session", sid)
        return json_response(s.view())

