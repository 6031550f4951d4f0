"""The app process: one ARI connection, one database, one HTTP server, and the capabilities.

Events are handled in arrival order by one dispatcher: the recorder sees every event first, then
the event goes to the capability that owns the channel (or, for StasisStart, to the route named by
the first Stasis argument). Handlers must be quick: REST calls they cause run as tasks
(`spawn`), so one slow request never holds up every other call.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ari_app.ari import AriClient
from ari_app.ari import errors as ari_errors
from ari_app.ari import events as ev
from ari_app.calls import api as calls_api
from ari_app.calls.recorder import CallRecorder
from ari_app.http.api import Api
from ari_app.http.server import build_http_app
from ari_app.settings import Settings
from ari_app.store.db import Database
from ari_app.store.writer import RecordWriter

log = logging.getLogger(__name__)

StasisHandler = Callable[[ev.StasisStart], Awaitable[None] | None]
EventHandler = Callable[[ev.Event], Awaitable[None] | None]
ReconnectHook = Callable[[dict[str, Any]], Awaitable[None]]


class StartupError(Exception):
    """A configuration problem found at start, with a message meant for the operator."""


class Service:
    def __init__(self, settings: Settings, *, spool_dir: Path | None = None) -> None:
        self.settings = settings
        self.ari = AriClient.from_settings(settings)
        self.db = Database(settings.database_url.get_secret_value(), min_size=settings.db_pool_min,
                           max_size=settings.db_pool_max)
        self.writer = RecordWriter(self.db, batch_size=settings.writer_batch_size,
                                   flush_interval=settings.writer_flush_interval,
                                   buffer_limit=settings.writer_buffer_limit, spool_dir=spool_dir)
        self.recorder = CallRecorder(self.writer)
        self.api = Api()
        self.routes: dict[str, StasisHandler] = {}
        self.channel_handlers: dict[str, EventHandler] = {}
        self.bridge_handlers: dict[str, EventHandler] = {}
        #: Handlers by event type for events about no channel or bridge (DeviceStateChanged).
        self.type_handlers: dict[str, EventHandler] = {}
        self.reconnect_hooks: list[ReconnectHook] = []
        self.shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        self.accepting = True
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self.reconciled = asyncio.Event()
        #: Routes outside /api/v1 (method, path, handler), e.g. /metrics and /wallboard; no API auth.
        self.web_routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = []
        calls_api.register(self.api, self)
        from ari_app.acd import api as acd_api
        from ari_app.acd.adapter import AcdAdapter
        from ari_app.calls.direct import DirectDial
        self.direct = DirectDial(self)
        self.acd = AcdAdapter(self)
        acd_api.register(self.api, self, self.acd)
        from ari_app.acd.ivr import Ivr
        self.ivr = Ivr(self, self.acd)
        #: Capabilities built on the ACD. Each has `async start()` (run after the ACD is loaded and
        #: before ARI connects) and registers its own routes and Stasis handlers in __init__.
        self.capabilities: list[Any] = []
        self._add_capabilities()

    def _add_capabilities(self) -> None:
        """One line per capability (keep this list short and in dependency order)."""
        from ari_app.reporting.capability import Reporting
        from ari_app.supervisor.tools import Supervisor
        self.capabilities.append(Reporting(self))  # sets self.reporting (hooks for other capabilities)
        self.capabilities.append(Supervisor(self))
        from ari_app.clicktocall.capability import ClickToCall
        self.capabilities.append(ClickToCall(self))
        from ari_app.dialer.dialer import Dialer
        self.capabilities.append(Dialer(self))  # outbound campaigns; sets self.dialer
        from ari_app.callbacks.capability import Callbacks
        self.capabilities.append(Callbacks(self))

    # ------------------------------------------------------------------ helpers for capabilities
    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, ari_errors.AriError) and ari_errors.is_gone(exc):
                log.debug("channel gone during a task", extra={"task": task.get_name()})
            else:
                log.error("background task failed", exc_info=exc, extra={"task": task.get_name()})

    async def quietly(self, coro: Awaitable[Any]) -> Any:
        """Await a REST call on a channel that may have just hung up: 404/409/422 is a normal outcome."""
        try:
            return await coro
        except ari_errors.AriHttpError as exc:
            if ari_errors.is_gone(exc):
                return None
            raise

    def own_channel(self, channel_id: str, handler: EventHandler) -> None:
        self.channel_handlers[channel_id] = handler

    def own_bridge(self, bridge_id: str, handler: EventHandler) -> None:
        self.bridge_handlers[bridge_id] = handler

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        try:
            await self.ari.rest.asterisk.info()
        except ari_errors.AriAuthError as exc:
            raise StartupError(f"ARI at {self.settings.ari_url} rejected user {self.settings.ari_user!r}: "
                               "check ARI_APP_ARI_USER / ARI_APP_ARI_PASSWORD") from exc
        except ari_errors.AriError as exc:
            raise StartupError(f"cannot reach ARI at {self.settings.ari_url}: {exc}") from exc
        if not await self.db.ping():
            log.warning("database not reachable at start; records are held until it is")
        else:
            await self._restore_open_legs()
        await self._load_acd()
        self.writer.start()
        await self.acd.start()
        for cap in self.capabilities:
            await cap.start()
        self.ari.on_event(self._on_event)
        await self.ari.start()
        await self.ari.wait_connected(timeout=10)
        await self._start_http()
        # Everything loaded so far (modules, models, caches: ~70,000 objects) lives as long as
        # the process; left in the collector's oldest generation it was rescanned by every
        # full collection (up to ~140 ms each, ~3 ms per call under load in the call-handling bench).
        gc.freeze()
        log.info("service started", extra={"app": self.settings.app_name, "http_port": self.http_port})

    async def _start_http(self) -> None:
        self._runner = web.AppRunner(build_http_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else self.settings.http_port

    async def _load_acd(self) -> None:
        """Queue state survives restarts: the stored state first (waiting callers in order, agents
        in their states), then configuration from the database and the queues file on top.

        The state is one row per record (sql/007). An instance upgraded from a version that kept
        one snapshot row in `acd_state` finds no rows: it restores from the snapshot, writes it
        as rows and deletes the snapshot, in one transaction (so never both, never neither)."""
        from ari_app.acd import store as acd_store
        from ari_app.acd.core import events as ce
        queues, agents = [], []
        try:
            async with self.db.acquire() as conn:
                app = self.settings.app_name
                rows = await acd_store.load_rows(conn, app)
                if rows:
                    self.acd.restore_rows(rows)
                    log.info("ACD state restored", extra={"items": len(self.acd.items), "rows": len(rows)})
                elif snap := await acd_store.load_snapshot(conn, app):
                    self.acd.restore(snap)
                    async with conn.transaction():
                        await acd_store.save_rows(conn, app, self.acd.state_rows(everything=True))
                        await acd_store.delete_snapshot(conn, app)
                    log.info("ACD state restored from a snapshot, stored as rows from now on",
                             extra={"items": len(self.acd.items)})
                queues, agents = await acd_store.load_configs(conn)
        except Exception as exc:  # noqa: BLE001 - start without stored config; the file still applies
            log.warning("could not load ACD state from the database", extra={"error": type(exc).__name__})
        if self.settings.queues_file is not None:
            try:
                file_queues, file_agents = acd_store.load_file(self.settings.queues_file)
            except (OSError, ValueError) as exc:
                raise StartupError(f"queues file: {exc}") from exc
            queues += file_queues
            agents += file_agents
            try:
                async with self.db.acquire() as conn:
                    for q in file_queues:
                        await acd_store.save_queue(conn, q)
                    for a in file_agents:
                        await acd_store.save_agent(conn, a)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not store the queues file in the database", extra={"error": type(exc).__name__})
        for q in queues:
            self.acd.handle(ce.UpsertQueue(q))
        for a in agents:
            self.acd.handle(ce.UpsertAgent(a))

    async def _restore_open_legs(self) -> None:
        async with self.db.acquire() as conn:
            rows = await conn.fetch("SELECT channel_id, call_id, role, agent_id, answered_at, bridged_at "
                                    "FROM call_legs WHERE ended_at IS NULL")
        self.recorder.restore([dict(r) for r in rows])
        if rows:
            log.info("restored open legs from the database", extra={"count": len(rows)})

    async def stop(self) -> None:
        """Graceful: stop taking calls, let hooks finish, flush records."""
        self.accepting = False
        for hook in self.shutdown_hooks:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.ari.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.writer.close()
        await self.db.close()
        log.info("service stopped")

    async def readiness(self) -> dict[str, bool]:
        return {"ari": bool(self.ari.connected), "database": await self.db.ping(), "accepting": self.accepting}

    # ------------------------------------------------------------------ event dispatch
    def _on_event(self, e: ev.Event) -> Awaitable[Any] | None:
        """Recorder first, then the owner of the channel (or bridge), or the StasisStart route.

        Not a coroutine: it returns an awaitable only when a handler does, so the client can
        dispatch most events inline (see `AriClient`)."""
        self.recorder.on_event(e)
        kind = e.type
        if kind == "StasisStart" and isinstance(e, ev.StasisStart):
            return self._on_stasis_start(e)
        if kind == "ClientConnected":
            return self.reconcile()
        channel = ev.field_of(e, "channel")
        handler = self.channel_handlers.get(channel.id) if channel is not None else None
        if handler is None:
            bridge = ev.field_of(e, "bridge")
            if bridge is not None:
                handler = self.bridge_handlers.get(bridge.id)
            elif channel is None:
                handler = self.type_handlers.get(kind)
        if handler is not None:
            result = handler(e)
            if result is not None and asyncio.iscoroutine(result):
                return self._then_forget(result, e)
        if kind == "ChannelDestroyed" or kind == "BridgeDestroyed":
            self._forget(e)
        return None

    async def _then_forget(self, handling: Awaitable[None], e: ev.Event) -> None:
        await handling
        self._forget(e)

    def _forget(self, e: ev.Event) -> None:
        if isinstance(e, ev.ChannelDestroyed):
            self.channel_handlers.pop(e.channel.id, None)
        elif isinstance(e, ev.BridgeDestroyed):
            self.bridge_handlers.pop(e.bridge.id, None)

    def _on_stasis_start(self, e: ev.StasisStart) -> Awaitable[None] | None:
        handler = self.channel_handlers.get(e.channel.id)
        if handler is not None:  # a leg we originated ourselves
            result = handler(e)
            return result if asyncio.iscoroutine(result) else None
        route = e.args[0] if e.args else ""
        target = self.routes.get(route)
        if target is None or not self.accepting:
            reason = "unknown route" if target is None else "shutting down"
            log.warning("refusing channel", extra={"channel_id": e.channel.id, "route": route, "reason": reason})
            self.spawn(self.quietly(self.ari.rest.channels.hangup(channel_id=e.channel.id, reason="congestion")))
            return None
        result = target(e)
        return result if asyncio.iscoroutine(result) else None

    # ------------------------------------------------------------------ reconcile
    async def _filter_events(self) -> None:
        """Ask Asterisk not to send the event types nobody here uses (every connect: the filter
        belongs to the application registration, which a reconnect may have renewed)."""
        try:
            await self.ari.rest.applications.set_event_filter(
                application_name=self.settings.app_name, disallowed=self.settings.ari_ignored_events)
        except ari_errors.AriError as exc:
            log.warning("could not set the ARI event filter; receiving every event", extra={"error": str(exc)})

    async def reconcile(self) -> dict[str, Any]:
        """After every (re)connect: Asterisk does not replay events, so compare what it has with what
        we believe. Legs we think alive but Asterisk lost are closed; channels in our app we know
        nothing about follow `orphan_policy`. Capabilities then fix their own state."""
        await self._filter_events()
        try:
            channels = await self.ari.rest.channels.list()
            bridges = await self.ari.rest.bridges.list()
        except ari_errors.AriError:
            log.exception("reconcile could not list channels; will retry on next connect")
            return {}
        alive = {c.id: c for c in channels}
        now = datetime.now(UTC)
        lost = [cid for cid in list(self.recorder.legs) if cid not in alive]
        for cid in lost:
            self.recorder.close_lost(cid, now)
            self.channel_handlers.pop(cid, None)
        app = self.settings.app_name
        in_app = [c for c in channels if c.dialplan is not None and c.dialplan.app_name == "Stasis"
                  and (c.dialplan.app_data or "").split(",")[0] == app]
        orphans = [c for c in in_app if c.id not in self.recorder.legs]
        result: dict[str, Any] = {"channels": alive, "bridges": {b.id: b for b in bridges}, "lost": lost,
                                  "orphans": orphans}
        for hook in self.reconnect_hooks:
            try:
                await hook(result)
            except Exception:
                log.exception("reconcile hook failed")
        for c in result["orphans"]:
            if c.id in self.recorder.legs or c.id in self.channel_handlers:
                continue  # a capability adopted it
            if self.settings.orphan_policy == "hangup":
                log.info("hanging up orphan channel", extra={"channel_id": c.id})
                await self.quietly(self.ari.rest.channels.hangup(channel_id=c.id))
            else:
                self.recorder.start_call(c.id, direction="inbound", created_at=c.creationtime,
                                         caller=c.caller.number if c.caller else None,
                                         data={"adopted": True})
                self.recorder.add_leg(c.id, call_id=c.id, role="caller", created_at=c.creationtime,
                                      channel_name=c.name)
        log.info("reconciled", extra={"lost": len(lost), "orphans": len(orphans), "channels": len(alive)})
        self.reconciled.set()
        return result


async def run_service(settings: Settings, *, stop_event: asyncio.Event | None = None) -> int:
    """`ari-app serve`: run until SIGTERM/SIGINT, then shut down gracefully."""
    import signal
    service = Service(settings)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await service.start()
    except StartupError as exc:
        log.error(str(exc))
        await service.stop()
        return 2
    print(f"ari-app serving on http://{settings.http_host}:{service.http_port} (app {settings.app_name})", flush=True)
    await stop.wait()
    await service.stop()
    return 0
