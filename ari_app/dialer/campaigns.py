"""A campaign as the API declares it, mapped onto the core's `CampaignConfig` plus what only the shell
needs (who works it, how to dial, what to play, what each disposition does to the lead).

Pure: parsing and validation only. Every error names the body field it came from, so
`PUT /campaigns/{id}` can answer 422 with that field and write nothing.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ari_app.dialer.core import (
    AbandonRule,
    CallingHours,
    CallOutcome,
    CampaignConfig,
    ConfigError,
    DialMode,
    RetryPolicy,
)
from ari_app.numbers import NumberPolicy

__all__ = ["CampaignBody", "CampaignSpec", "Disposition", "SpecError", "parse_campaign", "render_dial"]

_MEDIA = re.compile(r"^(sound|recording|tone|digits|number):\S+$")
_PLACEHOLDER = re.compile(r"^[a-z_][a-z0-9_]*$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class SpecError(ValueError):
    """Invalid campaign; ``field`` is the body field (dotted)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DispositionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: close: the lead is done; retry: dial again after `delay`; callback: dial again at the time the
    #: agent gives (or after `delay`); dnc: done, and the number goes on the do-not-call list.
    action: Literal["close", "retry", "callback", "dnc"]
    delay: float = Field(0.0, ge=0)


class NumbersBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_region: str = "FR"
    allowed_regions: list[str] = Field(default_factory=lambda: ["FR"])
    allowed_prefixes: list[str] = Field(default_factory=list)
    allow_toll_free: bool = True


