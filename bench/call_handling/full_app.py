"""The full app under the same load: a `Service` with one queue and enough agents.

Callers enter `Stasis(<app>,queue,bench)` exactly as the dialplan would send them; the ACD
queues them, offers each to an idle agent (`Local/ans0@sim-agent`, which answers at once),
bridges, and when the caller hangs up ends the call, frees the agent (wrap-up 0) and writes the
call, leg, queue-event and agent-state records through the batched writer. The app runs with
its production defaults (writer flush interval, ACD snapshot every 100 ms, audits); only the
HTTP port is chosen by the OS.

The load driver is fed from the app's own websocket reader (the frame's arrival time, then the
parsed event), so it sees events at the same point as in the floor.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import asyncpg
from load import Load

from ari_app.service import Service

TOKEN = "bench-token-not-secret"
TABLES = ("calls", "call_legs", "queue_events", "agent_states", "acd_queues", "acd_agents", "acd_state", "acd_state_rows")


async def reset_db(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
    finally:
        await conn.close()


class FullApp:
    def __init__(self, info: Any, load: Load, *, agents: int, strategy: str = "longest-idle",
                 queue: str = "bench", **overrides: Any) -> None:
        self.info, self.load = info, load
        self.agents, self.strategy, self.queue = agents, strategy, queue
        self.settings = info.settings(http_port=0, api_tokens=[TOKEN], **overrides)
        self.service: Service | None = None

    async def start(self) -> Service:
        await reset_db(self.info.database_url)
        service = self.service = Service(self.settings)
        self._hook(service)
        await service.start()
        await asyncio.wait_for(service.reconciled.wait(), 10)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{service.http_port}",
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            r = await http.put(f"/api/v1/queues/{self.queue}",
                               json={"strategy": self.strategy, "wrapup_time": 0, "ring_timeout": 15})
            assert r.status in (200, 201), await r.text()
            for i in range(self.agents):
                r = await http.put(f"/api/v1/agents/b{i}", json={"endpoint": "Local/ans0@sim-agent",
                                                                 "memberships": {self.queue: 0}})
                assert r.status in (200, 201), await r.text()
                r = await http.post(f"/api/v1/agents/b{i}/state", json={"state": "available"})
                assert r.status == 200, await r.text()
        await service.writer.flush(timeout=10)
        return service

    def _hook(self, service: Service) -> None:
        """Tap the app's websocket reader: stamp each frame on arrival, feed the parsed event."""
        stream, load = service.ari.stream, self.load
        handle, sink = stream._handle, stream._sink
        stamp = [0.0]

        def timed_handle(message: str | bytes) -> None:
            stamp[0] = time.perf_counter()
            handle(message)

        def tapped_sink(e: Any) -> None:
            fields = e.__dict__  # not getattr: a missing field costs pydantic a raised AttributeError
            channel, bridge = fields.get("channel"), fields.get("bridge")
            load.feed(e.type, channel.id if channel is not None else None,
                      bridge.channels if bridge is not None else (), stamp[0])
            sink(e)

        stream._handle = timed_handle  # type: ignore[method-assign]
        stream._sink = tapped_sink

    async def check_records(self, call_ids: list[str]) -> tuple[int, float]:
        """Flush the writer; returns (complete call rows among `call_ids`, seconds the flush took)."""
        assert self.service is not None
        t0 = time.perf_counter()
        await self.service.writer.flush(timeout=60)
        flushed = time.perf_counter() - t0
        conn = await asyncpg.connect(self.info.database_url)
        try:
            rows = await conn.fetchval(
                "SELECT count(*) FROM calls WHERE id = ANY($1::text[]) AND queue = $2 AND outcome = 'answered' "
                "AND agent_id IS NOT NULL AND bridged_at IS NOT NULL AND ended_at IS NOT NULL",
                call_ids, self.queue)
        finally:
            await conn.close()
        return int(rows), flushed

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None
