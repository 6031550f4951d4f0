"""Calls re-adopted at a restart are not handed to an agent before the first reconcile checked them."""

from __future__ import annotations

from types import SimpleNamespace

from ari_app.dialer.calls import CallFlow
from ari_app.dialer.core import Lead
from ari_app.dialer.model import OutboundCall


def waiting(call_id: str, since: float, *, restored: bool) -> OutboundCall:
    call = OutboundCall(call_id, "c1", Lead(lead_id=call_id, phone="+33612345678", tz="Europe/Paris"), 1,
                        "+33612345678", "Local/x@y", True, 100.0, state="waiting", needs_agent_at=since,
                        restored=restored)
    return call


def flow_with(*calls: OutboundCall) -> CallFlow:
    dialer = SimpleNamespace(s=None, calls={c.call_id: c for c in calls})
    return CallFlow(dialer)  # type: ignore[arg-type]


def test_an_agent_freed_before_the_reconcile_is_not_given_a_restored_call() -> None:
    """A wrap-up that ended while the app was down ends at start, before the reconcile: the
    restored call's channel may be gone, or its person's 2 s run out (an abandon)."""
    restored = waiting("old", since=10.0, restored=True)
    assert flow_with(restored).waiting_for("c1", "a1") is None
    fresh = waiting("new", since=20.0, restored=False)
    assert flow_with(restored, fresh).waiting_for("c1", "a1") is fresh
    restored.restored = False  # the reconcile saw its channel: it is a waiting call like any other
    assert flow_with(restored, fresh).waiting_for("c1", "a1") is restored
