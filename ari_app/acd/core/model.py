"""Configuration and input records of the ACD core: queues, agents, waiting items.

Plain frozen dataclasses, validated on construction. ``from_dict``/``to_dict`` load them
from TOML/JSON/HTTP bodies; a bad value raises :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

Strategy = Literal[
    "ring-all",
    "longest-idle",
    "round-robin",
    "fewest-calls",
    "least-talk-time",
    "linear",
    "random",
    "weighted-random",
    "ring-progressively",
]
STRATEGIES: frozenset[str] = frozenset(get_args(Strategy))

ItemKind = Literal["call", "callback", "click2call"]
ITEM_KINDS: frozenset[str] = frozenset(get_args(ItemKind))

AgentStatus = Literal["logged_out", "available", "ringing", "on_call", "wrapup", "paused"]
DeviceState = Literal["idle", "inuse", "unavailable"]
DEVICE_STATES: frozenset[str] = frozenset(get_args(DeviceState))

#: Member conditions for ``join_empty``/``leave_empty`` (app_queue's joinempty/leaveempty):
#: a member in one of the listed conditions does not count as able to serve the queue.
EMPTY_CONDITIONS: frozenset[str] = frozenset(
    {"paused", "unavailable", "loggedout", "wrapup", "inuse", "ringing"}
)

_DTMF = re.compile(r"^[0-9*#A-D]$")
#: An Asterisk device name: ``PJSIP/1001``, ``Custom:agent7``, ``Stasis:agent7``.
_DEVICE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*[/:][^\s,]+$")
#: Endpoints whose device state is the endpoint itself (a phone, not a dial string via a trunk).
_DEVICE_ENDPOINT = re.compile(r"^(PJSIP|SIP|IAX2)/[^\s,@/]+$")
_DESTINATION = re.compile(
    r"^(queue:[^\s,]+|context:[^\s,]+,[^\s,]+(,[^\s,]+)?|voicemail:[^\s]+|callback|hangup)$"
)


class ConfigError(ValueError):
    """Invalid configuration or item; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def queue_destination(destination: str | None) -> str | None:
    """The queue name of a ``queue:NAME`` destination, else None."""
    if destination is not None and destination.startswith("queue:"):
        return destination[len("queue:") :]
    return None


def _check_destination(name: str, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not _DESTINATION.match(value)):
        raise ConfigError(
            name,
            "expected 'queue:NAME', 'context:CTX,EXTEN[,PRIO]', 'voicemail:BOX', 'callback' "
            f"or 'hangup', got {value!r}",
        )


