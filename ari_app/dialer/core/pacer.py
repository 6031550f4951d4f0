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
   this is exactly progressive dialing: one call per idle agent not already covered. Covered calls
   (up to one per idle agent) are always placed; everything below only decides how far to go beyond.
2. **Forecast.** On a grid of instants ``tau`` up to the latest time a call placed now can need an
   agent (ring timeout + AMD + connect grace) it forecasts

   * supply ``S(tau)``: idle agents plus busy agents free by ``tau + grace``; each busy agent adds
     its probability of finishing given the seconds it has been busy, ``1 - Surv(e+tau+g)/Surv(e)``,
     from a Kaplan-Meier estimate of the handle time (calls still in progress are censored
     observations, so a young campaign is not biased towards its short calls);
   * demand ``D(tau)``: live answers waiting now, answered calls whose AMD decision falls before
     ``tau`` (times P(needs agent)), ringing calls answered in time (the answer-time hazard given the
     seconds already rung, times P(answer) and P(needs agent)), and the new calls.

   Both are sums of independent Bernoulli variables, approximated as normal; the estimation error of
   P(answer) and P(needs agent) (Beta-like, from the number of outcomes seen) adds a common-mode
   variance to all demand, which makes a new campaign cautious until its own answers are known.
3. **Per-call abandon probability.** The ``n``-th new call is abandoned if, when it needs an agent, the
   other demand has already used every agent free by then (the grace included):
   ``p(n) = sum_k w_k * P(D_k + (n-1) new_k - S_k >= 0)``, where ``w_k`` is the chance it needs its
   agent in grid interval ``k``. This ignores that earlier abandons relieve later calls (so it errs on
   the safe side) but, unlike a single expected-excess number, it charges every call for the moment
   it lands. The pacer places the largest ``n`` with ``p(n) <= lambda``; for throughput at a given
   abandon rate such a threshold on each call's own risk is the optimal shape of policy, and the
   average rate it produces is below ``lambda``.
4. **Spending the budget.** ``lambda`` = local target x a correction in [1/3, 3] learnt by slow
   feedback from the realised rate (recent abandons per agent-needing answer). The local target is
   ``target_fraction * cap`` when the tightest window has spare budget, lower while the budget is
   below a reserve for the at-risk calls the pacer wants in flight (it then rebuilds slack rather than
   stall at the hard limit). The hard limit in step 1 holds whatever the feedback does.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left
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


class _Forecast:
    """Lookup tables rebuilt from ``LiveStats`` now and then (estimates move slowly)."""

    __slots__ = (
        "built_at",
        "version",
        "taus",
        "amd",
        "p_need",
        "q",
        "rel_var",
        "supply",
        "supply_tail",
        "ring_t",
        "new_row",
    )

    def __init__(
        self, config: CampaignConfig, stats: LiveStats, grid: int, now: float, busy_elapsed: Sequence[float] = ()
    ) -> None:
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
        # relative variance of the estimate of q = P(answer) * P(needs agent), Beta-like
        n_p = stats.p_answer.trials + stats.p_answer.prior_weight
        n_c = stats.p_need.trials + stats.p_need.prior_weight
        self.rel_var = (1.0 - p) / max(p * n_p, 1e-9) + (1.0 - c) / max(c * n_c, 1e-9)
        # supply[e]: P(free by tau+g | busy for e seconds) for each tau, then the Bernoulli variances
        hs = stats.handle_time
        emax = int(min(4 * 3600.0, hs.quantile(0.999) * 1.5 + horizon)) + 1
        surv = hs.survival_curve(busy_elapsed, emax + int(horizon + g) + 2)
        offsets = [(int(tau + g), tau + g - int(tau + g)) for tau in taus]
        supply: list[tuple[float, ...]] = []
        for e in range(emax + 1):
            s_e = surv[e]
            if s_e <= 0.0:
                supply.append(tuple([1.0] * grid + [0.0] * grid))
                continue
            probs = []
            for off, frac in offsets:
                i = e + off
                s_x = surv[i] * (1.0 - frac) + surv[i + 1] * frac
                pr = 1.0 - s_x / s_e
                probs.append(0.0 if pr < 0.0 else 1.0 if pr > 1.0 else pr)
            supply.append(tuple(probs + [pr * (1.0 - pr) for pr in probs]))
        self.supply = supply
        self.supply_tail = supply[-1]
        # ring_t[k][r]: P(needs agent by tau_k | unanswered after r s of ringing); k >= grid: variances
        at = stats.answer_time
        rmax = int(config.ring_timeout) + 2
        ring_t: list[list[float]] = [[0.0] * (rmax + 1) for _ in range(2 * grid)]
        for r in range(rmax + 1):
            a_r = at.cdf(float(r))
            denom = 1.0 - p * a_r
            if denom <= 1e-9:
                continue
            for k, tau in enumerate(taus):
                pr = max(0.0, c * p * (at.cdf(r + tau - amd) - a_r) / denom)
                ring_t[k][r] = pr
                ring_t[k + grid][r] = pr * (1.0 - pr)
        self.ring_t = ring_t
        self.new_row = [ring_t[k][0] for k in range(grid)]


