"""Due times, windows, retries and the customer-first turn: the callbacks' pure rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.callbacks.core import (
    NOT_COUNTED,
    Next,
    WindowError,
    after_attempt,
    check_window,
    customer_first_ready,
    due_at,
    expired,
    is_due,
)

NOW = 1_000_000.0


def test_window_must_still_be_open() -> None:
    check_window(not_before=None, not_after=None, now=NOW)
    check_window(not_before=NOW + 60, not_after=NOW + 3600, now=NOW)
    check_window(not_before=NOW - 3600, not_after=NOW + 60, now=NOW)  # already open, closes later
    check_window(not_before=NOW - 30, not_after=None, now=NOW)  # clock skew
    for nb, na, field in [(None, NOW - 1, "not_after"), (NOW + 100, NOW + 50, "not_after"),
                          (NOW + 100, NOW + 100, "not_after"), (NOW - 3600, None, "not_before")]:
        with pytest.raises(WindowError) as err:
            check_window(not_before=nb, not_after=na, now=NOW)
        assert err.value.field == field


def test_due_when_both_the_window_and_the_retry_time_allow() -> None:
    assert is_due(not_before=None, next_attempt_at=None, now=NOW)
    assert not is_due(not_before=NOW + 1, next_attempt_at=None, now=NOW)
    assert not is_due(not_before=NOW - 1, next_attempt_at=NOW + 1, now=NOW)
    assert is_due(not_before=NOW - 1, next_attempt_at=NOW, now=NOW)
    assert due_at(not_before=NOW + 5, next_attempt_at=NOW + 9) == NOW + 9
    assert expired(NOW, NOW) and not expired(NOW + 1, NOW) and not expired(None, NOW)


def test_busy_and_no_answer_are_retried_after_the_delay_then_failed() -> None:
    kw = {"max_attempts": 3, "retry_delay": 60.0, "not_after": None}
    first = after_attempt("busy", attempts=0, now=NOW, **kw)  # type: ignore[arg-type]
    assert first == Next("pending", 1, NOW + 60, "busy")
    second = after_attempt("noanswer", attempts=1, now=NOW + 60, **kw)  # type: ignore[arg-type]
    assert second == Next("pending", 2, NOW + 120, "noanswer")
    last = after_attempt("noanswer", attempts=2, now=NOW + 120, **kw)  # type: ignore[arg-type]
    assert last.state == "failed" and last.attempts == 3 and last.next_attempt_at is None


def test_connected_completes_and_window_closing_fails() -> None:
    assert after_attempt("connected", attempts=1, max_attempts=3, retry_delay=60, now=NOW,
                         not_after=None).state == "completed"
    closing = after_attempt("busy", attempts=0, max_attempts=3, retry_delay=60, now=NOW, not_after=NOW + 30)
    assert closing.state == "failed" and closing.reason == "window-closed:busy"


def test_our_side_failures_are_not_counted_and_retry_at_once() -> None:
    for outcome in NOT_COUNTED:
        nxt = after_attempt(outcome, attempts=2, max_attempts=3, retry_delay=60, now=NOW, not_after=None)
        assert nxt == Next("pending", 2, NOW, outcome)


@given(st.lists(st.sampled_from(["busy", "noanswer", "congestion", "failed", "agent-hangup", "withdrawn"]),
                max_size=30), st.integers(1, 10))
def test_a_callback_is_never_dialled_more_than_max_attempts_counted_times(outcomes, max_attempts) -> None:
    attempts, now = 0, NOW
    for outcome in outcomes:
        nxt = after_attempt(outcome, attempts=attempts, max_attempts=max_attempts, retry_delay=5, now=now,
                            not_after=None)
        assert nxt.attempts <= max_attempts
        attempts = nxt.attempts
        if nxt.state == "failed":
            assert attempts == max_attempts
            return
        assert nxt.next_attempt_at is not None and nxt.next_attempt_at >= now
        now = nxt.next_attempt_at
    assert attempts < max_attempts


def test_customer_first_waits_for_its_turn_and_a_serving_agent() -> None:
    me = (0, 100.0)
    assert customer_first_ready(me, [(0, 150.0), (0, 200.0)], serving=1, dialling=0)
    assert not customer_first_ready(me, [(0, 50.0), (0, 200.0)], serving=1, dialling=0)  # an earlier caller
    assert not customer_first_ready(me, [(5, 150.0)], serving=1, dialling=0)  # a higher priority
    assert not customer_first_ready(me, [], serving=0, dialling=0)  # nobody logged in
    assert not customer_first_ready(me, [], serving=1, dialling=1)  # one dial per serving agent
    assert customer_first_ready(me, [], serving=2, dialling=1)
