"""Click-to-call settings: the `click_to_call` field of the one Settings object.

Kept next to the capability so the rules read together, but loaded only through `Settings`
(env `ARI_APP_CLICK_TO_CALL` as JSON, or a `[click_to_call]` table in the TOML file). This module
imports nothing from the app, so `ari_app.settings` can import it.

Defaults are closed: no site is configured, so the public endpoint refuses everything until an
operator lists the web sites allowed to use it, their origins and the targets they may call.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ari_app.numbers import DialOutSettings

_TARGET = re.compile(r"^(queue|agent):[^\s:]+$")


def _check_target(value: str) -> str:
    if not _TARGET.match(value):
        raise ValueError(f"target {value!r} must be 'queue:NAME' or 'agent:ID'")
    return value


class SiteConfig(BaseModel):
    """A web site allowed to use the public endpoint, identified by its (public) site key."""

    model_config = ConfigDict(extra="forbid")
    #: Exact origins of the site's pages ("https://www.example.com"); "self" is this app's own
    #: origin (the demo page). Also the CORS allow-list.
    origins: list[str] = Field(default_factory=list)
    #: What the site's visitors may call: "queue:NAME" or "agent:ID" (the first is the default).
    targets: list[str] = Field(min_length=1)
    #: Shared with the site's backend, which signs short-lived tokens with it (HMAC-SHA256).
    token_secret: SecretStr | None = None
    #: Refuse the site key + origin alone: every request must carry a signed token.
    require_token: bool = False

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        return [_check_target(t) for t in v]

    @field_validator("origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for o in v:
            if o != "self" and not re.match(r"^https?://[^/\s]+$", o):
                raise ValueError(f"origin {o!r} must be 'self' or scheme://host[:port] without a path")
        return v

    @model_validator(mode="after")
    def _usable(self) -> SiteConfig:
        if self.require_token and self.token_secret is None:
            raise ValueError("require_token needs a token_secret")
        return self


class TargetConfig(BaseModel):
    """How calls to one target are connected."""

    model_config = ConfigDict(extra="forbid")
    #: agent-first: an agent answers, hears the whisper, then the visitor is dialled.
    #: customer-first: the visitor is dialled, hears `message`, then waits in the queue.
    order: Literal["agent-first", "customer-first"] = "agent-first"
    #: Seconds the visitor's phone rings.
    ring_timeout: int = Field(default=30, ge=5, le=120)
    whisper: list[str] = Field(default_factory=lambda: ["sound:beep"])
    #: After the whisper, the agent hears the visitor's number (digits).
    whisper_number: bool = True
    message: list[str] = Field(default_factory=lambda: ["sound:one-moment-please"])
    #: Queue priority of the request; None: 0 agent-first, 10 customer-first (a visitor on the
    #: line waits ahead of ordinary callers).
    priority: int | None = None


class LimitsConfig(BaseModel):
    """Abuse limits (see clicktocall/core/limits.py for their exact meaning)."""

    model_config = ConfigDict(extra="forbid")
    per_ip_per_minute: int = Field(default=5, ge=1)
    per_ip_concurrent: int = Field(default=2, ge=1)
    per_number_per_hour: int = Field(default=3, ge=1)
    #: Seconds after a call to a number ends (or was accepted) before it may be called again.
    number_cooldown: float = Field(default=120.0, ge=0)
    global_per_minute: int = Field(default=60, ge=1)
    global_concurrent: int = Field(default=20, ge=1)
    #: Retry-After hint when a concurrency limit refuses (no exact time is known).
    concurrent_retry_after: float = Field(default=30.0, gt=0)


class ClickToCallSettings(DialOutSettings):
    """Sites, targets, limits and tokens; numbers and dial strings come from `DialOutSettings`
    (toll-free numbers are refused by default here: a visitor could make us pay for any call)."""

    #: Site key -> site. Empty: the public endpoint refuses every request.
    sites: dict[str, SiteConfig] = Field(default_factory=dict)
    #: "queue:NAME" / "agent:ID" -> how to connect; targets not listed use the defaults.
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    allow_toll_free: bool = False
    limits: LimitsConfig = Field(default_factory=lambda: LimitsConfig())
    #: Longest lifetime of a signed token, seconds.
    token_ttl: int = Field(default=300, ge=10, le=3600)
    #: Click to dial: seconds the agent's own phone rings.
    agent_ring_timeout: int = Field(default=30, ge=5, le=120)
    #: Serve the demo page (/api/v1/click-to-call/demo) for this site key; None: no demo page.
    demo_site: str | None = None
    #: Take the visitor's address from X-Forwarded-For (only behind a trusted reverse proxy).
    trust_forwarded_for: bool = False

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: dict[str, TargetConfig]) -> dict[str, TargetConfig]:
        for key in v:
            _check_target(key)
        return v



    @model_validator(mode="after")
    def _demo(self) -> ClickToCallSettings:
        if self.demo_site is not None and self.demo_site not in self.sites:
            raise ValueError(f"demo_site {self.demo_site!r} is not one of the sites")
        return self

    def target(self, key: str) -> TargetConfig:
        return self.targets.get(key) or TargetConfig()
