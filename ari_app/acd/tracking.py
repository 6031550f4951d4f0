"""Which of the adapter's links (item and offer id -> Asterisk ids) changed since the last
persist, without a scan: the adapter's maps are `LinkMap`s and the links `Tracked`.

A link is changed in place from many places (the REST chain of its call, channel events, the
audit), so instead of marking it at each of them, a `Tracked` object reports every attribute
write to the map that holds it, and the map records insertions and removals. `take_touched()`
then names the keys whose row must be rewritten (or deleted, when the key is gone).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar


class Tracked:
    """Base of a (dataclass) link: attribute writes mark its key in the LinkMap holding it."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        track = self.__dict__.get("_track")
        if track is not None:
            track[0].add(track[1])


L = TypeVar("L", bound=Tracked)


class LinkMap(dict[str, L]):
    """A dict of links that remembers the keys set, removed, or whose link changed. A link
    removed from the map still marks its key when changed: harmless, the key resolves to
    "gone" (or to the link now under that key)."""

    def __init__(self, links: Iterable[tuple[str, L]] = ()) -> None:
        super().__init__()
        self.touched: set[str] = set()
        for key, link in links:
            self[key] = link
        self.touched.clear()  # what it was built from is the baseline

    def take_touched(self) -> set[str]:
        touched, self.touched = self.touched, set()
        return touched

    def __setitem__(self, key: str, link: L) -> None:
        object.__setattr__(link, "_track", (self.touched, key))
        self.touched.add(key)
        super().__setitem__(key, link)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.touched.add(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.touched.add(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, L]:
        key, link = super().popitem()
        self.touched.add(key)
        return key, link

    def setdefault(self, key: str, default: L) -> L:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, link in dict(*args, **kwargs).items():
            self[key] = link

    def clear(self) -> None:
        self.touched.update(self)
        super().clear()
