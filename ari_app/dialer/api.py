"""Campaigns, leads, agents' dialer sessions, dispositions, preview dialing and DNC over HTTP.

`/api/v1/campaigns/{id}` (PUT/GET), `.../start|pause|stop`, `.../leads` (CSV or JSON file body) and
`.../imports/{import_id}`, `.../stats`, `.../agents[/{agent_id}]`, `.../leads/{lead_id}`;
`/api/v1/agents/{id}/disposition|hangup|preview[/dial|/skip]`; `/api/v1/dnc[/{number}]`.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ari_app.dialer import store
from ari_app.dialer.campaigns import SpecError
from ari_app.dialer.dnc import dnc_number, read_dnc_file
from ari_app.dialer.leads import LeadFileError, read_rows
from ari_app.http.api import Api, json_response, read_body, read_json_object, read_query
from ari_app.http.errors import ApiError, from_validation_error, not_found
from ari_app.store.db import is_transient

if TYPE_CHECKING:
    from ari_app.dialer.dialer import Dialer
    from ari_app.dialer.runner import CampaignRunner
    from ari_app.service import Service

MAX_FILE_BYTES = 256 * 1024 * 1024


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["ready", "paused", "logged_out"]
    endpoint: str | None = Field(None, description="the agent's phone; default: their ACD endpoint")


class DispositionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_id: str
    disposition: str = Field(..., min_length=1, max_length=40)
    callback_at: datetime | None = Field(None, description="for a callback: when (ISO 8601 with offset)")
    callback_in: float | None = Field(None, ge=0, description="or: in how many seconds")


class LeadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lead_id: int


class DncQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: str | None = Field(None, description="the campaign's own list; absent: the global list")
    region: str = Field("FR", description="country of numbers written without +")


async def _raw(request: web.Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 20):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise ApiError(413, f"file larger than {MAX_FILE_BYTES} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)



def register(api: Api, service: Service, dialer: Dialer) -> None:  # noqa: C901 - one route table
    def runner_of(request: web.Request) -> CampaignRunner:
        campaign_id = request.match_info["campaign_id"]
        runner = dialer.runners.get(campaign_id)
        if runner is None:
            raise not_found("campaign", campaign_id)
        return runner

    async def db(fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            async with service.db.acquire() as conn:
                return await fn(conn, *args, **kw)
        except Exception as exc:
            if is_transient(exc):
                raise ApiError(503, "database unavailable; nothing was changed") from None
            raise

    def campaign_view(runner: CampaignRunner) -> dict[str, Any]:
        return {**runner.spec.to_dict(), "state": runner.state, "live": runner.view(),
                "paced_here": runner.owned}

    # ------------------------------------------------------------------ campaigns
    @api.route("GET", "/campaigns", summary="Campaigns and their state", tag="campaigns")
    async def list_campaigns(_: web.Request) -> web.Response:
        return json_response({"campaigns": [campaign_view(r) for r in dialer.runners.values()]})

    @api.route("PUT", "/campaigns/{campaign_id}", summary="Create or replace a campaign", tag="campaigns",
               extra_responses={503: "database unavailable"})
    async def put_campaign(request: web.Request) -> web.Response:
        campaign_id = request.match_info["campaign_id"]
        data = await read_json_object(request)
        if "id" in data:
            if data.pop("id") != campaign_id:
                raise ApiError(422, "id in the body differs from the URL", field="id")
        try:
            _, existed = await dialer.put_campaign(campaign_id, data)
        except SpecError as exc:
            raise ApiError(422, str(exc), field=exc.field) from None
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        except Exception as exc:
            if is_transient(exc):
                raise ApiError(503, "database unavailable; nothing was changed") from None
            raise
        return json_response(campaign_view(dialer.runners[campaign_id]), status=200 if existed else 201)

    @api.route("GET", "/campaigns/{campaign_id}", summary="A campaign: configuration and live state",
               tag="campaigns")
    async def get_campaign(request: web.Request) -> web.Response:
        return json_response(campaign_view(runner_of(request)))

    def state_route(action: str, state: str, summary: str) -> None:
        @api.route("POST", f"/campaigns/{{campaign_id}}/{action}", summary=summary, tag="campaigns")
        async def change(request: web.Request) -> web.Response:
            runner = runner_of(request)
            at = await db(store.set_campaign_state, runner.id, state)
            dialer.apply_state(runner.id, state, at=at)
            return json_response(campaign_view(runner))

    state_route("start", "running", "Start (or resume) dialing")
    state_route("pause", "paused", "Pause: calls in progress finish, nothing new is dialled")
    state_route("stop", "stopped", "Stop: calls in progress finish, agents are logged out after them")

    @api.route("GET", "/campaigns/{campaign_id}/stats", summary="Dials, answer rate, contacts, abandon rate "
               "under the campaign's rule(s), talk minutes per agent-hour, leads left", tag="campaigns")
    async def stats(request: web.Request) -> web.Response:
        runner = runner_of(request)
        rule = runner.config.abandon_rules[0]
        out = await db(store.campaign_stats, runner.id, max_attempts=runner.config.max_attempts,
                       window_seconds=rule.window_seconds, fp_weight=rule.fp_weight)
        out["abandon_rule"] = rule.name
        out["abandon_cap"] = rule.cap
        # every rule the campaign holds (with abandon_daily_cap: the 30-day rule and the 24 h one)
        per_rule = []
        for r in runner.config.abandon_rules:
            rate = out["abandon_rate"] if r is rule else await db(
                store.abandon_window_rate, runner.id, window_seconds=r.window_seconds, fp_weight=r.fp_weight)
            per_rule.append({"rule": r.name, "cap": r.cap, "window_seconds": r.window_seconds, "abandon_rate": rate})
        out["abandon_rules"] = per_rule
        return json_response(out)

    # ------------------------------------------------------------------ leads
    @api.route("POST", "/campaigns/{campaign_id}/leads", summary="Import leads (CSV with a header, or JSON): "
               "returns an import id; progress and bad rows at .../imports/{import_id}", tag="campaigns",
               status=202, extra_responses={413: "file too large"})
    async def import_leads(request: web.Request) -> web.Response:
        runner = runner_of(request)
        raw = await _raw(request)
        try:
            rows = await asyncio.to_thread(read_rows, raw, request.content_type or "")
        except LeadFileError as exc:
            raise ApiError(422, str(exc), field="body") from None
        import_id = await dialer.importer.start_leads(runner.spec, rows)
        return json_response({"import_id": import_id, "rows": len(rows),
                              "progress": f"/api/v1/campaigns/{runner.id}/imports/{import_id}"}, status=202)

    @api.route("GET", "/campaigns/{campaign_id}/imports/{import_id}", summary="Progress of a lead import",
               tag="campaigns")
    async def get_import(request: web.Request) -> web.Response:
        runner = runner_of(request)
        out = await db(store.get_import, runner.id, request.match_info["import_id"])
        if out is None:
            raise not_found("import", request.match_info["import_id"])
        return json_response(out)

    @api.route("GET", "/campaigns/{campaign_id}/leads/{lead_id}", summary="One lead and its attempts",
               tag="campaigns")
    async def get_lead(request: web.Request) -> web.Response:
        runner = runner_of(request)
        try:
            lead_id = int(request.match_info["lead_id"])
        except ValueError:
            raise ApiError(422, "lead ids are integers", field="lead_id") from None
        row = await db(store.get_lead, runner.id, lead_id)
        if row is None:
            raise not_found("lead", str(lead_id))
        out = dict(row)
        out["data"] = json.loads(out["data"]) if isinstance(out["data"], str) else out["data"]
        return json_response(out)

    # ------------------------------------------------------------------ agents
    @api.route("GET", "/campaigns/{campaign_id}/agents", summary="Agents working the campaign", tag="campaigns")
    async def list_sessions(request: web.Request) -> web.Response:
        runner = runner_of(request)
        now = time.time()
        return json_response({"agents": [s.view(now) for s in dialer.sessions.values() if s.campaign_id == runner.id]})

    @api.route("POST", "/campaigns/{campaign_id}/agents/{agent_id}", summary="An agent starts working the "
               "campaign (their phone is called and kept open), pauses, or stops", tag="campaigns", body=SessionBody)
    async def set_session(request: web.Request) -> web.Response:
        runner = runner_of(request)
        body = await read_body(request, SessionBody)
        session = await dialer.agent_request(runner, request.match_info["agent_id"], body.state, body.endpoint)
        if session is None:
            return json_response({"agent_id": request.match_info["agent_id"], "state": "logged_out"})
        return json_response(session.view(time.time()))

    @api.route("POST", "/agents/{agent_id}/disposition", summary="Disposition of the agent's last call "
               "(ends wrap-up); each disposition has a recycle rule", tag="agents", body=DispositionBody)
    async def disposition(request: web.Request) -> web.Response:
        body = await read_body(request, DispositionBody)
        callback_at = body.callback_at.timestamp() if body.callback_at else (
            time.time() + body.callback_in if body.callback_in is not None else None)
        call = dialer.dispose(request.match_info["agent_id"], body.call_id, body.disposition, callback_at)
        return json_response({"call_id": call.call_id, "lead_id": call.lead_id, "disposition": call.disposition})

    @api.route("POST", "/agents/{agent_id}/hangup", summary="Hang up the customer on the agent's line",
               tag="agents")
    async def hangup(request: web.Request) -> web.Response:
        session = dialer.sessions.get(request.match_info["agent_id"])
        call = dialer.calls.get(session.call_id or "") if session is not None else None
        if session is None or session.state != "on_call" or call is None:
            raise ApiError(409, "the agent has no customer on the line", field="agent_id")
        dialer.flow.hangup(call)
        return json_response({"call_id": call.call_id})

    # ------------------------------------------------------------------ preview
    @api.route("POST", "/agents/{agent_id}/preview", summary="Preview mode: the next lead for the agent "
               "(reserved for them until they dial or skip it)", tag="agents")
    async def preview(request: web.Request) -> web.Response:
        lead = await dialer.preview_next(request.match_info["agent_id"])
        if lead is None:
            raise ApiError(404, "no lead can be dialled now", code="no_lead")
        return json_response(lead)

    @api.route("POST", "/agents/{agent_id}/preview/dial", summary="Dial the previewed lead", tag="agents",
               body=LeadBody)
    async def preview_dial(request: web.Request) -> web.Response:
        body = await read_body(request, LeadBody)
        call = await dialer.preview_dial(request.match_info["agent_id"], body.lead_id)
        return json_response({"call_id": call.call_id, "lead_id": call.lead_id})

    @api.route("POST", "/agents/{agent_id}/preview/skip", summary="Skip the previewed lead", tag="agents",
               body=LeadBody)
    async def preview_skip(request: web.Request) -> web.Response:
        body = await read_body(request, LeadBody)
        await dialer.preview_skip(request.match_info["agent_id"], body.lead_id)
        return json_response({"lead_id": body.lead_id, "skipped": True})

    # ------------------------------------------------------------------ do-not-call
    def dnc_scope(q: DncQuery) -> str:
        if q.campaign is None:
            return ""
        if q.campaign not in dialer.runners:
            raise ApiError(422, f"unknown campaign {q.campaign!r}", field="campaign")
        return q.campaign

    def dnc_parse(raw: str, region: str) -> str:
        try:
            return dnc_number(raw, region)
        except ValueError as exc:
            raise ApiError(422, str(exc), field="number") from None

    @api.route("PUT", "/dnc/{number}", summary="Put a number on the global (or a campaign's) do-not-call list",
               tag="dnc", query=DncQuery)
    async def dnc_put(request: web.Request) -> web.Response:
        q = read_query(request, DncQuery)
        scope = dnc_scope(q)
        number = dnc_parse(request.match_info["number"], q.region)
        added = await db(store.dnc_add, scope, number, "api")
        return json_response({"number": number, "scope": scope or "global"}, status=201 if added else 200)

    @api.route("DELETE", "/dnc/{number}", summary="Take a number off a do-not-call list", tag="dnc", query=DncQuery)
    async def dnc_delete(request: web.Request) -> web.Response:
        q = read_query(request, DncQuery)
        scope = dnc_scope(q)
        number = dnc_parse(request.match_info["number"], q.region)
        if not await db(store.dnc_remove, scope, number):
            raise not_found("do-not-call entry", number)
        return web.Response(status=204)

    @api.route("GET", "/dnc/{number}", summary="Which do-not-call lists hold a number", tag="dnc", query=DncQuery)
    async def dnc_get(request: web.Request) -> web.Response:
        q = read_query(request, DncQuery)
        number = dnc_parse(request.match_info["number"], q.region)
        scopes = await db(store.dnc_scopes, number)
        if not scopes:
            raise not_found("do-not-call entry", number)
        return json_response({"number": number, "lists": [{**s, "scope": s["scope"] or "global"} for s in scopes]})

    @api.route("POST", "/dnc", summary="Bulk import into a do-not-call list (JSON array, CSV with a phone "
               "column, or one number per line)", tag="dnc", query=DncQuery)
    async def dnc_bulk(request: web.Request) -> web.Response:
        q = read_query(request, DncQuery)
        scope = dnc_scope(q)
        raw = await _raw(request)
        try:
            rows = await asyncio.to_thread(read_dnc_file, raw, request.content_type or "")
        except LeadFileError as exc:
            raise ApiError(422, str(exc), field="body") from None
        numbers, errors = await dialer.importer.dnc_numbers(q.region, rows)
        added = await db(store.dnc_add_many, scope, numbers, "bulk") if numbers else 0
        for runner in dialer.runners.values():
            runner.invalidate()
        return json_response({"scope": scope or "global", "rows": len(rows), "added": added,
                              "already_listed": len(set(numbers)) - added, "rejected": len(errors),
                              "errors": [e.to_dict() for e in errors[:1000]]})
