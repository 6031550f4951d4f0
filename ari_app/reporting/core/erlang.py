"""Erlang C and Erlang A: agents needed for a forecast, and the service level a staffing predicts.

Erlang C (M/M/N) assumes callers never hang up: it overstaffs when they do, and has no answer at
all when the load reaches the number of agents. Erlang A (M/M/N+M, Palm's model) adds
exponential patience with mean ``patience`` seconds, so it stays meaningful when overloaded and
predicts the abandon rate too. Both are pure functions of the forecast; times are seconds.

Service level is the definition used by our statistics (docs/statistics.md): answered within
``threshold`` over (answered + abandoned after ``threshold``). Erlang C has no abandons, so it
is just P(wait <= threshold).

Numerics: Erlang C through the Erlang B recursion (no factorials, stable for hundreds of
agents); Erlang A through the birth-death chain's stationary distribution (truncated where the
tail is below 1e-15) and the waiting time of an arriving caller as a small absorbing Markov
chain solved by uniformization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Agents we will ever propose for one queue and interval; beyond this the forecast is unusable.
MAX_AGENTS = 5000


class ErlangError(ValueError):
    """Bad forecast parameters; ``field`` names the offending one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Forecast:
    """``calls`` arriving per ``interval`` seconds, each taking ``aht`` seconds on average.
    ``patience`` (mean seconds a caller waits before hanging up) selects Erlang A."""

    calls: float
    aht: float
    interval: float = 1800.0
    threshold: float = 20.0
    target_sl: float = 0.8
    patience: float | None = None

    def __post_init__(self) -> None:
        _finite("calls", self.calls, minimum=0.0)
        _finite("aht", self.aht, positive=True)
        _finite("interval", self.interval, positive=True)
        _finite("threshold", self.threshold, minimum=0.0)
        _finite("target_sl", self.target_sl, minimum=0.0)
        if self.target_sl >= 1.0:
            raise ErlangError("target_sl", "must be below 1 (e.g. 0.8 for 80%)")
        if self.patience is not None:
            _finite("patience", self.patience, positive=True)

    @property
    def traffic(self) -> float:
        """Offered load in Erlangs: arrival rate times handle time."""
        return self.calls / self.interval * self.aht


@dataclass(frozen=True)
class Prediction:
    model: str  # "erlang_c" | "erlang_a"
    agents: int
    traffic: float  # Erlangs
    service_level: float  # our definition, 0..1
    probability_wait: float  # an arriving caller does not reach an agent at once
    asa: float  # mean wait of answered callers, seconds (inf when Erlang C is overloaded)
    occupancy: float  # share of agent time busy with calls
    abandon_rate: float  # share of callers who hang up while waiting (0 for Erlang C)


def _finite(name: str, value: float, *, minimum: float = 0.0, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ErlangError(name, f"expected a finite number, got {value!r}")
    if value < minimum or (positive and value <= 0):
        raise ErlangError(name, f"must be {'> 0' if positive else f'>= {minimum:g}'}, got {value!r}")


# ---------------------------------------------------------------------------------- Erlang C


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of an M/M/N/N loss system (B(0) = 1, B(k) = A·B/(k + A·B))."""
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a caller waits (all agents busy); 1.0 when overloaded (A >= N)."""
    if agents <= 0 or traffic >= agents:
        return 1.0
    if traffic <= 0:
        return 0.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1.0 - b))


def predict_c(forecast: Forecast, agents: int) -> Prediction:
    a = forecast.traffic
    if agents <= 0:
        return Prediction("erlang_c", agents, a, 0.0 if a > 0 else 1.0, 1.0, math.inf, 1.0, 0.0)
    pw = erlang_c(agents, a)
    if a >= agents:
        return Prediction("erlang_c", agents, a, 0.0, 1.0, math.inf, 1.0, 0.0)
    sl = 1.0 - pw * math.exp(-(agents - a) * forecast.threshold / forecast.aht)
    asa = pw * forecast.aht / (agents - a)
    return Prediction("erlang_c", agents, a, sl, pw, asa, a / agents, 0.0)


# ---------------------------------------------------------------------------------- Erlang A


def _stationary_a(agents: int, lam: float, mu: float, theta: float) -> list[float]:
    """Stationary distribution of the number of callers in an M/M/N+M system (index = callers)."""
    weights = [1.0]
    total = w = 1.0
    k = 0
    while True:
        k += 1
        death = min(k, agents) * mu + max(0, k - agents) * theta
        w = w * lam / death
        weights.append(w)
        total += w
        # Past N + lam/theta the ratio lam/death is below 1 and falls: stop once negligible.
        if k > agents and death > lam and w < 1e-16 * total:
            break
        if w > 1e250:  # rescale to stay in floating point range
            weights = [x / 1e250 for x in weights]
            total /= 1e250
            w /= 1e250
    return [x / total for x in weights]


