"""Which available agent(s) get an offer for an item, per queue strategy.

Pure functions over :class:`Candidate` rows (eligible, offerable agents of the queue).
Every strategy first prefers agents not yet tried for this item, then the lowest penalty
(app_queue), except ``ring-all`` (everyone at the lowest penalty rings) and
``weighted-random`` (penalty weights the draw instead). Ties go to member order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    penalty: int
    member_index: int  # position in the queue's member order
    tried: bool  # already offered this item without an answer
    idle_since: float  # end of the last call, else login time
    calls_taken: int
    talk_time: float


def choose(
    strategy: str,
    candidates: list[Candidate],
    *,
    rr_last_index: int | None,
    member_count: int,
    rng: SplitMix64,
) -> list[str]:
    """Agents to ring now, best first (several only for ``ring-all``)."""
    if not candidates:
        return []
    if strategy == "ring-all":
        best = min(c.penalty for c in candidates)
        return [
            c.agent_id
            for c in sorted(candidates, key=lambda c: c.member_index)
            if c.penalty == best
        ]
    if strategy == "weighted-random":
        pool = _tier(candidates, with_penalty=False)
        return [_weighted_pick(pool, rng)]
    pool = _tier(candidates, with_penalty=True)
    if strategy == "random":
        return [pool[int(rng.random() * len(pool))].agent_id]
    return [min(pool, key=_metric(strategy, rr_last_index, member_count)).agent_id]


def _tier(candidates: list[Candidate], *, with_penalty: bool) -> list[Candidate]:
    def tier(c: Candidate) -> tuple[bool, int]:
        return (c.tried, c.penalty if with_penalty else 0)

    best = min(tier(c) for c in candidates)
    return sorted((c for c in candidates if tier(c) == best), key=lambda c: c.member_index)


def _weighted_pick(pool: list[Candidate], rng: SplitMix64) -> str:
    weights = [1.0 / (1 + c.penalty) for c in pool]
    point = rng.random() * sum(weights)
    for c, w in zip(pool, weights, strict=True):
        point -= w
        if point < 0:
            return c.agent_id
    return pool[-1].agent_id


def _metric(
    strategy: str, rr_last_index: int | None, member_count: int
) -> Callable[[Candidate], tuple[float, ...]]:
    if strategy == "longest-idle":
        return lambda c: (c.idle_since, c.member_index)
    if strategy == "fewest-calls":
        return lambda c: (c.calls_taken, c.member_index)
    if strategy == "least-talk-time":
        return lambda c: (c.talk_time, c.member_index)
    if strategy == "round-robin":
        last = -1 if rr_last_index is None else rr_last_index
        n = max(member_count, 1)
        return lambda c: ((c.member_index - last - 1) % n, c.member_index)
    # linear, ring-progressively: top-down in member order
    return lambda c: (c.member_index,)
