"""Callbacks, the pure part: per-queue policy, due times and retries, the number dialog."""

from .dialog import Action, Confirmed, GaveUp, NumberDialog, Play
from .policy import CallbackPolicy
from .schedule import (
    NOT_COUNTED,
    OPEN_STATES,
    STATES,
    Next,
    WindowError,
    after_attempt,
    check_window,
    customer_first_ready,
    due_at,
    expired,
    is_due,
    order_key,
)

__all__ = [
    "NOT_COUNTED", "OPEN_STATES", "STATES", "Action", "CallbackPolicy", "Confirmed", "GaveUp", "Next",
    "NumberDialog", "Play", "WindowError", "after_attempt", "check_window", "customer_first_ready", "due_at",
    "expired", "is_due", "order_key",
]
