"""When a callback is due, what an attempt's outcome leads to, and where it stands in line.

Times are seconds on the wall clock (the callbacks table stores them as timestamptz); the shell
passes ``now`` in, so every rule here is tested without waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

OPEN_STATES = ("scheduled", "pending", "in-progress")
STATES = (*OPEN_STATES, "completed", "failed", "cancelled")
#: Outcomes that are not the customer's doing: the attempt is not counted and the callback
#: goes straight back to its place (the agent hung up before the dial, the queue let it go).
NOT_COUNTED = frozenset({"agent-hangup", "withdrawn", "exited"})
#: A scheduled window may start up to this long ago (clock skew between client and server).
PAST_GRACE = 60.0


class WindowError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_window(*, not_before: float | None, not_after: float | None, now: float) -> None:
    """A window must still be open: not_after in the future and after not_before; a not_before
    in the past is fine only when a not_after in the future bounds it."""
    if not_after is not None:
        if not_after <= now:
            raise WindowError("not_after", "is in the past")
        if not_before is not None and not_after <= not_before:
            raise WindowError("not_after", "must be later than not_before")
    elif not_before is not None and not_before < now - PAST_GRACE:
        raise WindowError("not_before", "is in the past")


def due_at(*, not_before: float | None, next_attempt_at: float | None) -> float | None:
    """When the callback may next enter its queue (None: now)."""
    times = [t for t in (not_before, next_attempt_at) if t is not None]
    return max(times) if times else None


def is_due(*, not_before: float | None, next_attempt_at: float | None, now: float) -> bool:
    at = due_at(not_before=not_before, next_attempt_at=next_attempt_at)
    return at is None or at <= now


def expired(not_after: float | None, now: float) -> bool:
    return not_after is not None and now >= not_after


@dataclass(frozen=True)
class Next:
    """What follows an attempt: the new state, the counted attempts, when to try again."""

    state: Literal["pending", "completed", "failed"]
    attempts: int
    next_attempt_at: float | None
    reason: str


def after_attempt(outcome: str, *, attempts: int, max_attempts: int, retry_delay: float, now: float,
                  not_after: float | None) -> Next:
    """``outcome`` is "connected" or why the customer wasn't reached (busy, noanswer, ...);
    ``attempts`` counts the attempts before this one."""
    if outcome == "connected":
        return Next("completed", attempts + 1, None, "connected")
    counted = outcome not in NOT_COUNTED
    n = attempts + 1 if counted else attempts
    if n >= max_attempts:
        return Next("failed", n, None, f"max-attempts:{outcome}")
    at = now + (retry_delay if counted else 0.0)
    if not_after is not None and at >= not_after:
        return Next("failed", n, None, f"window-closed:{outcome}")
    return Next("pending", n, at, outcome)


def order_key(priority: int, entered_at: float) -> tuple[int, float]:
    """The ACD's order: higher priority first, then earlier entry."""
    return (-priority, entered_at)


def customer_first_ready(me: tuple[int, float], waiting: Iterable[tuple[int, float]], *,
                         serving: int, dialling: int) -> bool:
    """A customer-first callback is dialled once nobody waiting is ahead of it (``waiting``
    holds (priority, entered_at) of the queue's items) and an agent is logged in to take it,
    with at most one customer being dialled per serving agent."""
    if serving <= dialling:
        return False
    mine = order_key(*me)
    return all(order_key(p, t) > mine for p, t in waiting)
