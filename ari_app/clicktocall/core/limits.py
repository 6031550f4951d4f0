"""Abuse limits of the public click-to-call endpoint (toll fraud, harassment, floods).

Every accepted request makes the company pay for a call to a number a stranger typed, so each
dimension an attacker can vary is capped: the visitor's address (requests per minute and calls
at once), the destination number (calls per hour, one at a time, and a cool-down after each
call) and the whole endpoint (calls per minute and at once).

Pure and deterministic: the caller passes the time (seconds, any epoch, but one clock). A refusal
carries a Retry-After: exact for the time-based limits (after that long, with nothing else
happening, the same request passes), a configured hint for the concurrency ones. When several
limits refuse at once the longest wait is reported, so a client that obeys Retry-After is not
refused again by a limit it was not told about.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

#: Times closer than this are equal (so `now + retry_after` always passes despite rounding).
EPS = 1e-6


@dataclass(frozen=True)
class Limits:
    per_ip_per_minute: int = 5
    per_ip_concurrent: int = 2
    per_number_per_hour: int = 3
    number_cooldown: float = 120.0
    global_per_minute: int = 60
    global_concurrent: int = 20
    concurrent_retry_after: float = 30.0


@dataclass(frozen=True)
class Refusal:
    reason: str          # rate-ip | concurrent-ip | number-busy | cooldown | rate-number | rate-global | concurrent-global
    retry_after: float   # seconds, > 0
    message: str


class SlidingWindow:
    """At most `limit` events in any `window` seconds (exact: one timestamp per event)."""

    __slots__ = ("limit", "window", "times")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self.times and self.times[0] + self.window <= now + EPS:
            self.times.popleft()

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0: it fits now)."""
        self._prune(now)
        if len(self.times) < self.limit:
            return 0.0
        return self.times[len(self.times) - self.limit] + self.window - now

    def add(self, now: float) -> None:
        self.times.append(now)

    def idle(self, now: float) -> bool:
        self._prune(now)
        return not self.times


class AbuseLimiter:
    """`attempt` for every request (per-address rate), `admit` before dialling, `finish` after."""

    PRUNE_EVERY = 1024

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._ip: dict[str, SlidingWindow] = {}
        self._number: dict[str, SlidingWindow] = {}
        self._global = SlidingWindow(limits.global_per_minute, 60.0)
        self._active: dict[str, tuple[str, str]] = {}
        self._active_ip: Counter[str] = Counter()
        self._active_number: Counter[str] = Counter()
        self._cooldown_from: dict[str, float] = {}
        self._ops = 0

    # ------------------------------------------------------------------ requests
    def attempt(self, ip: str, now: float) -> Refusal | None:
        """Any request from `ip`, valid or not (number probing counts). A refused attempt is not
        counted, so Retry-After stays true for a client that keeps trying."""
        self._tick(now)
        window = self._ip.get(ip)
        if window is None:
            window = self._ip[ip] = SlidingWindow(self.limits.per_ip_per_minute, 60.0)
        wait = window.wait(now)
        if wait > 0:
            return Refusal("rate-ip", wait, "too many requests from this address")
        window.add(now)
        return None

    def admit(self, request_id: str, ip: str, number: str, now: float) -> Refusal | None:
        """A valid request about to dial `number`: refused, or counted and marked active."""
        lim = self.limits
        refusals: list[Refusal] = []
        if self._active_ip[ip] >= lim.per_ip_concurrent:
            refusals.append(Refusal("concurrent-ip", lim.concurrent_retry_after,
                                    "too many calls in progress from this address"))
        if self._active_number[number] > 0:
            refusals.append(Refusal("number-busy", lim.concurrent_retry_after + lim.number_cooldown,
                                    "this number is being called already"))
        since = self._cooldown_from.get(number)
        if since is not None and now + EPS < since + lim.number_cooldown:
            refusals.append(Refusal("cooldown", since + lim.number_cooldown - now,
                                    "this number was called a moment ago"))
        number_window = self._number.get(number)
        wait = number_window.wait(now) if number_window is not None else 0.0
        if wait > 0:
            refusals.append(Refusal("rate-number", wait, "too many calls to this number"))
        wait = self._global.wait(now)
        if wait > 0:
            refusals.append(Refusal("rate-global", wait, "too many calls right now"))
        if len(self._active) >= lim.global_concurrent:
            refusals.append(Refusal("concurrent-global", lim.concurrent_retry_after,
                                    "too many calls in progress"))
        if refusals:
            return max(refusals, key=lambda r: r.retry_after)
        self._count(number, now)
        self._active[request_id] = (ip, number)
        self._active_ip[ip] += 1
        self._active_number[number] += 1
        return None

    def finish(self, request_id: str, now: float) -> None:
        """The call of an admitted request is over: its slots are free, the cool-down restarts."""
        entry = self._active.pop(request_id, None)
        if entry is None:
            return
        ip, number = entry
        for counter, key in ((self._active_ip, ip), (self._active_number, number)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
        self._cooldown_from[number] = max(now, self._cooldown_from.get(number, now))

    def restore(self, number: str, accepted_at: float, ended_at: float | None, now: float) -> None:
        """Count a call accepted before a restart (from the records), so limits survive it."""
        if now - accepted_at < 3600:
            self._count(number, accepted_at)
        end = accepted_at if ended_at is None else max(ended_at, accepted_at)
        self._cooldown_from[number] = max(end, self._cooldown_from.get(number, end))

    def resume(self, request_id: str, ip: str, number: str) -> None:
        """A call admitted before a restart and still in progress (`restore` counted it)."""
        if request_id in self._active:
            return
        self._active[request_id] = (ip, number)
        self._active_ip[ip] += 1
        self._active_number[number] += 1

    def active(self) -> int:
        return len(self._active)

    # ------------------------------------------------------------------ internals
    def _count(self, number: str, at: float) -> None:
        window = self._number.get(number)
        if window is None:
            window = self._number[number] = SlidingWindow(self.limits.per_number_per_hour, 3600.0)
        window.add(at)
        self._global.add(at)
        self._cooldown_from[number] = max(at, self._cooldown_from.get(number, at))

    def _tick(self, now: float) -> None:
        self._ops += 1
        if self._ops % self.PRUNE_EVERY == 0:
            self.prune(now)

    def prune(self, now: float) -> None:
        """Forget addresses and numbers with nothing left to remember (bounded memory)."""
        self._ip = {k: w for k, w in self._ip.items() if not w.idle(now)}
        self._number = {k: w for k, w in self._number.items() if not w.idle(now)}
        cool = self.limits.number_cooldown
        self._cooldown_from = {k: t for k, t in self._cooldown_from.items() if t + cool > now}
