"""Callback settings: the `callbacks` field of the one Settings object (env `ARI_APP_CALLBACKS`
as JSON, or a `[callbacks]` table in the TOML file). Imports nothing from the app, so
`ari_app.settings` can import it.

Per-queue behaviour (offer conditions, agent-/customer-first, retries) is not here: it is the
queue's callback policy, set over the API (`PUT /api/v1/queues/{name}/callback`) and stored in
PostgreSQL like the queue itself.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")


class CallbacksSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: Dial string of a validated number: {e164} (+33612345678), {digits} (33612345678),
    #: {national} (0612345678).
    dial_template: str = "PJSIP/{e164}@trunk"
    #: E.164 number -> dial string, applied after validation. The sandbox maps test numbers to
    #: simulated people with it.
    dial_overrides: dict[str, str] = Field(default_factory=dict)
    #: The company number the customer sees calling them back.
    caller_id: str = ""
    default_region: str = "FR"
    allowed_regions: list[str] = Field(default_factory=lambda: ["FR"])
    allowed_prefixes: list[str] = Field(default_factory=list)
    allow_toll_free: bool = True
    #: Seconds between looks at the callbacks table (due scheduled callbacks, retries, expiry).
    poll_interval: float = Field(1.0, gt=0, le=60)

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
