"""Routes outside /api/v1: Prometheus `/metrics` and the wallboard page.

The wallboard is three static files (no build step); the page takes the API token from the URL
fragment (`/wallboard#token=...`, never sent to the server in a request line or a log) or asks
for it, and follows the live stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ari_app import __version__
from ari_app.reporting.core.prometheus import CONTENT_TYPE, Family, render
from ari_app.reporting.stream import check_token

if TYPE_CHECKING:
    from ari_app.reporting.capability import Reporting
    from ari_app.service import Service

STATIC = Path(__file__).parent / "wallboard"
_FILES = {"wallboard.js": "application/javascript", "wallboard.css": "text/css"}

#: Engine queue counters exposed as ari_app_calls_total{outcome=...}.
_OUTCOMES = {"answered": "answered", "abandoned": "abandoned", "exitwithtimeout": "timeout",
             "exitwithkey": "exitkey", "exitempty": "empty", "full": "full", "joinempty": "joinempty"}


def families(service: Service, rep: Reporting) -> list[Family]:
    snap = rep.snapshot()
    engine = service.acd.engine
    out = [Family("ari_app_info", "gauge", "Build information").add(1, version=__version__),
           Family("ari_app_ari_connected", "gauge", "1 while the ARI websocket is connected")
           .add(1 if service.ari.connected else 0)]
    waiting = Family("ari_app_queue_callers_waiting", "gauge", "Callers waiting in the queue now")
    callbacks = Family("ari_app_queue_callbacks_waiting", "gauge", "Callbacks waiting in the queue now")
    longest = Family("ari_app_queue_longest_wait_seconds", "gauge", "Wait of the caller waiting longest")
    qagents = Family("ari_app_queue_agents", "gauge", "Member agents of the queue by state")
    sl = Family("ari_app_queue_service_level_ratio", "gauge",
                "Today: answered within the threshold / (answered + abandoned after it), short abandons excluded")
    ab = Family("ari_app_queue_abandon_ratio", "gauge", "Today: (abandoned - short) / (offered - short)")
    asa = Family("ari_app_queue_asa_seconds", "gauge", "Today: average speed of answer")
    aht = Family("ari_app_queue_aht_seconds", "gauge", "Today: average handle time (talk + hold + wrap-up)")
    for q in snap["queues"]:
        name = q["name"]
        waiting.add(q["waiting"], queue=name)
        callbacks.add(q["callbacks_waiting"], queue=name)
        longest.add(q["longest_wait"], queue=name)
        for state, n in q["agents"].items():
            qagents.add(n, queue=name, state=state)
        for fam, key in ((sl, "service_level"), (ab, "abandon_rate"), (asa, "asa"), (aht, "aht")):
            if q["today"][key] is not None:
                fam.add(q["today"][key], queue=name)
    entered = Family("ari_app_queue_entered_total", "counter", "Callers who entered the queue")
    calls = Family("ari_app_calls_total", "counter", "Callers who left the queue, by outcome")
    in_sl = Family("ari_app_queue_answered_within_threshold_total", "counter",
                   "Callers answered within the queue's service level threshold")
    for name in engine.queues():
        info = engine.queue(name)
        if info is None:
            continue
        entered.add(info.stats.get("entered", 0), queue=name)
        in_sl.add(info.stats.get("answered_in_sl", 0), queue=name)
        for key, outcome in _OUTCOMES.items():
            calls.add(info.stats.get(key, 0), queue=name, outcome=outcome)
    agents = Family("ari_app_agents", "gauge", "Agents by state")
    for state, n in snap["agent_states"].items():
        agents.add(n, state=state)
    w = service.writer
    out += [waiting, callbacks, longest, qagents, sl, ab, asa, aht, entered, calls, in_sl, agents,
            Family("ari_app_record_writer_pending", "gauge", "Records waiting to be written").add(w.pending),
            Family("ari_app_record_writer_written_total", "counter", "Records written").add(w.stats.written),
            Family("ari_app_record_writer_retries_total", "counter", "Batches retried after a database error")
            .add(w.stats.retries),
            Family("ari_app_record_writer_rejected_total", "counter", "Records the database refused")
            .add(w.stats.rejected),
            Family("ari_app_stats_stream_clients", "gauge", "Clients following the live stream").add(rep.hub.clients)]
    for source in rep.metric_sources:
        out += source()
    return out


def register(service: Service, rep: Reporting) -> None:
    async def metrics(request: web.Request) -> web.Response:
        if not service.settings.metrics_public:
            check_token(request, [t.get_secret_value() for t in service.settings.api_tokens])
        await rep.ensure_fresh()
        body = render(families(service, rep))
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def wallboard(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def wallboard_file(request: web.Request) -> web.FileResponse:
        name = request.match_info["name"]
        if name not in _FILES:
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC / name, headers={"Content-Type": _FILES[name], "Cache-Control": "no-cache"})

    service.web_routes += [("GET", "/metrics", metrics), ("GET", "/wallboard", wallboard),
                           ("GET", "/wallboard/{name}", wallboard_file)]
