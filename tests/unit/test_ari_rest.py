"""REST transport against a tiny local aiohttp server: error mapping, encoding, no leaked secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ari_app.ari import (
    AriAuthError,
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriHttpError,
    AriNotFound,
    AriRest,
    AriUnprocessable,
    Channel,
    is_gone,
)

USER = "ari_app"
PASSWORD = "s3cr3t-Pw!zz"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

CHANNEL = {
    "id": "ch-1",
    "name": "Local/x@y-00000001;1",
    "state": "Down",
    "protocol_id": "",
    "caller": {"name": "", "number": ""},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {"context": "y", "exten": "x", "priority": 1, "app_name": "", "app_data": ""},
    "creationtime": "2026-11-23T06:33:30.348+0000",
    "language": "en",
}


class FakeAri:
    """Records requests; answers from ``responses[(method, path)]`` = (status, body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responses: dict[tuple[str, str], tuple[int, Any]] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path.split("?")[0],
                "query": dict(request.query),
                "body": json.loads(body) if body else None,
                "auth": request.headers.get("Authorization"),
            }
        )
        if request.headers.get("Authorization") != f"Basic {TOKEN}":
            return web.json_response({"message": "Authentication required"}, status=401)
        if request.path == "/ari/slow":
            await asyncio.sleep(5)
        status, payload = self.responses.get((request.method, request.path), (204, None))
        if payload is None:
            return web.Response(status=status)
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, content_type="text/html")
        return web.json_response(payload, status=status)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeAri, str]]:
    ari = FakeAri()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ari.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield ari, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def rest(fake: tuple[FakeAri, str]) -> AsyncIterator[AriRest]:
    r = AriRest(fake[1], USER, PASSWORD, timeout=1)
    try:
        yield r
    finally:
        await r.close()


def assert_no_secret(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)) + str(exc) + repr(exc) + repr(exc.args)
    assert PASSWORD not in text
    assert TOKEN not in text


@pytest.mark.parametrize(
    ("status", "cls", "gone"),
    [
        (400, AriBadRequest, False),
        (404, AriNotFound, True),
        (409, AriConflict, True),
        (422, AriUnprocessable, True),
        (500, AriHttpError, False),
        (503, AriHttpError, False),
    ],
)
async def test_status_maps_to_typed_error(
    fake: tuple[FakeAri, str], rest: AriRest, status: int, cls: type[AriHttpError], gone: bool
) -> None:
    ari, _ = fake
    ari.responses[("POST", "/ari/channels/ch-1/answer")] = (
        status,
        {"message": "Something failed"},
    )
    with pytest.raises(AriHttpError) as info:
        await rest.channels.answer(channel_id="ch-1")
    exc = info.value
    assert type(exc) is cls
    assert exc.status == status and exc.method == "POST"
    assert exc.path == "/channels/ch-1/answer"
    assert exc.detail == "Something failed"
    assert "Something failed" in str(exc) and str(status) in str(exc)
    assert is_gone(exc) is gone
    assert_no_secret(exc)


async def test_bridge_add_of_vanished_channel_is_gone(
    fake: tuple[FakeAri, str], rest: AriRest
) -> None:
    # bridges.json documents 400 "Channel not found" for addChannel/removeChannel.
    fake[0].responses[("POST", "/ari/bridges/br-1/addChannel")] = (
        400,
        {"message": "Channel not found"},
    )
    with pytest.raises(AriBadRequest) as info:
        await rest.bridges.add_channel(bridge_id="br-1", channel="ch-gone")
    assert is_gone(info.value)
    fake[0].responses[("POST", "/ari/channels")] = (400, {"message": "Endpoint must be specified"})
    with pytest.raises(AriBadRequest) as other:
        await rest.channels.originate(endpoint="")
    assert not is_gone(other.value)


async def test_wrong_password_is_a_clear_auth_error(fake: tuple[FakeAri, str]) -> None:
    bad = AriRest(fake[1], USER, "wrong-" + PASSWORD)
    try:
        with pytest.raises(AriAuthError) as info:
            await bad.asterisk.ping()
    finally:
        await bad.close()
    exc = info.value
    assert exc.status == 401 and not is_gone(exc)
    assert f"ARI rejected the credentials for user '{USER}'" in str(exc)
    assert "wrong-" not in str(exc) + repr(exc)
    assert_no_secret(exc)


async def test_403_is_auth_error_too(fake: tuple[FakeAri, str], rest: AriRest) -> None:
    fake[0].responses[("GET", "/ari/channels")] = (403, {"message": "Forbidden"})
    with pytest.raises(AriAuthError):
        await rest.channels.list()


async def test_secret_echoed_by_server_is_scrubbed(
    fake: tuple[FakeAri, str], rest: AriRest
) -> None:
    fake[0].responses[("GET", "/ari/asterisk/info")] = (
        500,
        {"message": f"oops {PASSWORD} {TOKEN}"},
    )
    with pytest.raises(AriHttpError) as info:
        await rest.asterisk.info()
    assert_no_secret(info.value)


async def test_non_json_error_body(fake: tuple[FakeAri, str], rest: AriRest) -> None:
    fake[0].responses[("GET", "/ari/bridges")] = (502, "<html>bad gateway</html>")
    with pytest.raises(AriHttpError) as info:
        await rest.bridges.list()
    assert info.value.status == 502 and "bad gateway" in info.value.detail


