"""Baseline pacers for benchmarking, behind the same ``decide(state, now) -> int`` interface.

* :class:`ProgressivePacer` (re-exported): one call per idle agent.
* :class:`VicidialAdaptPacer`: VICIdial's adaptive predictive dialing, ``ADAPT_HARD_LIMIT``.

Our reading of VICIdial (manager manual; ``AST_VDadapt.pl`` and ``AST_VDauto_dial.pl``, AGPLv2; this is
a re-implementation of the published behaviour, no code was copied):

*Calls to place* (auto-dial loop, every cycle). With ``available_only_ratio_tally = N`` (the default)
the agent count is the non-paused agents: READY (waiting) plus INCALL (talking); agents in wrap-up
(dispositioning, shown as PAUSED) and paused agents do not count. ``goal = round(dial_level *
agents)`` (plus ``adaptive_dl_diff_target``, default 0, added to the agent count). The calls that
already exist are every auto-dial call of the campaign in status SENT/RINGING (ringing), LIVE
(answered, waiting in the queue) or XFER/CLOSER (connected to an agent). ``calls to place = goal -
existing``, clamped to the trunk limit. So at level 1.0 it dials for ready agents only, and at level
``L`` it keeps ``L * (ready + talking) - talking`` calls ringing or queued. With
``available_only_ratio_tally = Y`` only READY agents count and calls connected to agents are added to
the goal, so ``goal - existing = round(L * ready) - (ringing + queued)``.

*Dial level* (adapt loop, every second). Each second it samples READY agents (READY or DONE), calls
waiting in the queue (LIVE) and all logged-in agents; the differential is the mean over the last 15
samples of ``ready - waiting``. Every 15 s: ``diff = (differential + dl_diff_target) /
mean_total_agents``; the intensity setting scales it (``diff * (1 + intensity/100)`` when positive,
``diff * |intensity/100 - 1|`` when negative); ``level = level * (1 + diff)``, capped at
``adaptive_maximum_level`` and floored at 1.0. Drop rules are then applied to that new level:
if more than 20 calls were placed in the last minute and more than 50% of them were dropped, the
level is halved; with ``ADAPT_HARD_LIMIT``, if more than 50 calls were placed today and today's drops
exceed ``adaptive_dropped_percentage`` of today's answered calls, the level is set to 1.0. Finally it
is raised to at least 1.0. Drop statistics are refreshed once a minute. So while the day's drop rate
is over the target the campaign runs at 1.0 (progressive-like, but still not reserved: calls are
placed for ready agents, which can be taken by another answer), and it adapts upward again as soon as
the day's rate falls back under the target.

"Today" is the campaign's run so far (the simulator starts a shift at the start of a day). The
answered-calls denominator counts every live answer including drops (the lenient reading).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .pacer import PacingState, ProgressivePacer

__all__ = ["ProgressivePacer", "VicidialAdaptPacer", "VicidialSettings"]


@dataclass(frozen=True, slots=True)
class VicidialSettings:
    auto_dial_level: float = 1.0
    adaptive_maximum_level: float = 3.0
    adaptive_dropped_percentage: float = 3.0
    adaptive_intensity: float = 0.0
    adaptive_dl_diff_target: float = 0.0
    available_only_ratio_tally: bool = False
    level_interval: float = 15.0
    drop_interval: float = 60.0
    samples: int = 15
    utc_offset_seconds: float = 0.0  # server local time, for "today" (drop stats reset at midnight)

    def __post_init__(self) -> None:
        if self.auto_dial_level < 1.0:
            raise ValueError("auto_dial_level must be >= 1.0 in adaptive modes")
        if self.adaptive_maximum_level < 1.0:
            raise ValueError("adaptive_maximum_level must be >= 1.0")
        if not 0 < self.adaptive_dropped_percentage < 100:
            raise ValueError("adaptive_dropped_percentage must be in (0, 100)")


class VicidialAdaptPacer:
    """VICIdial ``ADAPT_HARD_LIMIT`` (see module docstring)."""

    name = "vicidial"

    def __init__(self, settings: VicidialSettings | None = None) -> None:
        self.settings = settings or VicidialSettings()
        self.level = self.settings.auto_dial_level
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=self.settings.samples)
        self._next_sample: float | None = None
        self._next_level: float | None = None
        self._next_drops: float | None = None
        self._history: deque[tuple[float, int, int]] = deque()  # (t, dials, abandons)
        self._start: tuple[int, int, int] | None = None  # counters at the start of "today"
        self._day: int | None = None
        # drop stats, refreshed once a minute
        self.calls_today = 0
        self.drops_today_pct_of_answers = 0.0
        self.calls_last_minute = 0
        self.drops_last_minute_pct = 0.0
        self.level_log: list[tuple[float, float]] = []

    def _refresh_drops(self, state: PacingState, now: float) -> None:
        c = state.stats.counters
        day = int((now + self.settings.utc_offset_seconds) // 86400)
        if self._start is None or day != self._day:
            self._start = (c.dials, c.humans, c.abandons)
            self._day = day
            self._history.clear()
        d0, h0, a0 = self._start
        self.calls_today = c.dials - d0
        answers = c.humans - h0
        drops = c.abandons - a0
        self.drops_today_pct_of_answers = 100.0 * drops / max(1, answers) if drops else 0.0
        hist = self._history
        hist.append((now, c.dials, c.abandons))
        while len(hist) > 1 and hist[1][0] <= now - 60.0:
            hist.popleft()
        t_old, dials_old, ab_old = hist[0]
        self.calls_last_minute = c.dials - dials_old
        dropped = c.abandons - ab_old
        self.drops_last_minute_pct = 100.0 * dropped / self.calls_last_minute if self.calls_last_minute else 0.0

    def _adjust_level(self) -> None:
        s = self.settings
        n = len(self._samples)
        if n == 0:
            return
        ready = sum(x[0] for x in self._samples) / n
        waiting = sum(x[1] for x in self._samples) / n
        total = sum(x[2] for x in self._samples) / n
        differential = ready - waiting + s.adaptive_dl_diff_target
        mul = differential / total if total and differential else 0.0
        intensity = s.adaptive_intensity / 100.0
        diff = mul * abs(intensity - 1.0) if mul < 0 else mul * (intensity + 1.0)
        level = self.level * (1.0 + diff)
        level = min(level, s.adaptive_maximum_level)
        level = max(level, 1.0)
        if self.calls_last_minute > 20 and self.drops_last_minute_pct > 50.0:
            level = level / 2.0
        if self.calls_today > 50 and self.drops_today_pct_of_answers > s.adaptive_dropped_percentage:
            level = 1.0
        self.level = max(level, 1.0)

    def decide(self, state: PacingState, now: float) -> int:
        s = self.settings
        if self._next_sample is None:
            self._next_sample = now
            self._next_level = now + s.level_interval
            self._next_drops = now
        assert self._next_level is not None and self._next_drops is not None
        if now >= self._next_drops:
            self._refresh_drops(state, now)
            self._next_drops = now + s.drop_interval
        if now >= self._next_sample:
            self._samples.append((state.agents_idle, state.waiting, state.agents_logged_in))
            self._next_sample = now + 1.0
        if now >= self._next_level:
            self._adjust_level()
            self.level_log.append((now, self.level))
            self._next_level = now + s.level_interval
        talking = state.agents_talking
        ringing = state.ringing_count + len(state.answered_elapsed)
        queued = state.waiting
        if s.available_only_ratio_tally:
            agents = state.agents_idle
            goal = round(self.level * max(0.0, agents + s.adaptive_dl_diff_target)) + talking
        else:
            agents = state.agents_idle + talking
            goal = round(self.level * max(0.0, agents + s.adaptive_dl_diff_target))
        existing = ringing + queued + talking
        make = goal - existing
        return max(0, min(make, state.room()))
