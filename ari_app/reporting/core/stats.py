"""The statistics, defined once: counters per queue and per agent, and the ratios derived from them.

PostgreSQL adds the counters up per 15-minute interval (sql/006_reporting.sql); this module is
the reference for what each counter means (``count_call``, ``agent_counters``, checked against
the SQL on the same records in tests/integration/test_reporting.py) and the only place the
ratios are computed (``queue_metrics``, ``agent_metrics``). docs/statistics.md says the same in
prose. Times are seconds (floats); timestamps are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

INTERVAL = 900.0  # seconds in a report interval

#: Agent states as the ACD core names them.
AGENT_STATES = ("logged_out", "available", "ringing", "on_call", "wrapup", "paused")

#: Call outcomes that count by name; any other non-null outcome counts as ``other_exit``.
_NAMED_EXITS = ("timeout", "exitkey", "callback")


def bucket(ts: float, size: float = INTERVAL) -> float:
    """Start of the interval ``ts`` falls in (intervals are aligned on the epoch, so on UTC
    quarter hours, which are quarter hours in every time zone in use)."""
    return ts - ts % size


@dataclass(frozen=True)
class CallRecord:
    """What the queue statistics read from one ``calls`` row.

    ``answered_at`` is when the caller was bridged with an agent; ``left_at`` when the call
    ended (for a row still open, the last time it was updated)."""

    queue: str
    entered_at: float
    outcome: str | None  # answered | abandoned | timeout | exitkey | callback | ... | None (waiting)
    answered_at: float | None = None
    ended_at: float | None = None
    left_at: float | None = None
    hold: float = 0.0
    wrap: float | None = None  # the agent's wrap-up after this call, once it is over
    direction: str = "inbound"


@dataclass
class QueueCounters:
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    abandoned_after_sl: int = 0
    timeout: int = 0
    exitkey: int = 0
    callback: int = 0
    other_exit: int = 0
    in_progress: int = 0
    wait_answered_sum: float = 0.0
    wait_answered_max: float = 0.0
    wait_abandoned_sum: float = 0.0
    handled: int = 0
    talk_sum: float = 0.0
    hold_sum: float = 0.0
    wrap_sum: float = 0.0

    def add(self, other: QueueCounters) -> None:
        for f in fields(self):
            if f.name == "wait_answered_max":
                self.wait_answered_max = max(self.wait_answered_max, other.wait_answered_max)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QueueCounters:
        out = cls()
        for f in fields(cls):
            setattr(out, f.name, float(row[f.name]) if isinstance(f.default, float) else int(row[f.name]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def count_call(c: QueueCounters, call: CallRecord, *, threshold: float, short_abandon: float) -> None:
    """Add one call to the counters of the interval it entered the queue in (inbound only).

    - answered: waited ``answered_at - entered_at``; within the service level if <= threshold;
      handled (counts for AHT) once it has ended: talk = ended - answered, plus hold and wrap-up.
    - abandoned: waited ``left_at - entered_at``; short if < short_abandon (excluded from the
      abandon rate), after the service level if >= short_abandon and > threshold.
    """
    if call.direction != "inbound":
        return
    c.offered += 1
    if call.outcome == "answered":
        start = call.answered_at if call.answered_at is not None else (
            call.ended_at if call.ended_at is not None else call.left_at)
        wait = (start if start is not None else call.entered_at) - call.entered_at
        c.answered += 1
        c.answered_in_sl += int(wait <= threshold)
        c.wait_answered_sum += wait
        c.wait_answered_max = max(c.wait_answered_max, wait)
        if call.ended_at is not None:
            c.handled += 1
            c.talk_sum += call.ended_at - (call.answered_at if call.answered_at is not None else call.ended_at)
            c.hold_sum += call.hold
            c.wrap_sum += call.wrap or 0.0
    elif call.outcome == "abandoned":
        end = call.ended_at if call.ended_at is not None else call.left_at
        wait = (end if end is not None else call.entered_at) - call.entered_at
        c.abandoned += 1
        c.wait_abandoned_sum += wait
        if wait < short_abandon:
            c.abandoned_short += 1
        elif wait > threshold:
            c.abandoned_after_sl += 1
    elif call.outcome in _NAMED_EXITS:
        setattr(c, call.outcome, getattr(c, call.outcome) + 1)
    elif call.outcome is None:
        c.in_progress += 1
    else:
        c.other_exit += 1


def queue_intervals(calls: Iterable[CallRecord], *, threshold: float | Mapping[str, float],
                    short_abandon: float) -> dict[tuple[str, float], QueueCounters]:
    """Counters per (queue, interval start): the reference for report_queue_compute()."""
    out: dict[tuple[str, float], QueueCounters] = {}
    for call in calls:
        if call.direction != "inbound":
            continue
        t = threshold if isinstance(threshold, int | float) else threshold.get(call.queue, 20.0)
        key = (call.queue, bucket(call.entered_at))
        count_call(out.setdefault(key, QueueCounters()), call, threshold=float(t),
                   short_abandon=short_abandon)
    return out


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def queue_metrics(c: QueueCounters) -> dict[str, float | None]:
    """The ratios, None where the denominator is zero (no calls is not 0% nor 100%)."""
    return {
        # answered within T / (answered + abandoned after T); short abandons never count
        "service_level": _ratio(c.answered_in_sl, c.answered + c.abandoned_after_sl),
        # (abandoned - short abandons) / (offered - short abandons)
        "abandon_rate": _ratio(c.abandoned - c.abandoned_short, c.offered - c.abandoned_short),
        "asa": _ratio(c.wait_answered_sum, c.answered),
        # (talk + hold + wrap-up) / calls handled (answered and ended)
        "aht": _ratio(c.talk_sum + c.hold_sum + c.wrap_sum, c.handled),
        "avg_talk": _ratio(c.talk_sum, c.handled),
        "avg_wrap": _ratio(c.wrap_sum, c.handled),
        "avg_abandon_wait": _ratio(c.wait_abandoned_sum, c.abandoned),
        "answer_rate": _ratio(c.answered, c.offered),
    }


# ---------------------------------------------------------------------------------- agents


@dataclass
class AgentCounters:
    calls_handled: int = 0
    ring_noanswer: int = 0
    staffed: float = 0.0
    available: float = 0.0
    ringing: float = 0.0
    on_call: float = 0.0
    wrapup: float = 0.0
    paused: float = 0.0

    def add(self, other: AgentCounters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def add_state(self, state: str, seconds: float) -> None:
        if state != "logged_out" and seconds > 0:
            self.staffed += seconds
            if state in ("available", "ringing", "on_call", "wrapup", "paused"):
                setattr(self, state, getattr(self, state) + seconds)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AgentCounters:
        out = cls()
        for f in fields(cls):
            setattr(out, f.name, float(row[f.name]) if isinstance(f.default, float) else int(row[f.name]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class StateChange:
    at: float
    state: str


@dataclass
class AgentHistory:
    """One agent's records: state changes in order, and the times of its connects and of the
    rings it did not answer (queue_events CONNECT / RINGNOANSWER)."""

    states: Sequence[StateChange] = ()
    connects: Sequence[float] = ()
    noanswers: Sequence[float] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def agent_intervals(history: AgentHistory, *, now: float | None = None) -> dict[float, AgentCounters]:
    """Counters per interval start: the reference for report_agent_compute().

    A state lasts from its row to the next row. The last state has no end: it counts up to
    ``now`` when given (live figures), else not at all (what the roll-up stores)."""
    out: dict[float, AgentCounters] = {}
    changes = list(history.states)
    for i, ch in enumerate(changes):
        end = changes[i + 1].at if i + 1 < len(changes) else now
        if end is None or end <= ch.at:
            continue
        t = ch.at
        while t < end:
            b = bucket(t)
            stop = min(end, b + INTERVAL)
            out.setdefault(b, AgentCounters()).add_state(ch.state, stop - t)
            t = stop
    for at in history.connects:
        out.setdefault(bucket(at), AgentCounters()).calls_handled += 1
    for at in history.noanswers:
        out.setdefault(bucket(at), AgentCounters()).ring_noanswer += 1
    return out


def agent_metrics(c: AgentCounters) -> dict[str, float | None]:
    busy = c.on_call + c.wrapup
    return {
        # time handling calls / time handling calls or ready for one (pause is not counted)
        "occupancy": _ratio(busy, busy + c.available + c.ringing),
        "avg_handle": _ratio(busy, c.calls_handled),
    }


def open_period(state: str, since: float, start: float, end: float) -> dict[float, AgentCounters]:
    """The current (unfinished) state period of an agent, clipped to [start, end), by interval:
    added at query time to the roll-up, which holds only finished periods."""
    out: dict[float, AgentCounters] = {}
    t = max(since, start)
    while t < end:
        b = bucket(t)
        stop = min(end, b + INTERVAL)
        out.setdefault(b, AgentCounters()).add_state(state, stop - t)
        t = stop
    return out
