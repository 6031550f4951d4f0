"""Abandon ledger and abandon budget: compliance by construction, not by tuning.

Definitions
-----------
For one :class:`~.config.AbandonRule` (cap ``c``, rolling window ``W``, guard horizon ``P < W``) the
measured rate of the window ending at ``t`` is ``N / D`` over the recorded events with time in
``(t - W, t]``, where

* a live answer connected to an agent adds 1 to ``D``;
* an abandon (live answer not connected within ``connect_within``) adds 1 to ``N`` and to ``D``;
* an AMD machine classification adds ``f`` to ``N`` and to ``D`` when the rule counts AMD false
  positives (``f`` = configured false-positive rate; Ofcom), else nothing.

``rate <= c``  <=>  ``slack = c*D - N >= 0``, and slack is *additive* over events: a live answer adds
``+c``, an abandon ``-(1-c)``, a machine classification ``-(1-c)*f``. The ledger keeps these
contributions in exact integer units (``c`` and ``f`` as fractions), so no rounding can break a bound.

Reservation model (who can abandon)
-----------------------------------
Let ``I`` be the idle agents (logged in, not on a call, not in wrap-up, not paused) and ``F`` the calls in
flight (dialed and not yet connected or ended: ringing, answered with AMD running, live and waiting).
Answered calls go to any idle agent immediately; a call abandons only when its ``connect_within`` grace
expires while no agent is idle. Define the *at-risk* count ``R = max(0, F - I)``.

*Lemma 1 (each abandon consumes one unit of R).* ``R`` changes as follows: a dial adds 1 or 0; a call
that ends without needing an agent, an agent that frees up or logs in can only lower it; a connect
lowers ``F`` and ``I`` together (no change); an abandon happens only when ``I = 0`` and lowers ``F`` (and
so ``R``) by exactly 1. The one event that could raise ``R`` without a dial, an *idle* agent leaving
(pause, logout), must be deferred by the shell while ``F >= I`` (:func:`may_release_idle_agent`).
Hence the abandons that can still happen among the calls now in flight are at most ``R``. Progressive
dialing keeps ``F <= I`` (each call has a reserved agent), so ``R = 0`` and it can never abandon.

*Lemma 2 (worst future point).* Consider a dial decision at time ``d`` and any window ending at
``t' in [d, d + P]``. Its recorded part is a suffix of the ledger: the events newer than ``t' - W``;
as ``t'`` moves forward old answers age out (which *raises* the rate of the abandons that remain) and
old abandons age out (which lowers it). Everything that happens after ``d`` is, in the worst case,
no further live answer at all, all ``R'`` at-risk calls answered live and abandoned (each
``-(1-c)``) and every one of the ``Q'`` AMD calls in flight classified machine (each ``-(1-c)f``).
So if::

    min over s in [d - W, d + P - W] of slack(events newer than s)  >=  (1-c) * (R' + f * Q')

then every window ending in ``[d, d + P]`` has ``rate <= c``, however the calls in flight resolve.
The left side is a sliding-window maximum of prefix sums, kept in amortised O(1) per event.

*Theorem.* The pacer only raises ``R`` (dials beyond the agents that are idle now) when the inequality
holds for every rule after the dial (:meth:`AbandonBudget.max_new_calls`). By Lemma 1 no decision can be
surprised by more abandons than it accounted for, and by Lemma 2 each decision protects the windows
ending up to ``P`` after it, using only answers that will still be inside those windows. So every
window ending within ``P`` of the last decision that created at-risk calls stays within the cap, at
every instant, including the first minutes of a campaign (budget 0 until ``1/c`` live answers exist).
What no pacer can guarantee: a window ending more than ``P`` after the last at-risk dial in which
older live answers have aged out (e.g. a campaign that stops for good right after an abandon,
measured ``W - P`` later). With the default ``P = W/2`` each abandon is backed by answers that stay in
its windows for at least half a window.

*How tight it is.* The bound already charges an at-risk call what its abandon really costs: it adds 1 to
``N`` *and* 1 to ``D`` (``-(1-c)``, not ``-1``). Calls that ended, or whose AMD said machine, are not in
``F``. It cannot be relaxed further without a probability: all calls in flight may be answered live at
the same instant and no busy agent is ever certain to finish. One sound refinement was measured and
left out: an agent whose wrap-up ends on a system timer within ``connect_within`` is free before any call
in flight can abandon (no call waiting), so it could count as idle; in the simulator (5 s wrap-ups) it
moved day-1 talk time by -0.8 to +0.1 min/h, within one seed's noise, and the shell would have to defer a
pause or logout at the end of such a wrap-up as it does for idle agents. The price of the guarantee is the ramp of a new campaign:
after ``H`` live answers (and no abandon) at most ``c*H/(1-c)`` calls may be in flight beyond the idle
agents (``H/32.3`` at 3%). At a 10% answer rate a full team needs several calls in flight per agent, so
any pacer with this guarantee spends its first hours held at that limit however it forecasts.

*Calls another instance placed.* Only one instance paces a campaign at a time, but one that takes it
over (the previous one stopped, crashed or lost its lock) may find calls of the previous owner still
in flight. No agent here can take them (they belong to the other instance's app and agents), so each
may abandon whatever the idle agents here: the shell withholds their worst case from the slack
(:meth:`AbandonBudget.withheld`: ``U`` per such call, ``V`` more per one AMD may still classify) until
their records say how they ended, and then records that outcome instead. With the slack so reduced the
inequality of Lemma 2 holds with ``R' + G`` at-risk calls, ``G`` the other instance's.

AMD false positives (Ofcom) are not caused by pacing, so the budget limits them separately: new
calls may use AMD only while :meth:`AbandonBudget.amd_allowance` is positive; calls placed without
AMD go straight to an agent (or are counted as abandons if none is free, under the same ``R``
argument).
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from .config import AbandonRule

__all__ = ["AbandonBudget", "AbandonLedger", "RuleBudget", "WindowCounts", "may_release_idle_agent"]

UNLIMITED = sys.maxsize

_HUMAN = 0
_ABANDON = 1
_MACHINE = 2


def may_release_idle_agent(idle_agents: int, calls_in_flight: int) -> bool:
    """Whether an idle agent may pause or log out without raising the at-risk count (Lemma 1)."""
    return calls_in_flight < idle_agents


@dataclass(frozen=True, slots=True)
class WindowCounts:
    humans: int  # live answers, including abandoned ones
    abandons: int
    machines: int  # AMD machine classifications
    numerator: float  # abandons + fp estimate
    denominator: float  # humans + fp estimate

    @property
    def rate(self) -> float:
        return self.numerator / self.denominator if self.denominator > 0 else 0.0


@dataclass(frozen=True, slots=True)
class RuleBudget:
    """The budget of one rule at one instant. ``slack_units`` is the worst future slack (Lemma 2)."""

    rule: AbandonRule
    now_counts: WindowCounts
    slack_units: int
    abandon_units: int  # U: cost of one at-risk call that abandons
    amd_units: int  # V: cost of one AMD call that is classified machine (0 unless counted)

    @property
    def affordable_abandons(self) -> float:
        """How many more abandons this window can absorb at its worst future point."""
        return self.slack_units / self.abandon_units

    def max_at_risk(self, amd_in_flight: int) -> int:
        return (self.slack_units - self.amd_units * amd_in_flight) // self.abandon_units


@dataclass(frozen=True, slots=True)
class AbandonBudget:
    """Answers 'how many more abandons can I afford right now in every window'."""

    now: float
    rules: tuple[RuleBudget, ...]

    def abandons_affordable(self, amd_in_flight: int = 0) -> int:
        """Largest at-risk count that every rule can absorb (may be negative when over budget)."""
        return min(r.max_at_risk(amd_in_flight) for r in self.rules)

    def affordable(self, at_risk: int, amd_in_flight: int) -> bool:
        return all(
            r.abandon_units * at_risk + r.amd_units * amd_in_flight <= r.slack_units for r in self.rules
        )

    def max_new_calls(self, idle: int, in_flight: int, amd_in_flight: int, *, amd_for_new: bool = False) -> int:
        """Most new calls that keep the hard guarantee (Lemma 2) after dialing.

        Calls up to ``idle - in_flight`` are covered by idle agents and cannot abandon; each call beyond
        that is at risk. New calls placed without AMD add no false-positive exposure. If the calls
        already in flight are no longer fully affordable (answers aged out), only covered calls are
        allowed.
        """
        covered = max(0, idle - in_flight)
        at_risk_now = max(0, in_flight - idle)
        best = UNLIMITED
        for r in self.rules:
            u, v, s = r.abandon_units, r.amd_units, r.slack_units
            if not amd_for_new or v == 0:
                extra = max(0, (s - v * amd_in_flight) // u - at_risk_now)
                best = min(best, covered + extra)
                continue
            # Covered region: v*(Q+n) <= s.  At-risk region: u*(R0+n-covered) + v*(Q+n) <= s.
            cov_room = (s - v * amd_in_flight) // v
            if cov_room < covered:
                best = min(best, max(0, cov_room))
                continue
            n = (s - v * amd_in_flight + u * (covered - at_risk_now)) // (u + v)
            best = min(best, max(covered, n))
        return max(0, best)

    def withheld(self, calls: int, amd_calls: int = 0) -> AbandonBudget:
        """This budget less the worst case of ``calls`` calls that no agent here can take (another
        instance's calls in flight), ``amd_calls`` of which AMD may still classify: each may yet
        abandon (``U``) or be counted a machine (``V``)."""
        if calls <= 0 and amd_calls <= 0:
            return self
        rules = tuple(
            replace(r, slack_units=r.slack_units - r.abandon_units * calls - r.amd_units * amd_calls)
            for r in self.rules
        )
        return AbandonBudget(self.now, rules)

    def amd_allowance(self, at_risk: int, amd_in_flight: int) -> int:
        """How many more calls may use AMD given ``at_risk`` and ``amd_in_flight`` after dialing."""
        best = UNLIMITED
        for r in self.rules:
            if r.amd_units == 0:
                continue
            room = (r.slack_units - r.abandon_units * at_risk - r.amd_units * amd_in_flight) // r.amd_units
            best = min(best, max(0, room))
        return best


class _RuleTrack:
    __slots__ = (
        "rule",
        "window",
        "guard",
        "h_units",
        "a_units",
        "m_units",
        "abandon_cost",
        "amd_cost",
        "fp",
        "cum",
        "dq",
        "next_push",
        "last_now",
    )

    def __init__(self, rule: AbandonRule) -> None:
        cap = Fraction(rule.cap).limit_denominator(1_000_000)
        fp = Fraction(rule.fp_weight).limit_denominator(1_000_000)
        a, b = cap.numerator, cap.denominator
        c, d = fp.numerator, fp.denominator
        self.rule = rule
        self.window = rule.window_seconds
        self.guard = rule.guard
        self.fp = float(fp)
        # Contributions to slack in units of 1/(b*d).
        self.h_units = a * d
        self.a_units = (a - b) * d
        self.m_units = c * (a - b)
        self.abandon_cost = (b - a) * d
        self.amd_cost = c * (b - a)
        self.cum: list[int] = [0]  # cum[i - base] = sum of contributions of the first i events
        self.dq: deque[int] = deque()  # absolute indices j with decreasing cum[j]
        self.next_push = 0
        self.last_now = -float("inf")


class AbandonLedger:
    """Records live answers, abandons and AMD machine classifications with their times.

    Times are UTC epoch seconds and must not go backwards (a record earlier than the previous one is
    clamped to it). Queries are cheapest when ``now`` does not go backwards either.
    """

    def __init__(self, rules: Sequence[AbandonRule], *, keep_history: bool = False) -> None:
        if not rules:
            raise ValueError("at least one abandon rule is required")
        self._tracks = tuple(_RuleTrack(r) for r in rules)
        self._keep = keep_history
        self._max_window = max(r.window_seconds for r in rules)
        self._base = 0
        self._times: list[float] = []
        self._kinds: list[int] = []
        self._cnt: tuple[list[int], list[int], list[int]] = ([0], [0], [0])
        self._last_t = -float("inf")

    @property
    def rules(self) -> tuple[AbandonRule, ...]:
        return tuple(t.rule for t in self._tracks)

    @property
    def last_time(self) -> float:
        """Time of the latest record (an earlier one would be clamped to it)."""
        return self._last_t

    # ---- recording --------------------------------------------------------------------------
    def record_human(self, t: float) -> None:
        """A live answer was connected to an agent."""
        self._record(t, _HUMAN)

    def record_abandon(self, t: float) -> None:
        """A live answer was not connected within ``connect_within`` (safe-harbor message played)."""
        self._record(t, _ABANDON)

    def record_machine(self, t: float) -> None:
        """AMD classified an answer as a machine and the call was not sent to an agent."""
        self._record(t, _MACHINE)

    def _record(self, t: float, kind: int) -> None:
        if t < self._last_t:
            t = self._last_t
        self._last_t = t
        self._times.append(t)
        self._kinds.append(kind)
        h, a, m = self._cnt
        h.append(h[-1] + (kind != _MACHINE))
        a.append(a[-1] + (kind == _ABANDON))
        m.append(m[-1] + (kind == _MACHINE))
        for tr in self._tracks:
            unit = tr.h_units if kind == _HUMAN else tr.a_units if kind == _ABANDON else tr.m_units
            tr.cum.append(tr.cum[-1] + unit)
        if not self._keep and len(self._times) > 8192:
            self._prune(t)

    def _prune(self, now: float) -> None:
        cut = bisect_right(self._times, now - self._max_window - 1.0)
        if cut < len(self._times) // 2:
            return
        for tr in self._tracks:
            # indices below base+cut will never be queried again (now only moves forward)
            while tr.dq and tr.dq[0] < self._base + cut:
                tr.dq.popleft()
            tr.next_push = max(tr.next_push, self._base + cut)
            del tr.cum[:cut]
        del self._times[:cut]
        del self._kinds[:cut]
        for lst in self._cnt:
            del lst[:cut]
        self._base += cut

    # ---- queries ----------------------------------------------------------------------------
    @property
    def events(self) -> int:
        return self._base + len(self._times)

    def _index_at_or_before(self, t: float) -> int:
        """Absolute number of retained+pruned events with time <= t."""
        return self._base + bisect_right(self._times, t)

    def counts(self, start: float, end: float, rule: AbandonRule | None = None) -> WindowCounts:
        """Counts of events with time in (start, end]."""
        i = self._index_at_or_before(start) - self._base
        j = self._index_at_or_before(end) - self._base
        i = max(i, 0)
        h, a, m = self._cnt
        humans, abandons, machines = h[j] - h[i], a[j] - a[i], m[j] - m[i]
        fp = (rule.fp_weight if rule is not None else 0.0) * machines
        return WindowCounts(humans, abandons, machines, abandons + fp, humans + fp)

    def _max_cum(self, tr: _RuleTrack, j0: int, j1: int, now: float) -> int:
        base = self._base
        if now < tr.last_now:
            return max(tr.cum[j - base] for j in range(max(j0, base), j1 + 1))
        tr.last_now = now
        cum, dq = tr.cum, tr.dq
        while tr.next_push <= j1:
            j = tr.next_push
            v = cum[j - base]
            while dq and cum[dq[-1] - base] <= v:
                dq.pop()
            dq.append(j)
            tr.next_push += 1
        while dq and dq[0] < j0:
            dq.popleft()
        return cum[dq[0] - base]

    def budget(self, now: float) -> AbandonBudget:
        """The abandon budget at ``now`` for every rule (see module docstring, Lemma 2)."""
        out: list[RuleBudget] = []
        m = self.events
        for tr in self._tracks:
            j0 = self._index_at_or_before(now - tr.window)
            j1 = max(j0, self._index_at_or_before(now + tr.guard - tr.window))
            best = self._max_cum(tr, j0, j1, now)
            slack = tr.cum[m - self._base] - best
            out.append(
                RuleBudget(
                    rule=tr.rule,
                    now_counts=self.counts(now - tr.window, now, tr.rule),
                    slack_units=slack,
                    abandon_units=tr.abandon_cost,
                    amd_units=tr.amd_cost,
                )
            )
        return AbandonBudget(now=now, rules=tuple(out))

    def rate(self, rule: AbandonRule, now: float) -> float:
        """Measured rate of ``rule``'s window ending at ``now``."""
        return self.counts(now - rule.window_seconds, now, rule).rate

    def worst_window(
        self,
        rule: AbandonRule,
        *,
        window_seconds: float | None = None,
        start: float = -float("inf"),
        until: float = float("inf"),
        min_denominator: float = 0.0,
    ) -> float:
        """Highest rate of any rolling window ending in ``[start, until]`` over the retained events.

        Windows are evaluated at every point where the rate can change: right after each event is
        recorded and right after each event ages out. ``min_denominator`` skips windows with fewer live answers
        (for reporting only; the guarantee holds with 0). Needs ``keep_history`` for whole runs.
        """
        w = rule.window_seconds if window_seconds is None else window_seconds
        fp = rule.fp_weight
        times, kinds = self._times, self._kinds
        n = len(times)
        num = [0.0] * (n + 1)
        den = [0.0] * (n + 1)
        for i, k in enumerate(kinds):
            if k == _HUMAN:
                dn, dd = 0.0, 1.0
            elif k == _ABANDON:
                dn, dd = 1.0, 1.0
            else:
                dn, dd = fp, fp
            num[i + 1] = num[i] + dn
            den[i + 1] = den[i] + dd
        worst = 0.0

        def consider(lo: int, hi: int) -> None:  # events lo..hi-1
            nonlocal worst
            d = den[hi] - den[lo]
            if d > 0 and d >= min_denominator:
                r = (num[hi] - num[lo]) / d
                if r > worst:
                    worst = r

        lo = 0
        for hi in range(1, n + 1):  # window ending at times[hi-1]: events in (t - w, t]
            t = times[hi - 1]
            if t < start or t > until or (hi < n and times[hi] == t):
                continue  # (simultaneous events are one instant)
            while times[lo] <= t - w:
                lo += 1
            consider(lo, hi)
        hi = 0
        lo = 0
        for i in range(n):  # right after times[i] ages out: events in (t_i, t_i + w]
            end = times[i] + w
            if end < start or end > until or (i + 1 < n and times[i + 1] == times[i]):
                continue
            lo = max(lo, i + 1)
            while hi < n and times[hi] <= end:
                hi += 1
            consider(lo, hi)
        return worst