class PredictivePacer:
    """Our predictive pacer (see module docstring). One instance per campaign; keeps feedback state."""

    name = "predictive"

    def __init__(
        self,
        config: CampaignConfig,
        *,
        target_fraction: float = 0.9,
        reserve_factor: float = 1.5,
        spend_horizon: float = 1800.0,
        grid: int = 8,
        refresh_seconds: float = 600.0,
        feedback_seconds: float = 30.0,
        feedback_gain: float = 0.1,
        max_correction: float = 3.0,
        initial_threshold: float | None = None,
    ) -> None:
        if not 0.0 < target_fraction <= 1.0:
            raise ValueError("target_fraction must be in (0, 1]")
        if grid < 1:
            raise ValueError("grid must be >= 1")
        self.config = config
        self.cap = min(r.cap for r in config.abandon_rules)
        self.target_fraction = target_fraction
        self.reserve_factor = reserve_factor
        self.spend_horizon = spend_horizon
        self.grid = grid
        self.refresh_seconds = refresh_seconds
        self._refresh_interval = min(30.0, refresh_seconds)
        self.feedback_seconds = feedback_seconds
        self.feedback_gain = feedback_gain
        self.max_correction = max_correction
        self._fixed_threshold = initial_threshold
        self.correction = 1.0  # feedback multiplier on the local target
        self.threshold = initial_threshold if initial_threshold is not None else self.cap * target_fraction
        self._forecast: _Forecast | None = None
        self._fb_at: float | None = None
        self._fb_last: tuple[int, int] = (0, 0)
        self._ab_ewma = 0.0
        self._need_ewma = 0.0
        # Per-decision samples for the feedback, weighted by the seconds since the previous decision,
        # so a caller that asks twice for one tick (the shell re-decides at the dial moment) or at an
        # irregular cadence does not count some moments more than others.
        self._last_decide: float | None = None
        self._ticks = 0.0
        self._soft_bound_ticks = 0.0
        self._risk_sum = 0.0
        self._risk_ticks = 0.0
        self._risk_ewma = 0.0
        self.local_target = self.cap * target_fraction
        self.last_soft: int = 0
        self.last_hard: int = 0
        # seconds of decisions, and of those where the abandon budget (not the forecast, the trunks or
        # the leads) set the count: how long a new campaign stays held by its hard limit
        self.seconds_decided = 0.0
        self.seconds_budget_bound = 0.0
        self.trace: list[tuple[float, int, int, float, int, int]] | None = None

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
        # Local target: spend the budget above a reserve for the at-risk calls we want to keep in
        # flight. Slack and reserve are in abandons; at local rate r the slack moves by
        # (cap - r) / (1 - cap) per agent-needing answer, so r = cap + excess * (1 - cap) / upcoming.
        need_rate = self._need_ewma / 600.0 * math.log(2) if self._need_ewma > 0 else 0.0
        upcoming = max(1.0, need_rate * self.spend_horizon)
        if self._risk_ticks:
            self._risk_ewma = self._risk_ewma * decay + (1.0 - decay) * (self._risk_sum / self._risk_ticks)
        self._risk_sum = 0.0
        self._risk_ticks = 0.0
        slack = min(rb.affordable_abandons for rb in state.budget.rules)
        excess = slack - self.reserve_factor * self._risk_ewma
        target = self.cap + excess * (1.0 - self.cap) / upcoming
        self.local_target = min(self.cap * self.target_fraction, max(0.1 * self.cap, target))
        # threshold = local target x a bounded correction learnt from the realised rate
        soft_binding = self._soft_bound_ticks >= 0.5 * max(1.0, self._ticks)
        self._ticks = 0.0
        self._soft_bound_ticks = 0.0
        if self._need_ewma > 0:
            realised = self._ab_ewma / self._need_ewma
            err = (self.local_target - realised) / self.local_target
            confidence = min(1.0, max(self._need_ewma * self.local_target, self._ab_ewma) / 3.0)
            step = self.feedback_gain * max(-1.0, min(1.0, err)) * confidence
            if step > 0 and not soft_binding:
                step = 0.0  # the hard limit, not the threshold, was holding us back: do not wind up
            self.correction = min(self.max_correction, max(1.0 / self.max_correction, self.correction * math.exp(step)))
        if self._fixed_threshold is None:
            self.threshold = min(0.9, self.local_target * self.correction)

    def _tables(self, state: PacingState, now: float) -> _Forecast:
        fc = self._forecast
        if fc is None or now < fc.built_at or (
            now - fc.built_at >= self._refresh_interval and fc.version != state.stats.version
        ):
            fc = self._forecast = _Forecast(self.config, state.stats, self.grid, now, state.busy_elapsed)
            self._refresh_interval = min(self.refresh_seconds, self._refresh_interval * 2.0)
        return fc

    # -- decision ----------------------------------------------------------------------------
    def _sample_weight(self, now: float) -> float:
        last = self._last_decide
        self._last_decide = now
        if last is None:
            return 1.0
        return min(5.0, max(0.0, now - last))

    def decide(self, state: PacingState, now: float) -> int:
        self._feedback(state, now)
        w = self._sample_weight(now)
        self.seconds_decided += w
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
            if hard < room:  # the budget, not the trunks, is holding us at progressive
                self.seconds_budget_bound += w
                self._risk_sum += w * (1.25 * max(0, f + hard - idle) + 1.0)
                self._risk_ticks += w
            return hard
        fc = self._tables(state, now)
        k_n = self.grid
        # supply (negated into the excess) from idle and busy agents
        sup = fc.supply
        emax = len(sup) - 1
        tail = fc.supply_tail
        rows = [sup[e] if (e := int(x)) <= emax else tail for x in state.busy_elapsed]
        if rows:
            acc = [sum(col) for col in zip(*rows, strict=True)]
        else:
            acc = [0.0] * (2 * k_n)
        mean = [state.waiting - idle - x for x in acc[:k_n]]
        var = acc[k_n:]
        dem = [0.0] * k_n  # demand whose size depends on the estimated probabilities
        # ringing calls, grouped by whole seconds rung
        ring_t = fc.ring_t
        rlast = len(ring_t[0]) - 1
        if ringing:
            cnt_r = [0] * (rlast + 1)
            for elapsed, cnt in ringing:
                r = int(elapsed)
                cnt_r[r if r <= rlast else rlast] += cnt
            for k in range(k_n):
                dem[k] = sum(map(operator.mul, cnt_r, ring_t[k]))
                mean[k] += dem[k]
                var[k] += sum(map(operator.mul, cnt_r, ring_t[k + k_n]))
        # answered calls whose AMD decision is still running
        if answered:
            c = fc.p_need
            cv = c * (1.0 - c)
            first = [0] * (k_n + 1)
            taus = fc.taus
            amd = fc.amd
            for s in answered:
                first[bisect_left(taus, amd - s)] += 1
            due = 0
            for k in range(k_n):
                due += first[k]
                mean[k] += c * due
                dem[k] += c * due
                var[k] += cv * due
        new = fc.new_row
        q = fc.q
        # weights: where in the horizon a new call that needs an agent needs it
        weights = [(new[k] - (new[k - 1] if k else 0.0)) / q if q > 0 else 0.0 for k in range(k_n)]
        new_var = [x * (1.0 - x) for x in new]
        erf = math.erf
        sqrt = math.sqrt
        live = [k for k in range(k_n) if weights[k] > 1e-6]

        # Estimation error of P(answer) and P(needs agent) moves all that demand together.
        rel = fc.rel_var

        def p_abandon(n: int) -> float:
            """P(the n-th new call finds no agent | it needs one), with n-1 other new calls."""
            m = n - 1
            total = 0.0
            for k in live:
                mu = mean[k] + m * new[k] + 0.5
                d = dem[k] + n * new[k]
                v = var[k] + m * new_var[k] + rel * d * d
                if v <= 1e-12:
                    pk = 1.0 if mu > 0.0 else 0.0
                else:
                    pk = 0.5 * (1.0 + erf(mu / sqrt(2.0 * v)))
                total += weights[k] * pk
            return total

        limit = self.threshold
        # Largest n in [covered, hard] whose own abandon probability stays under the threshold.
        # p_abandon is increasing in n, so gallop from `covered`, then bisect.
        lo = covered
        step = 1
        hi = hard
        while lo < hard:
            probe = min(hard, lo + step)
            if p_abandon(probe) <= limit:
                lo = probe
                step *= 2
            else:
                hi = probe - 1
                break
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if p_abandon(mid) <= limit:
                lo = mid
            else:
                hi = mid - 1
        n = lo
        self._ticks += w
        at_risk = max(0, f + n - idle)
        if n < hard:
            self._soft_bound_ticks += w
            self._risk_sum += w * at_risk
        else:
            self._risk_sum += w * (1.25 * at_risk + 1.0)
            if hard < room:
                self.seconds_budget_bound += w
        self._risk_ticks += w
        self.last_soft = n
        if self.trace is not None:
            self.trace.append((now, n, hard, p_abandon(n + 1), idle, f))
        return n


def make_pacer(config: CampaignConfig) -> Pacer:
    """The pacer for the campaign's dial mode."""
    if config.mode is DialMode.PREVIEW:
        return PreviewPacer()
    if config.mode is DialMode.PROGRESSIVE:
        return ProgressivePacer()
    return PredictivePacer(config)
