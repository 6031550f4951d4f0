"""Server-sent events: every subscriber gets the latest snapshot, never a backlog.

Why SSE and not a websocket: the stream is one-way, browsers reconnect an EventSource by
themselves, and it is plain HTTP through any proxy. A slow client only ever holds the newest
snapshot (a one-slot mailbox), so it can't make the app buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from ari_app.http.errors import ApiError

log = logging.getLogger(__name__)

KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream


class _Mailbox:
    def __init__(self) -> None:
        self.latest: str | None = None
        self.closed = False
        self.event = asyncio.Event()

    def put(self, data: str | None) -> None:
        if data is None:
            self.closed = True
        else:
            self.latest = data
        self.event.set()

    async def get(self, timeout: float) -> str | None:
        """The newest snapshot, or None on timeout; raises EOFError once the hub is closed."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return None
        self.event.clear()
        if self.closed:
            raise EOFError
        data, self.latest = self.latest, None
        return data


class StreamHub:
    """``fresh()`` builds the current snapshot for a client that just connected (the ticker only
    publishes while someone listens)."""

    def __init__(self, fresh: Callable[[], str]) -> None:
        self._boxes: set[_Mailbox] = set()
        self._fresh = fresh
        self.published = 0

    @property
    def clients(self) -> int:
        return len(self._boxes)

    def publish(self, data: str) -> None:
        self.published += 1
        for box in self._boxes:
            box.put(data)

    def close(self) -> None:
        for box in list(self._boxes):
            box.put(None)

    async def serve(self, request: web.Request, tokens: Sequence[str]) -> web.StreamResponse:
        """`GET .../stats/stream`: the bearer token in the Authorization header, or `?token=`
        (an EventSource can't send headers)."""
        check_token(request, tokens)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        box = _Mailbox()
        self._boxes.add(box)
        try:
            await resp.write(b"retry: 2000\n\n" + _event(self._fresh()))
            while True:
                try:
                    data = await box.get(KEEPALIVE)
                except EOFError:
                    break
                await resp.write(_event(data) if data is not None else b": keepalive\n\n")
        except (ConnectionResetError, ConnectionError):
            log.debug("stats stream client went away")
        finally:
            self._boxes.discard(box)
        with contextlib.suppress(ConnectionResetError, ConnectionError):
            await resp.write_eof()
        return resp


def _event(data: str) -> bytes:
    return b"event: snapshot\ndata: " + data.encode() + b"\n\n"


def check_token(request: web.Request, tokens: Sequence[str]) -> None:
    """Bearer token from the Authorization header or the `token` query parameter."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.query.get("token", "")
    if not token:
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>, or ?token=)",
                       field="Authorization", headers={"WWW-Authenticate": "Bearer"})
    if not any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens):
        raise ApiError(401, "bearer token not accepted", field="Authorization",
                       headers={"WWW-Authenticate": "Bearer"})
