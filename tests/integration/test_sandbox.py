"""The sandbox itself: a stock Asterisk 22 reachable over ARI on loopback only, PostgreSQL with
the ari_app database, and the simulated people of dialplan/sim-people.conf behaving as their
dial strings say (see the table at the top of that file)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ari_app import PROJECT_ROOT
from ari_app.sandbox import Sandbox
from ari_app.sandbox._proc import listeners_of
from ari_app.sandbox.sounds import sounds_dir

from .ariprobe import AriProbe, Event

pytestmark = pytest.mark.integration


@pytest.fixture
async def probe(sandbox: Sandbox) -> AsyncIterator[AriProbe]:
    """An ARI event stream for a Stasis app of this test's own."""
    info = sandbox.info
    app = f"{info.app_name}-sbxtest-{uuid.uuid4().hex[:6]}"
    async with AriProbe(info.ari_url, info.ari_user, info.ari_password, app) as p:
        yield p


@pytest.fixture
async def app_probe(sandbox: Sandbox) -> AsyncIterator[AriProbe]:
    """An event stream registered as THE app name, the one the dialplan's Stasis() uses."""
    info = sandbox.info
    async with AriProbe(info.ari_url, info.ari_user, info.ari_password, info.app_name) as p:
        yield p


def is_(type_: str, channel_id: str):  # noqa: ANN201
    return lambda e: e.get("type") == type_ and e.get("channel", {}).get("id") == channel_id


async def test_ari_answers_with_asterisk_22(probe: AriProbe) -> None:
    status, body = await probe.request("GET", "/asterisk/info")
    assert status == 200
    assert body["system"]["version"].split(".")[0] == "22", body["system"]["version"]


async def test_nothing_listens_beyond_loopback(sandbox: Sandbox) -> None:
    pid = sandbox.asterisk.pid()
    assert pid is not None
    pg_pid = int((sandbox.pg.data_dir / "postmaster.pid").read_text().split()[0])
    ast = listeners_of(pid)
    pg = listeners_of(pg_pid)
    assert ast == [f"127.0.0.1:{sandbox.ari_port}/tcp"], ast  # ARI only: no SIP, IAX, AMI
    assert pg == [f"127.0.0.1:{sandbox.pg_port}/tcp"], pg


async def test_exactly_the_configured_modules_are_running(sandbox: Sandbox) -> None:
    wanted = set(re.findall(r"^load\s*=\s*(\S+\.so)", (PROJECT_ROOT / "dialplan/etc/modules.conf").read_text(), re.M))
    out = await asyncio.to_thread(sandbox.asterisk_cli, "module show")
    running = {line.split()[0] for line in out.splitlines() if line.split()[:1] and line.split()[0].endswith(".so")}
    assert wanted - running == set(), "modules.conf names modules that did not load"
    assert running - wanted == set(), "modules loaded that modules.conf does not name"


async def test_postgres_accepts_connections_and_has_the_database(sandbox: Sandbox) -> None:
    conn = await asyncpg.connect(sandbox.info.database_url, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_database()") == "ari_app"
        assert await conn.fetchval("SELECT current_user") == "ari_app"
    finally:
        await conn.close()


async def test_second_up_is_quick_and_keeps_the_credentials(sandbox: Sandbox) -> None:
    before = sandbox.info
    pid = sandbox.asterisk.pid()
    started = time.monotonic()
    again = Sandbox.for_instance(sandbox.instance, root=sandbox.root)
    info = await asyncio.to_thread(again.up)
    assert time.monotonic() - started < 10
    assert again.asterisk.pid() == pid, "a second up() leaves the running Asterisk alone"
    assert (info.ari_url, info.ari_password, info.database_url) == (
        before.ari_url, before.ari_password, before.database_url)
    assert before.ari_password not in repr(info)
    settings = info.settings(http_port=0)
    assert settings.ari_password.get_secret_value() == before.ari_password
    assert settings.app_name == before.app_name and settings.http_port == 0


# --- simulated agents ---------------------------------------------------------------------------

async def originate_and_end(probe: AriProbe, spec: str, timeout: float = 10) -> tuple[Event, list[Event]]:
    cid = await probe.originate(f"Local/{spec}", app=probe.app, timeout=30)
    end = await probe.wait_for(is_("ChannelDestroyed", cid), timeout)
    return end, probe.of_channel(cid)


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        ("busy@sim-agent", 17),
        ("congestion@sim-agent", 34),
        ("reject@sim-agent", 21),
        ("reject1@sim-agent", 1),
        ("busy@sim-customer", 17),
        ("bogus5@sim-agent", 111),  # a typo in a spec fails loudly
    ],
)
async def test_unanswered_specs_end_with_their_cause(probe: AriProbe, spec: str, cause: int) -> None:
    end, events = await originate_and_end(probe, spec)
    assert end["cause"] == cause, (spec, end)
    assert "StasisStart" not in [e["type"] for e in events], "never answered"


