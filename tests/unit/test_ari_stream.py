"""Event stream against a local fake websocket server: reconnects, auth failure, liveness.

Fault injection (dropping or freezing the connection on cue) is why a fake server is used here;
everything else about ARI is tested against the real sandbox Asterisk.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from ari_app.ari import (
    AriAuthError,
    AriClient,
    AriConnectionError,
    ClientConnected,
    ClientDisconnected,
    Event,
)
from ari_app.ari.stream import backoff_delay, peek_type

USER, PASSWORD = "ari_app", "ws-secret-77"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
TS = "2026-11-23T06:33:30.348+0000"


def stasis_end(cid: str) -> str:
    channel = {
        "id": cid,
        "name": f"Local/{cid}",
        "state": "Up",
        "protocol_id": "",
        "caller": {"name": "", "number": ""},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "c", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
        "creationtime": TS,
        "language": "en",
    }
    return json.dumps(
        {"type": "StasisEnd", "application": "app", "timestamp": TS, "channel": channel}
    )


class FakeAsterisk:
    def __init__(self) -> None:
        self.reject_status: int | None = None
        self.requests: list[Request] = []
        self.live: list[ServerConnection] = []
        self.on_connect: list[str] = []  # messages sent to every new connection
        self.server: Server | None = None
        self.request_seen = asyncio.Event()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        self.request_seen.set()
        if request.headers.get("Authorization") != f"Basic {TOKEN}" or self.reject_status:
            return connection.respond(self.reject_status or 401, "Authentication required\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        self.live.append(ws)
        try:
            for msg in self.on_connect:
                await ws.send(msg)
            await ws.wait_closed()
        finally:
            self.live.remove(ws)

    def drop(self) -> None:
        """Abrupt loss (like Asterisk being killed): no close frame."""
        for ws in list(self.live):
            ws.transport.abort()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    f = FakeAsterisk()
    async with serve(f.handler, "127.0.0.1", 0, process_request=f.process_request) as server:
        f.server = server
        yield f


def make_client(port: int, password: str = PASSWORD, **kw: Any) -> AriClient:
    kw.setdefault("reconnect_max_delay", 0.3)
    return AriClient(f"http://127.0.0.1:{port}", USER, password, "app", **kw)


def connected(reconnect: bool) -> Any:
    return lambda e: isinstance(e, ClientConnected) and e.reconnect is reconnect


async def test_connects_with_header_auth_and_reconnects_after_drop(fake: FakeAsterisk) -> None:
    client = make_client(fake.port)
    events: list[Event] = []
    client.on_event(events.append)
    first = client.expect(connected(False), timeout=5)
    try:
        await client.start()
        await client.wait_connected(5)
        assert client.connected
        up = await first
        assert isinstance(up, ClientConnected) and up.attempt == 1 and up.application == "app"

        [req] = fake.requests
        assert req.path == "/ari/events?app=app&subscribeAll=false"
        assert PASSWORD not in req.path and TOKEN not in req.path  # credentials only in the header

        down = client.expect(lambda e: isinstance(e, ClientDisconnected), timeout=5)
        again = client.expect(connected(True), timeout=5)
        fake.drop()
        lost = await down
        assert isinstance(lost, ClientDisconnected) and lost.reason
        back = await again
        assert isinstance(back, ClientConnected) and back.reconnect
        assert client.connected
        assert [e.type for e in events] == [
            "ClientConnected",
            "ClientDisconnected",
            "ClientConnected",
        ]
    finally:
        await client.close()


async def test_events_arrive_in_order_and_bad_messages_are_skipped(
    fake: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    fake.on_connect = [
        stasis_end("c1"),
        "this is not json",
        "[1, 2]",
        json.dumps({"type": "StasisEnd", "application": "app", "channel": {"id": "broken"}}),
        json.dumps({"type": "SomethingNew", "application": "app", "x": 1}),
        stasis_end("c2"),
    ]
    client = make_client(fake.port)
    seen: list[str] = []

    def handler(e: Event) -> None:
        seen.append(e.type)
        if e.type == "SomethingNew":
            raise RuntimeError("handler bug must not stop the loop")

    client.on_event(handler)
    last = client.expect_event("StasisEnd", channel_id="c2", timeout=5)
    try:
        with caplog.at_level(logging.WARNING):
            await client.start()
            await last
        assert seen == ["ClientConnected", "StasisEnd", "StasisEnd", "SomethingNew", "StasisEnd"]
        assert "non-JSON" in caplog.text and "did not match its model" in caplog.text
        assert client.connected
    finally:
        await client.close()


async def test_wrong_password_raises_auth_error_then_keeps_retrying(fake: FakeAsterisk) -> None:
    client = make_client(fake.port, password="nope-" + PASSWORD)
    try:
        await client.start()
        with pytest.raises(AriAuthError) as info:
            await client.wait_connected(5)
        text = str(info.value) + repr(info.value)
        assert "ARI rejected the credentials for user 'ari_app'" in text
        assert PASSWORD not in text and "nope-" not in text
        assert not client.connected
        # It keeps trying (slowly), so fixing Asterisk's config brings it back without a restart.
        fake.request_seen.clear()
        await asyncio.wait_for(fake.request_seen.wait(), 5)
    finally:
        await client.close()


async def test_auth_failure_after_first_connect_retries_without_raising(fake: FakeAsterisk) -> None:
    client = make_client(fake.port)
    try:
        await client.start()
        await client.wait_connected(5)
        fake.reject_status = 401
        down = client.expect(lambda e: isinstance(e, ClientDisconnected), timeout=5)
        fake.drop()
        await down
        fake.reject_status = None
        back = client.expect(connected(True), timeout=5)
        await back
        await client.wait_connected(1)
    finally:
        await client.close()


async def test_not_reachable_reports_last_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = make_client(port)
    try:
        await client.start()
        with pytest.raises(AriConnectionError, match="last error"):
            await client.wait_connected(0.5)
    finally:
        await client.close()


async def test_frozen_peer_is_detected_by_ping_timeout(fake: FakeAsterisk) -> None:
    client = make_client(fake.port, ping_interval=0.2)
    try:
        await client.start()
        await client.wait_connected(5)
        down = client.expect(lambda e: isinstance(e, ClientDisconnected), timeout=5)
        again = client.expect(connected(True), timeout=5)
        [ws] = fake.live
        ws.transport.pause_reading()  # alive TCP, but no pongs: a hung Asterisk
        lost = await down
        assert isinstance(lost, ClientDisconnected)
        await again
    finally:
        await client.close()
        fake.drop()  # the frozen connection would hold the server's shutdown


@given(
    attempt=st.integers(0, 100),
    base=st.floats(0.01, 5),
    cap=st.floats(0.01, 60),
    r=st.floats(0, 0.999),
)
def test_backoff_is_capped_full_jitter(attempt: int, base: float, cap: float, r: float) -> None:
    d = backoff_delay(attempt, base=base, cap=cap, rand=lambda: r)
    assert 0 <= d <= min(cap, base * 2.0**attempt)
    assert backoff_delay(attempt, base=base, cap=cap, rand=lambda: 0.0) == 0


async def test_handshake_debug_log_never_shows_the_credentials(
    fake: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(fake.port)
    try:
        with caplog.at_level(logging.DEBUG):
            await client.start()
            await client.wait_connected(5)
    finally:
        await client.close()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ari_app"))
    assert "Authorization: ***" in ours  # websockets did log the header line, redacted
    assert TOKEN not in ours and PASSWORD not in ours  # (the fake server's own log may show it)


async def test_dropped_types_never_reach_handlers_and_are_counted(fake: FakeAsterisk) -> None:
    varset = {"variable": "X", "value": '{"type":"StasisEnd"}', "type": "ChannelVarset", "application": "app",
              "channel": {"id": "c1"}}
    compact = (",", ":")  # as Asterisk writes JSON; with spaces the peek can't tell and parses
    fake.on_connect = [json.dumps(varset, separators=compact), stasis_end("c1"),
                       json.dumps({**varset, "value": "plain"}, separators=compact), json.dumps(varset), stasis_end("c2")]
    client = make_client(fake.port, dropped_events=["ChannelVarset"])
    seen: list[str] = []
    client.on_event(lambda e: seen.append(e.type))
    last = client.expect_event("StasisEnd", channel_id="c2", timeout=5)
    try:
        await client.start()
        await last
        # The first varset has a "{" before its type: it can't be told unparsed, so it is
        # parsed (and not taken for the StasisEnd its value mentions). The second is dropped;
        # the third, not compact, is parsed.
        assert seen == ["ClientConnected", "ChannelVarset", "StasisEnd", "ChannelVarset", "StasisEnd"]
        assert client.stream.dropped == 1
    finally:
        await client.close()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "a", "{", '"type":"']),
                                                                 inner, max_size=3),
    max_leaves=8,
)


@given(before=st.dictionaries(st.sampled_from(["variable", "value", "x", "type2"]), _json_values, max_size=3),
       after=st.dictionaries(st.sampled_from(["channel", "bridge", "y"]), _json_values, max_size=3),
       kind=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=20))
def test_peek_type_is_the_top_level_type_or_none(before: dict[str, Any], after: dict[str, Any], kind: str) -> None:
    """Whatever the other fields hold (nested "type" keys, quotes, braces in strings), the peek
    is either the real top-level type or None: never another value."""
    message = json.dumps({**before, "type": kind, **after}, separators=(",", ":"))
    assert peek_type(message) in (kind, None)
    plain = kind.isascii() and kind.isalnum()
    if plain and not any("{" in json.dumps(v) for v in before.values()) and "{" not in "".join(before):
        assert peek_type(message) == kind
    assert peek_type(message.encode()) == peek_type(message)


async def test_a_burst_of_events_lets_the_loop_run_between_them() -> None:
    """Frames that arrived together are read without waiting and handled inline; the work the
    handlers start (REST requests are tasks) must not wait for the whole burst to be handled."""
    import time

    from ari_app.ari.stream import EventStream

    handled: list[str] = []
    side_ran_after: list[int] = []

    def sink(e: Event) -> None:
        handled.append(e.type)
        if len(handled) == 1:
            async def side() -> None:
                side_ran_after.append(len(handled))
            asyncio.get_running_loop().create_task(side())
        end = time.perf_counter() + 2 * EventStream.TURN_BUDGET  # a handler with real work to do
        while time.perf_counter() < end:
            pass

    class BufferedSocket:  # every frame already received: iterating never suspends
        close_code, close_reason = 1000, "done"

        async def __aiter__(self) -> AsyncIterator[str]:
            for i in range(10):
                yield stasis_end(f"c{i}")

    stream = EventStream("ws://127.0.0.1:1/ari/events", USER, PASSWORD, "app", sink)
    await stream._read(BufferedSocket())  # type: ignore[arg-type]
    assert len(handled) == 10
    assert side_ran_after and side_ran_after[0] < 10
