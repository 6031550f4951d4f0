"""Pydantic models for ARI websocket events, and ``parse_event``.

Why lenient parsing: the event loop drives every call; one odd message (a new event type, a field
Asterisk renamed) must never stop it. Unknown types and malformed known events come back as a
plain ``Event`` with all their fields kept; malformed ones are logged so the bug is visible.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .models import Bridge, Channel, DeviceState, Endpoint, LiveRecording, Playback

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Any ARI message. Kept loose so it can also hold unknown and malformed events."""

    model_config = ConfigDict(extra="allow")

    type: str
    application: str = ""
    timestamp: datetime | None = None
    asterisk_id: str | None = None


# --- channel events -------------------------------------------------------------------------


class StasisStart(Event):
    type: Literal["StasisStart"] = "StasisStart"
    channel: Channel
    args: list[str]
    replace_channel: Channel | None = None


class StasisEnd(Event):
    type: Literal["StasisEnd"] = "StasisEnd"
    channel: Channel


class ChannelCreated(Event):
    type: Literal["ChannelCreated"] = "ChannelCreated"
    channel: Channel


class ChannelDestroyed(Event):
    type: Literal["ChannelDestroyed"] = "ChannelDestroyed"
    channel: Channel
    cause: int
    cause_txt: str
    tech_cause: int | None = None


class ChannelStateChange(Event):
    type: Literal["ChannelStateChange"] = "ChannelStateChange"
    channel: Channel


class ChannelDtmfReceived(Event):
    type: Literal["ChannelDtmfReceived"] = "ChannelDtmfReceived"
    channel: Channel
    digit: str
    duration_ms: int


class ChannelHangupRequest(Event):
    type: Literal["ChannelHangupRequest"] = "ChannelHangupRequest"
    channel: Channel
    cause: int | None = None
    tech_cause: int | None = None
    soft: bool | None = None


class ChannelVarset(Event):
    type: Literal["ChannelVarset"] = "ChannelVarset"
    variable: str
    value: str
    channel: Channel | None = None  # absent for global variables


class ChannelDialplan(Event):
    type: Literal["ChannelDialplan"] = "ChannelDialplan"
    channel: Channel
    dialplan_app: str
    dialplan_app_data: str


class ChannelCallerId(Event):
    type: Literal["ChannelCallerId"] = "ChannelCallerId"
    channel: Channel
    caller_presentation: int
    caller_presentation_txt: str


class ChannelConnectedLine(Event):
    type: Literal["ChannelConnectedLine"] = "ChannelConnectedLine"
    channel: Channel


class ChannelHold(Event):
    type: Literal["ChannelHold"] = "ChannelHold"
    channel: Channel
    musicclass: str | None = None


class ChannelUnhold(Event):
    type: Literal["ChannelUnhold"] = "ChannelUnhold"
    channel: Channel


class ChannelTalkingStarted(Event):
    type: Literal["ChannelTalkingStarted"] = "ChannelTalkingStarted"
    channel: Channel


class ChannelTalkingFinished(Event):
    type: Literal["ChannelTalkingFinished"] = "ChannelTalkingFinished"
    channel: Channel
    duration: int


class ChannelUserevent(Event):
    type: Literal["ChannelUserevent"] = "ChannelUserevent"
    eventname: str
    userevent: dict[str, Any]
    channel: Channel | None = None
    bridge: Bridge | None = None
    endpoint: Endpoint | None = None


class Dial(Event):
    type: Literal["Dial"] = "Dial"
    peer: Channel
    dialstatus: str
    caller: Channel | None = None
    dialstring: str | None = None
    forward: str | None = None
    forwarded: Channel | None = None


# --- bridge events --------------------------------------------------------------------------


class BridgeCreated(Event):
    type: Literal["BridgeCreated"] = "BridgeCreated"
    bridge: Bridge


class BridgeDestroyed(Event):
    type: Literal["BridgeDestroyed"] = "BridgeDestroyed"
    bridge: Bridge


class BridgeMerged(Event):
    type: Literal["BridgeMerged"] = "BridgeMerged"
    bridge: Bridge
    bridge_from: Bridge


class BridgeBlindTransfer(Event):
    type: Literal["BridgeBlindTransfer"] = "BridgeBlindTransfer"
    channel: Channel
    exten: str
    context: str
    result: str
    is_external: bool
    replace_channel: Channel | None = None
    transferee: Channel | None = None
    bridge: Bridge | None = None


class BridgeAttendedTransfer(Event):
    """Loose on purpose: many optional legs; we only log it and reconcile from GET /bridges."""

    type: Literal["BridgeAttendedTransfer"] = "BridgeAttendedTransfer"
    result: str | None = None
    is_external: bool | None = None
    destination_type: str | None = None
    transferer_first_leg: dict[str, Any] | None = None
    transferer_second_leg: dict[str, Any] | None = None


class ChannelEnteredBridge(Event):
    type: Literal["ChannelEnteredBridge"] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel | None = None


class ChannelLeftBridge(Event):
    type: Literal["ChannelLeftBridge"] = "ChannelLeftBridge"
    bridge: Bridge
    channel: Channel


# --- media ----------------------------------------------------------------------------------


class PlaybackStarted(Event):
    type: Literal["PlaybackStarted"] = "PlaybackStarted"
    playback: Playback


class PlaybackContinuing(Event):
    type: Literal["PlaybackContinuing"] = "PlaybackContinuing"
    playback: Playback


class PlaybackFinished(Event):
    type: Literal["PlaybackFinished"] = "PlaybackFinished"
    playback: Playback


