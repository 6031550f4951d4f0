"""Blind transfers by the agent on the sandbox: the caller ends up bridged with an agent of
another queue, or with a Local channel for a number; the rows say so."""

from __future__ import annotations

import pytest

from ari_app.service import Service

from .helpers import api, fetch, fetch_call, hangup_all, left_app, reset_db, running_service
from .test_acd import agent_of, bridged_with, call_queue, queue_events, setup_queue

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


def agent_leg(service: Service, agent_id: str) -> str:
    return next(o.channel_id for o in service.acd.offers.values() if o.agent_id == agent_id)


async def test_agent_transfers_the_caller_to_another_queue(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "billing", {"strategy": "ring-all"}, [("b1", "ans0")])
        await setup_queue(service, "support", {"strategy": "ring-all", "wrapup_time": 30}, [("a1", "ans0")])
        caller = await call_queue(service, "support")
        await service.ari.expect(bridged_with(caller), timeout=10)
        first_leg = agent_leg(service, "a1")
        entered = service.acd.engine.item(caller).item.entered_at
        again = service.ari.expect(bridged_with(caller), timeout=10)
        a1_gone = service.ari.expect(left_app(first_leg), timeout=10)
        async with api(service) as http:
            r = await http.post("/api/v1/agents/a1/transfer", json={"to": "queue", "queue": "billing"})
            assert r.status == 202, await r.text()
            assert await r.json() == {"agent_id": "a1", "item_id": caller, "target": "queue:billing"}
        event = await again
        assert agent_of(service, event, caller) == "b1"
        await a1_gone
        assert service.acd.engine.agent("a1").status == "wrapup"
        assert service.acd.engine.item(caller).item.entered_at == entered  # place kept
        gone = service.ari.expect(left_app(caller), timeout=10)
        await service.ari.rest.channels.hangup(channel_id=caller)
        await gone
        await service.writer.flush(timeout=5)
        assert await queue_events(sandbox, caller) == ["ENTERQUEUE", "CONNECT", "BLINDTRANSFER", "ENTERQUEUE",
                                                      "CONNECT", "COMPLETECALLER"]
        rows = await fetch(sandbox.info.database_url, "SELECT event, queue, agent_id, data FROM queue_events "
                           "WHERE call_id = $1 AND event = 'BLINDTRANSFER'", caller)
        assert [(r["queue"], r["agent_id"]) for r in rows] == [("support", "a1")]
        assert '"target": "queue:billing"' in rows[0]["data"]
        legs = await fetch(sandbox.info.database_url, "SELECT agent_id, outcome, ended_at FROM call_legs "
                           "WHERE call_id = $1 AND role = 'agent' ORDER BY created_at", caller)
        assert [(x["agent_id"], x["outcome"]) for x in legs] == [("a1", "answered"), ("b1", "answered")]
        assert all(x["ended_at"] is not None for x in legs)
        row = await fetch_call(sandbox.info.database_url, caller)
        assert (row["queue"], row["agent_id"], row["outcome"], row["hangup_by"]) == (
            "billing", "b1", "answered", "caller")
        assert row["ended_at"] is not None and '"transferred_by": "a1"' in row["data"]
        await hangup_all(service)


