"""Reporting: live statistics, the SSE stream, interval reports, /metrics and the wallboard.

Live figures come from the ACD engine (who waits, who is in which state) and today's figures
from the records (the roll-up in PostgreSQL). The ACD adapter tells us when its state changed;
a 250 ms ticker then publishes a new snapshot, so the stream lags a change by at most a
quarter of a second. Today's figures are re-read (after the roll-up caught up with the records)
at most once a second while things change and a stream client watches, every few seconds
while one watches, once a minute with nobody watching, and on demand for a request (stats API, /metrics: `ensure_fresh`). Why not every second
regardless: the roll-up and the reads are PostgreSQL work done for nobody between requests, and
on a busy machine it competes with the calls (a burst every second showed in call latency).

Hooks for other capabilities:
- ``extensions[name] = fn``: ``fn()`` returns JSON-ready data shown under ``name`` in every
  snapshot (e.g. ``"campaigns"`` from the dialer); call ``mark_dirty()`` when it changes.
- ``interval_sources[kind] = fn``: ``await fn(conn, start, end)`` returns the rows of
  ``/reports/intervals?kind=<kind>`` (e.g. ``"campaign"``).
- ``metric_sources``: callables returning extra Prometheus families.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import asyncpg

from ari_app.reporting import store
from ari_app.reporting.core import live
from ari_app.reporting.core.prometheus import Family
from ari_app.reporting.core.stats import (
    INTERVAL,
    AgentCounters,
    QueueCounters,
    agent_metrics,
    bucket,
    open_period,
    queue_metrics,
)
from ari_app.reporting.stream import StreamHub

if TYPE_CHECKING:
    from ari_app.service import Service

log = logging.getLogger(__name__)

IntervalSource = Callable[[asyncpg.Connection, datetime, datetime], Awaitable[list[dict[str, Any]]]]

TICK = 0.25  # seconds between checks for a change to publish
REFRESH_MIN = 1.0  # at most one read of today's records per second while things change and a client watches
REFRESH_IDLE = 5.0  # and one every few seconds anyway while watched (time passes for agents in a state)
#: Unwatched, a roll-up now and then only keeps the marks of changed intervals few: every reader
#: (stats API, /metrics, a new stream client) asks for figures read for it (`ensure_fresh`).
#: Each refresh is ~25 ms of PostgreSQL work on the machine that handles the calls.
REFRESH_UNWATCHED = 60.0


class Reporting:
    def __init__(self, service: Service) -> None:
        from ari_app.reporting import api, web

        self.s = service
        service.reporting = self  # type: ignore[attr-defined]  # where other capabilities find the hooks
        self.hub = StreamHub(self.encoded_snapshot)
        self.extensions: dict[str, Callable[[], Any]] = {}
        self.metric_sources: list[Callable[[], list[Family]]] = []
        self.interval_sources: dict[str, IntervalSource] = {"queue": self.queue_report,
                                                             "agent": self.agent_report}
        self.today_queues: dict[str, live.QueueToday] = {}
        self.today_agents: dict[str, AgentCounters] = {}
        self.open: dict[str, tuple[str, float]] = {}  # agent -> (state, since) not yet rolled up
        self.today_start: float | None = None
        self.refreshed_at = 0.0
        #: When the last finished refresh started (monotonic): what `ensure_fresh` compares.
        self.refreshed_from = 0.0
        self.refreshes = 0
        self._dirty = True
        self._want_refresh = True
        self._refreshing: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._db_ok = True
        service.acd.change_listeners.append(self.mark_dirty)
        service.shutdown_hooks.append(self.stop)
        api.register(service.api, self)
        web.register(service, self)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_loop(), name="reporting-ticker")

    async def stop(self) -> None:
        self.hub.close()
        for task in (self._ticker, self._refreshing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def mark_dirty(self) -> None:
        self._dirty = True
        self._want_refresh = True

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                if self._dirty:
                    self._dirty = False
                    self.publish()
                since = time.monotonic() - self.refreshed_at
                watched = self.hub.clients > 0
                if (self._refreshing is None or self._refreshing.done()) and (
                        (self._want_refresh and watched and since >= REFRESH_MIN)
                        or since >= (REFRESH_IDLE if watched else REFRESH_UNWATCHED)):
                    self._want_refresh = False
                    self._refreshing = asyncio.create_task(self._refresh_and_publish(), name="reporting-refresh")
            except Exception:
                log.exception("reporting tick failed")

    async def ensure_fresh(self, max_age: float = REFRESH_MIN) -> None:
        """Today's figures read no earlier than `max_age` ago, for a request: refreshed now (or
        the refresh under way awaited, and one more if it began too early) when they are older."""
        wanted = time.monotonic() - max_age
        while self.refreshed_from < wanted:
            task = self._refreshing
            if task is None or task.done():
                task = self._refreshing = asyncio.create_task(self._refresh_and_publish(), name="reporting-refresh")
            await asyncio.shield(task)

    async def _refresh_and_publish(self) -> None:
        started = time.monotonic()
        try:
            await self.refresh_today()
        except Exception as exc:  # noqa: BLE001 - the live part goes on without today's figures
            if self._db_ok:  # once per outage, not every few seconds
                log.warning("could not read today's figures; live figures go on without them",
                            extra={"error": type(exc).__name__})
            self._db_ok = False
            self.refreshed_at = time.monotonic()
            self.refreshed_from = started
            return
        self.refreshed_from = started
        if not self._db_ok:
            log.info("today's figures are back")
        self._db_ok = True
        self.publish()

    def publish(self) -> None:
        if self.hub.clients:
            self.hub.publish(self.encoded_snapshot())

    def encoded_snapshot(self) -> str:
        return json.dumps(self.snapshot(with_series=True), separators=(",", ":"), default=str)

    # ------------------------------------------------------------------ time
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.s.settings.report_timezone)

    def day_start(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self.tz)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    # ------------------------------------------------------------------ today's figures
    async def refresh_today(self) -> None:
        """Roll up what changed, then read today's intervals and the agents' current periods."""
        with contextlib.suppress(TimeoutError):
            await self.s.writer.flush(timeout=0.5)
        now = time.time()
        start = self.day_start(now)
        s_dt, e_dt = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(now + INTERVAL, UTC)
        async with self.s.db.acquire() as conn:
            await self.rollup(conn)
            qrows = await store.queue_intervals(conn, s_dt, e_dt)
            arows = await store.agent_intervals(conn, s_dt, e_dt)
            opens = await store.open_periods(conn, s_dt, e_dt)
        recent_from = bucket(now) - 3 * INTERVAL
        queues: dict[str, live.QueueToday] = {}
        series: dict[str, list[tuple[float, QueueCounters]]] = {}
        totals: dict[str, QueueCounters] = {}
        recent: dict[str, QueueCounters] = {}
        for r in qrows:
            c = QueueCounters.from_row(r)
            t = r["interval_start"].timestamp()
            series.setdefault(r["queue"], []).append((t, c))
            totals.setdefault(r["queue"], QueueCounters()).add(c)
            if t >= recent_from:
                recent.setdefault(r["queue"], QueueCounters()).add(c)
        for name, tot in totals.items():
            queues[name] = live.QueueToday(tot, recent.get(name, QueueCounters()), series[name],
                                           recent_seconds=max(INTERVAL, now - recent_from))
        agents: dict[str, AgentCounters] = {}
        for r in arows:
            agents.setdefault(r["agent_id"], AgentCounters()).add(AgentCounters.from_row(r))
        self.today_queues, self.today_agents, self.today_start = queues, agents, start
        self.open = {r["agent_id"]: (r["state"], r["at"].timestamp()) for r in opens}
        self.refreshed_at = time.monotonic()
        self.refreshes += 1

    async def rollup(self, conn: asyncpg.Connection) -> tuple[int, int]:
        return await store.rollup(conn, short_abandon=self.s.settings.report_short_abandon)

    def _agents_today(self, now: float) -> dict[str, AgentCounters]:
        """Rolled-up finished periods plus each agent's current period, up to now."""
        start = self.today_start if self.today_start is not None else self.day_start(now)
        out = {k: AgentCounters(**v.to_dict()) for k, v in self.today_agents.items()}
        for agent_id, (state, since) in self.open.items():
            for c in open_period(state, since, start, now).values():
                out.setdefault(agent_id, AgentCounters()).add(c)
        return out

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, *, with_series: bool = False) -> dict[str, Any]:
        engine = self.s.acd.engine
        now = self.s.acd.now()
        infos = [q for q in (engine.queue(n) for n in engine.queues()) if q is not None]
        snap = live.snapshot(infos, {q.config.name: engine.waiting(q.config.name) for q in infos},
                             engine.agents(), self.today_queues, self._agents_today(now), now=now,
                             sl_target=self.s.settings.report_sl_target, with_series=with_series)
        snap["today_since"] = self.today_start
        snap["timezone"] = self.s.settings.report_timezone
        for name, fn in self.extensions.items():
            try:
                snap[name] = fn()
            except Exception:
                log.exception("reporting extension failed", extra={"extension": name})
        return snap

    # ------------------------------------------------------------------ interval reports
    async def queue_report(self, conn: asyncpg.Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
        rows = await store.queue_intervals(conn, start, end)
        out = []
        for r in rows:
            c = QueueCounters.from_row(r)
            out.append({"queue": r["queue"], **self._interval(r["interval_start"]),
                        **{k: _num(v) for k, v in c.to_dict().items()},
                        **{k: _num(v, 4) for k, v in queue_metrics(c).items()},
                        "sl_threshold": r["sl_threshold"], "short_abandon": r["short_abandon"]})
        return out

    async def agent_report(self, conn: asyncpg.Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
        rows = await store.agent_intervals(conn, start, end)
        opens = await store.open_periods(conn, start, end)
        counters: dict[tuple[str, float], AgentCounters] = {}
        for r in rows:
            counters[(r["agent_id"], r["interval_start"].timestamp())] = AgentCounters.from_row(r)
        until = min(end.timestamp(), time.time())
        for o in opens:
            for b, c in open_period(o["state"], o["at"].timestamp(), start.timestamp(), until).items():
                counters.setdefault((o["agent_id"], b), AgentCounters()).add(c)
        out = []
        for (agent_id, b), c in sorted(counters.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            out.append({"agent_id": agent_id, **self._interval(datetime.fromtimestamp(b, UTC)),
                        **{k: _num(v) for k, v in c.to_dict().items()},
                        **{k: _num(v, 4) for k, v in agent_metrics(c).items()}})
        return out

    def _interval(self, start: datetime) -> dict[str, str]:
        local = start.astimezone(self.tz)
        end = datetime.fromtimestamp(start.timestamp() + INTERVAL, self.tz)
        return {"interval_start": local.isoformat(), "interval_end": end.isoformat()}


def _num(v: Any, digits: int = 3) -> Any:
    if isinstance(v, float):
        return round(v, digits)
    return v