class RecordingStarted(Event):
    type: Literal["RecordingStarted"] = "RecordingStarted"
    recording: LiveRecording


class RecordingFinished(Event):
    type: Literal["RecordingFinished"] = "RecordingFinished"
    recording: LiveRecording


class RecordingFailed(Event):
    type: Literal["RecordingFailed"] = "RecordingFailed"
    recording: LiveRecording


# --- application / devices ------------------------------------------------------------------


class ApplicationReplaced(Event):
    """Another websocket registered our app name: we no longer get events."""

    type: Literal["ApplicationReplaced"] = "ApplicationReplaced"


class ApplicationMoveFailed(Event):
    type: Literal["ApplicationMoveFailed"] = "ApplicationMoveFailed"
    channel: Channel
    destination: str
    args: list[str]


class DeviceStateChanged(Event):
    type: Literal["DeviceStateChanged"] = "DeviceStateChanged"
    device_state: DeviceState


class EndpointStateChange(Event):
    type: Literal["EndpointStateChange"] = "EndpointStateChange"
    endpoint: Endpoint


# --- synthetic events emitted by our own client ---------------------------------------------


class ClientConnected(Event):
    """The websocket is (re)connected: reconcile state with GET /channels and /bridges now."""

    type: Literal["ClientConnected"] = "ClientConnected"
    timestamp: datetime | None = Field(default_factory=_now)
    reconnect: bool
    attempt: int


class ClientDisconnected(Event):
    """The websocket dropped: events may be lost until the next ``ClientConnected``."""

    type: Literal["ClientDisconnected"] = "ClientDisconnected"
    timestamp: datetime | None = Field(default_factory=_now)
    reason: str


#: Event types defined in events.json, by ``type`` name.
ARI_EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        StasisStart,
        StasisEnd,
        ChannelCreated,
        ChannelDestroyed,
        ChannelStateChange,
        ChannelDtmfReceived,
        ChannelHangupRequest,
        ChannelVarset,
        ChannelDialplan,
        ChannelCallerId,
        ChannelConnectedLine,
        ChannelHold,
        ChannelUnhold,
        ChannelTalkingStarted,
        ChannelTalkingFinished,
        ChannelUserevent,
        Dial,
        BridgeCreated,
        BridgeDestroyed,
        BridgeMerged,
        BridgeBlindTransfer,
        BridgeAttendedTransfer,
        ChannelEnteredBridge,
        ChannelLeftBridge,
        PlaybackStarted,
        PlaybackContinuing,
        PlaybackFinished,
        RecordingStarted,
        RecordingFinished,
        RecordingFailed,
        ApplicationReplaced,
        ApplicationMoveFailed,
        DeviceStateChanged,
        EndpointStateChange,
    )
}

EVENT_TYPES: dict[str, type[Event]] = {
    **ARI_EVENT_TYPES,
    "ClientConnected": ClientConnected,
    "ClientDisconnected": ClientDisconnected,
}


#: Every known event in one validator, picked by ``type``: decodes and validates the websocket
#: text in one pass inside pydantic-core, about a third cheaper than ``json.loads`` followed by
#: ``parse_event`` (it runs for every event of every call).
_KNOWN_EVENT: TypeAdapter[Event] = TypeAdapter(
    Annotated[Union[tuple(EVENT_TYPES.values())], Field(discriminator="type")]  # type: ignore[arg-type]  # noqa: UP007
)


def parse_known_event(message: str | bytes) -> Event | None:
    """The typed event of a well-formed message of a known type, else None (then use
    ``json.loads`` + ``parse_event``, which keep and report whatever else arrives)."""
    try:
        return _KNOWN_EVENT.validate_json(message)
    except ValidationError:
        return None


def parse_event(data: dict[str, Any]) -> Event:
    """Turn one decoded websocket message into an event. Never raises for a dict input."""
    type_name = data.get("type")
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is not None:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            log.warning(
                "ARI event %s did not match its model; passing it on untyped",
                type_name,
                extra={
                    "event_type": type_name,
                    "errors": [
                        {"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]}
                        for e in exc.errors(include_url=False, include_input=False)
                    ][:10],
                },
            )
    try:
        return Event.model_validate(data)
    except ValidationError:
        # Not even a base event (no/odd "type", bad timestamp): keep everything anyway.
        fields = {k: v for k, v in data.items() if k != "type"}
        return Event.model_construct(type=str(type_name or ""), **fields)


def field_of(event: BaseModel, name: str) -> Any:
    """``getattr(event, name, None)`` without its cost when the event has no such field: pydantic
    raises and catches an AttributeError for each miss (~4 us), and the dispatcher asks every
    event for its channel and bridge. Extra fields of untyped events are found as before."""
    fields = event.__dict__
    if name in fields:
        return fields[name]
    extra = event.__pydantic_extra__
    return extra.get(name) if extra else None


def _obj_id(value: object, key: str = "id") -> str | None:
    if isinstance(value, BaseModel):
        got = getattr(value, key, None)
    elif isinstance(value, dict):
        got = value.get(key)
    else:
        return None
    return got if isinstance(got, str) else None


def channel_id_of(event: Event) -> str | None:
    """The channel an event is about (``peer`` for ``Dial``), if any."""
    if isinstance(event, Dial):
        return event.peer.id
    return _obj_id(field_of(event, "channel"))


def bridge_id_of(event: Event) -> str | None:
    return _obj_id(field_of(event, "bridge"))


def playback_id_of(event: Event) -> str | None:
    return _obj_id(field_of(event, "playback"))
