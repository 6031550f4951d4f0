"""The foundation end to end on the sandbox: a call into the app is answered, bridged with a
second leg, hung up, and recorded in PostgreSQL with the right timestamps; the app survives
an Asterisk restart and a PostgreSQL outage without losing a record."""

from __future__ import annotations

import asyncio

import pytest

from ari_app.ari import events as ev
from ari_app.service import Service, StartupError

from .helpers import (
    api,
    crash_asterisk,
    destroyed,
    entered_bridge,
    eventually,
    fetch,
    fetch_call,
    hangup_all,
    reset_db,
    running_service,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


async def place_direct_call(service: Service, agent_spec: str, caller_spec: str = "patience0") -> tuple[str, str]:
    """A caller (Local/<caller_spec>@sim-caller) enters the app's `dial` route, which dials the agent.
    Returns (caller channel id, call id) — the same id: a call is named after its first leg."""
    caller_id = service.ari.new_id("caller")
    started = service.ari.expect_stasis_start(caller_id, timeout=10)
    await service.ari.rest.channels.originate(
        endpoint=f"Local/{caller_spec}@sim-caller", app=service.settings.app_name,
        app_args=f"dial,Local/{agent_spec}@sim-agent", channel_id=caller_id, caller_id="0612345678")
    await started
    return caller_id, caller_id


async def test_call_is_answered_bridged_hung_up_and_recorded(sandbox):
    async with running_service(sandbox) as service:
        both_bridged = service.ari.expect(
            lambda e: isinstance(e, ev.ChannelEnteredBridge) and len(e.bridge.channels) == 2, timeout=15)
        caller, call_id = await place_direct_call(service, "ans1-talk2")
        event = await both_bridged
        assert caller in event.bridge.channels
        gone = service.ari.expect(destroyed(caller), timeout=15)
        await gone  # the agent hangs up after 2 s of talk; the app hangs up the caller
        await service.writer.flush(timeout=5)

    row = await fetch_call(sandbox.info.database_url, call_id)
    assert row is not None
    assert row["caller"] == "0612345678"
    assert row["outcome"] == "answered"
    assert row["created_at"] <= row["answered_at"] <= row["bridged_at"] <= row["ended_at"]
    ring = (row["bridged_at"] - row["answered_at"]).total_seconds()
    talk = (row["ended_at"] - row["bridged_at"]).total_seconds()
    assert 0.8 <= ring <= 3.0, ring  # the agent phone rings 1 s
    assert 1.8 <= talk <= 4.0, talk  # and talks 2 s
    assert row["hangup_by"] == "callee"
    legs = await fetch(sandbox.info.database_url, "SELECT * FROM call_legs WHERE call_id = $1 ORDER BY created_at",
                       call_id)
    assert [leg["role"] for leg in legs] == ["caller", "callee"]
    assert legs[0]["channel_id"] == caller
    assert all(leg["ended_at"] is not None and leg["bridged_at"] is not None for leg in legs)
    assert legs[1]["outcome"] == "answered"


async def test_busy_callee_is_recorded_as_failed(sandbox):
    async with running_service(sandbox) as service:
        caller, call_id = await place_direct_call(service, "busy")
        await service.ari.expect(destroyed(caller), timeout=10)
        await service.writer.flush(timeout=5)
    row = await fetch_call(sandbox.info.database_url, call_id)
    assert row["outcome"] == "failed"
    assert row["bridged_at"] is None
    legs = await fetch(sandbox.info.database_url, "SELECT role, outcome, hangup_cause FROM call_legs WHERE call_id = $1",
                       call_id)
    callee = next(leg for leg in legs if leg["role"] == "callee")
    assert callee["outcome"] == "busy"


@pytest.mark.parametrize("how", ["graceful", "crash"])
async def test_asterisk_restart_mid_call_reconnects_and_closes_the_call(sandbox, how):
    """graceful: Asterisk hangs the channels up and we see it; crash: the hangups are lost and
    only reconcile (GET /channels after reconnect) can close the records."""
    async with running_service(sandbox) as service:
        caller, call_id = await place_direct_call(service, "ans0")  # talks until hung up
        await service.ari.expect(entered_bridge(caller), timeout=10)
        reconnected = service.ari.expect(lambda e: isinstance(e, ev.ClientConnected) and e.reconnect, timeout=60)
        service.reconciled.clear()
        await asyncio.to_thread(sandbox.restart_asterisk if how == "graceful" else lambda: crash_asterisk(sandbox))
        await reconnected
        await asyncio.wait_for(service.reconciled.wait(), 10)
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, call_id)
        assert row["ended_at"] is not None, "the call that died with Asterisk is closed"
        legs = await fetch(sandbox.info.database_url, "SELECT outcome, ended_at FROM call_legs WHERE call_id = $1",
                           call_id)
        assert legs and all(leg["ended_at"] is not None for leg in legs)
        if how == "crash":
            assert all(leg["outcome"] == "lost" for leg in legs)
        # And the app works again on the new Asterisk.
        caller2, call2 = await place_direct_call(service, "ans0-talk1")
        await service.ari.expect(destroyed(caller2), timeout=15)
        await service.writer.flush(timeout=5)
    row2 = await fetch_call(sandbox.info.database_url, call2)
    assert row2["bridged_at"] is not None and row2["ended_at"] is not None


