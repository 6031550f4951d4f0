"""Pydantic models for the ARI data types we use (Asterisk 22 rest-api/*.json ``models``).

Why ``extra="allow"``: Asterisk adds fields in minor releases; a new field must never break
parsing, and it stays reachable via ``model_extra``. Required fields follow the spec so that a
removed/renamed field fails loudly (see tests/unit/test_ari_spec.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AriModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class CallerID(AriModel):
    name: str
    number: str


class DialplanCEP(AriModel):
    context: str
    exten: str
    priority: int
    app_name: str
    app_data: str


class Channel(AriModel):
    id: str
    protocol_id: str
    name: str
    state: str
    caller: CallerID
    connected: CallerID
    accountcode: str
    dialplan: DialplanCEP
    creationtime: datetime
    language: str
    channelvars: dict[str, Any] | None = None
    caller_rdnis: str | None = None
    tenantid: str | None = None


class Bridge(AriModel):
    id: str
    technology: str
    bridge_type: str
    bridge_class: str
    creator: str
    name: str
    channels: list[str]
    video_mode: str | None = None
    video_source_id: str | None = None
    creationtime: datetime
    bridgevars: dict[str, Any] | None = None


class Playback(AriModel):
    id: str
    media_uri: str
    next_media_uri: str | None = None
    target_uri: str
    language: str | None = None
    state: str


class LiveRecording(AriModel):
    name: str
    format: str
    target_uri: str
    state: str
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str | None = None


class StoredRecording(AriModel):
    name: str
    format: str


class Endpoint(AriModel):
    technology: str
    resource: str
    state: str | None = None
    channel_ids: list[str]


class DeviceState(AriModel):
    name: str
    state: str


class AsteriskInfo(AriModel):
    """Kept loose (plain dicts): we only log/display it."""

    build: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


class AsteriskPing(AriModel):
    asterisk_id: str
    ping: str
    timestamp: str


class Module(AriModel):
    name: str
    description: str
    use_count: int
    status: str
    support_level: str


class Application(AriModel):
    name: str
    channel_ids: list[str]
    bridge_ids: list[str]
    endpoint_ids: list[str]
    device_names: list[str]
    events_allowed: list[dict[str, Any]]
    events_disallowed: list[dict[str, Any]]


class Variable(AriModel):
    value: str


#: Model name in the spec -> our class; used by the spec conformance check.
SPEC_MODELS: dict[str, type[AriModel]] = {
    cls.__name__: cls
    for cls in (
        CallerID,
        DialplanCEP,
        Channel,
        Bridge,
        Playback,
        LiveRecording,
        StoredRecording,
        Endpoint,
        DeviceState,
        AsteriskInfo,
        AsteriskPing,
        Module,
        Application,
        Variable,
    )
}

__all__ = [*SPEC_MODELS, "AriModel", "SPEC_MODELS"]