async def test_agent_transfers_the_caller_to_a_number(sandbox):
    async with running_service(sandbox, transfer_dial_template="Local/{number}@sim-customer") as service:
        await setup_queue(service, "support", {"strategy": "ring-all", "wrapup_time": 0}, [("a1", "ans0")])
        caller = await call_queue(service, "support")
        await service.ari.expect(bridged_with(caller), timeout=10)
        first_leg = agent_leg(service, "a1")
        again = service.ari.expect(bridged_with(caller), timeout=15)
        async with api(service) as http:
            r = await http.post("/api/v1/agents/a1/transfer", json={"to": "number", "number": "human-ans1"})
            assert r.status == 202, await r.text()
        event = await again
        (target,) = [c for c in event.bridge.channels if c != caller]
        assert target.startswith("transfer-") and service.recorder.leg(target).role == "transfer"
        assert first_leg not in event.bridge.channels
        assert service.acd.engine.agent("a1").status == "available" and service.acd.engine.item(caller) is None
        gone = service.ari.expect(left_app(caller), timeout=10)
        await service.ari.rest.channels.hangup(channel_id=target)  # the number hangs up: so does the caller
        await gone
        await service.writer.flush(timeout=5)
        assert await queue_events(sandbox, caller) == ["ENTERQUEUE", "CONNECT", "BLINDTRANSFER"]
        legs = await fetch(sandbox.info.database_url, "SELECT role, outcome, endpoint, ended_at FROM call_legs "
                           "WHERE call_id = $1 ORDER BY created_at", caller)
        assert [(x["role"], x["outcome"]) for x in legs][1:] == [("agent", "answered"), ("transfer", "answered")]
        assert legs[0]["role"] == "caller" and all(x["ended_at"] is not None for x in legs)
        assert legs[2]["endpoint"] == "Local/human-ans1@sim-customer"
        row = await eventually_closed(sandbox, caller)
        assert (row["agent_id"], row["outcome"], row["hangup_by"]) == ("a1", "transferred", "transfer")
        await hangup_all(service)


async def test_transfer_to_a_busy_number_ends_the_call_with_the_reason(sandbox):
    async with running_service(sandbox, transfer_dial_template="Local/{number}@sim-customer") as service:
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans0")])
        caller = await call_queue(service, "support")
        await service.ari.expect(bridged_with(caller), timeout=10)
        gone = service.ari.expect(left_app(caller), timeout=10)
        async with api(service) as http:
            r = await http.post("/api/v1/agents/a1/transfer", json={"to": "number", "number": "busy"})
            assert r.status == 202, await r.text()
        await gone
        row = await eventually_closed(sandbox, caller)
        assert row["outcome"] == "transfer-busy"


async def eventually_closed(sandbox, call_id: str):  # type: ignore[no-untyped-def]
    from .helpers import eventually

    async def closed():  # type: ignore[no-untyped-def]
        row = await fetch_call(sandbox.info.database_url, call_id)
        return row if row is not None and row["ended_at"] is not None else None
    return await eventually(closed, timeout=10)


async def test_transfer_errors_change_nothing(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "billing", {"strategy": "ring-all"}, [], login=False)
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans0"), ("idle", "noanswer")],
                          login=False)
        async with api(service) as http:
            for body, field in [({"to": "queue"}, "queue"), ({"to": "queue", "queue": "nope"}, "queue"),
                                ({"to": "fax", "number": "1"}, "to"), ({"to": "number", "number": "1@x/y"}, "number"),
                                ({"to": "queue", "queue": "billing", "number": "1"}, "number"),
                                ({"to": "number"}, "number"), ({"queue": "billing"}, "to"),
                                ({"to": "queue", "queue": "billing", "extra": 1}, "extra")]:
                r = await http.post("/api/v1/agents/a1/transfer", json=body)
                assert r.status == 422, (body, await r.text())
                assert (await r.json())["error"]["field"] == field, body
            r = await http.post("/api/v1/agents/nobody/transfer", json={"to": "queue", "queue": "billing"})
            assert r.status == 404
            r = await http.post("/api/v1/agents/a1/transfer", json={"to": "queue", "queue": "billing"})
            assert r.status == 409 and (await r.json())["error"]["code"]  # logged out, no call
            assert (await http.post("/api/v1/agents/idle/state", json={"state": "available"})).status == 200
            caller = await call_queue(service, "support")
            await service.acd.wait_until(lambda: service.acd.engine.agent("idle").status == "ringing", timeout=5)
            r = await http.post("/api/v1/agents/idle/transfer", json={"to": "queue", "queue": "billing"})
            assert r.status == 409  # ringing, not bridged
            assert service.acd.engine.item(caller).queue == "support"
        await service.writer.flush(timeout=5)
        assert "BLINDTRANSFER" not in await queue_events(sandbox, caller)
        assert isinstance(service.acd.engine.item(caller).item.entered_at, float)
        await hangup_all(service)