async def test_postgres_outage_during_calls_loses_no_record(sandbox):
    async with running_service(sandbox) as service:
        await asyncio.to_thread(sandbox.stop_postgres)
        try:
            call_ids = []
            for _ in range(5):
                caller, call_id = await place_direct_call(service, "ans0-talk1")
                await service.ari.expect(destroyed(caller), timeout=15)
                call_ids.append(call_id)
            assert service.writer.pending > 0, "records are held while the database is down"
        finally:
            await asyncio.to_thread(sandbox.start_postgres)
        await service.writer.flush(timeout=30)
        assert service.writer.stats.retries > 0
    rows = await fetch(sandbox.info.database_url, "SELECT id, bridged_at, ended_at FROM calls WHERE id = ANY($1)",
                       call_ids)
    assert len(rows) == 5
    assert all(r["bridged_at"] is not None and r["ended_at"] is not None for r in rows)


async def test_http_health_auth_validation_and_openapi(sandbox):
    async with running_service(sandbox) as service:
        async with api(service, token=None) as anon:
            r = await anon.get("/readyz")
            assert r.status == 200
            assert (await r.json())["checks"] == {"ari": True, "database": True, "accepting": True}
            r = await anon.get("/api/v1/calls")
            assert r.status == 401
            assert (await r.json())["error"]["field"] == "Authorization"
            r = await anon.get("/api/v1/openapi.json")
            doc = await r.json()
            assert doc["openapi"].startswith("3.")
            assert "/api/v1/calls" in doc["paths"] and "/api/v1/queues/{name}" in doc["paths"]
        async with api(service, token="wrong") as bad:
            assert (await bad.get("/api/v1/calls")).status == 401
        async with api(service) as client:
            r = await client.get("/api/v1/calls", params={"limit": "many"})
            assert r.status == 422
            assert (await r.json())["error"]["field"] == "limit"
            r = await client.get("/api/v1/calls", params={"colour": "red"})
            assert r.status == 422
            assert (await r.json())["error"]["field"] == "colour"
            r = await client.get("/api/v1/calls/nope")
            assert r.status == 404
            r = await client.get("/api/v1/calls", params={"limit": "5"})
            assert r.status == 200 and (await r.json())["limit"] == 5
        await hangup_all(service)


async def test_wrong_ari_password_is_a_clear_startup_error(sandbox):
    settings = sandbox.info.settings(http_port=0, ari_password="definitely-wrong-pw")
    service = Service(settings)
    with pytest.raises(StartupError) as info:
        await service.start()
    await service.stop()
    assert "rejected" in str(info.value)
    assert "definitely-wrong-pw" not in str(info.value)


@pytest.mark.parametrize("policy", ["hangup", "adopt"])
async def test_orphan_channels_in_our_app_follow_the_policy_after_a_restart(sandbox, policy):
    """A channel is in our Stasis app but the app has no record of it (its state was lost):
    on start the app hangs it up, or adopts it and records it, as `orphan_policy` says."""
    async with running_service(sandbox) as first:
        caller, _ = await place_direct_call(first, "ans0")
        await first.ari.expect(entered_bridge(caller), timeout=10)
    await reset_db(sandbox.info.database_url)  # the app's memory of the call is gone
    async with running_service(sandbox, orphan_policy=policy) as second:
        if policy == "hangup":
            # The hangup was requested during start; Asterisk tears the channel down just after
            # (under load, after the start returned): its list is the truth to wait on.
            async def gone() -> bool:
                return caller not in {c.id for c in await second.ari.rest.channels.list()}
            await eventually(gone, timeout=10)
            await second.writer.flush(timeout=5)
        else:
            assert caller in {c.id for c in await second.ari.rest.channels.list()}
            assert second.recorder.leg(caller) is not None
            await second.writer.flush(timeout=5)
            row = await fetch_call(sandbox.info.database_url, caller)
            assert row is not None and row["data"] and "adopted" in row["data"]
        await hangup_all(second)
