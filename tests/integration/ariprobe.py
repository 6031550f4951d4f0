"""A minimal ARI test client (aiohttp): REST calls and a websocket event stream to wait on.

Only for the sandbox's own tests (and quick experiments); the app's real client is ari_app.ari.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

Event = dict[str, Any]


class AriProbe:
    def __init__(self, base_url: str, user: str, password: str, app: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.events: list[Event] = []
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> AriProbe:
        self._session = aiohttp.ClientSession(headers=self._headers)
        ws_url = self.base_url.replace("http://", "ws://") + "/ari/events"
        self._ws = await self._session.ws_connect(
            ws_url, params={"app": self.app, "subscribeAll": "false"}, heartbeat=10
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader:
            self._reader.cancel()
        if self._ws:
            await self._ws.close()
        if self._session:
            await self._session.close()

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def request(self, method: str, path: str, **params: Any) -> tuple[int, Any]:
        assert self._session is not None
        clean = {k: str(v) for k, v in params.items() if v is not None}
        async with self._session.request(method, f"{self.base_url}/ari{path}", params=clean) as resp:
            body = await resp.text()
            return resp.status, (json.loads(body) if body else None)

    async def originate(self, endpoint: str, **params: Any) -> str:
        """POST /channels with our own channel id (registered before the POST); returns the id."""
        channel_id = params.pop("channelId", None) or f"probe-{uuid.uuid4().hex[:12]}"
        status, body = await self.request("POST", "/channels", endpoint=endpoint, channelId=channel_id, **params)
        if status != 200:
            raise AssertionError(f"originate {endpoint}: HTTP {status} {body}")
        return channel_id

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """The first event (already received or still to come) that matches; TimeoutError if none."""
        deadline = time.monotonic() + timeout
        seen = 0
        async with self._changed:
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    types = [e.get("type") for e in self.events[-20:]]
                    raise TimeoutError(f"no matching ARI event within {timeout}s; last: {types}")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    pass

    async def wait_event(self, type_: str, channel_id: str | None = None, timeout: float = 10.0) -> Event:
        def match(e: Event) -> bool:
            if e.get("type") != type_:
                return False
            return channel_id is None or e.get("channel", {}).get("id") == channel_id

        return await self.wait_for(match, timeout)

    def of_channel(self, channel_id: str) -> list[Event]:
        return [e for e in self.events if e.get("channel", {}).get("id") == channel_id]