class CampaignBody(BaseModel):
    """`PUT /api/v1/campaigns/{id}`."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["preview", "progressive", "predictive"] = "predictive"
    agents: list[str] = Field(default_factory=list, description="agent ids that may work the campaign")
    queue: str | None = Field(None, description="or: the members of this ACD queue work it")
    caller_id: str = Field(..., min_length=1, max_length=80)
    dial_template: str = Field("PJSIP/{number}@trunk", description="{number} is the E.164 number; "
                               "{<field>} a lead's custom field")
    ring_timeout: float = 20.0
    calling_hours: dict[str, list[str] | None] | None = Field(
        None, description='{"daily": ["08:00", "21:00"]} or per weekday {"monday": ["09:00", "20:00"], '
        '"sunday": null}; in the lead\'s local time')
    max_attempts: int = 6
    retry_delays: dict[str, float] = Field(default_factory=dict, description="seconds per outcome: busy, "
                                           "no_answer, machine, abandoned, failed")
    abandon_rule: Literal["FTC_TSR", "OFCOM"] = "FTC_TSR"
    abandon_cap: float = 0.03
    abandon_daily_cap: bool = Field(False, description="also hold every rolling 24 h to abandon_cap, on top of "
                                    "the rule's own window (FTC_TSR: no single day spends budget banked on "
                                    "earlier days; OFCOM's window is already 24 h, so it adds nothing there)")
    amd_false_positive_rate: float = Field(0.02, description="OFCOM: estimated share of live answers AMD "
                                           "calls machines, counted as abandons")
    trunk_limit: int = 100
    amd: bool = True
    amd_max_seconds: float = 3.5
    machine_handling: Literal["hangup", "message"] = "hangup"
    machine_message: list[str] = Field(default_factory=list)
    safe_harbor_message: list[str] = Field(..., min_length=1)
    wrapup_seconds: float = Field(30.0, ge=0, le=3600)
    dispositions: dict[str, DispositionBody] = Field(default_factory=dict)
    dnc_scope: Literal["global", "campaign"] = "global"
    numbers: NumbersBody = Field(default_factory=NumbersBody)

    @field_validator("machine_message", "safe_harbor_message", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("machine_message", "safe_harbor_message")
    @classmethod
    def _media(cls, v: list[str]) -> list[str]:
        for m in v:
            if not _MEDIA.match(m):
                raise ValueError(f"expected media URIs like 'sound:NAME', got {m!r}")
        return v


@dataclass(frozen=True)
class Disposition:
    action: str
    delay: float = 0.0


#: What an agent's disposition does to the lead unless the campaign says otherwise.
DEFAULT_DISPOSITIONS: dict[str, Disposition] = {
    "sale": Disposition("close"),
    "callback": Disposition("callback", 3600.0),
    "not-interested": Disposition("close"),
    "do-not-call": Disposition("dnc"),
    "wrong-number": Disposition("close"),
    "answering-machine": Disposition("retry", 4 * 3600.0),
    "no-disposition": Disposition("close"),
}


@dataclass(frozen=True)
class CampaignSpec:
    """Everything about one campaign: the core's config plus the shell's part."""

    id: str
    config: CampaignConfig
    agents: tuple[str, ...]
    queue: str | None
    caller_id: str
    dial_template: str
    machine_handling: str
    machine_message: tuple[str, ...]
    safe_harbor_message: tuple[str, ...]
    wrapup_seconds: float
    dispositions: dict[str, Disposition]
    dnc_scope: str
    numbers: NumberPolicy
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.config.mode.value

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.body}


_OUTCOME_NAMES = {"busy": CallOutcome.BUSY, "no_answer": CallOutcome.NO_ANSWER, "machine": CallOutcome.MACHINE,
                  "abandoned": CallOutcome.ABANDONED, "failed": CallOutcome.FAILED}


def _calling_hours(spec: dict[str, list[str] | None] | None) -> CallingHours:
    if spec is None:
        return CallingHours.daily()
    if "daily" in spec:
        if len(spec) != 1:
            raise SpecError("calling_hours", "'daily' cannot be combined with weekdays")
        pair = spec["daily"]
        if pair is None or len(pair) != 2:
            raise SpecError("calling_hours.daily", "expected [start, end]")
        try:
            return CallingHours.daily(pair[0], pair[1])
        except ConfigError as exc:
            raise SpecError(f"calling_hours.daily.{exc.field}", exc.message) from None
    week: dict[str, tuple[str, str] | None] = {}
    for day, pair in spec.items():
        if pair is not None and len(pair) != 2:
            raise SpecError(f"calling_hours.{day}", "expected [start, end] or null")
        week[day] = None if pair is None else (pair[0], pair[1])
    try:
        return CallingHours.weekly(week)
    except ConfigError as exc:
        raise SpecError(exc.field, exc.message) from None


def _check_template(template: str) -> None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SpecError("dial_template", f"not a valid template: {exc}") from None
    names = [name for _, name, spec, conv in parts if name is not None]
    for _, name, spec, conv in parts:
        if name is not None and (not _PLACEHOLDER.match(name) or spec or conv):
            raise SpecError("dial_template", f"placeholders are plain names like {{number}}, got {{{name}}}")
    if not names:
        raise SpecError("dial_template", "needs a placeholder, e.g. PJSIP/{number}@trunk")


def render_dial(template: str, number: str, data: dict[str, Any]) -> str:
    """The dial string for one lead. ``{number}`` is the E.164 number, ``{digits}`` it without '+', any
    other name a custom field of the lead (KeyError if it has none)."""
    values = {k: str(v) for k, v in data.items() if isinstance(v, str | int | float)}
    values["number"] = number
    values["digits"] = number.lstrip("+")
    return template.format_map(values)


def _core_field(core_field: str) -> str:
    """The body field a core ConfigError is about."""
    head = core_field.split(".")[0]
    if core_field.startswith("retry.delays."):
        return "retry_delays." + core_field.split(".", 2)[2]
    if head in ("cap", "abandon_rules"):
        return "abandon_cap"
    if head == "amd_false_positive_rate":
        return "amd_false_positive_rate"
    return core_field


def _abandon_rules(body: CampaignBody) -> tuple[AbandonRule, ...]:
    """The campaign's rule, and with ``abandon_daily_cap`` a 24 h rule at the same cap next to it. The
    rule the body names comes first: it is the one the single-rule fields of the views report. A rule
    whose window is already 24 h or shorter (OFCOM) gets no second one: it would change nothing."""
    rule = (AbandonRule.ftc_tsr(body.abandon_cap) if body.abandon_rule == "FTC_TSR"
            else AbandonRule.ofcom(body.amd_false_positive_rate, body.abandon_cap))
    daily = AbandonRule.daily(body.abandon_cap)
    if body.abandon_daily_cap and rule.window_seconds > daily.window_seconds:
        return (rule, daily)
    return (rule,)


def parse_campaign(campaign_id: str, data: dict[str, Any]) -> CampaignSpec:
    """Validate a `PUT` body; raises SpecError (or pydantic's ValidationError for shapes)."""
    if not campaign_id or len(campaign_id) > 64 or not re.match(r"^[A-Za-z0-9_.-]+$", campaign_id):
        raise SpecError("id", "campaign ids are 1-64 letters, digits, '.', '_' or '-'")
    body = CampaignBody.model_validate(data)
    if not body.agents and not body.queue:
        raise SpecError("agents", "name the agents or the queue that work the campaign")
    if body.machine_handling == "message" and not body.machine_message:
        raise SpecError("machine_message", "required when machine_handling is 'message'")
    _check_template(body.dial_template)
    hours = _calling_hours(body.calling_hours)
    delays: dict[CallOutcome, float] = {}
    defaults = RetryPolicy().delays
    for name, value in body.retry_delays.items():
        if name not in _OUTCOME_NAMES:
            raise SpecError(f"retry_delays.{name}", f"unknown outcome; known: {', '.join(_OUTCOME_NAMES)}")
        delays[_OUTCOME_NAMES[name]] = value
    try:
        retry = RetryPolicy({**defaults, **delays})
        rules = _abandon_rules(body)
        config = CampaignConfig(
            campaign_id=campaign_id, mode=DialMode(body.mode), ring_timeout=body.ring_timeout,
            calling_hours=hours, max_attempts=body.max_attempts, retry=retry, abandon_rules=rules,
            trunk_limit=body.trunk_limit, amd_enabled=body.amd, amd_max_seconds=body.amd_max_seconds)
    except ConfigError as exc:
        raise SpecError(_core_field(exc.field), exc.message) from None
    dispositions = dict(DEFAULT_DISPOSITIONS)
    for name, d in body.dispositions.items():
        if not re.match(r"^[a-z0-9][a-z0-9_-]{0,39}$", name):
            raise SpecError(f"dispositions.{name}", "names are lowercase letters, digits, '-' or '_'")
        dispositions[name] = Disposition(d.action, d.delay)
    try:
        numbers = NumberPolicy(default_region=body.numbers.default_region.upper(),
                               allowed_regions=frozenset(r.upper() for r in body.numbers.allowed_regions),
                               allowed_prefixes=tuple(body.numbers.allowed_prefixes),
                               allow_toll_free=body.numbers.allow_toll_free)
    except (TypeError, ValueError) as exc:
        raise SpecError("numbers", str(exc)) from None
    return CampaignSpec(
        id=campaign_id, config=config, agents=tuple(body.agents), queue=body.queue, caller_id=body.caller_id,
        dial_template=body.dial_template, machine_handling=body.machine_handling,
        machine_message=tuple(body.machine_message), safe_harbor_message=tuple(body.safe_harbor_message),
        wrapup_seconds=body.wrapup_seconds, dispositions=dispositions, dnc_scope=body.dnc_scope,
        numbers=numbers, body=body.model_dump(mode="json"))


def spec_error_field(exc: ValidationError) -> str:
    errs = exc.errors()
    return ".".join(str(p) for p in errs[0]["loc"]) if errs else "body"