def _check_number(
    name: str, value: object, *, minimum: float = 0.0, positive: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(name, f"expected a number, got {value!r}")
    if value < minimum or (positive and value <= 0):
        raise ConfigError(
            name, f"must be {'> 0' if positive else f'>= {minimum:g}'}, got {value!r}"
        )


def _check_int(name: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"expected an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, f"must be {bound}, got {value!r}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(name, f"expected true/false, got {value!r}")


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(name, "must be a non-empty string")


def _check_dtmf(name: str, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not _DTMF.match(value)):
        raise ConfigError(name, f"expected one DTMF digit (0-9, *, #, A-D), got {value!r}")


def _check_levels(name: str, value: object, *, minimum: int, maximum: int | None) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(name, "expected a mapping of name -> integer")
    for key, level in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(name, f"keys must be non-empty strings, got {key!r}")
        _check_int(f"{name}.{key}", level, minimum=minimum, maximum=maximum)


T = TypeVar("T")


def _from_dict(cls: type[T], data: Mapping[str, Any], convert: Mapping[str, Any]) -> T:
    """Build a dataclass from a mapping: unknown keys and missing required keys name the field."""
    if not isinstance(data, Mapping):
        raise ConfigError(cls.__name__, "expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(str(key), "unknown field")
        fn = convert.get(key)
        if fn is not None and value is not None:
            try:
                value = fn(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(key, f"invalid value {value!r}") from exc
        kwargs[key] = value
    for name, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and name not in kwargs:
            raise ConfigError(name, "required")
    return cls(**kwargs)


def _to_dict(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def _string_set(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    return frozenset(value)


def _escalation(value: Any) -> tuple[tuple[float, int], ...]:
    steps = []
    for step in value:
        if isinstance(step, Mapping):
            step = (step["after"], step["min_level"])
        after, level = step
        steps.append((after, level))
    return tuple(steps)


@dataclass(frozen=True)
class QueueConfig:
    """One queue. Times are seconds; 0/None switches a feature off where noted."""

    name: str
    strategy: Strategy = "ring-all"
    #: Cross-queue precedence for agents in several queues: higher weight is served first.
    weight: int = 0
    #: Maximum number of waiting items (0 = unlimited). A full queue rejects with FULL.
    max_len: int = 0
    #: Maximum time in this queue (None = unlimited) -> EXITWITHTIMEOUT to ``max_wait_destination``.
    max_wait: float | None = None
    max_wait_destination: str | None = None
    full_destination: str | None = None
    empty_destination: str | None = None
    #: app_queue joinempty/leaveempty: conditions under which a member does not count.
    #: Empty set = never refuse / never evict.
    join_empty: frozenset[str] = frozenset()
    leave_empty: frozenset[str] = frozenset()
    exit_key: str | None = None
    exit_key_destination: str | None = None
    announce_position: bool = False
    announce_ewt: bool = False
    #: Seconds between position/EWT announcements (0 = off). The first comes right after joining.
    announce_frequency: float = 0.0
    #: Prompt played every ``periodic_announce_frequency`` seconds (None/0 = off).
    periodic_announce: str | None = None
    periodic_announce_frequency: float = 0.0
    #: Offer a callback after this many seconds of waiting (None = off), repeated every
    #: ``callback_offer_frequency`` seconds (0 = once); ``callback_key`` accepts it.
    callback_offer_after: float | None = None
    callback_offer_frequency: float = 0.0
    callback_key: str | None = None
    #: Seconds an agent rings per attempt.
    ring_timeout: float = 15.0
    #: Pause between an unanswered attempt and the next one for the same item.
    retry_delay: float = 5.0
    wrapup_time: float = 0.0
    #: Auto-pause an agent after N consecutive unanswered offers (0 = off).
    autopause_after: int = 0
    autopause_busy: bool = False
    autopause_unavail: bool = False
    #: Offer to agents whose device is in use by a call the ACD doesn't own.
    ring_in_use: bool = False
    #: ``ring-progressively``: seconds between adding one more ringing agent.
    ring_progressively_interval: float = 10.0
    #: Steps (after_seconds, min_level) relaxing an item's skill requirements while it waits:
    #: each required level becomes min(required, min_level); min_level 0 drops the requirement.
    skill_escalation: tuple[tuple[float, int], ...] = ()
    #: Answered within this many seconds counts toward the service level.
    service_level_threshold: float = 20.0
    #: Handle time used for EWT before the queue has recorded any.
    expected_handle_time: float = 180.0

    def __post_init__(self) -> None:
        _check_name("name", self.name)
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                "strategy", f"expected one of {sorted(STRATEGIES)}, got {self.strategy!r}"
            )
        _check_int("weight", self.weight, minimum=-(10**9))
        _check_int("max_len", self.max_len)
        if self.max_wait is not None:
            _check_number("max_wait", self.max_wait, positive=True)
        for name in ("max_wait_destination", "full_destination", "empty_destination"):
            _check_destination(name, getattr(self, name))
        _check_destination("exit_key_destination", self.exit_key_destination)
        for name in ("join_empty", "leave_empty"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                raise ConfigError(name, "expected a set of conditions")
            bad = sorted(str(v) for v in value - EMPTY_CONDITIONS)
            if bad:
                raise ConfigError(
                    name, f"unknown conditions {bad}; allowed {sorted(EMPTY_CONDITIONS)}"
                )
        _check_dtmf("exit_key", self.exit_key)
        _check_dtmf("callback_key", self.callback_key)
        if self.exit_key is not None and self.exit_key == self.callback_key:
            raise ConfigError("callback_key", "must differ from exit_key")
        for name in (
            "announce_position",
            "announce_ewt",
            "autopause_busy",
            "autopause_unavail",
            "ring_in_use",
        ):
            _check_bool(name, getattr(self, name))
        for name in (
            "announce_frequency",
            "periodic_announce_frequency",
            "callback_offer_frequency",
            "retry_delay",
            "wrapup_time",
        ):
            _check_number(name, getattr(self, name))
        if self.periodic_announce is not None:
            _check_name("periodic_announce", self.periodic_announce)
        if self.callback_offer_after is not None:
            _check_number("callback_offer_after", self.callback_offer_after)
        for name in (
            "ring_timeout",
            "ring_progressively_interval",
            "service_level_threshold",
            "expected_handle_time",
        ):
            _check_number(name, getattr(self, name), positive=True)
        _check_int("autopause_after", self.autopause_after)
        if not isinstance(self.skill_escalation, tuple):
            raise ConfigError("skill_escalation", "expected a list of [after_seconds, min_level]")
        for i, step in enumerate(self.skill_escalation):
            if not isinstance(step, tuple) or len(step) != 2:
                raise ConfigError(f"skill_escalation[{i}]", "expected [after_seconds, min_level]")
            _check_number(f"skill_escalation[{i}].after", step[0])
            _check_int(f"skill_escalation[{i}].min_level", step[1], minimum=0, maximum=10)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueConfig:
        return _from_dict(
            cls,
            data,
            {
                "join_empty": _string_set,
                "leave_empty": _string_set,
                "skill_escalation": _escalation,
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    def relaxed(self, required: Mapping[str, int], waited: float) -> tuple[tuple[str, int], ...]:
        """Skill requirements after ``waited`` seconds in this queue, as sorted (skill, level)."""
        cap = 11
        for after, level in self.skill_escalation:
            if waited >= after:
                cap = min(cap, level)
        return tuple(sorted((s, min(lvl, cap)) for s, lvl in required.items() if min(lvl, cap) > 0))

    def next_escalation(self, waited: float) -> float | None:
        """Seconds-in-queue of the next escalation step after ``waited``, if any."""
        later = [after for after, _ in self.skill_escalation if after > waited]
        return min(later) if later else None


@dataclass(frozen=True)
class AgentConfig:
    """One agent. ``memberships`` maps queue name -> penalty (lower is offered first)."""

    id: str
    endpoint: str
    skills: Mapping[str, int] = field(default_factory=dict)
    memberships: Mapping[str, int] = field(default_factory=dict)
    #: Overrides the queue's ``wrapup_time`` when set.
    wrapup_time: float | None = None
    #: The Asterisk device whose state says whether the agent is busy outside the ACD
    #: (``Custom:agent7``, ``PJSIP/1001``). None: the endpoint for ``PJSIP/x``, ``SIP/x`` and
    #: ``IAX2/x`` endpoints, no device otherwise (see ``device_name``).
    device: str | None = None

    def __post_init__(self) -> None:
        _check_name("id", self.id)
        _check_name("endpoint", self.endpoint)
        if self.device is not None and (not isinstance(self.device, str) or not _DEVICE.match(self.device)):
            raise ConfigError(
                "device",
                f"expected an Asterisk device name such as 'PJSIP/1001' or 'Custom:agent7', "
                f"got {self.device!r}",
            )
        _check_levels("skills", self.skills, minimum=1, maximum=10)
        _check_levels("memberships", self.memberships, minimum=0, maximum=None)
        if self.wrapup_time is not None:
            _check_number("wrapup_time", self.wrapup_time)

    @property
    def device_name(self) -> str | None:
        """The device whose state is followed: ``device``, else the endpoint if it is a phone."""
        if self.device is not None:
            return self.device
        return self.endpoint if _DEVICE_ENDPOINT.match(self.endpoint) else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentConfig:
        return _from_dict(cls, data, {"skills": dict, "memberships": dict})

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(frozen=True)
class QueueItem:
    """A waiting item: a live call, a callback or a click-to-call, ordered the same way.

    Higher ``priority`` first, then FIFO by ``entered_at`` (a callback carries the original
    caller's ``entered_at`` so it keeps its place). ``entered_at`` None means "now".
    ``data`` is opaque to the core and must be JSON-serialisable (it goes into snapshots).
    """

    id: str
    queue: str
    kind: ItemKind = "call"
    priority: int = 0
    entered_at: float | None = None
    required_skills: Mapping[str, int] = field(default_factory=dict)
    #: Only this agent may take the item until ``preferred_fallback_after`` seconds in the
    #: queue have passed (None = wait for that agent indefinitely).
    preferred_agent: str | None = None
    preferred_fallback_after: float | None = None
    caller_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("id", self.id)
        _check_name("queue", self.queue)
        if self.kind not in ITEM_KINDS:
            raise ConfigError("kind", f"expected one of {sorted(ITEM_KINDS)}, got {self.kind!r}")
        _check_int("priority", self.priority, minimum=-(10**9))
        if self.entered_at is not None:
            _check_number("entered_at", self.entered_at, minimum=-math.inf)
        _check_levels("required_skills", self.required_skills, minimum=1, maximum=10)
        if self.preferred_agent is not None:
            _check_name("preferred_agent", self.preferred_agent)
        if self.preferred_fallback_after is not None:
            _check_number("preferred_fallback_after", self.preferred_fallback_after)
        if not isinstance(self.data, Mapping):
            raise ConfigError("data", "expected a mapping")

    @property
    def has_channel(self) -> bool:
        """A callback waits without a channel: no hold music, announcements or DTMF."""
        return self.kind != "callback"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueItem:
        return _from_dict(cls, data, {"required_skills": dict, "data": dict})

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)
