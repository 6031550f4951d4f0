"""The queue bridge pool: a bridge is reused only once Asterisk said it is empty."""

from __future__ import annotations

from ari_app.acd import bridges
from ari_app.acd.bridges import BridgePool


def test_a_new_pool_has_nothing_to_give_and_adopts_what_is_made() -> None:
    pool = BridgePool()
    assert pool.take() is None
    pool.adopt("b1")
    assert pool.owns("b1") and pool.in_use == {"b1"}


def test_a_finished_call_s_bridge_comes_back_only_when_its_last_leg_left() -> None:
    pool = BridgePool()
    pool.adopt("b1")
    assert pool.release("b1", now=10.0) is False  # both legs still in it: draining
    assert pool.take() is None
    assert pool.left("b1", channels_left=1) is False  # the caller left, the agent is still there
    assert pool.take() is None
    assert pool.left("b1", channels_left=0) is False  # empty: idle again
    assert pool.take() == "b1" and pool.in_use == {"b1"}


def test_legs_that_left_before_the_call_ended_reached_us_make_it_idle_at_release() -> None:
    pool = BridgePool()
    pool.adopt("b1")
    pool.left("b1", channels_left=0)  # both hung up at once: the empty bridge is seen first
    assert pool.take() is None  # still the call's until it ends
    assert pool.release("b1", now=1.0) is False
    assert pool.take() == "b1"


def test_a_bridge_no_leg_ever_joined_is_idle_at_once() -> None:
    pool = BridgePool()
    pool.adopt("b1")
    assert pool.release("b1", now=1.0, empty=True) is False
    assert pool.idle == ["b1"] and not pool.draining


def test_beyond_the_idle_limit_a_freed_bridge_is_to_be_destroyed() -> None:
    pool = BridgePool()
    for i in range(bridges.IDLE_MAX):
        pool.adopt(f"b{i}")
        assert pool.release(f"b{i}", now=1.0, empty=True) is False
    pool.adopt("extra")
    assert pool.release("extra", now=1.0, empty=True) is True
    pool.adopt("late")
    pool.release("late", now=1.0)
    assert pool.left("late", channels_left=0) is True
    assert not pool.owns("extra") and not pool.owns("late")


def test_a_bridge_that_never_empties_is_given_up_after_the_drain_limit() -> None:
    pool = BridgePool()
    pool.adopt("b1")
    pool.release("b1", now=100.0)
    assert pool.stale(now=100.0 + bridges.DRAIN_LIMIT) == []
    assert pool.stale(now=100.0 + bridges.DRAIN_LIMIT + 1) == ["b1"]
    assert not pool.owns("b1")
    assert pool.left("b1", channels_left=0) is False and pool.take() is None  # a late event changes nothing


def test_after_a_reconnect_only_bridges_in_use_are_kept() -> None:
    pool = BridgePool()
    for b in ("idle", "draining", "busy"):
        pool.adopt(b)
    pool.release("idle", now=1.0, empty=True)
    pool.release("draining", now=1.0)
    pool.forget_unused()
    assert pool.take() is None and not pool.draining and pool.in_use == {"busy"}


def test_a_bridge_its_call_destroys_is_never_taken_back() -> None:
    pool = BridgePool()
    pool.adopt("b1")
    pool.left("b1", channels_left=0)
    pool.forget("b1")
    assert not pool.owns("b1") and pool.release("b1", now=1.0) is False and pool.take() is None
