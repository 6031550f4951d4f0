"""Shared helpers for integration tests: a running Service on the sandbox, DB access, waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg

from ari_app.ari import events as ev
from ari_app.service import Service

API_TOKEN = "test-token-not-secret"
TABLES = ("calls", "call_legs", "queue_events", "agent_states", "acd_queues", "acd_agents", "acd_state",
          "acd_state_rows", "click_to_call_requests")
TABLES += ("dialer_campaigns", "dialer_leads", "dialer_dnc", "dialer_imports", "dial_attempts")
TABLES += ("report_marks", "report_queue_intervals", "report_agent_intervals", "supervisor_sessions")
TABLES += ("callbacks", "callback_attempts", "callback_policies", "dialer_sessions")


async def reset_db(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running_service(sandbox: Any, **overrides: Any) -> AsyncIterator[Service]:
    settings = sandbox.info.settings(http_port=0, api_tokens=[API_TOKEN], writer_flush_interval=0.01,
                                     **overrides)
    service = Service(settings)
    await service.start()
    await asyncio.wait_for(service.reconciled.wait(), 10)
    try:
        yield service
    finally:
        await service.stop()


async def hangup_all(service: Service) -> None:
    """Leave Asterisk clean for the next test: hang up every channel that is still up."""
    for ch in await service.ari.rest.channels.list():
        await service.quietly(service.ari.rest.channels.hangup(channel_id=ch.id))


def api(service: Service, token: str | None = API_TOKEN) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return aiohttp.ClientSession(f"http://127.0.0.1:{service.http_port}", headers=headers)


async def fetch_call(dsn: str, call_id: str) -> dict[str, Any] | None:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT * FROM calls WHERE id = $1", call_id)
        return dict(row) if row else None
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def entered_bridge(channel_id: str) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, ev.ChannelEnteredBridge) and e.channel is not None and e.channel.id == channel_id


def destroyed(channel_id: str) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, ev.ChannelDestroyed) and e.channel.id == channel_id


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async/sync condition until it returns a truthy value (for database state, which
    has no event to wait on). Raises AssertionError with the last value on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def crash_asterisk(sandbox: Any) -> None:
    """Kill Asterisk with SIGKILL (no hangup events reach the app: they are lost, as on a crash or
    a network cut), then start it again and wait until ARI answers."""
    import os
    import signal
    import time

    pid = sandbox.asterisk.pid()
    assert pid is not None, "asterisk is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while sandbox.asterisk.is_running():
        if time.monotonic() > deadline:
            raise AssertionError("asterisk did not die")
        time.sleep(0.05)
    sandbox.asterisk.start()


def left_app(channel_id: str) -> Callable[[ev.Event], bool]:
    """The channel left our app: StasisEnd (a caller from the dialplan goes back there, and we
    hear nothing more of it) or ChannelDestroyed (a channel we originated)."""
    return lambda e: isinstance(e, ev.StasisEnd | ev.ChannelDestroyed) and e.channel.id == channel_id
