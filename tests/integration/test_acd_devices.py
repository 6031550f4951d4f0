"""Agents' device states on the sandbox: a `Stasis:` device per agent, set through ARI as a
phone (or another app) would set it, or a `Custom:` one set from Asterisk (as the dialplan's
DEVICE_STATE() would), and the ACD offering calls accordingly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ari_app.ari import AriClient
from ari_app.ari.client import new_id
from ari_app.service import Service

from .helpers import api, fetch, hangup_all, left_app, reset_db, running_service
from .test_acd import agent_of, bridged_with, call_queue

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


async def put_agent(service: Service, agent_id: str, queue: str, *, device: str | None = None,
                    spec: str = "ans0") -> None:
    body: dict[str, Any] = {"endpoint": f"Local/{spec}@sim-agent", "memberships": {queue: 0}}
    if device is not None:
        body["device"] = device
    async with api(service) as http:
        r = await http.put(f"/api/v1/agents/{agent_id}", json=body)
        assert r.status in (200, 201), await r.text()
        r = await http.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
        assert r.status == 200, await r.text()


async def set_device(service: Service, device: str, state: str, sandbox: Any = None) -> None:
    """`Stasis:` devices through ARI; `Custom:` ones (ARI may not set them) with the Asterisk CLI."""
    if device.startswith("Custom:"):
        await asyncio.to_thread(sandbox.asterisk_cli, f"devstate change {device} {state}")
    else:
        await service.ari.rest.device_states.update(device_name=device, device_state=state)  # type: ignore[arg-type]


async def device_is(service: Service, agent_id: str, state: str) -> None:
    await service.acd.wait_until(lambda: service.acd.engine.agent(agent_id).device == state, timeout=5)


def waiting_without_offer(service: Service, caller: str) -> bool:
    """The core routes synchronously: right after the caller arrived, no offer means none."""
    item = service.acd.engine.item(caller)
    return item is not None and item.status == "waiting" and not item.offers


@pytest.mark.parametrize(("kind", "state"), [("Stasis", "INUSE"), ("Stasis", "UNAVAILABLE"), ("Custom", "INUSE")])
async def test_busy_device_is_skipped_and_offered_once_free(sandbox, kind, state):
    async with running_service(sandbox) as service:
        device = f"{kind}:{service.ari.new_id('dev')}"
        async with api(service) as http:
            r = await http.put("/api/v1/queues/support", json={"strategy": "linear", "wrapup_time": 0})
            assert r.status == 201
        await put_agent(service, "desk", "support", device=device)  # first in linear order
        await put_agent(service, "other", "support")
        app = await service.ari.rest.applications.get(application_name=service.settings.app_name)
        assert device in app.device_names
        await set_device(service, device, state, sandbox)
        await device_is(service, "desk", "inuse" if state == "INUSE" else "unavailable")

        first = await call_queue(service, "support")
        event = await service.ari.expect(bridged_with(first), timeout=10)
        assert agent_of(service, event, first) == "other"  # not the busy desk, first in order

        second = await call_queue(service, "support")  # other is on a call, desk busy: waits
        assert waiting_without_offer(service, second)
        bridged = service.ari.expect(bridged_with(second), timeout=10)
        await set_device(service, device, "NOT_INUSE", sandbox)
        event = await bridged
        assert agent_of(service, event, second) == "desk"
        await hangup_all(service)
        await service.writer.flush(timeout=5)
        rows = await fetch(sandbox.info.database_url, "SELECT id, agent_id FROM calls WHERE id = ANY($1)",
                           [first, second])
        assert {r["id"]: r["agent_id"] for r in rows} == {first: "other", second: "desk"}


async def test_ring_in_use_queue_offers_an_agent_whose_device_is_in_use(sandbox):
    async with running_service(sandbox) as service:
        device = f"Stasis:{service.ari.new_id('dev')}"
        async with api(service) as http:
            r = await http.put("/api/v1/queues/support", json={"strategy": "linear", "ring_in_use": True})
            assert r.status == 201
        await put_agent(service, "desk", "support", device=device)
        await set_device(service, device, "INUSE")
        await device_is(service, "desk", "inuse")
        caller = await call_queue(service, "support")
        event = await service.ari.expect(bridged_with(caller), timeout=10)
        assert agent_of(service, event, caller) == "desk"
        await hangup_all(service)


async def test_device_in_use_because_of_our_own_call_does_not_stick(sandbox):
    """A phone reports the ACD's own call as INUSE; the agent is on that call anyway (nothing
    counts twice) and is offered the next caller once the call ended and the phone is idle."""
    async with running_service(sandbox) as service:
        device = f"Stasis:{service.ari.new_id('dev')}"
        async with api(service) as http:
            r = await http.put("/api/v1/queues/support", json={"strategy": "linear", "wrapup_time": 0})
            assert r.status == 201
        await put_agent(service, "desk", "support", device=device)
        first = await call_queue(service, "support")
        await service.ari.expect(bridged_with(first), timeout=10)
        await set_device(service, device, "INUSE")  # the phone: our call
        await device_is(service, "desk", "inuse")
        assert service.acd.engine.agent("desk").status == "on_call"
        gone = service.ari.expect(left_app(first), timeout=10)
        await service.ari.rest.channels.hangup(channel_id=first)
        await gone
        await service.acd.wait_until(lambda: service.acd.engine.agent("desk").status == "available", timeout=5)
        second = await call_queue(service, "support")  # the phone hasn't said idle yet: waits
        assert waiting_without_offer(service, second)
        bridged = service.ari.expect(bridged_with(second), timeout=10)
        await set_device(service, device, "NOT_INUSE")  # the phone: our call ended
        event = await bridged
        assert agent_of(service, event, second) == "desk"
        await hangup_all(service)


async def test_device_state_is_read_at_start_from_the_queues_file(sandbox, tmp_path):
    """The state was set before the app started (no event will come): the app reads it."""
    settings = sandbox.info.settings()
    device = f"Stasis:{new_id('agent')}"
    ari = AriClient.from_settings(settings)
    try:
        await ari.rest.device_states.update(device_name=device, device_state="INUSE")
    finally:
        await ari.rest.close()
    queues = tmp_path / "queues.toml"
    queues.write_text(f'[queues.support]\nstrategy = "ring-all"\n\n'
                      f'[agents.desk]\nendpoint = "Local/ans0@sim-agent"\ndevice = "{device}"\n'
                      f'memberships = {{ support = 0 }}\n')
    async with running_service(sandbox, queues_file=queues) as service:
        assert service.acd.engine.agent("desk").device == "inuse"
        async with api(service) as http:
            r = await http.post("/api/v1/agents/desk/state", json={"state": "available"})
            assert r.status == 200
            r = await http.get("/api/v1/agents/desk")
            assert (await r.json())["device"] == "inuse"
        caller = await call_queue(service, "support")
        assert waiting_without_offer(service, caller)
        bridged = service.ari.expect(bridged_with(caller), timeout=10)
        await set_device(service, device, "NOT_INUSE")
        event = await bridged
        assert agent_of(service, event, caller) == "desk"
        await hangup_all(service)


async def test_agent_device_is_validated_changed_and_unfollowed(sandbox):
    async with running_service(sandbox) as service, api(service) as http:
        r = await http.put("/api/v1/queues/support", json={"strategy": "ring-all"})
        assert r.status == 201
        r = await http.put("/api/v1/agents/desk", json={"endpoint": "Local/ans0@sim-agent", "device": "no device"})
        assert r.status == 422 and (await r.json())["error"]["field"] == "device"
        assert await fetch(sandbox.info.database_url, "SELECT id FROM acd_agents") == []

        first, second = (f"Stasis:{service.ari.new_id('dev')}" for _ in range(2))
        await set_device(service, first, "UNAVAILABLE")
        await put_agent(service, "desk", "support", device=first)
        assert service.acd.engine.agent("desk").device == "unavailable"  # read before the PUT answered
        await put_agent(service, "desk", "support", device=second)  # a new desk phone
        assert service.acd.engine.agent("desk").device == "idle"
        app = await service.ari.rest.applications.get(application_name=service.settings.app_name)
        assert second in app.device_names and first not in app.device_names
        await set_device(service, first, "INUSE")  # no longer the agent's: no effect
        await set_device(service, second, "BUSY")
        await device_is(service, "desk", "inuse")
        r = await http.delete("/api/v1/agents/desk")
        assert r.status == 204
        app = await service.ari.rest.applications.get(application_name=service.settings.app_name)
        assert second not in app.device_names


async def test_a_device_state_event_lost_is_corrected_by_the_periodic_audit(sandbox):
    """Asterisk replays no event: a device change the app never heard (here its subscription was
    dropped behind its back) must not leave the agent offered while busy until the next reconnect."""
    async with running_service(sandbox) as service:
        device = f"Custom:{service.ari.new_id('dev')}"
        async with api(service) as http:
            r = await http.put("/api/v1/queues/support", json={"strategy": "linear"})
            assert r.status == 201
        await put_agent(service, "desk", "support", device=device)
        await device_is(service, "desk", "idle")
        await service.ari.rest.applications.unsubscribe(application_name=service.settings.app_name,
                                                        event_source=f"deviceState:{device}")
        await set_device(service, device, "INUSE", sandbox)
        assert service.acd.engine.agent("desk").device == "idle"  # not heard
        await service.acd.audit()
        assert service.acd.engine.agent("desk").device == "inuse"
        caller = await call_queue(service, "support")
        assert waiting_without_offer(service, caller)  # the busy desk is not offered the call
        await set_device(service, device, "NOT_INUSE", sandbox)
        bridged = service.ari.expect(bridged_with(caller), timeout=10)
        await service.acd.audit()
        event = await bridged
        assert agent_of(service, event, caller) == "desk"
        await hangup_all(service)
