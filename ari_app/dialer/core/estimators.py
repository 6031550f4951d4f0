"""Online estimators the pacer reads: outcome probabilities and time distributions.

All are updated from call outcomes by the shell (or the simulator) and are deterministic. They start
from a prior so that a fresh campaign is paced sensibly before it has data, and forget slowly so
that they follow drifting lists and times of day.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DecayingRate", "LiveStats", "SampleWindow", "lognormal_prior"]


class DecayingRate:
    """Probability of a binary outcome per trial with exponential forgetting and a Beta-like prior."""

    __slots__ = ("_decay", "_n", "_hits", "_prior", "_weight")

    def __init__(self, prior: float, prior_weight: float = 20.0, half_life: float = 2000.0) -> None:
        if not 0.0 <= prior <= 1.0:
            raise ValueError("prior must be in [0, 1]")
        self._prior = prior
        self._weight = prior_weight
        self._decay = 0.5 ** (1.0 / half_life)
        self._n = 0.0
        self._hits = 0.0

    def add(self, hit: bool) -> None:
        d = self._decay
        self._n = self._n * d + 1.0
        self._hits = self._hits * d + (1.0 if hit else 0.0)

    @property
    def trials(self) -> float:
        return self._n

    @property
    def prior_weight(self) -> float:
        return self._weight

    @property
    def value(self) -> float:
        return (self._hits + self._prior * self._weight) / (self._n + self._weight)


def lognormal_prior(mean: float, cv: float, n: int = 41) -> list[float]:
    """``n`` evenly spaced quantiles of a lognormal with this mean and coefficient of variation."""
    sigma = math.sqrt(math.log(1.0 + cv * cv))
    mu = math.log(mean) - sigma * sigma / 2.0
    out = []
    for i in range(n):
        p = (i + 0.5) / n
        out.append(math.exp(mu + sigma * _norm_ppf(p)))
    return out


def _norm_ppf(p: float) -> float:
    # Acklam's rational approximation (|error| < 1.2e-9), enough for priors.
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716, 2.506628277459239)
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783)
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    if p > 1 - lo:
        return -_norm_ppf(1 - p)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1
    )


class SampleWindow:
    """The last ``capacity`` samples of a positive quantity; empirical CDF and survival.

    Until ``min_samples`` real samples exist, the prior samples are mixed in. The tail beyond the
    largest sample is extended with a constant hazard equal to 1 / (mean excess of the top decile), so
    the survival of an unusually long call is never exactly zero.
    """

    __slots__ = ("_buf", "_prior", "_min", "_sorted", "_dirty", "_version", "_tail_rate")

    def __init__(self, prior: Sequence[float], capacity: int = 1000, min_samples: int = 30) -> None:
        if not prior:
            raise ValueError("prior must not be empty")
        self._buf: deque[float] = deque(maxlen=capacity)
        self._prior = tuple(sorted(float(x) for x in prior))
        self._min = min_samples
        self._sorted: list[float] = list(self._prior)
        self._dirty = False
        self._version = 0
        self._tail_rate = 1.0

    def add(self, x: float) -> None:
        self._buf.append(max(0.0, float(x)))
        self._dirty = True
        self._version += 1

    @property
    def count(self) -> int:
        return len(self._buf)

    @property
    def version(self) -> int:
        return self._version

    def _refresh(self) -> list[float]:
        if self._dirty or self._version == 0:
            data = list(self._buf)
            if len(data) < self._min:
                data.extend(self._prior)
            data.sort()
            self._sorted = data
            k = max(1, len(data) // 10)
            top = data[-k:]
            threshold = data[-k - 1] if len(data) > k else 0.0
            excess = sum(top) / len(top) - threshold
            self._tail_rate = 1.0 / max(excess, 1.0)
            self._dirty = False
            self._version = max(self._version, 1)
        return self._sorted

    def cdf(self, x: float) -> float:
        s = self._refresh()
        return bisect_right(s, x) / len(s)

    def survival(self, x: float) -> float:
        s = self._refresh()
        n = len(s)
        k = bisect_right(s, x)
        if k < n:
            return (n - k) / n
        # beyond the data: geometric-ish tail from the last point
        return (0.5 / n) * math.exp(-self._tail_rate * (x - s[-1]))

    def mean(self) -> float:
        s = self._refresh()
        return sum(s) / len(s)

    def survival_curve(self, censored: Sequence[float], upto: int, prior_weight: float = 10.0) -> list[float]:
        """Kaplan-Meier survival at 0, 1, ..., ``upto`` seconds.

        Completed samples are events; ``censored`` are durations still running (e.g. the elapsed
        handle time of the agents busy right now), so long calls in progress are not forgotten, which
        would bias a young campaign towards short handle times. The prior counts as ``prior_weight``
        samples. Beyond the last event the curve continues with a constant hazard.
        """
        items: list[tuple[float, int, float]] = []  # (time, 0 = event / 1 = censored, weight)
        for x in self._buf:
            items.append((x, 0, 1.0))
        w = prior_weight / len(self._prior)
        for x in self._prior:
            items.append((x, 0, w))
        for c in censored:
            items.append((max(0.0, float(c)), 1, 1.0))
        items.sort()
        at_risk = sum(it[2] for it in items)
        surv = 1.0
        knots: list[tuple[float, float]] = []  # (time, survival just after it)
        i = 0
        n = len(items)
        last_event = 0.0
        while i < n:
            t = items[i][0]
            d = 0.0
            c = 0.0
            while i < n and items[i][0] == t:
                if items[i][1] == 0:
                    d += items[i][2]
                else:
                    c += items[i][2]
                i += 1
            if d > 0 and at_risk > 0:
                surv *= max(0.0, 1.0 - d / at_risk)
                knots.append((t, surv))
                last_event = t
            at_risk -= d + c
        data = sorted([x for x in self._buf] + list(self._prior))
        k = max(1, len(data) // 10)
        threshold = data[-k - 1] if len(data) > k else 0.0
        excess = sum(data[-k:]) / k - threshold
        rate = 1.0 / max(excess, 1.0)
        out: list[float] = []
        j = 0
        cur = 1.0
        floor = max(surv, 1e-6)
        for e in range(upto + 1):
            while j < len(knots) and knots[j][0] <= e:
                cur = knots[j][1]
                j += 1
            if e > last_event:
                cur = floor * math.exp(-rate * (e - last_event))
            out.append(cur)
        return out

    def quantile(self, p: float) -> float:
        s = self._refresh()
        return s[min(len(s) - 1, max(0, int(p * len(s))))]


@dataclass(slots=True)
class CampaignCounters:
    """Monotone totals since the campaign (or simulation) started."""

    dials: int = 0
    answers: int = 0
    needs_agent: int = 0
    connects: int = 0
    humans: int = 0  # live answers incl. abandoned
    abandons: int = 0
    machines: int = 0  # AMD machine classifications


class LiveStats:
    """What the pacer knows about this campaign's traffic, updated from outcomes.

    * ``p_answer``: P(a dial is answered, by a person or a machine).
    * ``p_need``: P(an answered call needs an agent): AMD said human, or AMD was not used.
    * ``answer_time``: seconds from dial to answer, for answered calls.
    * ``amd_time``: seconds from answer to the AMD decision.
    * ``handle_time``: seconds an agent is busy per connected call (talk + wrap-up).
    """

    def __init__(
        self,
        *,
        answer_prior: float = 0.3,
        need_prior: float = 0.5,
        answer_time_prior: Sequence[float] | None = None,
        amd_time_prior: Sequence[float] = (2.75,),
        handle_time_prior: Sequence[float] | None = None,
        half_life: float = 3000.0,
    ) -> None:
        # weak priors (4 pseudo-trials): a new campaign is paced cautiously until its own calls
        # have shown the answer rate (the pacer widens its forecast by the estimation error)
        self.p_answer = DecayingRate(answer_prior, 4.0, half_life)
        self.p_need = DecayingRate(need_prior, 4.0, half_life)
        self.answer_time = SampleWindow(answer_time_prior or lognormal_prior(10.0, 0.4), 1000, 30)
        self.amd_time = SampleWindow(amd_time_prior, 200, 10)
        self.handle_time = SampleWindow(handle_time_prior or lognormal_prior(120.0, 0.6), 1000, 30)
        self.counters = CampaignCounters()

    # -- updates from the shell --------------------------------------------------------------
    def on_dial(self, n: int = 1) -> None:
        self.counters.dials += n

    def on_answer(self, seconds_from_dial: float) -> None:
        self.counters.answers += 1
        self.p_answer.add(True)
        self.answer_time.add(seconds_from_dial)

    def on_not_answered(self) -> None:
        """No answer, busy, or failed."""
        self.p_answer.add(False)

    def on_classified(self, needs_agent: bool, amd_seconds: float | None = None) -> None:
        """AMD decided (or no AMD: ``needs_agent`` True, ``amd_seconds`` None)."""
        self.p_need.add(needs_agent)
        if needs_agent:
            self.counters.needs_agent += 1
        else:
            self.counters.machines += 1
        if amd_seconds is not None:
            self.amd_time.add(amd_seconds)

    def on_connect(self, human: bool) -> None:
        self.counters.connects += 1
        if human:
            self.counters.humans += 1

    def on_abandon(self) -> None:
        self.counters.abandons += 1
        self.counters.humans += 1

    def on_handle_done(self, seconds: float) -> None:
        self.handle_time.add(seconds)

    @property
    def version(self) -> int:
        return self.answer_time.version + self.handle_time.version + self.amd_time.version
