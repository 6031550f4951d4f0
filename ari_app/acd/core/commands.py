"""Commands returned by :meth:`AcdEngine.handle`, in the order the adapter should apply them.

Every ``Offer`` ends with exactly one of: ``Connect`` (answered), ``CancelOffer`` (from the
engine), or the adapter's own ``OfferFailed`` for it (then no CancelOffer follows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .model import AgentStatus

CancelReason = Literal[
    "timeout",  # ring_timeout passed without an answer
    "caller-left",  # the caller hung up while ringing
    "answered-elsewhere",  # ring-all / ring-progressively: another agent answered
    "exit",  # the item left the queue (max wait, exit key, empty, moved, queue removed)
    "agent-logout",  # the ringing agent logged out or was removed
    "leg-lost",  # AgentLegLost while ringing: forget the offer (the leg is already gone)
    "stale",  # an answer arrived for an offer that no longer exists: hang the agent leg up
]
AnnounceKind = Literal["position", "ewt", "periodic", "callback-offer"]
ExitReason = Literal["timeout", "exitkey", "empty", "full", "overflow", "callback", "unknown"]


@dataclass(frozen=True)
class Offer:
    """Ring ``endpoint`` for ``item_id``; the engine cancels it after ``timeout`` seconds."""

    offer_id: str
    item_id: str
    agent_id: str
    endpoint: str
    timeout: float
    caller_id_hint: str | None
    queue: str


@dataclass(frozen=True)
class CancelOffer:
    """Stop ringing (hang up the agent leg). ``item_id``/``agent_id`` are None only for
    ``stale``: an answer for an offer the engine no longer knows."""

    offer_id: str
    reason: CancelReason
    item_id: str | None
    agent_id: str | None


@dataclass(frozen=True)
class Connect:
    """Bridge the caller with the agent who answered ``offer_id``; stop hold music."""

    item_id: str
    agent_id: str
    offer_id: str


@dataclass(frozen=True)
class StartHold:
    """Music on hold for an item that has a channel (not for callbacks)."""

    item_id: str


@dataclass(frozen=True)
class Announce:
    """Play to the waiting caller. ``position``/``ewt_seconds`` are fresh at emission;
    ``ewt_seconds`` is None when unknown (nobody serving) or not configured.
    ``prompt`` is the queue's ``periodic_announce`` for kind ``periodic``."""

    item_id: str
    kind: AnnounceKind
    position: int
    ewt_seconds: float | None
    prompt: str | None = None


@dataclass(frozen=True)
class ExitQueue:
    """The item left the ACD: route the caller to ``destination`` (None = continue the
    dialplan / the caller's default). Callbacks and moved items never see this twice."""

    item_id: str
    reason: ExitReason
    destination: str | None


@dataclass(frozen=True)
class ItemMoved:
    """The item now waits in ``to_queue`` (overflow to ``queue:X`` or a supervisor move).
    The caller stays where it is (on hold); only the bookkeeping changed."""

    item_id: str
    from_queue: str
    to_queue: str
    reason: Literal["overflow", "supervisor"]


@dataclass(frozen=True)
class QueueLog:
    """A queue_log row with app_queue's event names; ``queue`` is "NONE" for agent events of
    an agent without queues. ``at`` is the engine clock."""

    event: str
    queue: str
    item_id: str | None
    agent_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0


@dataclass(frozen=True)
class AgentStateChanged:
    agent_id: str
    old: AgentStatus
    new: AgentStatus
    reason: str
    at: float


Command = (
    Offer
    | CancelOffer
    | Connect
    | StartHold
    | Announce
    | ExitQueue
    | ItemMoved
    | QueueLog
    | AgentStateChanged
)
