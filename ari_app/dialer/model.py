"""The shell's live view of outbound calls and agent sessions, and the pure rules that map what
Asterisk reports onto attempt results and the core's outcomes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ari_app.dialer.core import CallOutcome, Lead

#: Call states: ringing -> (amd ->) waiting -> connected -> ended, or machine / abandoning -> ended;
#: a call re-adopted after an app restart whose outcome was already decided (machine, abandoned) is
#: "ending" until its channel, hung up at the first reconcile, is gone.
IN_FLIGHT = ("ringing", "amd", "waiting")

#: Attempt results (dial_attempts.result) -> the core's outcome for lead scheduling.
RESULT_OUTCOMES: dict[str, CallOutcome] = {
    "no-answer": CallOutcome.NO_ANSWER,
    "busy": CallOutcome.BUSY,
    "congestion": CallOutcome.FAILED,
    "failed": CallOutcome.FAILED,
    "machine": CallOutcome.MACHINE,
    "abandoned": CallOutcome.ABANDONED,
    "connected": CallOutcome.HUMAN,
    # answered, then hung up before AMD decided or before an agent could be given: try again later
    "hangup": CallOutcome.NO_ANSWER,
}


def unanswered_result(cause: int | None, rang: float, ring_timeout: float) -> str:
    """Result of a call that ended before it was answered, from its Q.850 cause."""
    if cause == 17:
        return "busy"
    if cause in (18, 19):
        return "no-answer"
    if cause in (34, 38, 42):
        return "congestion"
    if cause in (None, 0, 16, 32) and rang >= ring_timeout - 1.0:
        return "no-answer"  # our originate timeout
    return "failed"


def ts(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)


def close_unborn(recorder: Any, call_id: str, channel_id: str | None, outcome: str) -> None:
    """Close the records of a call whose channel never came to be (originate refused): Asterisk will
    send no event that would end them."""
    now = datetime.now(UTC)
    if channel_id is not None:
        recorder.set_leg(channel_id, outcome=outcome, ended_at=now)
        recorder.legs.pop(channel_id, None)
    recorder.calls.pop(call_id, None)
    recorder.set_call(call_id, ended_at=now)


@dataclass
class OutboundCall:
    call_id: str  # = the customer channel id = calls.id = dial_attempts.id
    campaign_id: str
    lead: Lead  # as claimed: attempts before this one
    lead_id: int
    phone: str
    dial: str
    amd: bool
    dialed_at: float
    reserved_agent: str | None = None
    state: str = "ringing"
    answered_at: float | None = None
    amd_at: float | None = None
    needs_agent_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    agent_id: str | None = None
    result: str | None = None
    disposition: str | None = None
    timer: asyncio.TimerHandle | None = None
    #: Re-adopted at start (`restore`): its channel is checked at the first reconcile.
    restored: bool = False

    @property
    def attempt(self) -> int:
        return self.lead.attempts + 1

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass
class AgentSession:
    """An agent working a campaign: their phone is called once and kept in their own mixing bridge;
    customers are added to that bridge, so a live answer reaches them in one REST call."""

    agent_id: str
    campaign_id: str
    endpoint: str
    channel_id: str
    bridge_id: str
    state: str = "connecting"  # connecting | ready | reserved | on_call | wrapup | paused | ended
    since: float = 0.0
    pending: str | None = None  # pause | logout, applied when it can't put a call at risk
    call_id: str | None = None  # the call on hand / in wrap-up
    connected_at: float | None = None  # of that call
    preview: dict[str, Any] | None = None  # the lead an agent previews
    acd_paused: bool = False
    timer: asyncio.TimerHandle | None = None
    calls: int = 0
    talk_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def view(self, now: float) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "campaign": self.campaign_id, "state": self.state,
                "pending": self.pending, "in_state_seconds": round(now - self.since, 3), "call_id": self.call_id,
                "calls": self.calls, "talk_seconds": round(self.talk_seconds, 3),
                "preview": self.preview}

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    #: What survives an app restart (the `dialer_sessions` row): the rest is rebuilt or starts afresh.
    STORED = ("campaign_id", "endpoint", "channel_id", "bridge_id", "state", "since", "pending", "call_id",
              "connected_at", "acd_paused", "calls", "talk_seconds")

    def dump(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.STORED}

    @classmethod
    def load(cls, agent_id: str, row: dict[str, Any]) -> AgentSession:
        return cls(agent_id, **{k: row[k] for k in cls.STORED if k in row})