async def test_agent_rings_answers_and_talks_for_the_given_times(probe: AriProbe) -> None:
    t0 = time.monotonic()
    cid = await probe.originate("Local/ans1-talk1@sim-agent", app=probe.app, timeout=30)
    await probe.wait_for(lambda e: e.get("type") == "ChannelStateChange" and e["channel"]["id"] == cid
                         and e["channel"]["state"] == "Ringing")
    await probe.wait_for(is_("StasisStart", cid), 5)
    answered = time.monotonic() - t0
    # The far end's cause is on ChannelHangupRequest. ChannelDestroyed of a Local channel in
    # Stasis sometimes says 0 when the other half hung up (Asterisk reads the hangup flag before
    # the frame that carries the cause).
    request = await probe.wait_for(is_("ChannelHangupRequest", cid), 5)
    talked = time.monotonic() - t0 - answered
    assert 0.9 <= answered <= 2.0, (answered, talked)
    assert 0.9 <= talked <= 2.0, (answered, talked)
    assert request["cause"] == 16
    await probe.wait_for(is_("ChannelDestroyed", cid), 5)


async def test_noanswer_rings_until_its_limit(probe: AriProbe) -> None:
    t0 = time.monotonic()
    end, events = await originate_and_end(probe, "noanswer1@sim-agent")
    assert end["cause"] == 19
    assert time.monotonic() - t0 >= 0.9
    assert any(e["type"] == "ChannelStateChange" and e["channel"]["state"] == "Ringing" for e in events)


async def test_agent_without_talk_time_stays_until_hung_up(probe: AriProbe) -> None:
    cid = await probe.originate("Local/ans0@sim-agent", app=probe.app)
    await probe.wait_for(is_("StasisStart", cid))
    with pytest.raises(TimeoutError):
        await probe.wait_for(is_("ChannelHangupRequest", cid), 1.5)
    status, _ = await probe.request("DELETE", f"/channels/{cid}")
    assert status == 204
    await probe.wait_for(is_("ChannelDestroyed", cid))


# --- simulated customers: AMD ---------------------------------------------------------------------

async def amd_result(probe: AriProbe, spec: str) -> list[str]:
    cid = await probe.originate(f"Local/{spec}@sim-customer", app=probe.app, appArgs="dialer")
    await probe.wait_for(is_("StasisStart", cid), 10)
    status, _ = await probe.request("POST", f"/channels/{cid}/variable", variable="AMD_RETURN_APP", value=probe.app)
    assert status == 204
    status, _ = await probe.request("POST", f"/channels/{cid}/continue", context="amd", extension="s", priority=1)
    assert status == 204
    back = await probe.wait_for(
        lambda e: is_("StasisStart", cid)(e) and e["args"][:1] == ["amd-result"], 15)
    await probe.request("DELETE", f"/channels/{cid}")
    return back["args"]


async def test_amd_tells_a_human_from_a_machine(probe: AriProbe) -> None:
    human, machine = await asyncio.gather(amd_result(probe, "human-ans0"), amd_result(probe, "machine-ans0"))
    assert human[1] == "HUMAN", human
    assert machine[1] == "MACHINE", machine


async def test_customer_hangs_up_after_its_time(probe: AriProbe) -> None:
    t0 = time.monotonic()
    _, events = await originate_and_end(probe, "machine-ans0-hang1@sim-customer")  # cuts the greeting short
    assert 0.9 <= time.monotonic() - t0 <= 3.0
    assert [e["cause"] for e in events if e["type"] == "ChannelHangupRequest"][:1] == [16]


# --- simulated inbound callers ----------------------------------------------------------------

async def test_inbound_caller_enters_the_app_for_its_queue(app_probe: AriProbe) -> None:
    cid = await app_probe.originate("Local/patience0@sim-caller", context="inbound", extension="support",
                                    priority=1, callerId="0612345678")
    start = await app_probe.wait_for(is_("StasisStart", cid), 10)
    assert start["args"] == ["queue", "support"]
    assert start["channel"]["caller"]["number"] == "0612345678"
    status, _ = await app_probe.request("DELETE", f"/channels/{cid}")
    assert status == 204
    await app_probe.wait_for(is_("StasisEnd", cid))


async def test_inbound_caller_sends_dtmf_then_abandons(app_probe: AriProbe) -> None:
    t0 = time.monotonic()
    cid = await app_probe.originate("Local/patience2-dtmf1#-at1@sim-caller", context="inbound",
                                    extension="vip", priority=1)
    start = await app_probe.wait_for(is_("StasisStart", cid), 10)
    assert start["args"] == ["queue", "support", "priority=10"]
    first = await app_probe.wait_for(is_("ChannelDtmfReceived", cid), 5)
    assert 0.8 <= time.monotonic() - t0 <= 2.0
    assert first["digit"] == "1"
    await app_probe.wait_for(lambda e: is_("ChannelDtmfReceived", cid)(e) and e["digit"] == "#", 5)
    await app_probe.wait_for(is_("StasisEnd", cid), 5)  # the caller gave up
    assert 1.8 <= time.monotonic() - t0 <= 3.5


def test_instance_files_are_inside_the_root(sandbox: Sandbox) -> None:
    conf = sandbox.instance_dir / "etc" / "asterisk.conf"
    assert conf.is_file()
    text = conf.read_text()
    assert f"astrundir => /srv/ari-app/{sandbox.instance}/run" in text
    sounds = sounds_dir(sandbox.root)
    assert (sounds / "human-hello.wav").is_file() and (sounds / "machine-greeting.wav").is_file()
