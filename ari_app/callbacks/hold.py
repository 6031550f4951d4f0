"""Virtual hold: the caller who pressed the callback key (or overflowed to `callback`).

The ACD hands the channel over (its `callback` exit). The caller confirms the number to call
(their caller id, or digits they key in, checked by the dialling policy), the callback is written
to PostgreSQL, and only then are they told "thank you, goodbye" and hung up. A caller who doesn't
confirm, or a database that can't take the callback, puts the caller back in the queue at their
original place: nobody loses their turn because of this dialog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from ari_app.acd.core.commands import Announce, ExitQueue
from ari_app.acd.core.model import QueueItem
from ari_app.acd.prompts import announcement_media
from ari_app.ari import events as ev
from ari_app.ari.errors import is_gone
from ari_app.callbacks import store
from ari_app.callbacks.core import Confirmed, GaveUp, NumberDialog, Play
from ari_app.callbacks.core.dialog import CONFIRMED_PROMPT
from ari_app.store.db import is_transient

if TYPE_CHECKING:
    from ari_app.acd.links import ItemLink
    from ari_app.callbacks.capability import Callbacks
    from ari_app.service import Service

log = logging.getLogger(__name__)


def _items(media: Sequence[str]) -> list[str]:
    """One playback per file, digits as single-digit sounds: Asterisk plays a list (and a
    `digits:` say) to its end even after the playback is stopped, so a caller's key could not
    cut it short. Files can be stopped, and the next one is simply not started."""
    out: list[str] = []
    for uri in media:
        if uri.startswith("digits:"):
            out += [f"sound:digits/{d}" for d in uri[len("digits:"):] if d.isdigit()]
        else:
            out.append(uri)
    return out


async def play(s: Service, channel: str, media: Sequence[str], gone: asyncio.Event | None = None,
               digits: asyncio.Queue[str] | None = None) -> str | None:
    """Play `media` to the end, or until the caller presses a key (returned, playback stopped)
    or hangs up (`gone`)."""
    for uri in _items(media):
        if gone is not None and gone.is_set():
            return None
        if digits is not None and not digits.empty():
            return digits.get_nowait()
        digit = await _play_one(s, channel, uri, gone, digits)
        if digit is not None:
            return digit
    return None


async def _play_one(s: Service, channel: str, uri: str, gone: asyncio.Event | None,
                    digits: asyncio.Queue[str] | None) -> str | None:
    ari = s.ari
    playback_id = ari.new_id("pb")
    done = ari.expect_event("PlaybackFinished", playback_id=playback_id, timeout=120)
    try:
        await ari.rest.channels.play(channel_id=channel, media=uri, playback_id=playback_id)
    except Exception as exc:  # noqa: BLE001 - gone caller or bad prompt: nothing to wait for
        done.cancel()
        if gone is not None and is_gone(exc):
            gone.set()
        return None
    waits: list[asyncio.Future[Any]] = [done.future]
    digit_task = asyncio.ensure_future(digits.get()) if digits is not None else None
    gone_task = asyncio.ensure_future(gone.wait()) if gone is not None else None
    waits += [t for t in (digit_task, gone_task) if t is not None]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (digit_task, gone_task):
            if t is not None and not t.done():
                t.cancel()
    if not done.done():
        done.cancel()
        await s.quietly(ari.rest.playbacks.stop(playback_id=playback_id))
    if digit_task is not None and digit_task.done() and not digit_task.cancelled():
        return digit_task.result()
    return None


class Session:
    """One caller in the dialog: their digits and hangup, from the channel's events."""

    def __init__(self, s: Service, channel: str) -> None:
        self.s = s
        self.channel = channel
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.gone = asyncio.Event()
        s.own_channel(channel, self.on_event)

    def on_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.ChannelDtmfReceived):
            self.digits.put_nowait(e.digit)
        elif isinstance(e, ev.StasisEnd | ev.ChannelDestroyed):
            self.gone.set()

    async def prompt(self, media: Sequence[str], timeout: float) -> str | None:
        """Play, then wait up to `timeout` for a key; None when nothing was pressed (or gone)."""
        digit = await play(self.s, self.channel, media, self.gone, self.digits)
        if digit is not None or self.gone.is_set():
            return digit
        return await self.next_digit(timeout)

    async def next_digit(self, timeout: float) -> str | None:
        get = asyncio.ensure_future(self.digits.get())
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            await asyncio.wait([get, gone], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (get, gone):
                if not t.done():
                    t.cancel()
        return get.result() if get.done() and not get.cancelled() else None

    async def converse(self, dialog: NumberDialog, timeout: float) -> Confirmed | GaveUp | None:
        """Run the number dialog; None when the caller hung up."""
        actions = dialog.start()
        while True:
            for a in actions:
                if isinstance(a, Confirmed | GaveUp):
                    return a
            plays = [a for a in actions if isinstance(a, Play)]
            digit = await self.prompt(plays[-1].media, timeout) if plays else await self.next_digit(timeout)
            if self.gone.is_set():
                return None
            actions = dialog.digit(digit) if digit is not None else dialog.timeout()


class VirtualHold:
    def __init__(self, cb: Callbacks) -> None:
        self.cb = cb
        self.s = cb.s

    def on_exit(self, link: ItemLink, c: ExitQueue) -> None:
        """The ACD's `callback` exit: from now on this channel is ours."""
        assert link.channel_id is not None
        session = Session(self.s, link.channel_id)
        self.s.spawn(self.run(link, c, session), name=f"callback-hold-{link.item_id}")

    async def run(self, link: ItemLink, c: ExitQueue, session: Session) -> None:
        s, channel = self.s, session.channel
        rest = s.ari.rest
        await s.quietly(rest.channels.stop_moh(channel_id=channel))
        try:
            ch = await rest.channels.get(channel_id=channel)
        except Exception:  # noqa: BLE001 - the caller hung up as they pressed the key
            return
        policy = self.cb.policy(link.queue)
        caller = ch.caller.number if ch.caller and ch.caller.number else None
        if c.reason != "callback":
            # Overflow to `callback`: the offer is made now; without the key the caller leaves
            # the way the queue would have let them go.
            info = self.cb.acd.engine.queue(link.queue)
            key = (info.config.callback_key if info else None) or "1"
            offer = announcement_media(Announce(link.item_id, "callback-offer", 0, None))
            if await session.prompt(offer, policy.confirm_timeout) != key:
                if not session.gone.is_set():
                    s.channel_handlers.pop(channel, None)
                    if link.from_dialplan:
                        status = {"full": "FULL", "empty": "LEAVEEMPTY"}.get(c.reason, "TIMEOUT")
                        await s.quietly(rest.channels.set_variable(channel_id=channel, variable="QUEUESTATUS",
                                                                   value=status))
                        await s.quietly(rest.channels.continue_in_dialplan(channel_id=channel))
                    else:
                        await s.quietly(rest.channels.hangup(channel_id=channel))
                return
        result = await session.converse(NumberDialog(caller, self.cb.normalise), policy.confirm_timeout)
        if result is None:
            s.recorder.set_call(link.item_id, outcome="abandoned", data={"callback": "not-confirmed"})
            return
        if isinstance(result, GaveUp):
            log.info("callback not confirmed; back to the queue", extra={"call_id": link.item_id,
                                                                          "reason": result.reason})
            self.back_to_queue(link, ch, caller)
            return
        cb_id = await self.create(link, result.number)
        if session.gone.is_set():
            return
        if cb_id is None:
            self.back_to_queue(link, ch, caller)
            return
        await play(s, channel, CONFIRMED_PROMPT, session.gone)
        await s.quietly(rest.channels.hangup(channel_id=channel))

    async def create(self, link: ItemLink, number: str) -> str | None:
        """The callback, durably, with the caller's original place; the id of the open callback
        for this number and queue if there is one already; None if the database can't take it."""
        policy = self.cb.policy(link.queue)
        cb_id = self.cb.new_id()
        row = {"id": cb_id, "number": number, "queue": link.queue, "state": "pending", "source": "virtual-hold",
               "origin_call_id": link.item_id, "entered_at": _ts(link.entered_at), "priority": link.priority,
               "skills": link.skills or {}, "max_attempts": policy.max_attempts,
               "retry_delay": policy.retry_delay}
        try:
            await self.cb.create(row, place_now=True)
        except asyncpg.UniqueViolationError:
            async with self.s.db.acquire() as conn:
                existing = await store.find_open(conn, number, link.queue)
            cb_id = existing["id"] if existing else cb_id
        except Exception as exc:  # noqa: BLE001 - the caller goes back to the queue instead
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            log.log(level, "could not store a callback", exc_info=not is_transient(exc),
                    extra={"call_id": link.item_id})
            return None
        self.s.recorder.set_call(link.item_id, outcome="callback", data={"callback_id": cb_id})
        return cb_id

    def back_to_queue(self, link: ItemLink, ch: Any, caller: str | None) -> None:
        """Same item id, entry time, priority and skills: the caller's place is unchanged."""
        self.s.channel_handlers.pop(link.channel_id or "", None)
        item = QueueItem(id=link.item_id, queue=link.queue, priority=link.priority, entered_at=link.entered_at,
                         required_skills=link.skills or {}, caller_id=caller)
        self.cb.acd.enqueue(item, channel_id=link.channel_id, created_at=ch.creationtime, channel_name=ch.name,
                            already_up=True, from_dialplan=link.from_dialplan)


def _ts(at: float | None) -> datetime:
    return datetime.fromtimestamp(at if at is not None else time.time(), UTC)
