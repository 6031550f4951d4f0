"""The ARI event websocket: one supervised task per Asterisk connection, reconnecting forever.

Why a supervised task with backoff: Asterisk restarts and network blips are normal in production;
the app must come back on its own and be told (``ClientConnected``) so it can reconcile state.
Why full jitter: many app instances reconnecting to one restarted Asterisk must not stampede.
Why the reader never runs app code: it only hands events to ``sink`` (a queue put), so a slow
handler never stalls the socket and ping/pong keeps the connection alive.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .errors import AriAuthError, AriConnectionError
from .events import ClientConnected, ClientDisconnected, Event, parse_event, parse_known_event

log = logging.getLogger(__name__)


class _RedactAuthorization(logging.Filter):
    """websockets logs request headers at DEBUG; never let the Authorization value through."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() == "authorization":
            record.args = (args[0], "***")
        return True


_ws_log = logging.getLogger(__name__ + ".protocol")
_ws_log.addFilter(_RedactAuthorization())


def backoff_delay(
    attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt))."""
    return rand() * min(cap, base * 2.0 ** min(attempt, 30))


def peek_type(message: str | bytes) -> str | None:
    """The event's top-level ``type`` read from the raw text without decoding it, or None when
    that can't be told for sure (then the message is parsed as usual).

    Why: a Local channel running dialplan sends dozens of ChannelVarset/ChannelDialplan events
    per call; typing each costs about three times a ``json.loads``, for events nobody uses.
    Exact, not heuristic: inside a JSON string every quote is escaped, so ``"type":"`` can only
    be a key, and with no ``{`` before it other than the first it is the top-level key.
    """
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    at = text.find('"type":"')
    if at < 0 or text.find("{", 1, at) >= 0:
        return None
    start = at + 8
    end = text.find('"', start)
    kind = text[start:end]
    return kind if end > start and "\\" not in kind else None  # an escape: let json decode it


class EventStream:
    """Keeps a websocket to ``{ws_url}?app=...&subscribeAll=false`` open and feeds ``sink``.

    ``sink`` gets every parsed event plus ``ClientConnected`` / ``ClientDisconnected``, in order,
    from the stream's own task; it must not block (put on a queue).
    """

    def __init__(
        self,
        ws_url: str,
        user: str,
        password: str,
        app: str,
        sink: Callable[[Event], None],
        *,
        ping_interval: float = 10.0,
        reconnect_max_delay: float = 10.0,
        base_delay: float = 0.2,
        open_timeout: float = 10.0,
        dropped_types: Iterable[str] = (),
    ) -> None:
        self.url = f"{ws_url}?app={quote(app, safe='')}&subscribeAll=false"
        self.user = user
        self.app = app
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self.__headers = {"Authorization": f"Basic {token}"}
        self._sink = sink
        self._ping_interval = ping_interval
        self._cap = max(reconnect_max_delay, base_delay)
        self._base = base_delay
        self._open_timeout = open_timeout
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._up = asyncio.Event()
        self._changed = asyncio.Event()
        self._ever_connected = False
        self._auth_error: AriAuthError | None = None
        self.last_error: str = ""
        self.connections = 0
        #: Event types dropped on arrival, before any parsing (see `_handle`), and how many were.
        self._dropped_types = frozenset(dropped_types)
        self.dropped = 0

    def __repr__(self) -> str:
        return f"EventStream(url={self.url!r}, user={self.user!r}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"ari-events-{self.app}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._up.clear()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until the websocket is up.

        Raises ``AriAuthError`` if the very first connection was refused for credentials, and
        ``AriConnectionError`` (naming the last error) if not connected within ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._up.is_set():
            if self._auth_error is not None and not self._ever_connected:
                raise self._auth_error
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AriConnectionError(
                    f"no ARI event websocket to {self.url} after {timeout:g}s"
                    + (f"; last error: {self.last_error}" if self.last_error else "")
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _notify(self) -> None:
        self._changed.set()

    def _emit(self, event: Event) -> None:
        try:
            self._sink(event)
        except Exception:
            log.exception("ARI event sink failed for %s", event.type)

    async def _run(self) -> None:
        attempt = 0  # failed attempts since the last successful connection
        while True:
            delay: float
            try:
                ws = await connect(
                    self.url,
                    additional_headers=self.__headers,
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_interval,
                    open_timeout=self._open_timeout,
                    close_timeout=min(2.0, self._ping_interval),
                    max_size=16 * 2**20,
                    logger=_ws_log,
                )
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                status = exc.response.status_code
                self.last_error = f"HTTP {status} on websocket upgrade"
                if status in (401, 403):
                    self._auth_error = AriAuthError(status, "GET", "/ari/events", user=self.user)
                    log.error("%s; retrying every %gs", self._auth_error, self._cap)
                    delay = self._cap
                else:
                    log.warning("ARI websocket %s refused: %s", self.url, self.last_error)
                    delay = backoff_delay(attempt, base=self._base, cap=self._cap)
                attempt += 1
                self._notify()
            except Exception as exc:  # refused, reset, DNS, timeout, handshake garbage
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("ARI websocket %s connect failed: %s", self.url, self.last_error)
                delay = backoff_delay(attempt, base=self._base, cap=self._cap)
                attempt += 1
                self._notify()
            else:
                reconnect = self._ever_connected
                self._ever_connected = True
                self._auth_error = None
                self.connections += 1
                self._ws = ws
                self._up.set()
                self._notify()
                log.info("ARI websocket connected to %s (reconnect=%s)", self.url, reconnect)
                self._emit(
                    ClientConnected(application=self.app, reconnect=reconnect, attempt=attempt + 1)
                )
                attempt = 0
                reason = await self._read(ws)
                self._ws = None
                self._up.clear()
                self._notify()
                self.last_error = reason
                log.warning("ARI websocket to %s lost: %s", self.url, reason)
                self._emit(ClientDisconnected(application=self.app, reason=reason))
                delay = backoff_delay(0, base=self._base, cap=self._cap)
            await asyncio.sleep(delay)

    #: Seconds of event handling after which the reader lets the loop run other work. Frames
    #: that arrived together are read without a wait, and handlers run inline (see `AriClient`):
    #: a burst would otherwise hold back the REST requests those handlers started (they go out
    #: only when the loop turns) by a millisecond or more.
    TURN_BUDGET = 0.0003

    async def _read(self, ws: ClientConnection) -> str:
        """Read until the connection ends; returns why it ended."""
        clock = time.perf_counter
        turn_started = clock()
        try:
            async for message in ws:
                self._handle(message)
                if clock() - turn_started > self.TURN_BUDGET:
                    await asyncio.sleep(0)
                    turn_started = clock()
            return f"closed by peer (code {ws.close_code}, {ws.close_reason or 'no reason'})"
        except ConnectionClosed as exc:
            return f"connection closed: {exc}"
        except asyncio.CancelledError:
            await ws.close()
            raise
        except Exception as exc:  # pragma: no cover - defensive: keep the supervisor alive
            log.exception("ARI websocket reader failed")
            await ws.close()
            return f"reader failed: {type(exc).__name__}"

    def _handle(self, message: str | bytes) -> None:
        if self._dropped_types and peek_type(message) in self._dropped_types:
            self.dropped += 1
            return
        event = parse_known_event(message)
        if event is not None:
            self._emit(event)
            return
        try:
            data = json.loads(message)
        except ValueError:
            log.warning("ARI websocket sent a non-JSON message (%d bytes); ignored", len(message))
            return
        if not isinstance(data, dict):
            log.warning("ARI websocket sent a JSON %s, not an object; ignored", type(data).__name__)
            return
        self._emit(parse_event(data))
