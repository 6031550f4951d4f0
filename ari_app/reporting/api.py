"""Statistics over HTTP: live stats, the live stream, interval reports (JSON/CSV), Erlang."""

from __future__ import annotations

import csv
import io
import math
import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ari_app.http.api import Api, json_response, read_query
from ari_app.http.errors import ApiError, not_found
from ari_app.reporting.core import erlang
from ari_app.store.db import is_transient

if TYPE_CHECKING:
    from ari_app.reporting.capability import Reporting

MAX_RANGE = timedelta(days=366)


class IntervalQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: str = Field("queue", description="queue | agent | campaign")
    from_: str | None = Field(None, alias="from", description="start: ISO date or date-time (default: today 00:00)")
    to: str | None = Field(None, description="end, exclusive: ISO date or date-time (default: now)")
    format: Literal["json", "csv"] = "json"


class ErlangQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calls: float = Field(ge=0, description="calls forecast per interval")
    aht: float = Field(gt=0, description="average handle time, seconds (talk + hold + wrap-up)")
    interval: float = Field(1800, gt=0, description="interval length, seconds")
    threshold: float = Field(20, ge=0, description="service level threshold T, seconds")
    target_sl: float = Field(0.8, gt=0, lt=1, description="target service level, 0..1")
    patience: float | None = Field(None, gt=0, description="mean caller patience, seconds: selects Erlang A")
    agents: int | None = Field(None, ge=0, le=erlang.MAX_AGENTS, description="predict for this many agents")
    queue: str | None = Field(None, description="predict for this queue's agents serving now, beside its measured SL")


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_when(value: str, field: str, tz: Any) -> datetime:
    """An ISO date (midnight in the report time zone) or date-time (without an offset: in the
    report time zone)."""
    try:
        if _DATE.match(value):
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=tz)
        dt = datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, f"{field}: expected an ISO date or date-time, got {value!r}", field=field) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


