"""Call and leg records from ARI events.

Capabilities say what a call *is* (`start_call`, `add_leg`, `set_call`); the recorder fills in what
Asterisk tells us happened to each channel (answered, bridged, destroyed with a cause) and closes a
call when its last leg is gone. Everything goes through the batched writer, so a database outage
delays records without losing them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ari_app.ari import events as ev
from ari_app.store.writer import RecordWriter

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def event_time(e: ev.Event) -> datetime:
    ts = getattr(e, "timestamp", None)
    return ts if isinstance(ts, datetime) else utcnow()


@dataclass
class Leg:
    channel_id: str
    call_id: str
    role: str
    agent_id: str | None = None
    answered: bool = False
    bridged: bool = False


@dataclass
class Call:
    call_id: str
    legs: set[str] = field(default_factory=set)
    bridged_legs: set[str] = field(default_factory=set)
    answered: bool = False
    bridged: bool = False
    hangup_by: str | None = None
    first_cause: tuple[int | None, str | None] | None = None
    #: A call stays open while its owner says so, even with no legs (a callback waiting in queue).
    hold_open: bool = False


#: Q.850 cause names for the causes a hangup request carries (ChannelHangupRequest has no text).
CAUSE_TEXT = {0: "Unknown", 1: "Unallocated (unassigned) number", 16: "Normal Clearing", 17: "User busy",
              18: "No user responding", 19: "User alerting, no answer", 21: "Call Rejected",
              27: "Destination out of order", 32: "Normal Clearing (hung up by the app)",
              34: "Circuit/channel congestion", 38: "Network out of order", 127: "Interworking, unspecified"}


class CallRecorder:
    def __init__(self, writer: RecordWriter) -> None:
        self._writer = writer
        self.legs: dict[str, Leg] = {}
        self.calls: dict[str, Call] = {}
        #: Hangup causes requested for legs still in Stasis. A channel that came from the dialplan
        #: leaves our app (StasisEnd) before it is destroyed, and Asterisk sends us nothing after
        #: that: the leg ends at StasisEnd with the requested cause.
        self._hangup_cause: dict[str, int] = {}
        #: Legs sent into the dialplan that come back into the app (e.g. through AMD): their next
        #: StasisEnd does not end them (the app subscribes to them to hear their hangup meanwhile).
        self._returning: set[str] = set()

    # ------------------------------------------------------------------ what capabilities tell us
    def start_call(self, call_id: str, *, direction: str, created_at: datetime | None = None,
                   hold_open: bool = False, **fields: Any) -> None:
        self.calls.setdefault(call_id, Call(call_id, hold_open=hold_open))
        self._writer.upsert_call(call_id, direction=direction, created_at=created_at or utcnow(), **fields)

    def set_call(self, call_id: str, **fields: Any) -> None:
        """Record facts about a call (queue, agent, outcome, ...), whether it is still open or not."""
        call = self.calls.get(call_id)
        if call is not None and "hangup_by" in fields and fields["hangup_by"]:
            call.hangup_by = fields["hangup_by"]
        self._writer.upsert_call(call_id, **fields)

    def release(self, call_id: str) -> None:
        """The owner no longer holds the call open; it closes once its legs are gone."""
        call = self.calls.get(call_id)
        if call is None:
            return
        call.hold_open = False
        if not call.legs:
            self._close_call(call, utcnow())

    def add_leg(self, channel_id: str, *, call_id: str, role: str, created_at: datetime | None = None,
                agent_id: str | None = None, **fields: Any) -> None:
        if call_id not in self.calls:
            self.calls[call_id] = Call(call_id)
        self.calls[call_id].legs.add(channel_id)
        self.legs[channel_id] = Leg(channel_id, call_id, role, agent_id)
        self._writer.upsert_leg(channel_id, call_id=call_id, role=role, created_at=created_at or utcnow(),
                                agent_id=agent_id, **fields)

    def set_leg(self, channel_id: str, **fields: Any) -> None:
        self._writer.upsert_leg(channel_id, **fields)

    def leg(self, channel_id: str) -> Leg | None:
        return self.legs.get(channel_id)

    def expect_return(self, channel_id: str) -> None:
        """The leg leaves the app for the dialplan and comes back: don't end it at that StasisEnd."""
        self._returning.add(channel_id)

    # ------------------------------------------------------------------ what Asterisk tells us
    #: The only event types that change a record: every other one returns at the first test.
    RECORDED = frozenset({"ChannelStateChange", "ChannelEnteredBridge", "ChannelHangupRequest", "StasisEnd",
                          "ChannelDestroyed"})

    def on_event(self, e: ev.Event) -> None:
        if e.type not in self.RECORDED:
            return
        if isinstance(e, ev.ChannelStateChange):
            if e.channel.state == "Up":
                self._answered(e.channel.id, event_time(e))
        elif isinstance(e, ev.ChannelEnteredBridge):
            if e.channel is not None:
                self._bridged(e.channel.id, event_time(e))
        elif isinstance(e, ev.ChannelHangupRequest):
            if e.channel.id in self.legs:
                self._hangup_cause.setdefault(e.channel.id, e.cause if e.cause is not None else 16)
        elif isinstance(e, ev.StasisEnd):
            if e.channel.id in self._returning and e.channel.id not in self._hangup_cause:
                self._returning.discard(e.channel.id)
                return
            # Our part of the leg is over either way: hung up, or sent on into the dialplan.
            cause = self._hangup_cause.pop(e.channel.id, None)
            if cause is not None:
                self._ended(e.channel.id, event_time(e), cause, CAUSE_TEXT.get(cause, f"cause {cause}"))
            else:
                self._ended(e.channel.id, event_time(e), None, "left the app", outcome="left-app")
        elif isinstance(e, ev.ChannelDestroyed):
            self._hangup_cause.pop(e.channel.id, None)
            self._returning.discard(e.channel.id)
            self._ended(e.channel.id, event_time(e), e.cause, e.cause_txt)

    def _answered(self, channel_id: str, at: datetime) -> None:
        leg = self.legs.get(channel_id)
        if leg is None or leg.answered:
            return
        leg.answered = True
        self._writer.upsert_leg(channel_id, answered_at=at)
        call = self.calls.get(leg.call_id)
        if call is not None and not call.answered and leg.role in ("caller", "customer"):
            call.answered = True
            self._writer.upsert_call(call.call_id, answered_at=at)

    def _bridged(self, channel_id: str, at: datetime) -> None:
        leg = self.legs.get(channel_id)
        if leg is None or leg.bridged:
            return
        leg.bridged = True
        self._writer.upsert_leg(channel_id, bridged_at=at)
        call = self.calls.get(leg.call_id)
        if call is None:
            return
        call.bridged_legs.add(channel_id)
        if not call.bridged and len(call.bridged_legs) >= 2:
            call.bridged = True
            self._writer.upsert_call(call.call_id, bridged_at=at)

    def _ended(self, channel_id: str, at: datetime, cause: int | None, cause_txt: str | None,
               outcome: str | None = None) -> None:
        leg = self.legs.pop(channel_id, None)
        if leg is None:
            return
        fields: dict[str, Any] = {"ended_at": at, "hangup_cause": cause, "hangup_cause_txt": cause_txt}
        if outcome is not None:
            fields["outcome"] = outcome
        self._writer.upsert_leg(channel_id, **fields)
        call = self.calls.get(leg.call_id)
        if call is None:
            return
        call.legs.discard(channel_id)
        if call.first_cause is None:
            call.first_cause = (cause, cause_txt)
            if call.hangup_by is None and leg.answered:
                call.hangup_by = leg.role
        if not call.legs and not call.hold_open:
            self._close_call(call, at)

    def _close_call(self, call: Call, at: datetime) -> None:
        self.calls.pop(call.call_id, None)
        cause, cause_txt = call.first_cause or (None, None)
        fields: dict[str, Any] = {"ended_at": at, "hangup_cause": cause, "hangup_cause_txt": cause_txt}
        if call.hangup_by:
            fields["hangup_by"] = call.hangup_by
        self._writer.upsert_call(call.call_id, **fields)

    # ------------------------------------------------------------------ restarts and reconnects
    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Reload legs that were open when the app last stopped (from `call_legs`)."""
        for r in rows:
            call = self.calls.setdefault(r["call_id"], Call(r["call_id"]))
            call.legs.add(r["channel_id"])
            leg = Leg(r["channel_id"], r["call_id"], r["role"], r.get("agent_id"),
                      answered=r.get("answered_at") is not None, bridged=r.get("bridged_at") is not None)
            if leg.bridged:
                call.bridged_legs.add(leg.channel_id)
            call.bridged = len(call.bridged_legs) >= 2
            call.answered = call.answered or (leg.answered and leg.role in ("caller", "customer"))
            self.legs[leg.channel_id] = leg

    def close_lost(self, channel_id: str, at: datetime) -> None:
        """A leg we believed alive is gone from Asterisk and we never saw it end."""
        log.info("closing leg that ended while we were away", extra={"channel_id": channel_id})
        self._ended(channel_id, at, None, "ended while the app was disconnected", outcome="lost")
