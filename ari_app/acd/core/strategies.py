"""Which available agent(s) get an offer for an item, per queue strategy.

Each queue keeps its offerable agents sorted by an :data:`AgentKey`
``(penalty, metric, member_index, agent_id)``; the metric is fixed while the agent is
available (idle-since, calls taken, talk time only change on a call), so the best agent is
found by walking that order until one is eligible - no scan of every idle agent.

Rules, as app_queue: lowest penalty first; within a penalty the strategy's metric; ties to
member order. Agents already tried for this item (let it ring out) come after every untried
eligible agent. ``ring-all`` rings every eligible agent of the lowest eligible penalty;
``random`` draws within the lowest penalty; ``weighted-random`` draws over all eligible
agents with weight 1/(1+penalty).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator

AgentKey = tuple[int, float, int, str]  # (penalty, metric, member_index, agent_id)

_MASK = (1 << 64) - 1


class SplitMix64:
    """Tiny deterministic PRNG whose whole state is one int (easy to snapshot)."""

    def __init__(self, state: int = 0x5EED) -> None:
        self.state = state & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """Uniform in [0, 1)."""
        return (self.next() >> 11) / float(1 << 53)


def metric(strategy: str, *, idle_since: float, calls_taken: int, talk_time: float) -> float:
    """The per-agent ordering value of a strategy (lower is offered first)."""
    if strategy == "longest-idle":
        return idle_since
    if strategy == "fewest-calls":
        return float(calls_taken)
    if strategy == "least-talk-time":
        return talk_time
    return 0.0  # member order only


def preference_order(
    strategy: str, keys: list[AgentKey], rr_last_index: int | None
) -> Iterator[AgentKey]:
    """Walk the sorted keys in offer preference order. ``round-robin`` rotates every
    penalty tier to start after the member offered last (app_queue's rrmemory)."""
    if strategy != "round-robin" or rr_last_index is None:
        yield from keys
        return
    i, n = 0, len(keys)
    while i < n:
        penalty = keys[i][0]
        end = bisect_left(keys, (penalty + 1,), lo=i)
        start = bisect_left(keys, (penalty, 0.0, rr_last_index + 1), lo=i, hi=end)
        yield from keys[start:end]
        yield from keys[i:start]
        i = end


def select(
    strategy: str,
    keys: list[AgentKey],
    ok: Callable[[str], bool],
    tried: Collection[str],
    rng: SplitMix64,
    rr_last_index: int | None = None,
) -> list[str]:
    """Agents to ring now among the sorted ``keys`` of offerable agents, filtered by ``ok``
    (eligibility). Walks only as far as needed; random strategies sample with rejection."""
    if strategy == "ring-all":
        tier: int | None = None
        out: list[str] = []
        for penalty, _, _, aid in keys:
            if tier is not None and penalty != tier:
                break
            if ok(aid):
                tier = penalty
                out.append(aid)
        return out
    if strategy in ("random", "weighted-random"):
        return _draw(strategy, keys, ok, tried, rng)
    fallback: str | None = None
    for key in preference_order(strategy, keys, rr_last_index):
        aid = key[3]
        if not ok(aid):
            continue
        if aid not in tried:
            return [aid]
        if fallback is None:
            fallback = aid
    return [] if fallback is None else [fallback]


def _weight(penalty: int) -> float:
    return 1.0 / (1 + penalty)


def _draw(
    strategy: str,
    keys: list[AgentKey],
    ok: Callable[[str], bool],
    tried: Collection[str],
    rng: SplitMix64,
) -> list[str]:
    """``random``: uniform over the lowest penalty; ``weighted-random``: over everyone with
    weight 1/(1+penalty); eligible untried agents only, else eligible tried ones. A few
    rejection-sampling draws (exact distribution, O(1) when most agents qualify), then an
    exhaustive pass."""
    if not keys:
        return []
    if strategy == "random":
        end = bisect_left(keys, (keys[0][0] + 1,))
        for _ in range(16):
            aid = keys[int(rng.random() * end)][3]
            if aid not in tried and ok(aid):
                return [aid]
    else:
        top = _weight(keys[0][0])
        for _ in range(16):
            key = keys[int(rng.random() * len(keys))]
            if rng.random() * top < _weight(key[0]) and key[3] not in tried and ok(key[3]):
                return [key[3]]
    pool = [k for k in keys if ok(k[3])]
    pool = [k for k in pool if k[3] not in tried] or pool
    if not pool:
        return []
    if strategy == "random":
        pool = [k for k in pool if k[0] == pool[0][0]]
        return [pool[int(rng.random() * len(pool))][3]]
    return [_weighted_pick(pool, rng)]


def _weighted_pick(pool: list[AgentKey], rng: SplitMix64) -> str:
    weights = [_weight(k[0]) for k in pool]
    point = rng.random() * sum(weights)
    for key, weight in zip(pool, weights, strict=True):
        point -= weight
        if point < 0:
            return key[3]
    return pool[-1][3]