def _prediction(p: erlang.Prediction) -> dict[str, Any]:
    def clean(v: float) -> float | None:
        return None if math.isinf(v) or math.isnan(v) else round(v, 4)
    return {"agents": p.agents, "service_level": clean(p.service_level), "probability_wait": clean(p.probability_wait),
            "asa": clean(p.asa), "occupancy": clean(p.occupancy), "abandon_rate": clean(p.abandon_rate)}


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def register(api: Api, rep: Reporting) -> None:
    service = rep.s

    @api.route("GET", "/stats/queues", summary="Live queue statistics with today's figures", tag="stats")
    async def stats_queues(_: web.Request) -> web.Response:
        await rep.ensure_fresh()
        snap = rep.snapshot()
        return json_response({"at": snap["at"], "timezone": snap["timezone"], "queues": snap["queues"]})

    @api.route("GET", "/stats/queues/{name}", summary="One queue: live, today, waiting callers, today's intervals",
               tag="stats")
    async def stats_queue(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await rep.ensure_fresh()
        snap = rep.snapshot(with_series=True)
        q = next((x for x in snap["queues"] if x["name"] == name), None)
        if q is None:
            raise not_found("queue", name)
        now = service.acd.now()
        q["items"] = [{"item_id": i.item.id, "kind": i.item.kind, "position": i.position, "status": i.status,
                       "waited": round(now - i.joined_at, 1), "caller_id": i.item.caller_id}
                      for i in service.acd.engine.waiting(name)]
        return json_response({"at": snap["at"], **q})

    @api.route("GET", "/stats/agents", summary="Live agent states with today's figures", tag="stats")
    async def stats_agents(_: web.Request) -> web.Response:
        await rep.ensure_fresh()
        snap = rep.snapshot()
        return json_response({"at": snap["at"], "agents": snap["agents"], "agent_states": snap["agent_states"]})

    @api.route("GET", "/stats/agents/{agent_id}", summary="One agent: state, time in state, today's figures",
               tag="stats")
    async def stats_agent(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        await rep.ensure_fresh()
        snap = rep.snapshot()
        a = next((x for x in snap["agents"] if x["id"] == agent_id), None)
        if a is None:
            raise not_found("agent", agent_id)
        return json_response({"at": snap["at"], **a})

    @api.route("GET", "/stats/stream", public=True, tag="stats",
               summary="Server-sent events: a `snapshot` event on every change (bearer token in the "
                       "Authorization header or ?token=)")
    async def stats_stream(request: web.Request) -> web.StreamResponse:
        tokens = [t.get_secret_value() for t in service.settings.api_tokens]
        await rep.ensure_fresh()  # the first snapshot too; then every second while figures change
        return await rep.hub.serve(request, tokens)

    @api.route("GET", "/reports/intervals", query=IntervalQuery, tag="reports",
               summary="15-minute interval report per queue or agent, JSON or CSV",
               extra_responses={503: "database unavailable"})
    async def intervals(request: web.Request) -> web.StreamResponse:
        q = read_query(request, IntervalQuery)
        source = rep.interval_sources.get(q.kind)
        if source is None:
            raise ApiError(422, f"kind: expected one of {sorted(rep.interval_sources)}, got {q.kind!r}", field="kind")
        tz = rep.tz
        now = datetime.now(UTC)
        start = parse_when(q.from_, "from", tz) if q.from_ else datetime.fromtimestamp(rep.day_start(time.time()), tz)
        end = parse_when(q.to, "to", tz) if q.to else now
        if end <= start:
            raise ApiError(422, "to: must be after from", field="to")
        if end - start > MAX_RANGE:
            raise ApiError(422, f"to: at most {MAX_RANGE.days} days after from", field="to")
        try:
            async with service.db.acquire() as conn:
                await rep.rollup(conn)
                rows = await source(conn, start, end)
        except Exception as exc:
            if is_transient(exc):
                raise ApiError(503, "database unavailable") from None
            raise
        if q.format == "csv":
            name = f"{q.kind}-intervals-{start.date().isoformat()}.csv"
            return web.Response(text=_csv(rows), content_type="text/csv",
                                headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return json_response({"kind": q.kind, "from": start.isoformat(), "to": end.isoformat(),
                              "interval_seconds": 900, "timezone": service.settings.report_timezone,
                              "rows": rows})

    @api.route("GET", "/erlang", query=ErlangQuery, tag="stats",
               summary="Erlang C (or A, with patience): agents needed for a forecast, SL predicted for N agents")
    async def erlang_calc(request: web.Request) -> web.Response:
        q = read_query(request, ErlangQuery)
        try:
            forecast = erlang.Forecast(calls=q.calls, aht=q.aht, interval=q.interval, threshold=q.threshold,
                                       target_sl=q.target_sl, patience=q.patience)
        except erlang.ErlangError as exc:
            raise ApiError(422, str(exc), field=exc.field) from None
        out: dict[str, Any] = {"model": "erlang_a" if q.patience is not None else "erlang_c",
                               "traffic_erlangs": round(forecast.traffic, 4),
                               "forecast": q.model_dump(exclude={"agents", "queue"})}
        agents = q.agents
        if q.queue is not None:
            info = service.acd.engine.queue(q.queue)
            if info is None:
                raise ApiError(422, f"unknown queue {q.queue!r}", field="queue")
            await rep.ensure_fresh()
            snap = next(x for x in rep.snapshot()["queues"] if x["name"] == q.queue)
            agents = info.serving if agents is None else agents
            out["queue"] = {"name": q.queue, "serving": info.serving,
                            "measured_service_level": snap["today"]["service_level"]}
        try:
            out["agents_needed"] = _prediction(erlang.agents_needed(forecast))
        except erlang.ErlangError as exc:
            raise ApiError(422, str(exc), field=exc.field) from None
        out["prediction"] = _prediction(erlang.predict(forecast, agents)) if agents is not None else None
        return json_response(out)
