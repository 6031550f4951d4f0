"""Read-only records returned by the engine's reporting API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import AgentStatus, DeviceState, QueueConfig, QueueItem


@dataclass(frozen=True)
class ItemInfo:
    item: QueueItem
    queue: str
    status: str  # waiting | retry | offering | connected
    position: int | None  # 1-based; None once connected
    orig_position: int
    joined_at: float  # joined the current queue
    required_now: Mapping[str, int]  # skill requirements after escalation
    preferred_agent: str | None  # None once the preference fell back
    offers: tuple[str, ...]
    agent_id: str | None  # connected agent


@dataclass(frozen=True)
class AgentInfo:
    id: str
    status: AgentStatus
    since: float
    pause_reason: str
    pending: str | None  # "pause" | "logout" applied when the current call/offer ends
    device: DeviceState
    offer_id: str | None
    item_id: str | None
    logged_in_at: float | None
    last_call_end: float | None
    calls_taken: int
    talk_time: float
    unanswered: int
    wrapup_until: float | None
    queues: tuple[str, ...]


@dataclass(frozen=True)
class OfferInfo:
    offer_id: str
    item_id: str
    agent_id: str
    queue: str
    started_at: float
    deadline: float | None


@dataclass(frozen=True)
class QueueInfo:
    config: QueueConfig
    waiting: int  # items not yet connected (incl. ringing / between retries)
    longest_wait: float  # seconds, of the item waiting longest in this queue
    members: tuple[str, ...]
    available: int  # members that could be offered a call right now
    serving: int  # members logged in, not paused, reachable
    handle_time: float  # the EWT's current handle time estimate
    service_level: float | None  # answered within threshold / answered
    stats: Mapping[str, Any]