async def test_connection_refused_is_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        r = AriRest(f"http://127.0.0.1:{port}", USER, PASSWORD, timeout=2)
        try:
            with pytest.raises(AriConnectionError) as info:
                await r.channels.list()
        finally:
            await r.close()
    assert "GET /channels" in str(info.value)
    assert not is_gone(info.value)
    assert_no_secret(info.value)


async def test_timeout_is_connection_error(fake: tuple[FakeAri, str]) -> None:
    r = AriRest(fake[1], USER, PASSWORD, timeout=0.2)
    try:
        with pytest.raises(AriConnectionError) as info:
            await r.request("GET", "/slow")
    finally:
        await r.close()
    assert "TimeoutError" in str(info.value)
    assert_no_secret(info.value)


async def test_originate_encoding(fake: tuple[FakeAri, str], rest: AriRest) -> None:
    ari, _ = fake
    ari.responses[("POST", "/ari/channels")] = (200, CHANNEL)
    ch = await rest.channels.originate(
        endpoint="Local/answer@sim-agent",
        app="ari-app",
        app_args="a,b",
        channel_id="ch-1",
        caller_id="Bob <200>",
        timeout=30,
        variables={"CALL_ID": "42"},
        formats=["ulaw", "alaw"],
    )
    assert isinstance(ch, Channel) and ch.id == "ch-1"
    [req] = ari.requests
    assert req["auth"] == f"Basic {TOKEN}"
    assert req["query"] == {
        "endpoint": "Local/answer@sim-agent",
        "app": "ari-app",
        "appArgs": "a,b",
        "channelId": "ch-1",
        "callerId": "Bob <200>",
        "timeout": "30",
        "formats": "ulaw,alaw",
    }
    assert req["body"] == {"variables": {"CALL_ID": "42"}}


async def test_bools_lists_and_204(fake: tuple[FakeAri, str], rest: AriRest) -> None:
    ari, _ = fake
    result = await rest.bridges.add_channel(
        bridge_id="br-1", channel=["ch-1", "ch-2"], absorb_dtmf=False, mute=True
    )
    assert result is None
    [req] = ari.requests
    assert req["path"] == "/ari/bridges/br-1/addChannel"
    assert req["query"] == {"channel": "ch-1,ch-2", "absorbDTMF": "false", "mute": "true"}
    assert req["body"] is None


async def test_ids_are_path_quoted(fake: tuple[FakeAri, str], rest: AriRest) -> None:
    ari, _ = fake
    await rest.channels.hangup(channel_id="odd/id?x", reason="busy")
    [req] = ari.requests
    assert req["raw_path"] == "/ari/channels/odd%2Fid%3Fx"
    assert req["query"] == {"reason": "busy"}


async def test_event_filter_body(fake: tuple[FakeAri, str], rest: AriRest) -> None:
    ari, _ = fake
    app = {
        "name": "ari-app",
        "channel_ids": [],
        "bridge_ids": [],
        "endpoint_ids": [],
        "device_names": [],
        "events_allowed": [{"type": "StasisStart"}],
        "events_disallowed": [],
    }
    ari.responses[("PUT", "/ari/applications/ari-app/eventFilter")] = (200, app)
    got = await rest.applications.set_event_filter(
        application_name="ari-app", allowed=["StasisStart"], disallowed=[]
    )
    assert got.events_allowed == [{"type": "StasisStart"}]
    assert ari.requests[0]["body"] == {"allowed": [{"type": "StasisStart"}], "disallowed": []}


async def test_base_url_with_ari_suffix_and_shared_session(fake: tuple[FakeAri, str]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        r = AriRest(fake[1] + "/ari/", USER, PASSWORD, session=session)
        await r.channels.list()
        await r.close()  # not ours: must stay open
        assert not session.closed
    assert fake[0].requests[0]["path"] == "/ari/channels"


def test_repr_has_no_secret() -> None:
    r = AriRest("http://127.0.0.1:1", USER, PASSWORD)
    assert PASSWORD not in repr(r) and TOKEN not in repr(r)
    assert PASSWORD not in repr(r.channels)


async def test_connections_are_opened_a_few_at_a_time_and_capped(
    fake: tuple[FakeAri, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of requests on a cold pool must not become a burst of connection attempts
    (Asterisk's listen backlog is 10: the overflow waits a second for a SYN retry)."""
    import aiohttp

    opening, peak, four_opening, gate = 0, 0, asyncio.Event(), asyncio.Event()
    original = aiohttp.TCPConnector._create_direct_connection

    async def counted(self: aiohttp.TCPConnector, *a: Any, **kw: Any) -> Any:
        nonlocal opening, peak
        opening += 1
        peak = max(peak, opening)
        if opening == 4:
            four_opening.set()
        try:
            await gate.wait()
            return await original(self, *a, **kw)
        finally:
            opening -= 1

    monkeypatch.setattr(aiohttp.TCPConnector, "_create_direct_connection", counted)
    rest = AriRest(fake[1], USER, PASSWORD, timeout=5, max_connections=6, connect_concurrency=4)
    try:
        burst = [asyncio.create_task(rest.request("GET", "/asterisk/ping")) for _ in range(20)]
        await asyncio.wait_for(four_opening.wait(), 5)
        for _ in range(50):  # every other request has had its chance to start connecting
            await asyncio.sleep(0)
        assert opening == 4
        gate.set()
        await asyncio.wait_for(asyncio.gather(*burst), 5)
        assert peak == 4
        assert len(fake[0].requests) == 20
    finally:
        await rest.close()
