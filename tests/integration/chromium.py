"""A real headless Chromium (Debian's `chromium` package) driven over the DevTools protocol.

No browser download and no extra dependency: the protocol is JSON over the websocket that
Chromium opens (`websockets` is already ours). Enough for the widget tests: open a page, type,
click, evaluate (awaiting a promise), take a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-default-apps", "--mute-audio", "--window-size=900,600", "--remote-debugging-port=0"]


class CdpError(Exception):
    pass


class Page:
    """One tab: `send` a command and get its result; `events` collects console output and errors."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    if "error" in msg:
                        fut.set_exception(CdpError(str(msg["error"])))
                    else:
                        fut.set_result(msg.get("result", {}))
                continue
            method, params = msg.get("method", ""), msg.get("params", {})
            if method == "Runtime.consoleAPICalled":
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            for name, fut in list(self._waiters):
                if name == method and not fut.done():
                    fut.set_result(params)
                    self._waiters.remove((name, fut))

    async def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        return await asyncio.wait_for(fut, timeout)

    def expect(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """Registered now, so an event that comes before the await is not missed."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, fut))
        return fut

    async def goto(self, url: str) -> None:
        loaded = self.expect("Page.loadEventFired")
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, 20)

    async def evaluate(self, expression: str, *, timeout: float = 30) -> Any:
        """Evaluate in the page (a promise is awaited); the JSON value, or CdpError."""
        result = await self.send("Runtime.evaluate", timeout=timeout + 5, expression=expression,
                                 awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    async def type_into(self, selector: str, text: str) -> None:
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = await self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                                  ".getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left",
                            clickCount=1)

    async def screenshot(self, path: Path) -> None:
        data = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(_write, path, base64.b64decode(data["data"]))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page(log_path: Path | None = None) -> AsyncIterator[Page]:
    """A fresh headless Chromium (its own profile directory) and one blank tab."""
    if CHROMIUM is None:
        raise RuntimeError("chromium not found: the widget tests need Debian's chromium package "
                           "(apt-get install --no-install-recommends chromium)")
    profile = tempfile.mkdtemp(prefix="ari-app-chromium-")
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    stderr_lines: list[str] = []
    try:
        browser_ws = await asyncio.wait_for(_devtools_url(proc, stderr_lines), 30)
        port = re.search(r":(\d+)/", browser_ws).group(1)  # type: ignore[union-attr]
        async with connect(browser_ws, max_size=None) as browser:
            await browser.send(json.dumps({"id": 1, "method": "Target.createTarget",
                                           "params": {"url": "about:blank"}}))
            target = json.loads(await asyncio.wait_for(browser.recv(), 10))["result"]["targetId"]
        async with connect(f"ws://127.0.0.1:{port}/devtools/page/{target}", max_size=None) as ws:
            page = Page(ws)
            await page.send("Page.enable")
            await page.send("Runtime.enable")
            try:
                yield page
            finally:
                await page.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if log_path is not None:
            await asyncio.to_thread(_write, log_path, "\n".join(stderr_lines).encode())
        shutil.rmtree(profile, ignore_errors=True)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _devtools_url(proc: asyncio.subprocess.Process, lines: list[str]) -> str:
    """Chromium prints `DevTools listening on ws://...` on stderr once it is ready."""
    assert proc.stderr is not None
    while True:
        raw = await proc.stderr.readline()
        if not raw:
            raise RuntimeError("chromium exited before opening DevTools:\n" + "\n".join(lines[-20:]))
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        if m:
            asyncio.ensure_future(_drain(proc, lines))
            return m.group(1)


async def _drain(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    """Keep reading stderr so Chromium never blocks on a full pipe."""
    assert proc.stderr is not None
    while raw := await proc.stderr.readline():
        lines.append(raw.decode(errors="replace").rstrip())
