"""The one settings object. Values come from env vars (ARI_APP_*), then a TOML file.

Why one object: every process (serve, demo, tests) is configured the same way, and a wrong
value fails at start with a message naming the field, not deep inside a call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ari_app.callbacks.config import CallbacksSettings
from ari_app.clicktocall.config import ClickToCallSettings


def _toml_path() -> Path | None:
    value = os.environ.get("ARI_APP_CONFIG")
    return Path(value) if value else None


#: Event types no capability reads: the dialplan's chatter (a Local channel running dialplan sends
#: dozens per call) and, per leg, the Dial progress and caller-id/connected-line updates (12 of
#: the 34 events of a queued call). Asterisk is asked not to send them.
UNUSED_EVENT_TYPES = ("ChannelVarset", "ChannelDialplan", "Dial", "ChannelCallerId", "ChannelConnectedLine")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARI_APP_", extra="forbid")

    # --- ARI -----------------------------------------------------------------------------
    ari_url: str = Field("http://127.0.0.1:8088", description="Base URL of Asterisk's HTTP server (without /ari)")
    ari_user: str = "ari_app"
    ari_password: SecretStr = SecretStr("ari_app")
    app_name: str = Field("ari-app", description="Stasis application name")
    ari_ping_interval: float = 10.0
    ari_reconnect_max_delay: float = 10.0
    ari_ignored_events: list[str] = Field(
        default_factory=lambda: list(UNUSED_EVENT_TYPES),
        description="Event types Asterisk is asked not to send to the app (its eventFilter, set at every connect), "
                    "and dropped unparsed if they arrive anyway (an Asterisk without the filter): no capability "
                    "uses them, and a Local channel running dialplan sends dozens per call. [] = all")

    ari_http_connections: int = Field(
        32, ge=1, le=100,
        description="REST connections to Asterisk at most (its http.conf sessionlimit, 100 by default, is shared "
                    "by every client); opened a few at a time, as its listen backlog is 10")

    # --- PostgreSQL ----------------------------------------------------------------------
    database_url: SecretStr = SecretStr("postgresql://ari_app@127.0.0.1:5433/ari_app")
    db_pool_min: int = 1
    db_pool_max: int = 10
    writer_batch_size: int = 500
    writer_flush_interval: float = Field(0.2, gt=0, le=5, description="Records reach PostgreSQL within this many "
                                         "seconds: one transaction per interval under load (a call makes ~20 rows)")
    writer_buffer_limit: int = 100_000

    # --- HTTP API ------------------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    api_tokens: list[SecretStr] = Field(default_factory=list, description="Bearer tokens accepted by /api/v1")

    # --- Behaviour -----------------------------------------------------------------------
    queues_file: Path | None = Field(None, description="TOML file declaring queues and agents, loaded at start")
    hold_music_delay: float = Field(0.3, ge=0, le=10, description="Seconds a queued caller waits before music on "
                                    "hold starts: an agent who answers sooner (auto-answer headsets) is connected "
                                    "without a burst of music, and Asterisk starts and stops none")
    transfer_dial_template: str = Field("PJSIP/{number}@trunk", description="Dial string of an agent's blind "
                                        "transfer to a number: {number} is the number as the agent gave it")
    transfer_ring_timeout: int = Field(30, ge=1, le=600, description="Seconds a transfer to a number rings")
    orphan_policy: str = Field("hangup", description="What to do with channels in our app we know nothing about: hangup|adopt")
    log_level: str = "INFO"

    # --- Reporting -----------------------------------------------------------------------
    report_timezone: str = Field("UTC", description="Time zone of 'today' and of report dates given without an offset")
    report_short_abandon: float = Field(5.0, ge=0, description="Callers who hang up within this many seconds are short "
                                        "abandons: left out of the abandon rate and the service level")
    report_sl_target: float = Field(0.8, gt=0, lt=1, description="Service level target of the Erlang prediction (0.8 = 80%)")
    metrics_public: bool = Field(False, description="Serve /metrics without a bearer token")

    # --- Capabilities --------------------------------------------------------------------
    click_to_call: ClickToCallSettings = Field(default_factory=ClickToCallSettings,
                                               description="Public click-to-call endpoint: sites, targets, limits")
    callbacks: CallbacksSettings = Field(default_factory=CallbacksSettings,
                                         description="Callbacks: which numbers may be called back and how they are dialled")

    @field_validator("ari_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("report_timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. UTC, Europe/Paris)") from None
        return v

    @field_validator("transfer_dial_template")
    @classmethod
    def _transfer_template(cls, v: str) -> str:
        try:
            v.format(number="0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{number}} may be filled in: {exc}") from None
        if "{number}" not in v:
            raise ValueError("needs {number}, e.g. PJSIP/{number}@trunk")
        return v

    @field_validator("orphan_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v not in ("hangup", "adopt"):
            raise ValueError("must be 'hangup' or 'adopt'")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def ari_ws_url(self) -> str:
        base = self.ari_url.replace("https://", "wss://").replace("http://", "ws://")
        return f"{base}/ari/events"

    def public_dict(self) -> dict[str, Any]:
        """Settings with secrets masked: safe to log or print."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
