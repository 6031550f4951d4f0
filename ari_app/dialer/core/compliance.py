"""Per-lead dialing compliance: may this lead be dialed at this instant?

Pure: the clock (``now``, a UTC epoch in seconds) and the do-not-call predicate are passed in. The lead's
local time is derived from ``now`` with the lead's IANA timezone through :mod:`zoneinfo`; converting
UTC to local time is always unambiguous, so DST gaps and folds need no special casing. A call is only
allowed when both the dial instant and the latest instant it can still be answered
(``now + ring_timeout``) fall inside the *same* permitted calling range of the lead's local day.

Checks, in this order (the first failing one is the reason returned):

1. ``CLOSED`` - the lead reached a live person already (further contact is an agent callback).
2. ``DNC`` - the number is on a do-not-call list.
3. ``MAX_ATTEMPTS`` - the campaign's attempt limit is used up.
4. ``RETRY_NOT_BEFORE`` - the retry delay for the previous outcome has not elapsed.
5. ``ABANDON_RECALL_BLOCK`` - the lead was abandoned less than ``abandon_recall_block`` (72 h) ago and
   no agent is reserved for this call (preview/progressive calls with a reserved agent may recall).
6. ``UNKNOWN_TIMEZONE`` - the lead's timezone is not a known IANA zone (never guess).
7. ``OUTSIDE_CALLING_HOURS``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config import CallOutcome, CampaignConfig

__all__ = ["ComplianceGate", "DialCheck", "DncCheck", "Lead", "may_dial", "record_attempt"]

DncCheck = Callable[[str], bool] | Container[str]


class DialCheck(enum.Enum):
    OK = "ok"
    CLOSED = "closed"
    DNC = "dnc"
    MAX_ATTEMPTS = "max_attempts"
    RETRY_NOT_BEFORE = "retry_not_before"
    ABANDON_RECALL_BLOCK = "abandon_recall_block"
    UNKNOWN_TIMEZONE = "unknown_timezone"
    OUTSIDE_CALLING_HOURS = "outside_calling_hours"


@dataclass(frozen=True, slots=True)
class Lead:
    """The dialer's view of one lead. ``phone`` is E.164; ``tz`` an IANA zone name."""

    lead_id: str
    phone: str
    tz: str
    attempts: int = 0
    retry_not_before: float | None = None
    last_abandoned_at: float | None = None
    closed: bool = False


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _is_dnc(dnc: DncCheck, phone: str) -> bool:
    if callable(dnc):
        return bool(dnc(phone))
    return phone in dnc


def _within_calling_hours(config: CampaignConfig, zone: ZoneInfo, now: float) -> bool:
    start_local = datetime.fromtimestamp(now, tz=UTC).astimezone(zone)
    sod = start_local.hour * 3600 + start_local.minute * 60 + start_local.second + start_local.microsecond / 1e6
    window = config.calling_hours.range_at(start_local.weekday(), sod)
    if window is None:
        return False
    # The latest moment the call can be answered must fall in the same range of the same local day.
    end_local = datetime.fromtimestamp(now + config.ring_timeout, tz=UTC).astimezone(zone)
    if end_local.date() != start_local.date():
        return False
    end_sod = end_local.hour * 3600 + end_local.minute * 60 + end_local.second + end_local.microsecond / 1e6
    return window.start_seconds <= end_sod < window.end_seconds


def may_dial(
    lead: Lead,
    now: float,
    config: CampaignConfig,
    dnc: DncCheck = frozenset(),
    *,
    agent_reserved: bool = False,
) -> tuple[bool, DialCheck]:
    """``(True, DialCheck.OK)`` if the lead may be dialed at ``now`` (UTC epoch seconds)."""
    if lead.closed:
        return False, DialCheck.CLOSED
    if _is_dnc(dnc, lead.phone):
        return False, DialCheck.DNC
    if lead.attempts >= config.max_attempts:
        return False, DialCheck.MAX_ATTEMPTS
    if lead.retry_not_before is not None and now < lead.retry_not_before:
        return False, DialCheck.RETRY_NOT_BEFORE
    if (
        not agent_reserved
        and lead.last_abandoned_at is not None
        and now < lead.last_abandoned_at + config.abandon_recall_block
    ):
        return False, DialCheck.ABANDON_RECALL_BLOCK
    zone = _zone(lead.tz)
    if zone is None:
        return False, DialCheck.UNKNOWN_TIMEZONE
    if not _within_calling_hours(config, zone, now):
        return False, DialCheck.OUTSIDE_CALLING_HOURS
    return True, DialCheck.OK


def record_attempt(lead: Lead, outcome: CallOutcome, now: float, config: CampaignConfig) -> Lead:
    """The lead after one attempt ended with ``outcome`` at ``now``."""
    retry_at = now + config.retry.delay(outcome)
    if outcome is CallOutcome.HUMAN:
        return replace(lead, attempts=lead.attempts + 1, closed=True, retry_not_before=None)
    if outcome is CallOutcome.ABANDONED:
        # The 72 h recall block is enforced by may_dial (lifted when an agent is reserved); the
        # retry delay for ABANDONED is the campaign's own choice.
        return replace(lead, attempts=lead.attempts + 1, retry_not_before=retry_at, last_abandoned_at=now)
    return replace(lead, attempts=lead.attempts + 1, retry_not_before=retry_at)


@dataclass(frozen=True, slots=True)
class ComplianceGate:
    """``may_dial`` bound to one campaign and one DNC source."""

    config: CampaignConfig
    dnc: DncCheck = frozenset()

    def may_dial(self, lead: Lead, now: float, *, agent_reserved: bool = False) -> tuple[bool, DialCheck]:
        return may_dial(lead, now, self.config, self.dnc, agent_reserved=agent_reserved)

    def select(self, leads: Iterable[Lead], n: int, now: float, *, agent_reserved: bool = False) -> list[Lead]:
        """Up to ``n`` dialable leads, in the given order."""
        chosen: list[Lead] = []
        if n <= 0:
            return chosen
        for lead in leads:
            if self.may_dial(lead, now, agent_reserved=agent_reserved)[0]:
                chosen.append(lead)
                if len(chosen) >= n:
                    break
        return chosen
