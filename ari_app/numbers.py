"""Which numbers the app may dial: E.164 normalisation and the toll-fraud rules.

Callbacks, click-to-call and campaigns all dial numbers that came from outside (a caller id, a
web form, a lead file). One policy decides for all of them, with libphonenumber's metadata rather
than hand-kept prefix lists: premium-rate, shared-cost, emergency and short codes are refused,
countries must be allowed, and an optional prefix allow-list narrows it further.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ShortNumberCost, shortnumberinfo
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Types never dialled on a visitor's or a lead's behalf.
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate numbers are not allowed",
    PhoneNumberType.SHARED_COST: "shared-cost numbers are not allowed",
    PhoneNumberType.UAN: "universal access numbers are not allowed",
    PhoneNumberType.PAGER: "pager numbers are not allowed",
}


class NumberRefused(ValueError):
    """The number can't be dialled; `reason` is a short code for records, str() a sentence."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class NumberPolicy:
    default_region: str = "FR"
    allowed_regions: frozenset[str] = field(default_factory=lambda: frozenset({"FR"}))
    allowed_prefixes: tuple[str, ...] = ()   # E.164 prefixes, e.g. ("+336", "+337"); empty: any
    allow_toll_free: bool = True
    #: Numbers the sandbox and tests dial (Local channels): accepted as they are when set.
    test_prefixes: tuple[str, ...] = ()

    def normalise(self, raw: str, *, region: str | None = None) -> str:
        """Return the E.164 form of `raw`, or raise NumberRefused saying why not."""
        text = (raw or "").strip()
        if not text:
            raise NumberRefused("empty", "number is empty")
        if len(text) > 32:
            raise NumberRefused("malformed", "number is too long")
        for prefix in self.test_prefixes:
            if text.startswith(prefix):
                return text
        region = region or self.default_region
        if shortnumberinfo.is_emergency_number(text, region) or shortnumberinfo.connects_to_emergency_number(
                text, region):
            raise NumberRefused("emergency", "emergency numbers are never dialled")
        try:
            num = phonenumbers.parse(text, region)
        except NumberParseException as exc:
            raise NumberRefused("malformed", f"not a phone number: {exc._msg}") from None
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        if shortnumberinfo.is_valid_short_number(num):
            cost = shortnumberinfo.expected_cost(num)
            if cost == ShortNumberCost.PREMIUM_RATE:
                raise NumberRefused("premium", "premium-rate short codes are not allowed")
            raise NumberRefused("short-code", "short codes are not allowed")
        if not phonenumbers.is_valid_number(num):
            raise NumberRefused("invalid", f"{e164} is not a valid number")
        region_of = phonenumbers.region_code_for_number(num)
        if self.allowed_regions and region_of not in self.allowed_regions:
            raise NumberRefused("country", f"calls to {region_of or 'that country'} are not allowed")
        ntype = phonenumbers.number_type(num)
        if ntype in REFUSED_TYPES:
            raise NumberRefused(ntype_name(ntype), REFUSED_TYPES[ntype])
        if ntype == PhoneNumberType.TOLL_FREE and not self.allow_toll_free:
            raise NumberRefused("toll-free", "toll-free numbers are not allowed")
        if self.allowed_prefixes and not e164.startswith(self.allowed_prefixes):
            raise NumberRefused("prefix", f"{e164} is outside the allowed prefixes")
        return e164

    def timezones(self, e164: str) -> tuple[str, ...]:
        """The IANA time zones a number may be in (for calling windows)."""
        from phonenumbers import timezone
        try:
            return tuple(z for z in timezone.time_zones_for_number(phonenumbers.parse(e164, None))
                         if z != "Etc/Unknown")
        except NumberParseException:
            return ()


def national(e164: str) -> str:
    """Digits as dialled inside the country (0612345678), for whispers and dial templates."""
    try:
        num = phonenumbers.parse(e164, None)
    except NumberParseException:
        return "".join(ch for ch in e164 if ch.isdigit())
    text = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in text if ch.isdigit())


_E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")


class DialOutSettings(BaseModel):
    """Settings of a capability that dials numbers it was given (callbacks, click-to-call): which
    numbers are allowed, and the dial string a validated number becomes."""

    model_config = ConfigDict(extra="forbid")
    #: Dial string of a validated number: {e164} (+33612345678), {digits} (33612345678),
    #: {national} (0612345678).
    dial_template: str = "PJSIP/{e164}@trunk"
    #: E.164 number -> dial string, applied after validation (the number must pass the policy
    #: first). The sandbox maps test numbers to simulated people with it.
    dial_overrides: dict[str, str] = Field(default_factory=dict)
    #: The company number the called person sees.
    caller_id: str = ""
    default_region: str = "FR"
    allowed_regions: list[str] = Field(default_factory=lambda: ["FR"])
    allowed_prefixes: list[str] = Field(default_factory=list)
    allow_toll_free: bool = True

    @field_validator("dial_template")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            out = v.format(e164="+1", digits="1", national="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"unknown placeholder or bad format: {exc}; use {{e164}}, {{digits}}, "
                             "{national}") from None
        if out == v:
            raise ValueError("must contain {e164}, {digits} or {national}")
        return v

    @field_validator("dial_overrides")
    @classmethod
    def _overrides(cls, v: dict[str, str]) -> dict[str, str]:
        for number in v:
            if not _E164.match(number):
                raise ValueError(f"key {number!r} is not an E.164 number (+CC...)")
        return v

    def number_policy(self) -> NumberPolicy:
        return NumberPolicy(default_region=self.default_region, allowed_regions=frozenset(self.allowed_regions),
                            allowed_prefixes=tuple(self.allowed_prefixes), allow_toll_free=self.allow_toll_free)

    def dial_string(self, e164: str) -> str:
        """The dial string of a validated number: an override if one is set, else the template."""
        override = self.dial_overrides.get(e164)
        if override is not None:
            return override
        return self.dial_template.format(e164=e164, digits=e164.lstrip("+"), national=national(e164))


def ntype_name(ntype: int) -> str:
    return {PhoneNumberType.PREMIUM_RATE: "premium", PhoneNumberType.SHARED_COST: "shared-cost",
            PhoneNumberType.UAN: "uan", PhoneNumberType.PAGER: "pager"}.get(ntype, "refused")
