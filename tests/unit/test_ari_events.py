"""Event parsing: every typed event from a sample shaped like events.json, and the safety nets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.ari import events as ev
from ari_app.ari.models import Channel

TS = "2026-11-23T06:33:30.348+0000"
BASE = {"application": "ari-app", "timestamp": TS, "asterisk_id": "02:fc:00:00:00:01"}


def channel(cid: str = "ch-1", state: str = "Up") -> dict[str, Any]:
    return {
        "id": cid,
        "name": "Local/answer@sim-agent-00000000;1",
        "state": state,
        "protocol_id": "",
        "caller": {"name": "Alice", "number": "100"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "sim-agent",
            "exten": "answer",
            "priority": 1,
            "app_name": "Stasis",
            "app_data": "ari-app",
        },
        "creationtime": TS,
        "language": "en",
        "channelvars": {"X": "1"},
        "brand_new_field": "kept",
    }


BRIDGE = {
    "id": "br-1",
    "technology": "simple_bridge",
    "bridge_type": "mixing",
    "bridge_class": "stasis",
    "creator": "Stasis",
    "name": "call-1",
    "channels": ["ch-1", "ch-2"],
    "creationtime": TS,
    "video_mode": "none",
}
PLAYBACK = {
    "id": "pb-1",
    "media_uri": "sound:hello-world",
    "target_uri": "channel:ch-1",
    "language": "en",
    "state": "playing",
}
RECORDING = {"name": "rec-1", "format": "wav", "target_uri": "channel:ch-1", "state": "recording"}
ENDPOINT = {"technology": "PJSIP", "resource": "agent1", "state": "online", "channel_ids": []}

SAMPLES: dict[str, dict[str, Any]] = {
    "StasisStart": {"channel": channel(), "args": ["inbound", "q1"]},
    "StasisEnd": {"channel": channel()},
    "ChannelCreated": {"channel": channel(state="Down")},
    "ChannelDestroyed": {"channel": channel(), "cause": 16, "cause_txt": "Normal Clearing"},
    "ChannelStateChange": {"channel": channel(state="Ringing")},
    "ChannelDtmfReceived": {"channel": channel(), "digit": "5", "duration_ms": 120},
    "ChannelHangupRequest": {"channel": channel(), "cause": 17, "soft": True},
    "ChannelVarset": {"variable": "FOO", "value": "bar", "channel": channel()},
    "ChannelDialplan": {"channel": channel(), "dialplan_app": "Wait", "dialplan_app_data": "1"},
    "ChannelCallerId": {
        "channel": channel(),
        "caller_presentation": 0,
        "caller_presentation_txt": "Presentation Allowed, Not Screened",
    },
    "ChannelConnectedLine": {"channel": channel()},
    "ChannelHold": {"channel": channel(), "musicclass": "default"},
    "ChannelUnhold": {"channel": channel()},
    "ChannelTalkingStarted": {"channel": channel()},
    "ChannelTalkingFinished": {"channel": channel(), "duration": 1500},
    "ChannelUserevent": {"eventname": "Agent", "userevent": {"k": "v"}, "channel": channel()},
    "Dial": {
        "caller": channel("ch-1"),
        "peer": channel("ch-2"),
        "dialstatus": "ANSWER",
        "dialstring": "answer@sim-agent",
    },
    "BridgeCreated": {"bridge": BRIDGE},
    "BridgeDestroyed": {"bridge": BRIDGE},
    "BridgeMerged": {"bridge": BRIDGE, "bridge_from": {**BRIDGE, "id": "br-0"}},
    "BridgeBlindTransfer": {
        "channel": channel(),
        "exten": "200",
        "context": "default",
        "result": "Success",
        "is_external": False,
        "bridge": BRIDGE,
    },
    "BridgeAttendedTransfer": {
        "transferer_first_leg": channel("a"),
        "transferer_second_leg": channel("b"),
        "result": "Success",
        "is_external": False,
        "destination_type": "bridge",
        "destination_bridge": "br-1",
    },
    "ChannelEnteredBridge": {"bridge": BRIDGE, "channel": channel()},
    "ChannelLeftBridge": {"bridge": BRIDGE, "channel": channel()},
    "PlaybackStarted": {"playback": PLAYBACK},
    "PlaybackContinuing": {"playback": {**PLAYBACK, "next_media_uri": "sound:beep"}},
    "PlaybackFinished": {"playback": {**PLAYBACK, "state": "done"}},
    "RecordingStarted": {"recording": RECORDING},
    "RecordingFinished": {"recording": {**RECORDING, "state": "done", "duration": 3}},
    "RecordingFailed": {"recording": {**RECORDING, "state": "failed", "cause": "disk full"}},
    "ApplicationReplaced": {},
    "ApplicationMoveFailed": {"channel": channel(), "destination": "other", "args": []},
    "DeviceStateChanged": {"device_state": {"name": "Stasis:agent1", "state": "INUSE"}},
    "EndpointStateChange": {"endpoint": ENDPOINT},
}


def message(type_name: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_name, **BASE, **SAMPLES.get(type_name, {}), **extra}


def test_every_typed_event_has_a_sample() -> None:
    assert set(SAMPLES) == set(ev.ARI_EVENT_TYPES)


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_typed_event_parses(type_name: str) -> None:
    event = ev.parse_event(message(type_name))
    assert type(event) is ev.ARI_EVENT_TYPES[type_name]
    assert event.type == type_name
    assert event.application == "ari-app"
    assert event.timestamp is not None and event.timestamp.utcoffset() is not None
    for key, value in SAMPLES[type_name].items():
        got = getattr(event, key)
        if isinstance(value, dict) and "id" in value:
            assert (got["id"] if isinstance(got, dict) else got.id) == value["id"]
        elif not isinstance(value, dict | list):
            assert got == value


def test_stasis_start_fields() -> None:
    event = ev.parse_event(message("StasisStart"))
    assert isinstance(event, ev.StasisStart)
    assert event.args == ["inbound", "q1"]
    assert isinstance(event.channel, Channel)
    assert event.channel.caller.number == "100"
    assert event.channel.dialplan.priority == 1
    assert event.channel.channelvars == {"X": "1"}
    assert event.channel.model_extra == {"brand_new_field": "kept"}  # new Asterisk field kept
    assert event.replace_channel is None
    assert ev.channel_id_of(event) == "ch-1"


def test_optional_parts_may_be_absent() -> None:
    varset = ev.parse_event({"type": "ChannelVarset", **BASE, "variable": "G", "value": "1"})
    assert isinstance(varset, ev.ChannelVarset) and varset.channel is None
    entered = ev.parse_event({"type": "ChannelEnteredBridge", **BASE, "bridge": BRIDGE})
    assert isinstance(entered, ev.ChannelEnteredBridge) and entered.channel is None
    hangup = ev.parse_event({"type": "ChannelHangupRequest", **BASE, "channel": channel()})
    assert isinstance(hangup, ev.ChannelHangupRequest) and hangup.cause is None


def test_id_helpers() -> None:
    dial = ev.parse_event(message("Dial"))
    assert ev.channel_id_of(dial) == "ch-2"  # the peer: the leg being dialled
    assert ev.bridge_id_of(ev.parse_event(message("ChannelEnteredBridge"))) == "br-1"
    assert ev.playback_id_of(ev.parse_event(message("PlaybackFinished"))) == "pb-1"
    assert ev.channel_id_of(ev.parse_event(message("BridgeCreated"))) is None


def test_field_of_is_getattr() -> None:
    events = [ev.parse_event(message(t)) for t in sorted(SAMPLES)]
    events.append(ev.parse_event({"type": "ChannelToneDetected", **BASE, "channel": channel("x")}))
    for event in events:
        for name in ("channel", "bridge", "playback", "peer", "cause", "timestamp", "nope"):
            assert ev.field_of(event, name) is getattr(event, name, None)


def test_unknown_event_passes_through_with_its_fields() -> None:
    event = ev.parse_event({"type": "ChannelToneDetected", **BASE, "channel": channel("x")})
    assert type(event) is ev.Event
    assert event.type == "ChannelToneDetected"
    assert event.model_extra is not None and event.model_extra["channel"]["id"] == "x"
    assert ev.channel_id_of(event) == "x"  # id helpers work on untyped events too


def test_malformed_known_event_is_logged_and_returned_untyped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = {"type": "StasisStart", **BASE, "channel": {"id": "ch-9"}, "args": "not-a-list"}
    with caplog.at_level(logging.WARNING, logger="ari_app.ari.events"):
        event = ev.parse_event(data)
    assert type(event) is ev.Event and event.type == "StasisStart"
    assert ev.channel_id_of(event) == "ch-9"
    [record] = caplog.records
    assert record.event_type == "StasisStart"  # type: ignore[attr-defined]
    locs = {e["loc"] for e in record.errors}  # type: ignore[attr-defined]
    assert "args" in locs and "channel.name" in locs
    assert "not-a-list" not in caplog.text  # input values are not logged


def test_garbage_never_raises() -> None:
    for data in (
        {},
        {"type": None},
        {"type": 42, "timestamp": "yesterday"},
        {"type": "StasisEnd", "timestamp": "yesterday"},
        {"type": "Dial", "peer": 3, "application": ["x"]},
    ):
        event = ev.parse_event(data)
        assert isinstance(event, ev.Event)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    type_name=st.sampled_from([*ev.EVENT_TYPES, "Nope", ""]),
    fields=st.dictionaries(
        st.sampled_from(
            ["channel", "bridge", "args", "cause", "timestamp", "application", "peer", "x"]
        ),
        json_values,
        max_size=6,
    ),
)
def test_parse_event_never_raises(type_name: str, fields: dict[str, Any]) -> None:
    event = ev.parse_event({"type": type_name, **fields})
    assert isinstance(event, ev.Event)
    ev.channel_id_of(event)
    ev.bridge_id_of(event)


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_fast_path_gives_the_same_event(type_name: str) -> None:
    data = message(type_name)
    fast = ev.parse_known_event(json.dumps(data))
    assert type(fast) is ev.ARI_EVENT_TYPES[type_name]
    assert fast == ev.parse_event(data)


def test_fast_path_declines_what_needs_the_lenient_path() -> None:
    unknown = {"type": "ChannelToneDetected", **BASE, "channel": channel("x")}
    malformed = {"type": "StasisStart", **BASE, "channel": {"id": "ch-9"}, "args": "not-a-list"}
    for text in (json.dumps(unknown), json.dumps(malformed), "not json", "[1]", "{}"):
        assert ev.parse_known_event(text) is None


@settings(max_examples=300, deadline=None)
@given(
    type_name=st.sampled_from([*ev.EVENT_TYPES, "Nope", ""]),
    fields=st.dictionaries(
        st.sampled_from(["channel", "bridge", "args", "cause", "timestamp", "variable", "value", "x"]),
        json_values,
        max_size=6,
    ),
)
def test_fast_path_never_disagrees_with_parse_event(type_name: str, fields: dict[str, Any]) -> None:
    data = {"type": type_name, **BASE, **SAMPLES.get(type_name, {}), **fields}
    fast = ev.parse_known_event(json.dumps(data))
    if fast is not None:
        slow = ev.parse_event(data)
        assert type(fast) is type(slow) and fast == slow


def test_synthetic_events() -> None:
    up = ev.ClientConnected(application="a", reconnect=True, attempt=3)
    assert up.type == "ClientConnected" and up.timestamp is not None
    down = ev.ClientDisconnected(application="a", reason="gone")
    assert down.type == "ClientDisconnected"
    assert type(ev.parse_event(up.model_dump(mode="json"))) is ev.ClientConnected
