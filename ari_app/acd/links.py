"""What the ACD shell keeps about each core item and offer: their channels, bridge and flags.

The core knows items and offers by its own ids; these links map them to Asterisk's channel and
bridge ids and carry what only the shell needs (music on hold started, the announcement playing,
whom to dial for a channel-less item). They are persisted with the core's records
(`acd_state_rows`) so that a restarted app finds its calls again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ari_app.acd.tracking import Tracked


def ts(at: float) -> datetime:
    """A core time (epoch seconds) as the aware datetime the records use."""
    return datetime.fromtimestamp(at, UTC)


@dataclass
class ItemLink(Tracked):
    """Asterisk side of a queue item."""

    item_id: str
    channel_id: str | None        # the caller's channel (None for a callback waiting)
    queue: str
    bridge_id: str | None = None
    agent_channel: str | None = None
    agent_id: str | None = None
    agent_offer: str | None = None  # the offer whose leg is bridged with the caller
    connected: bool = False
    ended: bool = False
    from_dialplan: bool = True
    #: For a channel-less item (callback, click-to-call): whom to dial once an agent answered.
    dial: str | None = None
    dial_caller_id: str | None = None
    dial_timeout: int = 30
    whisper: list[str] | None = None
    #: Run answering-machine detection on `dial`'s leg before bridging it with the agent.
    amd: bool = False
    #: The item's place and needs, for a capability that takes the caller over when it leaves
    #: (a callback keeps the caller's original entry time and priority).
    entered_at: float | None = None
    priority: int = 0
    skills: dict[str, int] | None = None
    #: Music on hold was started (and not stopped since): a connect or exit must stop it.
    moh: bool = False
    #: The announcement playing to the caller, if any: a connect cuts it short.
    playback_id: str | None = None


@dataclass(frozen=True)
class ItemUpdate:
    """What happened to an item, for the capability that owns it (status streams, retries).

    kind: agent-ringing | agent-answered | customer-ringing | connected | customer-failed |
    completed | exited | abandoned
    """

    item_id: str
    kind: str
    agent_id: str | None = None
    detail: str | None = None


@dataclass
class OfferLink(Tracked):
    offer_id: str
    item_id: str
    agent_id: str
    channel_id: str
    answered: bool = False
