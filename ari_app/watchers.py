"""Wait until a condition on in-memory state holds, re-checked whenever the owner says the state
changed. For tests and tools that wait on ACD or dialer state rather than on an ARI event (no
polling, no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Watchers:
    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        if predicate():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((predicate, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._waiting = [(p, f) for p, f in self._waiting if f is not fut]

    def check(self) -> None:
        """The state changed: resolve every waiter whose condition now holds."""
        for predicate, fut in self._waiting:
            if not fut.done() and predicate():
                fut.set_result(None)
