"""Estimated wait time from fresh inputs: position, agents serving, recent handle times."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class HandleTimes:
    """Exponentially weighted mean of the last ``size`` handle times (talk + wrap-up):
    the newest sample weighs 1, the one before ``decay``, then ``decay**2``..."""

    def __init__(self, samples: Iterable[float] = (), size: int = 20, decay: float = 0.8) -> None:
        self.decay = decay
        self._samples: deque[float] = deque(samples, maxlen=size)

    def add(self, seconds: float) -> None:
        self._samples.append(max(0.0, seconds))

    def samples(self) -> list[float]:
        return list(self._samples)

    def mean(self) -> float | None:
        if not self._samples:
            return None
        total = weight_sum = 0.0
        weight = 1.0
        for value in reversed(self._samples):
            total += weight * value
            weight_sum += weight
            weight *= self.decay
        return total / weight_sum


def estimate_wait(position: int, serving: int, available: int, handle_time: float) -> float | None:
    """Seconds until the caller at ``position`` (1-based) reaches an agent.

    ``serving`` agents are logged in and not paused (busy or free), ``available`` of them are
    free right now. Callers ahead of the free agents wait for one handle time spread over the
    serving agents each. None when nobody serves the queue.
    """
    if serving <= 0:
        return None
    ahead = max(0, position - available)
    return ahead * handle_time / serving
