"""The simulated callers: the same closed-loop load and the same clock for the floor and the app.

Why one driver for both: the comparison is only fair if the callers, the measurement points and
the HTTP client doing the originates and hangups are identical; only the code that answers,
queues and bridges differs. The driver keeps `inflight` calls going: each worker originates a
caller into the system under test, and when both legs are bridged hangs the caller up (the
system then tears down the agent leg and the bridge, as it would when a customer hangs up).
A call is done when both legs have left the Stasis app; then the worker starts the next one.

Times are taken when the websocket frame arrives at the system under test (before it is
parsed), so queueing inside the system's event handling counts against it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


#: Callers arrive in a telephone codec, as from a trunk. A Local channel originated without
#: `formats` takes slin192, and music on hold (8 kHz files) is then resampled to 192 kHz for
#: every waiting caller: ~20x the CPU a real trunk call costs Asterisk.
CALLER_FORMAT = "ulaw"

#: HTTP connections of the driver, and of the floor.
CONNECTIONS = 16
SUT_CONNECTIONS = 64


@dataclass
class Call:
    id: str
    started: float = 0.0                 # caller's StasisStart received
    bridged: float = 0.0                 # second leg's ChannelEnteredBridge received
    agent: str | None = None
    left: set[str] = field(default_factory=set)
    done: asyncio.Future[float] | None = None


@dataclass
class Result:
    inflight: int
    calls: int                           # measured calls (warm-up and cool-down excluded)
    seconds: float
    latencies_ms: list[float]
    failed: int
    call_ids: list[str]                  # every call that completed, warm-up included
    cpu_ms: float = 0.0                  # this process's CPU per completed call (whole run)
    asterisk_cpu_ms: float = 0.0         # Asterisk's CPU per completed call (whole run)
    postgres_cpu_ms: float = 0.0         # PostgreSQL's CPU per completed call (all its processes)
    events: float = 0.0                  # ARI events the system received per completed call
    why_failed: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")

    @staticmethod
    def pool(parts: list[Result]) -> Result:
        """Segments of one configuration as one: calls over the sum of their measured times,
        all latency samples, per-call figures weighted by the calls completed."""
        done = [len(r.call_ids) for r in parts]

        def mean(values: list[float]) -> float:
            return sum(v * n for v, n in zip(values, done, strict=True)) / sum(done)

        why: dict[str, int] = {}
        for r in parts:
            for k, v in r.why_failed.items():
                why[k] = why.get(k, 0) + v
        return Result(parts[0].inflight, sum(r.calls for r in parts), sum(r.seconds for r in parts),
                      [x for r in parts for x in r.latencies_ms], sum(r.failed for r in parts),
                      [c for r in parts for c in r.call_ids], mean([r.cpu_ms for r in parts]),
                      mean([r.asterisk_cpu_ms for r in parts]), events=mean([r.events for r in parts]),
                      why_failed=why, postgres_cpu_ms=mean([r.postgres_cpu_ms for r in parts]))


class Load:
    """Feed it every event of the system's app with `feed()`; `run()` drives the calls."""

    def __init__(self, ari_url: str, user: str, password: str, app: str, app_args: str,
                 caller: str = "Local/patience0@sim-caller", prefix: str = "bench",
                 asterisk_pid: int | None = None, postgres_pid: int | None = None) -> None:
        self.asterisk_pid = asterisk_pid
        self.postgres_pid = postgres_pid
        self.base = ari_url.rstrip("/") + "/ari"
        self.headers = {"Authorization": basic_auth(user, password)}
        self.app, self.app_args, self.caller = app, app_args, caller
        # Unique per driver: a channel id stays taken until Asterisk destroyed the channel, which
        # may be just after the previous run saw it leave the app.
        self.prefix = f"{prefix}-{uuid.uuid4().hex[:8]}-"
        self.calls: dict[str, Call] = {}
        self.agents: dict[str, Call] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runs = itertools.count()
        self.events = 0

    # ------------------------------------------------------------------ events (in the reader)
    def feed(self, kind: str, channel_id: str | None, bridge_channels: Sequence[str], t: float) -> None:
        self.events += 1
        if kind == "ChannelEnteredBridge":
            if len(bridge_channels) != 2:
                return
            for cid in bridge_channels:
                call = self.calls.get(cid)
                if call is not None and not call.bridged:
                    call.bridged = t
                    call.agent = next(c for c in bridge_channels if c != cid)
                    self.agents[call.agent] = call
                    self._spawn(self._hangup(cid))
            return
        if channel_id is None:
            return
        if kind == "StasisStart":
            call = self.calls.get(channel_id)
            if call is not None and not call.started:
                call.started = t
        elif kind in ("StasisEnd", "ChannelDestroyed"):
            call = self.calls.get(channel_id) or self.agents.get(channel_id)
            if call is None:
                return
            call.left.add(channel_id)
            if call.agent is not None and call.id in call.left and call.agent in call.left:
                if call.done is not None and not call.done.done():
                    call.done.set_result(time.perf_counter())

    # ------------------------------------------------------------------ REST (own session)
    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hangup(self, channel_id: str) -> None:
        assert self._session is not None
        async with self._session.delete(f"{self.base}/channels/{channel_id}") as r:
            await r.read()

    async def _originate(self, channel_id: str) -> None:
        assert self._session is not None
        params = {"endpoint": self.caller, "app": self.app, "appArgs": self.app_args,
                  "channelId": channel_id, "otherChannelId": channel_id + "-phone",
                  "callerId": '"Bench" <0611111111>', "timeout": "30", "formats": CALLER_FORMAT}
        async with self._session.post(f"{self.base}/channels", params=params) as r:
            await r.read()
            if r.status >= 300:
                raise RuntimeError(f"originate {r.status}")

    # ------------------------------------------------------------------ the closed loop
    async def run(self, inflight: int, calls: int, warmup: int, timeout: float = 20.0,
                  rate: float | None = None) -> Result:
        """`warmup` calls, then `calls` measured ones, then `inflight` more so that the measured
        window ends with as many calls in flight as it began with.

        With `rate` the loop is open instead: a call starts every 1/`rate` s whatever the system
        does (the same offered load for both systems, so the latency compares their handling, not
        their throughput), and `inflight` only sizes the tail."""
        run = next(self._runs)
        total = warmup + calls + inflight
        counter = itertools.count()
        finished: list[Call] = []
        failed = 0
        why: dict[str, int] = {}
        # Few connections: Asterisk serves at most 100 HTTP sessions (http.conf sessionlimit) for
        # every client together, one thread each; the system under test needs the rest.
        self._session = aiohttp.ClientSession(headers=self.headers,
                                              connector=aiohttp.TCPConnector(limit=CONNECTIONS))

        async def one(i: int) -> None:
            nonlocal failed
            call = Call(f"{self.prefix}{run}-{i}")
            call.done = asyncio.get_running_loop().create_future()
            self.calls[call.id] = call
            try:
                await self._originate(call.id)
                await asyncio.wait_for(call.done, timeout)
                finished.append(call)
            except (TimeoutError, RuntimeError, aiohttp.ClientError) as exc:
                failed += 1
                reason = (str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__ + (
                    ": never in the app" if not call.started else ": never bridged" if not call.bridged
                    else ": legs still there"))
                why[reason] = why.get(reason, 0) + 1
                self._spawn(self._hangup(call.id))
                if call.agent:
                    self._spawn(self._hangup(call.agent))

        async def worker() -> None:
            while (i := next(counter)) < total:
                await one(i)

        async def arrivals(rate: float) -> None:
            loop = asyncio.get_running_loop()
            start, calls_started = loop.time(), []
            for i in range(total):
                await asyncio.sleep(max(0.0, start + i / rate - loop.time()))  # the schedule, not a wait on the system
                calls_started.append(asyncio.create_task(one(i)))
            await asyncio.gather(*calls_started)

        cpu0, ast0, pg0, events0 = time.process_time(), self._asterisk_cpu(), self._postgres_cpu(), self.events
        try:
            if rate is None:
                await asyncio.gather(*(worker() for _ in range(inflight)))
            else:
                await arrivals(rate)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self._session.close()
            self._session = None
        cpu, ast = time.process_time() - cpu0, self._asterisk_cpu() - ast0
        pg = self._postgres_cpu() - pg0
        events = self.events - events0
        self.calls.clear()
        self.agents.clear()
        assert all(c.done is not None for c in finished)
        ends = sorted(finished, key=lambda c: c.done.result())  # type: ignore[union-attr]
        if len(ends) < warmup + calls + 1:
            raise RuntimeError(f"only {len(ends)} of {total} calls completed ({failed} failed)")
        window = ends[warmup: warmup + calls + 1]
        t0 = window[0].done.result()  # type: ignore[union-attr]
        t1 = window[-1].done.result()  # type: ignore[union-attr]
        measured = window[1:]
        return Result(inflight, calls, t1 - t0, [(c.bridged - c.started) * 1000 for c in measured],
                      failed, [c.id for c in finished], cpu * 1000 / len(ends), ast * 1000 / len(ends),
                      events=events / len(ends), why_failed=why, postgres_cpu_ms=pg * 1000 / len(ends))

    def _asterisk_cpu(self) -> float:
        """Asterisk's user+system CPU seconds so far (0 when its pid is unknown)."""
        fields = _stat(self.asterisk_pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0

    def _postgres_cpu(self) -> float:
        """PostgreSQL's CPU seconds so far: the postmaster, its live children, and (through the
        postmaster's cutime/cstime) the children that already exited (0 when its pid is unknown)."""
        if self.postgres_pid is None:
            return 0.0
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(stat.parent.name)
            if pid == self.postgres_pid:
                ticks += sum(int(f) for f in fields[11:15])
            elif int(fields[1]) == self.postgres_pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int | None) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None when gone or unknown)."""
    if pid is None:
        return None
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
