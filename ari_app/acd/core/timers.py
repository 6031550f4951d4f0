"""Named one-shot timers on a heap with lazy deletion.

A timer is identified by a name (e.g. ``("offer", "o17")``); setting it again replaces it.
Due timers come out in (deadline, creation order), which keeps the engine deterministic.
Every name set, cancelled or fired is remembered until :meth:`take_touched` (incremental
persistence stores each timer with the record it belongs to).
"""

from __future__ import annotations

import heapq

TimerName = tuple[str, str]
TimerNames = set[TimerName]  # (inside the class, ``set`` is the method below)


class Timers:
    def __init__(self) -> None:
        self._live: dict[TimerName, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, TimerName]] = []
        self._seq = 0
        self._touched: TimerNames = set()

    def __len__(self) -> int:
        return len(self._live)

    def set(self, name: TimerName, deadline: float) -> None:
        self._seq += 1
        self._put(name, deadline, self._seq)
        self._touched.add(name)

    def _put(self, name: TimerName, deadline: float, seq: int) -> None:
        self._live[name] = (deadline, seq)
        heapq.heappush(self._heap, (deadline, seq, name))
        if len(self._heap) > 64 + 2 * len(self._live):
            self._compact()

    def cancel(self, name: TimerName) -> None:
        if self._live.pop(name, None) is not None:
            self._touched.add(name)

    def get(self, name: TimerName) -> float | None:
        entry = self._live.get(name)
        return entry[0] if entry else None

    def entry(self, name: TimerName) -> tuple[float, int] | None:
        """(deadline, creation order) of a live timer, for snapshots."""
        return self._live.get(name)

    @property
    def seq(self) -> int:
        """The creation counter (persisted so restored and new timers keep their order)."""
        return self._seq

    def restore(self, entries: list[tuple[TimerName, float, int]], seq: int) -> None:
        """Put back timers with their original creation order; ``seq`` is the counter."""
        for name, deadline, order in entries:
            self._put(name, deadline, order)
        self._seq = max([seq, *(order for _, _, order in entries)])

    def take_touched(self) -> TimerNames:
        """Names set, cancelled or fired since the last call."""
        touched, self._touched = self._touched, set()
        return touched

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> TimerName | None:
        """Remove and return the earliest timer due at ``now``, or None."""
        self._drop_stale()
        if self._heap and self._heap[0][0] <= now:
            _, _, name = heapq.heappop(self._heap)
            del self._live[name]
            self._touched.add(name)
            return name
        return None

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