def _absorption_by(t: float, start: list[float], agents: int, mu: float, theta: float) -> tuple[float, float]:
    """A caller who found j callers ahead of it in the queue (start[j]): probability it reached
    an agent, and that it hung up, within t seconds. Ahead of it, the queue shrinks at rate
    N·mu + j·theta (an agent frees up or someone ahead gives up); it hangs up at rate theta.
    Solved by uniformization: the chain after a Poisson(unif·t) number of jumps."""
    if not start or t <= 0:
        return 0.0, 0.0
    # A caller with j ahead needs j + 1 departures, at most N·mu + j·theta per second, before
    # it reaches an agent: from the first j where that many cannot happen within t (Poisson
    # tail below e^-50), it only hangs up, with probability 1 - e^(-theta·t).
    cut = 0
    while cut < len(start):
        m = t * (agents * mu + cut * theta)
        if cut + 1 > m + 10 * math.sqrt(m) + 30:
            break
        cut += 1
    far = sum(start[cut:]) * (1.0 - math.exp(-theta * t))
    start = start[:cut]
    n = len(start)
    if n == 0:
        return 0.0, far
    rates = [agents * mu + (j + 1) * theta for j in range(n)]
    unif = max(rates)
    mean = unif * t
    steps = int(mean + 12 * math.sqrt(mean) + 30)
    p = list(start)
    cum_s = cum_a = 0.0
    served = abandoned = 0.0
    log_w = -mean  # log Poisson(0; mean)
    for k in range(steps + 1):
        if k > 0:
            log_w += math.log(mean) - math.log(k)
        w_k = math.exp(log_w) if log_w > -745 else 0.0
        served += w_k * cum_s
        abandoned += w_k * cum_a
        nxt = [0.0] * n
        for j, pj in enumerate(p):
            if pj < 1e-300:
                continue
            if j == 0:
                cum_s += pj * agents * mu / unif
            else:
                nxt[j - 1] += pj * (agents * mu + j * theta) / unif
            cum_a += pj * theta / unif
            nxt[j] += pj * (1.0 - rates[j] / unif)
        p = nxt
    return served, abandoned + far


def _served_wait(start: list[float], agents: int, mu: float, theta: float) -> tuple[float, float]:
    """P(reach an agent) and E[wait · 1{reached}] over callers who queued (start[j]: j ahead).

    Given it is never the one to hang up, a caller's path is j, j-1, ..., 0, agent, with an
    Exp(N·mu + (i+1)·theta) stay in each step (competing exponentials: the stay does not depend
    on which way it is left)."""
    p_served = expected = 0.0
    survive = 1.0  # P(not hung up while passing steps 0..j)
    stay = 0.0  # mean time spent in steps 0..j
    for j, q in enumerate(start):
        r = agents * mu + (j + 1) * theta
        survive *= (agents * mu + j * theta) / r
        stay += 1.0 / r
        p_served += q * survive
        expected += q * survive * stay
    return p_served, expected


def predict_a(forecast: Forecast, agents: int) -> Prediction:
    if forecast.patience is None:
        raise ErlangError("patience", "Erlang A needs the callers' mean patience")
    a = forecast.traffic
    lam = forecast.calls / forecast.interval
    mu = 1.0 / forecast.aht
    theta = 1.0 / forecast.patience
    if lam == 0:
        return Prediction("erlang_a", agents, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    if agents <= 0:
        return Prediction("erlang_a", agents, a, 0.0, 1.0, math.inf, 0.0, 1.0)
    pi = _stationary_a(agents, lam, mu, theta)
    p_immediate = sum(pi[:agents])
    queued = pi[agents:]  # an arrival finding N + j callers has j ahead of it (PASTA)
    while len(queued) > 1 and queued[-1] < 1e-16:  # the far tail only slows the chain down
        queued.pop()
    p_served_q, wait_served = _served_wait(queued, agents, mu, theta)
    p_answered = p_immediate + p_served_q
    served_t, abandoned_t = _absorption_by(forecast.threshold, queued, agents, mu, theta)
    denominator = 1.0 - abandoned_t
    sl = (p_immediate + served_t) / denominator if denominator > 0 else 0.0
    busy = sum(min(k, agents) * p for k, p in enumerate(pi))
    asa = wait_served / p_answered if p_answered > 0 else math.inf
    return Prediction("erlang_a", agents, a, min(1.0, max(0.0, sl)), 1.0 - p_immediate, asa,
                      busy / agents, max(0.0, 1.0 - p_answered))


# ---------------------------------------------------------------------------------- staffing


def predict(forecast: Forecast, agents: int) -> Prediction:
    """Erlang A when the forecast has a patience, else Erlang C."""
    return predict_c(forecast, agents) if forecast.patience is None else predict_a(forecast, agents)


def agents_needed(forecast: Forecast) -> Prediction:
    """The fewest agents whose predicted service level reaches ``target_sl`` (with that prediction).

    Service level rises with the number of agents in both models, so a doubling search then a
    bisection finds it in a few evaluations. Erlang C starts just above the load (fewer agents
    than Erlangs never keep up); Erlang A may need fewer agents than Erlangs (callers give up)."""
    if forecast.traffic == 0:
        return predict(forecast, 0)
    low = 1 if forecast.patience is not None else max(1, math.floor(forecast.traffic) + 1)
    best = predict(forecast, low)
    if best.service_level >= forecast.target_sl:
        return best
    high = low
    while True:  # low fails; find a high that passes
        high = min(MAX_AGENTS, max(high + 1, high * 2))
        best = predict(forecast, high)
        if best.service_level >= forecast.target_sl:
            break
        if high >= MAX_AGENTS:
            raise ErlangError("calls", f"more than {MAX_AGENTS} agents would be needed")
        low = high
    while high - low > 1:
        mid = (low + high) // 2
        p = predict(forecast, mid)
        if p.service_level >= forecast.target_sl:
            high, best = mid, p
        else:
            low = mid
    return best
