"""Events fed to :meth:`AcdEngine.handle`. The adapter translates Asterisk events into these.

Every event is idempotent where the adapter may replay it: unknown ids and events that no
longer apply (an answer for an offer already cancelled, a second login) are handled
gracefully rather than raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import AgentConfig, DeviceState, QueueConfig, QueueItem

FailReason = Literal["noanswer", "busy", "unavailable", "congestion", "rejected"]
EndedBy = Literal["caller", "agent"]


@dataclass(frozen=True)
class CallArrived:
    """An item joins ``item.queue`` (a live call, a callback, a click-to-call)."""

    item: QueueItem


@dataclass(frozen=True)
class CallLeft:
    """The caller went away before being connected (abandon); also accepted while ringing."""

    item_id: str
    reason: str = "hangup"


@dataclass(frozen=True)
class OfferAnswered:
    offer_id: str


@dataclass(frozen=True)
class OfferFailed:
    offer_id: str
    reason: FailReason = "noanswer"


@dataclass(frozen=True)
class CallEnded:
    """The bridged call ended; the agent goes to wrap-up."""

    item_id: str
    by: EndedBy = "caller"


@dataclass(frozen=True)
class CallTransferred:
    """The agent blind-transferred the connected caller to ``target``: the call is complete for
    the agent (wrap-up follows; BLINDTRANSFER instead of COMPLETEAGENT). A ``queue:NAME`` target
    of this engine puts the caller in that queue as a new entry that keeps its priority, skills
    and ``entered_at`` (its FIFO place and the wait reported since the first entry); any other
    target (e.g. ``number:0612345678``) is the adapter's to connect."""

    item_id: str
    target: str


@dataclass(frozen=True)
class AgentLogin:
    agent_id: str


@dataclass(frozen=True)
class AgentLogout:
    """Immediate unless on a call (then after the call). A ringing offer is cancelled."""

    agent_id: str
    reason: str = ""


@dataclass(frozen=True)
class AgentPause:
    """Immediate unless ringing/on a call (then when that ends, skipping wrap-up)."""

    agent_id: str
    reason: str = ""


@dataclass(frozen=True)
class AgentUnpause:
    agent_id: str


@dataclass(frozen=True)
class AgentLegLost:
    """The agent's leg vanished without the expected events: ringing -> offer failed
    (``unavailable``), on a call -> the call is completed by the agent (then wrap-up)."""

    agent_id: str


@dataclass(frozen=True)
class AgentDeviceState:
    """The agent's device state as Asterisk reports it, for calls the ACD doesn't own.

    ``unavailable`` agents are never offered; ``inuse`` ones only by ``ring_in_use`` queues.
    """

    agent_id: str
    state: DeviceState


@dataclass(frozen=True)
class DtmfPressed:
    item_id: str
    digit: str


@dataclass(frozen=True)
class Tick:
    """Nothing happened except time passing: due timers fire."""


@dataclass(frozen=True)
class UpsertQueue:
    config: QueueConfig


@dataclass(frozen=True)
class RemoveQueue:
    """Waiting items leave with ExitQueue(reason='empty'); connected calls run on."""

    name: str


@dataclass(frozen=True)
class UpsertAgent:
    """Adds (logged out) or reconfigures an agent; state and statistics are kept."""

    config: AgentConfig


@dataclass(frozen=True)
class RemoveAgent:
    agent_id: str


@dataclass(frozen=True)
class MoveItem:
    """Supervisor: move a waiting item to ``queue`` keeping its place by entered_at, or at
    the head of the queue. A ringing item's offers are cancelled first."""

    item_id: str
    queue: str
    to_head: bool = False


Event = (
    CallArrived
    | CallLeft
    | OfferAnswered
    | OfferFailed
    | CallEnded
    | CallTransferred
    | AgentLogin
    | AgentLogout
    | AgentPause
    | AgentUnpause
    | AgentLegLost
    | AgentDeviceState
    | DtmfPressed
    | Tick
    | UpsertQueue
    | RemoveQueue
    | UpsertAgent
    | RemoveAgent
    | MoveItem
)
