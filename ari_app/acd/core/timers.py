"""Named one-shot timers on a heap with lazy deletion.

A timer is identified by a name (e.g. ``("offer", "o17")``); setting it again replaces it.
Due timers come out in (deadline, creation order), which keeps the engine deterministic.
"""

from __future__ import annotations

import heapq

TimerName = tuple[str, str]


class Timers:
    def __init__(self) -> None:
        self._live: dict[TimerName, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, TimerName]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._live)

    def set(self, name: TimerName, deadline: float) -> None:
        self._seq += 1
        self._live[name] = (deadline, self._seq)
        heapq.heappush(self._heap, (deadline, self._seq, name))
        if len(self._heap) > 64 + 2 * len(self._live):
            self._compact()

    def cancel(self, name: TimerName) -> None:
        self._live.pop(name, None)

    def get(self, name: TimerName) -> float | None:
        entry = self._live.get(name)
        return entry[0] if entry else None

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> TimerName | None:
        """Remove and return the earliest timer due at ``now``, or None."""
        self._drop_stale()
        if self._heap and self._heap[0][0] <= now:
            _, _, name = heapq.heappop(self._heap)
            del self._live[name]
            return name
        return None

    def items(self) -> list[tuple[TimerName, float]]:
        """Live timers in firing order (for snapshots)."""
        ordered = sorted((seq, deadline, name) for name, (deadline, seq) in self._live.items())
        return [(name, deadline) for _, deadline, name in ordered]

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap:
            deadline, seq, name = heap[0]
            if self._live.get(name) == (deadline, seq):
                return
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [(d, s, n) for n, (d, s) in self._live.items()]
        heapq.heapify(self._heap)
