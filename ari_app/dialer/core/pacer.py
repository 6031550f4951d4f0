"""Pacing: how many calls to place now.

Every pacer has the same interface, ``decide(state, now) -> int``, and is called at a fixed cadence
(or on events) by the shell or the simulator. The returned count is already clamped to the trunk
limit and the leads available; lead selection (and so compliance) is the caller's job
(:class:`~.compliance.ComplianceGate`).

Predictive algorithm (:class:`PredictivePacer`)
-----------------------------------------------
1. **Hard limit.** ``AbandonBudget.max_new_calls`` bounds the calls that may be placed beyond the
   agents idle now so that, even if every one of them were answered live and abandoned, no window of
   any rule could exceed its cap (the argument is in :mod:`.ledger`). When the budget is exhausted
   this is exactly progressive dialing: one call per idle agent not already covered.
2. **Forecast.** Over a grid of instants ``tau`` up to the latest time a call placed now can need an
   agent (ring timeout + AMD + connect grace), estimate

   * supply ``S(tau)``: idle agents + busy agents that will be free by ``tau + grace``. Each busy agent
     contributes its conditional probability of finishing given its elapsed handle time
     (``1 - Surv(e + tau + g) / Surv(e)`` from the empirical handle-time distribution);
   * demand ``D(tau)``: live answers waiting now, answered calls whose AMD decision falls before
     ``tau`` (times P(needs agent)), ringing calls answered in time (hazard of the answer-time
     distribution given the seconds already rung, times P(answer), P(needs agent)), and the ``n`` new
     calls.

   Both are sums of independent Bernoulli variables; the excess ``X = D - S`` is approximated as
   normal and the expected number of abandons among the calls now in flight is taken as
   ``max over tau of E[X(tau)+]`` (an answered call finding more callers than free agents is lost
   after the grace, so lost calls are the running excess).
3. **Marginal rule.** Dial the largest ``n`` such that the *marginal* expected abandons of the
   ``n``-th call stay below ``lambda * P(needs agent)``: a call is placed only while its own chance of
   being abandoned is below ``lambda``. Constrained throughput maximisation gives exactly such a
   threshold policy; the average abandon rate it produces is below ``lambda``.
4. **Spending the budget.** ``lambda`` is set by feedback so that the realised abandon rate (recent
   abandons per agent-needing answer) tracks a local target ``r``. ``r`` starts at
   ``target_fraction * cap`` and is raised by the budget not yet used in the tightest window, spread
   over the next ``spend_horizon`` seconds of expected answers (never above the cap). The hard limit
   in step 1 holds regardless of what the feedback does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .config import CampaignConfig, DialMode
from .estimators import LiveStats
from .ledger import AbandonBudget

__all__ = [
    "Pacer",
    "PacingState",
    "PredictivePacer",
    "PreviewPacer",
    "ProgressivePacer",
    "make_pacer",
]


@dataclass(frozen=True, slots=True)
class PacingState:
    """What a pacer may look at. Built by the shell from its live view of agents and channels.

    * ``busy_elapsed``: for every agent on a call or in wrap-up, seconds since that call connected.
    * ``agents_in_wrapup``: how many of those are in wrap-up (no longer holding a trunk).
    * ``ringing``: ``(seconds since dial, count)`` groups of calls not answered yet.
    * ``answered_elapsed``: seconds since answer of answered calls whose AMD is still running.
    * ``waiting``: live answers waiting for an agent (inside the connect grace).
    * ``amd_in_flight``: calls in flight that may still be classified machine by AMD.
    """

    agents_logged_in: int
    agents_idle: int
    busy_elapsed: Sequence[float]
    agents_in_wrapup: int
    ringing: Sequence[tuple[float, int]]
    answered_elapsed: Sequence[float]
    waiting: int
    amd_in_flight: int
    leads_available: int
    trunk_limit: int
    stats: LiveStats
    budget: AbandonBudget

    @property
    def ringing_count(self) -> int:
        return sum(c for _, c in self.ringing)

    @property
    def calls_in_flight(self) -> int:
        return self.ringing_count + len(self.answered_elapsed) + self.waiting

    @property
    def agents_talking(self) -> int:
        return len(self.busy_elapsed) - self.agents_in_wrapup

    @property
    def at_risk(self) -> int:
        return max(0, self.calls_in_flight - self.agents_idle)

    def room(self, in_flight: int | None = None) -> int:
        """Calls the trunks and the lead supply allow right now."""
        f = self.calls_in_flight if in_flight is None else in_flight
        return max(0, min(self.trunk_limit - f - self.agents_talking, self.leads_available))


class Pacer(Protocol):
    name: str

    def decide(self, state: PacingState, now: float) -> int: ...


class PreviewPacer:
    """Preview mode: the agent triggers each call; the pacer never dials by itself."""

    name = "preview"

    def decide(self, state: PacingState, now: float) -> int:
        return 0


class ProgressivePacer:
    """One call per idle agent that has no call in flight yet (dial ratio exactly 1.0).

    Every call has a reserved agent (in-flight calls never outnumber idle agents), so progressive
    dialing cannot abandon.
    """

    name = "progressive"

    def decide(self, state: PacingState, now: float) -> int:
        f = state.calls_in_flight
        return max(0, min(state.agents_idle - f, state.room(f)))


def _expected_positive(mu: float, var: float) -> float:
    """E[max(X, 0)] for X ~ Normal(mu, var)."""
    if var <= 1e-12:
        return mu if mu > 0 else 0.0
    sd = math.sqrt(var)
    z = mu / sd
    return sd * math.exp(-0.5 * z * z) * 0.3989422804014327 + mu * 0.5 * (1.0 + math.erf(z * 0.7071067811865476))


class _Forecast:
    """Lookup tables rebuilt from ``LiveStats`` every ``refresh`` seconds."""

    __slots__ = (
        "built_at",
        "version",
        "taus",
        "amd",
        "p_need",
        "q",
        "supply",
        "supply_tail",
        "ring",
        "ring_total",
        "new_row",
    )

    def __init__(self, config: CampaignConfig, stats: LiveStats, grid: int, now: float) -> None:
        self.built_at = now
        self.version = stats.version
        amd = stats.amd_time.mean() if config.amd_enabled else 0.0
        g = config.connect_within
        horizon = config.ring_timeout + amd + g
        taus = [horizon * (k + 1) / grid for k in range(grid)]
        self.taus = taus
        self.amd = amd
        p = stats.p_answer.value
        c = stats.p_need.value
        self.p_need = c
        self.q = p * c
        # supply: conditional P(free by tau+g | busy for e seconds), and its Bernoulli variance
        hs = stats.handle_time
        emax = int(min(4 * 3600.0, hs.quantile(0.999) * 1.5 + horizon)) + 1
        supply: list[tuple[float, ...]] = []
        surv = [hs.survival(float(e)) for e in range(emax + int(horizon + g) + 2)]
        for e in range(emax + 1):
            s_e = surv[e]
            row: list[float] = []
            if s_e <= 0.0:
                row = [1.0] * grid + [0.0] * grid
            else:
                probs = []
                for tau in taus:
                    x = e + tau + g
                    i = int(x)
                    frac = x - i
                    s_x = surv[i] * (1 - frac) + surv[i + 1] * frac
                    probs.append(min(1.0, max(0.0, 1.0 - s_x / s_e)))
                row = probs + [pr * (1.0 - pr) for pr in probs]
            supply.append(tuple(row))
        self.supply = supply
        self.supply_tail = supply[-1]
        # ringing: P(needs agent by tau | unanswered after r seconds), and eventual P(needs agent)
        at = stats.answer_time
        rmax = int(config.ring_timeout) + 2
        ring: list[tuple[float, ...]] = []
        ring_total: list[float] = []
        for r in range(rmax + 1):
            a_r = at.cdf(float(r))
            denom = 1.0 - p * a_r
            if denom <= 1e-9:
                ring.append(tuple([0.0] * (2 * grid)))
                ring_total.append(0.0)
                continue
            probs = [max(0.0, c * p * (at.cdf(r + tau - amd) - a_r) / denom) for tau in taus]
            ring.append(tuple(probs + [pr * (1.0 - pr) for pr in probs]))
            ring_total.append(max(0.0, c * p * (1.0 - a_r) / denom))
        self.ring = ring
        self.ring_total = ring_total
        self.new_row = ring[0][:grid]


class PredictivePacer:
    """Our predictive pacer (see module docstring). One instance per campaign; keeps feedback state."""

    name = "predictive"

    def __init__(
        self,
        config: CampaignConfig,
        *,
        target_fraction: float = 0.9,
        spend_horizon: float = 1800.0,
        grid: int = 8,
        refresh_seconds: float = 120.0,
        feedback_seconds: float = 30.0,
        feedback_gain: float = 0.25,
        initial_threshold: float | None = None,
    ) -> None:
        if not 0.0 < target_fraction <= 1.0:
            raise ValueError("target_fraction must be in (0, 1]")
        self.config = config
        self.cap = min(r.cap for r in config.abandon_rules)
        self.target_fraction = target_fraction
        self.spend_horizon = spend_horizon
        self.grid = grid
        self.refresh_seconds = refresh_seconds
        self.feedback_seconds = feedback_seconds
        self.feedback_gain = feedback_gain
        self.threshold = initial_threshold if initial_threshold is not None else 2.0 * self.cap
        self._forecast: _Forecast | None = None
        self._fb_at: float | None = None
        self._fb_last: tuple[int, int] = (0, 0)
        self._ab_ewma = 0.0
        self._need_ewma = 0.0
        self._ticks = 0
        self._soft_bound_ticks = 0
        self.local_target = self.cap * target_fraction
        self.last_soft: int = 0
        self.last_hard: int = 0

    # -- feedback ----------------------------------------------------------------------------
    def _feedback(self, state: PacingState, now: float) -> None:
        counters = state.stats.counters
        if self._fb_at is None:
            self._fb_at = now
            self._fb_last = (counters.abandons, counters.needs_agent)
            return
        if now - self._fb_at < self.feedback_seconds:
            return
        da = counters.abandons - self._fb_last[0]
        dn = counters.needs_agent - self._fb_last[1]
        elapsed = now - self._fb_at
        self._fb_at = now
        self._fb_last = (counters.abandons, counters.needs_agent)
        decay = 0.5 ** (elapsed / 600.0)
        self._ab_ewma = self._ab_ewma * decay + da
        self._need_ewma = self._need_ewma * decay + dn
        # local target: base + unused budget of the tightest window spread over spend_horizon
        base = self.cap * self.target_fraction
        need_rate = self._need_ewma / 600.0 * math.log(2) if self._need_ewma > 0 else 0.0
        spare = math.inf
        for rb in state.budget.rules:
            cnt = rb.now_counts
            spare = min(spare, rb.rule.cap * self.target_fraction * cnt.denominator - cnt.numerator)
        upcoming = max(1.0, need_rate * self.spend_horizon)
        self.local_target = min(self.cap, max(0.3 * base, base + spare / upcoming))
        # threshold: integral control of log(lambda) towards the local target
        expected = self._need_ewma * self.local_target
        if self._need_ewma <= 0:
            return
        realised = self._ab_ewma / self._need_ewma
        err = (self.local_target - realised) / self.local_target
        confidence = min(1.0, expected / 3.0)
        step = self.feedback_gain * max(-1.0, min(1.0, err)) * confidence
        soft_binding = self._soft_bound_ticks >= 0.5 * max(1, self._ticks)
        if step > 0 and not soft_binding:
            step = 0.0  # the hard limit, not lambda, was holding us back: do not wind up
        self.threshold = min(0.5, max(0.002, self.threshold * math.exp(step)))
        self._ticks = 0
        self._soft_bound_ticks = 0

    # -- decision ----------------------------------------------------------------------------
    def decide(self, state: PacingState, now: float) -> int:
        self._feedback(state, now)
        idle = state.agents_idle
        ringing = state.ringing
        ring_total = 0
        for _, cnt in ringing:
            ring_total += cnt
        answered = state.answered_elapsed
        f = ring_total + len(answered) + state.waiting
        room = state.room(f)
        if room <= 0:
            return 0
        hard = min(room, state.budget.max_new_calls(idle, f, state.amd_in_flight))
        self.last_hard = hard
        covered = max(0, idle - f)
        if hard <= covered:
            self.last_soft = hard
            return hard
        fc = self._forecast
        if (
            fc is None
            or (now - fc.built_at >= self.refresh_seconds and fc.version != state.stats.version)
            or now < fc.built_at
        ):
            fc = self._forecast = _Forecast(self.config, state.stats, self.grid, now)
        k_n = self.grid
        # supply
        sup = fc.supply
        emax = len(sup) - 1
        rows = [sup[e] if (e := int(x)) <= emax else fc.supply_tail for x in state.busy_elapsed]
        if rows:
            sums = [sum(col) for col in zip(*rows, strict=True)]
        else:
            sums = [0.0] * (2 * k_n)
        mean = [-(idle + s) for s in sums[:k_n]]
        var = sums[k_n:]
        # demand: waiting, answered (AMD running), ringing
        c = fc.p_need
        w = state.waiting
        for k in range(k_n):
            mean[k] += w
        if answered:
            cv = c * (1.0 - c)
            taus = fc.taus
            for s in answered:
                due = fc.amd - s
                for k in range(k_n):
                    if taus[k] >= due:
                        mean[k] += c
                        var[k] += cv
        ring_tab = fc.ring
        rlast = len(ring_tab) - 1
        for elapsed, cnt in ringing:
            r = int(elapsed)
            row = ring_tab[r if r <= rlast else rlast]
            for k in range(k_n):
                mean[k] += cnt * row[k]
                var[k] += cnt * row[k + k_n]
        new = fc.new_row
        new_var = [x * (1.0 - x) for x in new]

        def abandons(n: int) -> float:
            best = 0.0
            for k in range(k_n):
                e = _expected_positive(mean[k] + n * new[k], var[k] + n * new_var[k])
                if e > best:
                    best = e
            return best

        limit = self.threshold * fc.q
        # largest n in [covered, hard] whose marginal expected abandons stay under the threshold
        lo, hi = covered, hard
        base_lo = abandons(lo)
        if abandons(lo + 1) - base_lo > limit:
            n = lo
        else:
            lo += 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if abandons(mid) - abandons(mid - 1) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            n = lo
        self._ticks += 1
        if n < hard:
            self._soft_bound_ticks += 1
        self.last_soft = n
        return n


def make_pacer(config: CampaignConfig) -> Pacer:
    """The pacer for the campaign's dial mode."""
    if config.mode is DialMode.PREVIEW:
        return PreviewPacer()
    if config.mode is DialMode.PROGRESSIVE:
        return ProgressivePacer()
    return PredictivePacer(config)
