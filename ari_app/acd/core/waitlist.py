"""A list of item keys kept sorted with ``bisect``: O(log n) rank, cheap insert/remove.

Keys are ``(-boost, -priority, entered_at, seq, item_id)``: supervisor boost, then caller
priority (higher first), then FIFO; ``seq`` is unique so keys never tie.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

ItemKey = tuple[int, int, float, int, str]


class SortedKeys:
    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[ItemKey] = []

    def __len__(self) -> int:
        return len(self._keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __iter__(self) -> Iterator[ItemKey]:
        return iter(self._keys)

    def add(self, key: ItemKey) -> None:
        insort(self._keys, key)

    def remove(self, key: ItemKey) -> None:
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            del self._keys[i]

    def rank(self, key: ItemKey) -> int:
        """Number of keys before ``key``."""
        return bisect_left(self._keys, key)

    def first(self) -> ItemKey | None:
        return self._keys[0] if self._keys else None

    def at(self, index: int) -> ItemKey:
        return self._keys[index]
