"""AriClient against the real sandbox Asterisk 22 (session fixture ``sandbox`` in tests/conftest.py).

Simulated people are Local channels into the ``sim-agent`` context (dialplan/sim-people.conf).
Every wait is on an event with a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from ari_app.ari import (
    AriAuthError,
    AriClient,
    AriError,
    AriNotFound,
    AriOriginateFailed,
    Bridge,
    ClientConnected,
    ClientDisconnected,
    is_gone,
)
from ari_app.ari import events as ev
from ari_app.ari import spec as ari_spec

pytestmark = pytest.mark.integration

ANSWERS = "Local/ans0@sim-agent"


def app_name(sandbox: Any) -> str:
    # Our own app name: the ARI client tests never steal events from an app process under test.
    return f"{sandbox.info.app_name}-aritest-{uuid.uuid4().hex[:6]}"


def make_client(sandbox: Any, *, password: str | None = None) -> AriClient:
    info = sandbox.info
    return AriClient(
        info.ari_url,
        info.ari_user,
        info.ari_password if password is None else password,
        app_name(sandbox),
        ping_interval=2,
        reconnect_max_delay=1,
    )


async def ignore_gone(call: Awaitable[None]) -> None:
    try:
        await call
    except AriError as exc:
        if not is_gone(exc):
            raise


@pytest.fixture
async def client(sandbox: Any) -> AsyncIterator[AriClient]:
    c = make_client(sandbox)
    await c.start()
    await c.wait_connected(15)
    try:
        yield c
    finally:
        # Leave nothing behind in the shared Asterisk: our app's channels and bridges.
        app = await c.rest.applications.get(application_name=c.app)
        for cid in app.channel_ids:
            await ignore_gone(c.rest.channels.hangup(channel_id=cid))
        for bid in app.bridge_ids:
            await ignore_gone(c.rest.bridges.destroy(bridge_id=bid))
        await c.close()


async def test_call_flow_originate_bridge_hangup(client: AriClient) -> None:
    rest = client.rest
    a = await client.originate_and_wait(endpoint=ANSWERS, app_args="leg,a", wait_timeout=15)
    assert a.channel.id.startswith("ch-") and a.args == ["leg", "a"]
    await rest.channels.answer(channel_id=a.channel.id)
    b_id = client.new_id("t")
    b = await client.originate_and_wait(endpoint=ANSWERS, channel_id=b_id, wait_timeout=15)
    assert b.channel.id == b_id

    bridge_id = client.new_id("br")
    bridge = await rest.bridges.create(bridge_id=bridge_id, type="mixing", name="itest")
    assert isinstance(bridge, Bridge) and bridge.id == bridge_id and bridge.bridge_type == "mixing"

    entered = [
        client.expect_event("ChannelEnteredBridge", channel_id=cid, bridge_id=bridge_id, timeout=10)
        for cid in (a.channel.id, b_id)
    ]
    await rest.bridges.add_channel(bridge_id=bridge_id, channel=[a.channel.id, b_id])
    for waiter in entered:
        got = await waiter
        assert isinstance(got, ev.ChannelEnteredBridge) and got.bridge.id == bridge_id
    assert sorted((await rest.bridges.get(bridge_id=bridge_id)).channels) == sorted(
        [a.channel.id, b_id]
    )

    left = client.expect_event("ChannelLeftBridge", channel_id=a.channel.id, timeout=10)
    end = client.expect_event("StasisEnd", channel_id=a.channel.id, timeout=10)
    destroyed = client.expect_event("ChannelDestroyed", channel_id=a.channel.id, timeout=10)
    await rest.channels.hangup(channel_id=a.channel.id, reason="normal")
    await left
    assert (await end).type == "StasisEnd"
    gone = await destroyed
    assert isinstance(gone, ev.ChannelDestroyed) and gone.cause == 16

    # The channel is gone: a late hangup is a normal outcome, recognisable by is_gone().
    with pytest.raises(AriNotFound) as info:
        await rest.channels.hangup(channel_id=a.channel.id)
    assert is_gone(info.value)
    with pytest.raises(AriError) as late_add:  # Asterisk answers 400 "Channel not found" here
        await rest.bridges.add_channel(bridge_id=bridge_id, channel=a.channel.id)
    assert is_gone(late_add.value), late_add.value

    b_end = client.expect_event("StasisEnd", channel_id=b_id, timeout=10)
    await rest.channels.hangup(channel_id=b_id)
    await b_end
    bridge_gone = client.expect_event("BridgeDestroyed", bridge_id=bridge_id, timeout=10)
    await rest.bridges.destroy(bridge_id=bridge_id)
    await bridge_gone


async def test_originate_to_busy_agent_fails_with_cause(client: AriClient) -> None:
    with pytest.raises(AriOriginateFailed) as info:
        await client.originate_and_wait(endpoint="Local/busy@sim-agent", wait_timeout=15)
    assert info.value.cause == 17, info.value


async def test_media_variables_and_models_against_real_asterisk(client: AriClient) -> None:
    rest = client.rest
    call = await client.originate_and_wait(endpoint=ANSWERS, wait_timeout=15)
    cid = call.channel.id

    await rest.channels.set_variable(channel_id=cid, variable="ARI_TEST", value="42")
    assert (await rest.channels.get_variable(channel_id=cid, variable="ARI_TEST")).value == "42"

    playback_id = client.new_id("pb")
    finished = client.expect_event("PlaybackFinished", playback_id=playback_id, timeout=15)
    pb = await rest.channels.play(channel_id=cid, media=["sound:beep"], playback_id=playback_id)
    assert pb.id == playback_id
    assert isinstance(await finished, ev.PlaybackFinished)

    await rest.channels.start_moh(channel_id=cid)
    await rest.channels.stop_moh(channel_id=cid)
    await rest.channels.mute(channel_id=cid, direction="in")
    await rest.channels.unmute(channel_id=cid, direction="in")
    assert any(c.id == cid for c in await rest.channels.list())

    apps = {a.name for a in await rest.applications.list()}
    assert client.app in apps
    app = await rest.applications.get(application_name=client.app)
    assert cid in app.channel_ids

    assert (await rest.asterisk.ping()).ping == "pong"
    info = await rest.asterisk.info(only=["system", "status"])
    assert info.system is not None and info.system["version"].startswith("22")
    await rest.asterisk.set_global_var(variable="ARI_TEST_G", value="x")
    assert (await rest.asterisk.get_global_var(variable="ARI_TEST_G")).value == "x"
    assert any(m.name == "res_ari.so" for m in await rest.asterisk.list_modules())

    device = f"Stasis:{client.app}"
    await rest.device_states.update(device_name=device, device_state="INUSE")
    assert (await rest.device_states.get(device_name=device)).state == "INUSE"
    await rest.device_states.delete(device_name=device)

    await rest.endpoints.list()
    end = client.expect_event("StasisEnd", channel_id=cid, timeout=10)
    await rest.channels.hangup(channel_id=cid)
    await end


async def test_wrong_password_is_a_clear_auth_error(sandbox: Any) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    c = make_client(sandbox, password=wrong)
    try:
        with pytest.raises(AriAuthError) as rest_err:
            await c.rest.asterisk.ping()
        await c.start()
        with pytest.raises(AriAuthError) as ws_err:
            await c.wait_connected(10)
    finally:
        await c.close()
    for exc in (rest_err.value, ws_err.value):
        text = str(exc) + repr(exc)
        assert f"ARI rejected the credentials for user '{sandbox.info.ari_user}'" in text
        assert wrong not in text and sandbox.info.ari_password not in text


async def test_spec_served_by_asterisk_matches_client(client: AriClient) -> None:
    spec = await ari_spec.fetch_spec(client.rest)
    assert await ari_spec.check_conformance(spec) == []


async def _restart(sandbox: Any) -> None:
    restart = sandbox.restart_asterisk
    if inspect.iscoroutinefunction(restart):
        await restart()
    else:  # a blocking restart must not freeze the loop the client runs on
        await asyncio.to_thread(restart)


async def test_reconnects_after_asterisk_restart(sandbox: Any, client: AriClient) -> None:
    lost = client.expect(lambda e: isinstance(e, ClientDisconnected), timeout=90)
    back = client.expect(lambda e: isinstance(e, ClientConnected) and e.reconnect, timeout=90)
    await _restart(sandbox)
    assert isinstance(await lost, ClientDisconnected)
    up = await back
    assert isinstance(up, ClientConnected) and up.reconnect
    await client.wait_connected(30)
    assert client.connected

    # REST works again, and the app is registered again (it gets StasisStart for new calls).
    assert (await client.rest.asterisk.ping()).ping == "pong"
    call = await client.originate_and_wait(endpoint=ANSWERS, wait_timeout=15)
    end = client.expect_event("StasisEnd", channel_id=call.channel.id, timeout=10)
    await client.rest.channels.hangup(channel_id=call.channel.id)
    await end
