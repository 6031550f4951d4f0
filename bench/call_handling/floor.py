"""The floor: the least an ARI application must do to connect a caller to an agent.

Hand-written on aiohttp + websockets only (not our client): no typed models, no waiters, no
records, no queue. Per call: the caller enters the app (answered if it is not up yet: a Local
channel originated into Stasis arrives already answered, and the app skips the answer then too),
a mixing bridge is created, the agent leg is originated into the app; on the agent's StasisStart
both are added to the bridge. When the caller leaves, the agent is hung up and the bridge
destroyed. Every REST call runs in its own task so the reader never waits.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from load import SUT_CONNECTIONS, Load, basic_auth
from websockets.asyncio.client import connect


class Floor:
    def __init__(self, ari_url: str, user: str, password: str, app: str, load: Load,
                 agent_endpoint: str = "Local/ans0@sim-agent") -> None:
        self.base = ari_url.rstrip("/") + "/ari"
        self.ws_url = self.base.replace("http://", "ws://") + f"/events?app={app}&subscribeAll=false"
        self.user, self.password, self.app = user, password, app
        self.load = load
        self.agent_endpoint = agent_endpoint
        self.bridges: dict[str, str] = {}      # caller channel -> bridge
        self.agent_of: dict[str, str] = {}     # caller channel -> agent channel
        self.caller_of: dict[str, str] = {}    # agent channel -> caller channel
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        headers = {"Authorization": basic_auth(self.user, self.password)}
        self._session = aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=SUT_CONNECTIONS))
        ws = await connect(self.ws_url, additional_headers=headers, max_size=16 * 2**20)
        self._reader = asyncio.create_task(self._read(ws))

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _read(self, ws: Any) -> None:
        async with ws:
            async for message in ws:
                t = time.perf_counter()
                e = json.loads(message)
                kind = e.get("type", "")
                channel = e.get("channel") or {}
                bridge = e.get("bridge") or {}
                self.load.feed(kind, channel.get("id"), bridge.get("channels", ()), t)
                self._on_event(kind, e, channel)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rest(self, method: str, path: str, **params: str) -> None:
        assert self._session is not None
        async with self._session.request(method, self.base + path, params=params) as r:
            await r.read()

    def _on_event(self, kind: str, e: dict[str, Any], channel: dict[str, Any]) -> None:
        cid = channel.get("id", "")
        if kind == "StasisStart":
            args = e.get("args") or []
            if args[:1] == ["agent"]:
                caller = args[1]
                self.caller_of[cid] = caller
                self._spawn(self._rest("POST", f"/bridges/{self.bridges[caller]}/addChannel",
                                       channel=f"{caller},{cid}"))
            else:
                self._spawn(self._caller(cid, channel.get("state") == "Up"))
        elif kind == "StasisEnd":
            if cid in self.bridges:
                bridge = self.bridges.pop(cid)
                agent = self.agent_of.pop(cid)
                self._spawn(self._teardown(agent, bridge))
            else:
                self.caller_of.pop(cid, None)

    async def _caller(self, cid: str, up: bool) -> None:
        if not up:
            await self._rest("POST", f"/channels/{cid}/answer")
        bridge, agent = f"fb-{cid}", f"fa-{cid}"
        self.bridges[cid] = bridge
        self.agent_of[cid] = agent
        await self._rest("POST", "/bridges", type="mixing", bridgeId=bridge)
        await self._rest("POST", "/channels", endpoint=self.agent_endpoint, app=self.app,
                         appArgs=f"agent,{cid}", channelId=agent, timeout="20")

    async def _teardown(self, agent: str, bridge: str) -> None:
        await self._rest("DELETE", f"/channels/{agent}")
        await self._rest("DELETE", f"/bridges/{bridge}")
