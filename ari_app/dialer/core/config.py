"""Campaign configuration for the outbound dialer: plain frozen dataclasses, validated on creation.

Every validation error is a :class:`ConfigError` carrying the dotted name of the offending field, so the
HTTP layer can answer 4xx with a JSON body naming it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time as dtime
from types import MappingProxyType
from typing import Final

__all__ = [
    "DAY",
    "HOUR",
    "AbandonRule",
    "CallOutcome",
    "CallingHours",
    "CampaignConfig",
    "ConfigError",
    "DialMode",
    "RetryPolicy",
    "TimeRange",
]

HOUR: Final = 3600.0
DAY: Final = 86400.0


class ConfigError(ValueError):
    """A configuration value is invalid; ``field`` names it (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _finite(field_name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(field_name, f"must be a finite number, got {value!r}")
    return float(value)


class DialMode(enum.Enum):
    """How calls are originated.

    * ``PREVIEW``: the agent looks at the lead and triggers the call; the pacer never dials.
    * ``PROGRESSIVE``: exactly one call per available agent, each call has a reserved agent (cannot
      abandon).
    * ``PREDICTIVE``: over-dials against forecast agent availability within the abandon budget.
    """

    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"


class CallOutcome(enum.Enum):
    """Final outcome of one dial attempt, as far as lead scheduling is concerned."""

    HUMAN = "human"  # live person connected to an agent
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"  # answering machine (AMD classified, or agent-dispositioned)
    ABANDONED = "abandoned"  # live answer not connected to an agent within connect_within
    FAILED = "failed"  # network / congestion / invalid number


@dataclass(frozen=True, slots=True)
class AbandonRule:
    """One regulatory abandon-rate rule measured over a rolling window, per campaign.

    rate = (abandons + fp) / (live answers + fp), where ``fp`` = machine classifications *
    ``amd_false_positive_rate`` when ``count_amd_false_positives`` is set (Ofcom: AMD false positives
    are live calls that were hung up on, so they count as abandoned live calls), else 0. Live answers
    include the abandoned ones (the FTC TSR denominator is "calls answered by a person").

    ``guard_seconds`` is how far ahead the by-construction guarantee looks (see ``ledger``): every
    window that ends within ``guard_seconds`` after a dial decision stays within the cap however the
    calls in flight resolve and even if no further call is ever answered. Default: half the window.
    """

    cap: float
    window_seconds: float
    count_amd_false_positives: bool = False
    amd_false_positive_rate: float = 0.0
    guard_seconds: float | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        cap = _finite("cap", self.cap)
        if not 0.0 < cap < 1.0:
            raise ConfigError("cap", f"must be in (0, 1), got {cap}")
        window = _finite("window_seconds", self.window_seconds)
        if window <= 0:
            raise ConfigError("window_seconds", f"must be > 0, got {window}")
        fp = _finite("amd_false_positive_rate", self.amd_false_positive_rate)
        if not 0.0 <= fp <= 1.0:
            raise ConfigError("amd_false_positive_rate", f"must be in [0, 1], got {fp}")
        if self.guard_seconds is not None:
            guard = _finite("guard_seconds", self.guard_seconds)
            if not 0.0 <= guard < window:
                raise ConfigError("guard_seconds", f"must be in [0, window_seconds), got {guard}")
        if not self.name:
            raise ConfigError("name", "must not be empty")

    @property
    def guard(self) -> float:
        return self.window_seconds / 2 if self.guard_seconds is None else self.guard_seconds

    @property
    def fp_weight(self) -> float:
        """Abandons counted per AMD machine classification under this rule."""
        return self.amd_false_positive_rate if self.count_amd_false_positives else 0.0

    @classmethod
    def ftc_tsr(cls, cap: float = 0.03) -> AbandonRule:
        """US FTC Telemarketing Sales Rule safe harbor: 3% of live answers per 30 days, per campaign."""
        return cls(cap=cap, window_seconds=30 * DAY, name="FTC_TSR")

    @classmethod
    def ofcom(cls, amd_false_positive_rate: float, cap: float = 0.03) -> AbandonRule:
        """UK Ofcom persistent-misuse policy: 3% of live calls per 24 h, per campaign, including a
        reasoned estimate of AMD false positives."""
        return cls(
            cap=cap,
            window_seconds=DAY,
            count_amd_false_positives=True,
            amd_false_positive_rate=amd_false_positive_rate,
            name="OFCOM",
        )

    @classmethod
    def daily(cls, cap: float = 0.03) -> AbandonRule:
        """``cap`` over every rolling 24 h, no AMD false-positive estimate: added next to a longer rule
        (FTC TSR's 30 days) so that no single day spends budget banked on earlier days."""
        return cls(cap=cap, window_seconds=DAY, name="DAILY")


def _parse_time(field_name: str, value: dtime | str) -> dtime:
    if isinstance(value, dtime):
        if value.tzinfo is not None:
            raise ConfigError(field_name, "must be a naive local wall-clock time")
        return value
    if isinstance(value, str):
        try:
            return dtime.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(field_name, f"must be a time like '08:00', got {value!r}")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Half-open local wall-clock interval [start, end) within one day; start < end."""

    start: dtime
    end: dtime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _parse_time("start", self.start))
        object.__setattr__(self, "end", _parse_time("end", self.end))
        if not self.start < self.end:
            raise ConfigError("end", f"must be after start ({self.start} >= {self.end})")

    @property
    def start_seconds(self) -> float:
        return _seconds_of_day(self.start)

    @property
    def end_seconds(self) -> float:
        return _seconds_of_day(self.end)


def _seconds_of_day(t: dtime) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class CallingHours:
    """Permitted calling windows per weekday (Monday = 0) in the *lead's* local time.

    A window crossing midnight is written as two ranges on consecutive days.
    """

    days: tuple[tuple[TimeRange, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ConfigError("calling_hours.days", f"needs 7 entries (Monday..Sunday), got {len(self.days)}")
        normalised: list[tuple[TimeRange, ...]] = []
        for i, ranges in enumerate(self.days):
            if not all(isinstance(r, TimeRange) for r in ranges):
                raise ConfigError(f"calling_hours.{_WEEKDAYS[i]}", "must be TimeRange values")
            ordered = sorted(ranges, key=lambda r: r.start)
            for a, b in zip(ordered, ordered[1:], strict=False):
                if b.start < a.end:
                    raise ConfigError(f"calling_hours.{_WEEKDAYS[i]}", "ranges overlap")
            normalised.append(tuple(ordered))
        object.__setattr__(self, "days", tuple(normalised))

    @classmethod
    def daily(cls, start: str | dtime = "08:00", end: str | dtime = "21:00") -> CallingHours:
        r = TimeRange(_parse_time("start", start), _parse_time("end", end))
        return cls(days=((r,),) * 7)

    @classmethod
    def weekly(cls, spec: Mapping[str, tuple[str, str] | None]) -> CallingHours:
        """``{"monday": ("09:00", "20:00"), "sunday": None, ...}``; missing days are closed."""
        unknown = set(spec) - set(_WEEKDAYS)
        if unknown:
            raise ConfigError(f"calling_hours.{sorted(unknown)[0]}", "unknown weekday")
        days: list[tuple[TimeRange, ...]] = []
        for name in _WEEKDAYS:
            pair = spec.get(name)
            if pair is None:
                days.append(())
                continue
            try:
                days.append((TimeRange(_parse_time("start", pair[0]), _parse_time("end", pair[1])),))
            except ConfigError as exc:
                raise ConfigError(f"calling_hours.{name}.{exc.field}", exc.message) from None
        return cls(days=tuple(days))

    def range_at(self, weekday: int, seconds_of_day: float) -> TimeRange | None:
        """The range containing this local instant, or None."""
        for r in self.days[weekday]:
            if r.start_seconds <= seconds_of_day < r.end_seconds:
                return r
        return None


def _default_retry_delays() -> Mapping[CallOutcome, float]:
    return MappingProxyType(
        {
            CallOutcome.BUSY: 15 * 60.0,
            CallOutcome.NO_ANSWER: 2 * HOUR,
            CallOutcome.MACHINE: 4 * HOUR,
            CallOutcome.ABANDONED: 72 * HOUR,
            CallOutcome.FAILED: 10 * 60.0,
        }
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Minimum delay before the next attempt, per outcome of the previous one (seconds).

    ``CallOutcome.HUMAN`` closes the lead for the dialer (callbacks are scheduled by the agent).
    """

    delays: Mapping[CallOutcome, float] = field(default_factory=_default_retry_delays)

    def __post_init__(self) -> None:
        checked: dict[CallOutcome, float] = {}
        for outcome, delay in self.delays.items():
            if not isinstance(outcome, CallOutcome):
                raise ConfigError("retry.delays", f"unknown outcome {outcome!r}")
            name = f"retry.delays.{outcome.value}"
            value = _finite(name, delay)
            if value < 0:
                raise ConfigError(name, f"must be >= 0, got {value}")
            checked[outcome] = value
        for outcome in CallOutcome:
            if outcome is not CallOutcome.HUMAN and outcome not in checked:
                raise ConfigError(f"retry.delays.{outcome.value}", "missing")
        object.__setattr__(self, "delays", MappingProxyType(checked))

    def delay(self, outcome: CallOutcome) -> float:
        return self.delays.get(outcome, 0.0)

    def __reduce__(self) -> tuple[type[RetryPolicy], tuple[dict[CallOutcome, float]]]:
        # mapping proxies cannot be pickled or deep-copied; rebuild from a plain dict
        return (RetryPolicy, (dict(self.delays),))


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """Everything the dialer core needs to know about one outbound campaign."""

    campaign_id: str
    mode: DialMode = DialMode.PREDICTIVE
    ring_timeout: float = 20.0
    calling_hours: CallingHours = field(default_factory=CallingHours.daily)
    max_attempts: int = 6
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    abandon_rules: tuple[AbandonRule, ...] = field(default_factory=lambda: (AbandonRule.ftc_tsr(),))
    trunk_limit: int = 100
    connect_within: float = 2.0
    abandon_recall_block: float = 72 * HOUR
    amd_enabled: bool = True
    amd_max_seconds: float = 3.5

    def __post_init__(self) -> None:
        if not isinstance(self.campaign_id, str) or not self.campaign_id:
            raise ConfigError("campaign_id", "must be a non-empty string")
        if not isinstance(self.mode, DialMode):
            try:
                object.__setattr__(self, "mode", DialMode(self.mode))
            except ValueError:
                raise ConfigError(
                    "mode", f"must be one of {[m.value for m in DialMode]}, got {self.mode!r}"
                ) from None
        ring = _finite("ring_timeout", self.ring_timeout)
        if ring < 15.0:
            raise ConfigError("ring_timeout", f"must be >= 15 s (TSR: 15 s or 4 rings), got {ring}")
        if ring > 120.0:
            raise ConfigError("ring_timeout", f"must be <= 120 s, got {ring}")
        if not isinstance(self.calling_hours, CallingHours):
            raise ConfigError("calling_hours", "must be a CallingHours")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigError("max_attempts", "must be an integer")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts", f"must be >= 1, got {self.max_attempts}")
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigError("retry", "must be a RetryPolicy")
        if not self.abandon_rules:
            raise ConfigError("abandon_rules", "at least one rule is required")
        for i, rule in enumerate(self.abandon_rules):
            if not isinstance(rule, AbandonRule):
                raise ConfigError(f"abandon_rules.{i}", "must be an AbandonRule")
        if isinstance(self.trunk_limit, bool) or not isinstance(self.trunk_limit, int):
            raise ConfigError("trunk_limit", "must be an integer")
        if self.trunk_limit < 1:
            raise ConfigError("trunk_limit", f"must be >= 1, got {self.trunk_limit}")
        cw = _finite("connect_within", self.connect_within)
        if not 0.0 < cw <= 2.0:
            raise ConfigError("connect_within", f"must be in (0, 2] seconds, got {cw}")
        block = _finite("abandon_recall_block", self.abandon_recall_block)
        if block < 0:
            raise ConfigError("abandon_recall_block", f"must be >= 0, got {block}")
        amd = _finite("amd_max_seconds", self.amd_max_seconds)
        if not 0.0 < amd <= 10.0:
            raise ConfigError("amd_max_seconds", f"must be in (0, 10], got {amd}")

    @property
    def demand_horizon(self) -> float:
        """Latest time after dialing at which a call can still need an agent."""
        return self.ring_timeout + (self.amd_max_seconds if self.amd_enabled else 0.0) + self.connect_within
