"""``AriClient``: REST + event stream + in-order dispatch + waiters, for one Stasis app.

Why strict in-order, one-at-a-time dispatch: the call state machines depend on event order
(StasisStart before ChannelEnteredBridge before StasisEnd). Why waiters registered *before* the
REST call: the event can arrive before the POST returns; a waiter registered after would miss it.
Waiters are checked before handlers, so the code that caused an event sees it first.

Why events are dispatched inline, from the stream's reader, when nothing is pending: a queue
between reader and dispatcher costs a task switch (and an event-loop turn) per event, and a
call brings 35-150 events; handing each over was the app's largest per-event cost. Order is
kept the same way as before: once a handler returns an awaitable, that event finishes in the
dispatcher task, and every event arriving meanwhile queues behind it until the backlog is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import AriOriginateFailed
from .events import (
    ChannelDestroyed,
    Event,
    StasisStart,
    bridge_id_of,
    channel_id_of,
    playback_id_of,
)
from .rest import AriRest, StrOrList
from .stream import EventStream

if TYPE_CHECKING:
    from ari_app.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None] | None]
Predicate = Callable[[Event], bool]


def new_id(prefix: str) -> str:
    """A client-chosen unique id for a channel/bridge/playback, e.g. ``ch-3f2a...``."""
    return f"{prefix}-{uuid.uuid4().hex}"


class Waiter:
    """A registered expectation of an event; ``await waiter`` gives the first matching event.

    Registered when created, so an event that arrives before the ``await`` is not missed. The
    timeout runs from registration; on expiry the waiter is removed and awaiting it raises
    ``TimeoutError``. ``cancel()`` removes it early (e.g. when the REST call that should have
    caused the event failed).
    """

    def __init__(
        self,
        client: AriClient,
        predicate: Predicate,
        *,
        timeout: float,
        type_name: str | None,
        description: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._client = client
        self.predicate = predicate
        self.type_name = type_name
        self.description = description
        self.future: asyncio.Future[Event] = loop.create_future()
        self._timer = loop.call_later(timeout, self._expire, timeout)

    def __repr__(self) -> str:
        return f"<Waiter {self.description} done={self.future.done()}>"

    def __await__(self) -> Generator[Any, None, Event]:
        return self.future.__await__()

    def done(self) -> bool:
        return self.future.done()

    def cancel(self) -> None:
        self._finish()
        self.future.cancel()

    def _finish(self) -> None:
        self._timer.cancel()
        self._client._remove_waiter(self)

    def _expire(self, timeout: float) -> None:
        self._finish()
        if not self.future.done():
            self.future.set_exception(TimeoutError(f"no {self.description} within {timeout:g}s"))
            self.future.exception()  # mark retrieved: nobody may await an expired waiter

    def _offer(self, event: Event) -> bool:
        """Resolve with ``event`` if it matches; True when the waiter is finished."""
        if self.future.done():
            return True
        try:
            matched = self.predicate(event)
        except Exception as exc:
            log.exception("waiter predicate for %s raised", self.description)
            self._timer.cancel()
            self.future.set_exception(exc)
            return True
        if matched:
            self._timer.cancel()
            self.future.set_result(event)
        return matched


class AriClient:
    """One Stasis app on one Asterisk: ``rest`` for calls, ``on_event`` / ``expect`` for events."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        app: str,
        *,
        ping_interval: float = 10,
        reconnect_max_delay: float = 10,
        rest_timeout: float = 10,
        dropped_events: Iterable[str] = (),
        http_connections: int = 32,
    ) -> None:
        self.app = app
        self.rest = AriRest(url, user, password, timeout=rest_timeout, max_connections=http_connections)
        ws_base = self.rest.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        self.stream = EventStream(
            f"{ws_base}/ari/events",
            user,
            password,
            app,
            self._enqueue,
            ping_interval=ping_interval,
            reconnect_max_delay=reconnect_max_delay,
            dropped_types=dropped_events,
        )
        self._queue: asyncio.Queue[Event | _Continuation] = asyncio.Queue()
        #: True while the dispatcher task has work (an awaited handler, queued events): new
        #: events must queue behind it to keep their order.
        self._behind = False
        self._handlers: list[Handler] = []
        #: What dispatch iterates: a new tuple on every change, so a handler may add or remove
        #: handlers without copying the list for each event.
        self._handler_view: tuple[Handler, ...] = ()
        self._waiters: dict[str | None, list[Waiter]] = {}
        self._dispatcher: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AriClient:
        return cls(
            settings.ari_url,
            settings.ari_user,
            settings.ari_password.get_secret_value(),
            settings.app_name,
            ping_interval=settings.ari_ping_interval,
            reconnect_max_delay=settings.ari_reconnect_max_delay,
            dropped_events=settings.ari_ignored_events,
            http_connections=settings.ari_http_connections,
        )

    def __repr__(self) -> str:
        return f"AriClient(url={self.rest.base_url!r}, user={self.rest.user!r}, app={self.app!r})"

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the event stream and dispatcher; then ``await client.wait_connected(timeout)``."""
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(
                self._dispatch_loop(), name=f"ari-dispatch-{self.app}"
            )
        self.stream.start()

    async def wait_connected(self, timeout: float = 10) -> None:
        """See ``EventStream.wait_connected``: raises AriAuthError / AriConnectionError."""
        await self.stream.wait_connected(timeout)

    async def close(self) -> None:
        await self.stream.close()
        task, self._dispatcher = self._dispatcher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiters in list(self._waiters.values()):
            for w in list(waiters):
                w.cancel()
        await self.rest.close()

    async def __aenter__(self) -> AriClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self.stream.connected

    # --- handlers and waiters -------------------------------------------------------------

    def on_event(self, handler: Handler) -> Handler:
        """Add a handler (sync or async). Handlers run one event at a time, in arrival order.

        A handler must not await a waiter for a *later* event (dispatch is sequential: it would
        wait forever); start a task for that instead. Exceptions are logged and dispatch goes on.
        """
        self._handlers.append(handler)
        self._handler_view = tuple(self._handlers)
        return handler

    def remove_handler(self, handler: Handler) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(handler)
        self._handler_view = tuple(self._handlers)

    def expect(
        self,
        predicate: Predicate,
        *,
        timeout: float = 10,
        type_name: str | None = None,
        description: str = "matching event",
    ) -> Waiter:
        """Register a waiter now; ``await`` it later. ``type_name`` (optional) pre-filters cheaply."""
        waiter = Waiter(
            self, predicate, timeout=timeout, type_name=type_name, description=description
        )
        self._waiters.setdefault(type_name, []).append(waiter)
        return waiter

    def expect_event(
        self,
        type_name: str,
        *,
        channel_id: str | None = None,
        bridge_id: str | None = None,
        playback_id: str | None = None,
        timeout: float = 10,
    ) -> Waiter:
        """Wait for an event of ``type_name`` about the given channel/bridge/playback ids."""

        def match(ev: Event) -> bool:
            return (
                ev.type == type_name
                and (channel_id is None or channel_id_of(ev) == channel_id)
                and (bridge_id is None or bridge_id_of(ev) == bridge_id)
                and (playback_id is None or playback_id_of(ev) == playback_id)
            )

        ids = ", ".join(
            f"{k}={v}"
            for k, v in (("channel", channel_id), ("bridge", bridge_id), ("playback", playback_id))
            if v
        )
        return self.expect(
            match, timeout=timeout, type_name=type_name, description=f"{type_name}({ids})"
        )

    def expect_stasis_start(self, channel_id: str, *, timeout: float = 10) -> Waiter:
        return self.expect_event("StasisStart", channel_id=channel_id, timeout=timeout)

    new_id = staticmethod(new_id)

    async def originate_and_wait(
        self,
        *,
        endpoint: str,
        app_args: str | None = None,
        channel_id: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
        formats: StrOrList | None = None,
        wait_timeout: float = 30,
    ) -> StasisStart:
        """Originate ``endpoint`` into our app and wait until it is answered and in Stasis.

        Picks the channel id (unless given), registers the waiter, then POSTs. Raises
        ``AriOriginateFailed`` if the channel is destroyed first (busy, no answer, congestion),
        ``TimeoutError`` after ``wait_timeout`` seconds.
        """
        cid = channel_id or new_id("ch")

        def match(ev: Event) -> bool:
            return isinstance(ev, StasisStart | ChannelDestroyed) and channel_id_of(ev) == cid

        waiter = self.expect(match, timeout=wait_timeout, description=f"StasisStart(channel={cid})")
        try:
            await self.rest.channels.originate(
                endpoint=endpoint,
                app=self.app,
                app_args=app_args,
                channel_id=cid,
                caller_id=caller_id,
                timeout=timeout,
                variables=variables,
                originator=originator,
                formats=formats,
            )
        except BaseException:
            waiter.cancel()
            raise
        event = await waiter
        if isinstance(event, ChannelDestroyed):
            raise AriOriginateFailed(cid, event.cause, event.cause_txt)
        assert isinstance(event, StasisStart)
        return event

    # --- dispatch -------------------------------------------------------------------------

    def _remove_waiter(self, waiter: Waiter) -> None:
        bucket = self._waiters.get(waiter.type_name)
        if bucket is not None:
            with contextlib.suppress(ValueError):
                bucket.remove(waiter)
            if not bucket:
                del self._waiters[waiter.type_name]

    def _enqueue(self, event: Event) -> None:
        """The stream's sink: dispatch now, or queue behind the work the dispatcher has."""
        if self._behind or self._dispatcher is None:
            self._queue.put_nowait(event)
            return
        rest = self._dispatch_now(event)
        if rest is not None:
            self._behind = True
            self._queue.put_nowait(rest)

    def _dispatch_now(self, event: Event) -> _Continuation | None:
        """Waiters, then handlers in order, until one returns an awaitable: the rest of this
        event's dispatch is returned for the dispatcher task to finish."""
        self._resolve_waiters(event)
        handlers = self._handler_view
        for i, handler in enumerate(handlers):
            try:
                result = handler(event)
            except Exception:
                self._handler_failed(handler, event)
                continue
            if result is not None and inspect.isawaitable(result):
                return _Continuation(event, handler, result, list(handlers[i + 1:]))
        return None

    def _handler_failed(self, handler: Handler, event: Event) -> None:
        log.exception(
            "ARI event handler %s failed on %s",
            getattr(handler, "__qualname__", repr(handler)),
            event.type,
            extra={"event_type": event.type, "channel_id": channel_id_of(event)},
        )

    def _resolve_waiters(self, event: Event) -> None:
        for key in (event.type, None):
            bucket = self._waiters.get(key)
            if not bucket:
                continue
            for waiter in list(bucket):
                if waiter._offer(event):
                    waiter._finish()

    async def _dispatch_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, _Continuation):
                await self._finish(item)
            else:
                await self.dispatch(item)
            if self._queue.empty():
                self._behind = False

    async def _finish(self, rest: _Continuation) -> None:
        try:
            await rest.awaiting
        except Exception:
            self._handler_failed(rest.handler, rest.event)
        await self._run_handlers(rest.event, rest.handlers)

    async def dispatch(self, event: Event) -> None:
        """Deliver one event: waiters first, then each handler in order. Never raises."""
        self._resolve_waiters(event)
        await self._run_handlers(event, list(self._handler_view))

    async def _run_handlers(self, event: Event, handlers: list[Handler]) -> None:
        for handler in handlers:
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._handler_failed(handler, event)


class _Continuation:
    """An event whose handler returned an awaitable: the dispatcher awaits it, then runs the
    handlers after it."""

    __slots__ = ("awaiting", "event", "handler", "handlers")

    def __init__(self, event: Event, handler: Handler, awaiting: Awaitable[None], handlers: list[Handler]) -> None:
        self.event, self.handler, self.awaiting, self.handlers = event, handler, awaiting, handlers
