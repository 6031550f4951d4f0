"""`Stasis(app,ivr,<menu>)`: a DTMF menu in front of the queues.

The caller is answered, hears the menu prompt, presses a digit, and joins the queue the digit
names. No digit within the timeout repeats the prompt; after the last try the menu's default
queue is used (or the caller hears "invalid" and is hung up when there is none). Menus are
declared in the queues file (`[ivr.<name>]` with `prompt`, `options = {"1" = "support"}`,
`default`, `timeout`, `tries`) — a menu the file does not declare is built from the queues in
name order, so a fresh install has a working `main` menu.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ari_app.acd.core.model import QueueItem
from ari_app.ari import events as ev

if TYPE_CHECKING:
    from ari_app.acd.adapter import AcdAdapter
    from ari_app.service import Service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Menu:
    name: str
    options: dict[str, str]
    prompt: list[str] = field(default_factory=list)
    default: str | None = None
    timeout: float = 5.0
    tries: int = 2


def load_menus(path: Path | None) -> dict[str, Menu]:
    if path is None:
        return {}
    data = tomllib.loads(path.read_text()).get("ivr", {})
    menus = {}
    for name, m in data.items():
        prompt = m.get("prompt", [])
        menus[name] = Menu(name, {str(k): str(v) for k, v in m.get("options", {}).items()},
                           [prompt] if isinstance(prompt, str) else list(prompt), m.get("default"),
                           float(m.get("timeout", 5.0)), int(m.get("tries", 2)))
    return menus


class Ivr:
    def __init__(self, service: Service, acd: AcdAdapter) -> None:
        self.s = service
        self.acd = acd
        self.menus = load_menus(service.settings.queues_file)
        service.routes["ivr"] = self.on_stasis_start

    def menu(self, name: str) -> Menu:
        if name in self.menus:
            return self.menus[name]
        queues = sorted(self.acd.engine.queues())
        options = {str(i + 1): q for i, q in enumerate(queues[:9])}
        prompt = [m for digit in options for m in ("sound:press", f"digits:{digit}")]
        return Menu(name, options, prompt or ["sound:pbx-invalid"], queues[0] if queues else None)

    def on_stasis_start(self, e: ev.StasisStart) -> None:
        menu = self.menu(e.args[1] if len(e.args) > 1 else "main")
        digits: asyncio.Queue[str] = asyncio.Queue()
        gone = asyncio.Event()

        def on_event(x: ev.Event) -> None:
            if isinstance(x, ev.ChannelDtmfReceived):
                digits.put_nowait(x.digit)
            elif isinstance(x, ev.StasisEnd | ev.ChannelDestroyed):
                gone.set()

        self.s.own_channel(e.channel.id, on_event)
        self.s.spawn(self._run(e, menu, digits, gone), name=f"ivr-{e.channel.id}")

    async def _run(self, e: ev.StasisStart, menu: Menu, digits: asyncio.Queue[str], gone: asyncio.Event) -> None:
        ch, rest = e.channel, self.s.ari.rest
        await self.s.quietly(rest.channels.answer(channel_id=ch.id))
        choice: str | None = None
        for _ in range(max(1, menu.tries)):
            playback_id = self.s.ari.new_id("pb")
            finished = self.s.ari.expect_event("PlaybackFinished", playback_id=playback_id, timeout=120)
            await self.s.quietly(rest.channels.play(channel_id=ch.id, media=menu.prompt, playback_id=playback_id))
            # A digit pressed during the prompt counts; the timeout runs from the prompt's end.
            digit = await _first(digits, gone, None, until=finished)
            if digit is None and not gone.is_set():
                digit = await _first(digits, gone, menu.timeout)
            finished.cancel()
            if gone.is_set():
                return
            await self.s.quietly(rest.playbacks.stop(playback_id=playback_id))
            if digit is not None and digit in menu.options:
                choice = menu.options[digit]
                break
            if digit is not None:
                await self.s.quietly(rest.channels.play(channel_id=ch.id, media="sound:option-is-invalid"))
        queue = choice or menu.default
        if gone.is_set():
            return
        if queue is None or queue not in self.acd.engine.queues():
            log.info("ivr: no queue chosen", extra={"channel_id": ch.id, "menu": menu.name})
            await self.s.quietly(rest.channels.hangup(channel_id=ch.id))
            return
        self.s.channel_handlers.pop(ch.id, None)
        self.acd.enqueue(QueueItem(id=ch.id, queue=queue, kind="call", entered_at=self.acd.now(),
                                   caller_id=ch.caller.number if ch.caller else None,
                                   data={"ivr": menu.name, "choice": choice}),
                         channel_id=ch.id, created_at=ch.creationtime, channel_name=ch.name, already_up=True)


async def _first(digits: asyncio.Queue[str], gone: asyncio.Event, timeout: float | None, *,
                 until: Any = None) -> str | None:
    """The first digit pressed, or None on timeout, hangup, or when `until` (a waiter) completes."""
    get = asyncio.ensure_future(digits.get())
    hang = asyncio.ensure_future(gone.wait())
    waits: set[asyncio.Future[Any]] = {get, hang}
    if until is not None:
        waits.add(asyncio.ensure_future(_quiet(until)))
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return get.result() if get in done else None
    finally:
        for f in waits:
            f.cancel()


async def _quiet(waiter: Any) -> None:
    try:
        await waiter
    except (TimeoutError, asyncio.CancelledError):
        pass
