"""The status a visitor (and a CRM) sees for one click-to-call request.

Statuses: queued, customer-ringing, agent-ringing, agent-answered, connected, completed,
failed (with a reason). The call flows report what happened in their own words (the ACD's
item updates, our own leg events); this module turns that into one ordered, final history:
completed and failed are terminal, nothing goes back from connected, and a repeat of the same
status for the same agent is not news.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("queued", "customer-ringing", "agent-ringing", "agent-answered", "connected",
            "completed", "failed")
TERMINAL = frozenset({"completed", "failed"})
ORDERS = ("agent-first", "customer-first", "agent-dial")


@dataclass(frozen=True)
class Change:
    status: str
    at: float
    agent_id: str | None = None
    reason: str | None = None


@dataclass
class RequestStatus:
    id: str
    order: str
    history: list[Change] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        return self.history[-1].status if self.history else None

    @property
    def reason(self) -> str | None:
        return self.history[-1].reason if self.history else None

    @property
    def agent_id(self) -> str | None:
        return next((c.agent_id for c in reversed(self.history) if c.agent_id), None)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def advance(self, status: str, at: float, *, agent_id: str | None = None,
                reason: str | None = None) -> bool:
        """Record `status` if it is news; False when it is ignored."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        current = self.status
        if current in TERMINAL:
            return False
        if current == "connected" and status not in TERMINAL:
            return False
        if current == status and (agent_id is None or agent_id == self.agent_id):
            return False
        if status == "failed" and not reason:
            reason = "failed"
        at = max(at, self.history[-1].at) if self.history else at
        self.history.append(Change(status, at, agent_id, reason))
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "order": self.order, "status": self.status, "reason": self.reason,
                "agent_id": self.agent_id, "done": self.done,
                "history": [{"status": c.status, "at": c.at, "agent_id": c.agent_id, "reason": c.reason}
                            for c in self.history]}


def from_item_update(kind: str, detail: str | None) -> tuple[str, str | None] | None:
    """Status (and failure reason) for an ACD item update; None for updates with no status."""
    if kind in ("agent-ringing", "agent-answered", "customer-ringing", "connected"):
        return kind, None
    if kind == "completed":
        who = {"caller": "customer", "agent": "agent"}.get(detail or "")
        return "completed", f"{who}-hangup" if who else None
    if kind == "customer-failed":
        return "failed", f"customer-{detail or 'failed'}"
    if kind == "exited":
        return "failed", f"queue-{detail or 'exit'}"
    if kind == "abandoned":
        return "failed", "customer-hangup"
    return None
