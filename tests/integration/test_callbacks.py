"""Callbacks on the sandbox: callers, agents and customers are real Local channels.

What a supervisor would check: the caller who pressed the key hung up with a callback in
PostgreSQL and kept their place; the agent rang before the customer; who got bridged with whom;
which attempts were made and how each ended; nothing lost or placed twice across a restart."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ari_app.ari import events as ev
from ari_app.callbacks.config import CallbacksSettings
from ari_app.service import Service

from .helpers import (
    api,
    eventually,
    fetch,
    fetch_call,
    hangup_all,
    left_app,
    reset_db,
    running_service,
)

pytestmark = pytest.mark.integration

#: Test numbers (valid French numbers) -> simulated customers.
ANSWERS = "+33611111111"        # caller id 0611111111 of the caller who asks for the callback
ANSWERS_2 = "+33633333333"
ANSWERS_3 = "+33644444444"
NO_ANSWER = "+33622222222"
KEYED = "+33655555555"
OVERRIDES = {
    ANSWERS: "Local/human-ans1@sim-customer",
    ANSWERS_2: "Local/human-ans0-hang2@sim-customer",
    ANSWERS_3: "Local/human-ans0-hang2@sim-customer",
    NO_ANSWER: "Local/noanswer1@sim-customer",
    KEYED: "Local/human-ans1@sim-customer",
    "+33677777777": "Local/machine-ans1@sim-customer",
    "+33688888888": "Local/human-ans1@sim-customer",
}


def cb_settings() -> CallbacksSettings:
    return CallbacksSettings(dial_overrides=OVERRIDES, poll_interval=0.2, caller_id="0100000000")


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


def service_for(sandbox: Any) -> Any:
    return running_service(sandbox, callbacks=cb_settings())


async def setup(service: Service, queue: str, config: dict[str, Any], agents: list[tuple[str, str]], *,
                login: bool = True, policy: dict[str, Any] | None = None) -> None:
    async with api(service) as http:
        r = await http.put(f"/api/v1/queues/{queue}", json=config)
        assert r.status in (200, 201), await r.text()
        for agent_id, spec in agents:
            r = await http.put(f"/api/v1/agents/{agent_id}",
                               json={"endpoint": f"Local/{spec}@sim-agent", "memberships": {queue: 0}})
            assert r.status in (200, 201), await r.text()
            if login:
                r = await http.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
                assert r.status == 200, await r.text()
        if policy is not None:
            r = await http.put(f"/api/v1/queues/{queue}/callback", json=policy)
            assert r.status == 200, await r.text()


async def login(service: Service, agent_id: str) -> None:
    async with api(service) as http:
        r = await http.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
        assert r.status == 200, await r.text()


async def call_queue(service: Service, queue: str, spec: str, number: str) -> str:
    caller = service.ari.new_id("caller")
    started = service.ari.expect_stasis_start(caller, timeout=10)
    await service.ari.rest.channels.originate(endpoint=f"Local/{spec}@sim-caller", context="inbound",
                                              extension=queue, priority=1, channel_id=caller,
                                              other_channel_id=caller + "-phone", caller_id=f'"C" <{number}>')
    await started
    return caller


def capability(service: Service) -> Any:
    from ari_app.callbacks.capability import Callbacks
    return next(c for c in service.capabilities if isinstance(c, Callbacks))


def waiting_ids(service: Service, queue: str) -> list[str]:
    return [i.item.id for i in service.acd.engine.waiting(queue)]


def callback_items(service: Service, queue: str) -> list[str]:
    return [i.item.data["callback_id"] for i in service.acd.engine.waiting(queue) if i.item.data.get("callback_id")]


async def rows(sandbox: Any, sql: str, *args: Any) -> list[dict[str, Any]]:
    return await fetch(sandbox.info.database_url, sql, *args)


async def post_callback(service: Service, **body: Any) -> tuple[int, dict[str, Any]]:
    async with api(service) as http:
        r = await http.post("/api/v1/callbacks", json=body)
        return r.status, await r.json()


def bridged_pair(e: ev.Event) -> bool:
    return isinstance(e, ev.ChannelEnteredBridge) and len(e.bridge.channels) == 2


async def test_caller_presses_the_key_confirms_and_keeps_their_place_then_agent_rings_first(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"strategy": "ring-all", "callback_offer_after": 0, "callback_key": "9",
                                         "wrapup_time": 0}, [("a1", "ans1")], login=False)
        # Nobody can take calls: the first caller presses 9 after 3 s, then 1 to confirm their caller id.
        first = await call_queue(service, "support", "patience60-dtmf9WW1-at3", "0611111111")
        hung_up = service.ari.expect(left_app(first), timeout=30)
        cb = (await eventually(lambda: rows(sandbox, "SELECT * FROM callbacks"), timeout=30))[0]
        await hung_up  # the caller was told and let go only once the row existed
        assert cb["number"] == ANSWERS and cb["queue"] == "support" and cb["state"] == "pending"
        assert cb["source"] == "virtual-hold" and cb["origin_call_id"] == first
        await service.writer.flush(timeout=5)
        original = await fetch_call(sandbox.info.database_url, first)
        assert original["outcome"] == "callback" and json.loads(original["data"])["callback_id"] == cb["id"]
        assert abs((cb["entered_at"] - original["entered_queue_at"]).total_seconds()) < 0.01

        # A later caller stays behind the callback.
        later = await call_queue(service, "support", "patience120", "0633333333")
        await service.acd.wait_until(lambda: len(waiting_ids(service, "support")) == 2, timeout=5)
        assert waiting_ids(service, "support") == [cb["item_id"], later]

        # An agent frees up: their phone rings first, then the customer's, and the two are bridged.
        bridged = service.ari.expect(lambda e: bridged_pair(e) and later not in e.bridge.channels, timeout=40)
        await login(service, "a1")
        event = await bridged
        roles = {service.recorder.leg(c).role for c in event.bridge.channels}
        assert roles == {"agent", "customer"}
        legs = await eventually(lambda: rows(sandbox, "SELECT role, created_at, answered_at FROM call_legs "
                                                      "WHERE call_id = $1 ORDER BY created_at", cb["item_id"]))
        assert [leg["role"] for leg in legs] == ["agent", "customer"]
        assert legs[0]["answered_at"] <= legs[1]["created_at"]  # the agent answered before the dial
        done = await eventually(lambda: rows(sandbox, "SELECT * FROM callbacks WHERE state = 'completed'"))
        assert done[0]["attempts"] == 1 and done[0]["agent_id"] == "a1" and done[0]["connected_at"] is not None
        attempts = await rows(sandbox, "SELECT * FROM callback_attempts")
        assert [(a["attempt"], a["outcome"], a["agent_id"]) for a in attempts] == [(1, "connected", "a1")]

        # The customer hangs up: the later caller is next.
        customer = next(c for c in event.bridge.channels if service.recorder.leg(c).role == "customer")
        next_call = service.ari.expect(lambda e: bridged_pair(e) and later in e.bridge.channels, timeout=20)
        await service.ari.rest.channels.hangup(channel_id=customer)
        await next_call
        async with api(service) as http:
            stats = await (await http.get("/api/v1/callbacks/stats?queue=support")).json()
        assert stats["requested"] == 1 and stats["completed"] == 1 and stats["failed"] == 0
        assert stats["avg_wait"] is not None and stats["avg_time_to_connect"] is not None
        assert (await fetch_call(sandbox.info.database_url, first))["outcome"] == "callback"
        await hangup_all(service)


async def test_caller_keys_in_another_number(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"callback_offer_after": 0, "callback_key": "9"}, [("a1", "ans0")],
                    login=False)
        first = await call_queue(service, "support", "patience60-dtmf9WW2WW0655555555#WW1-at3", "0611111111")
        hung_up = service.ari.expect(left_app(first), timeout=40)
        cb = (await eventually(lambda: rows(sandbox, "SELECT * FROM callbacks"), timeout=40))[0]
        await hung_up
        assert cb["number"] == KEYED
        assert callback_items(service, "support") == [cb["id"]]
        await hangup_all(service)


async def test_overflow_to_callback_offers_it_when_the_wait_runs_out(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"max_wait": 2, "max_wait_destination": "callback", "callback_key": "9"},
                    [("a1", "ans0")], login=False, policy={"offer": "overflow"})
        caller = await call_queue(service, "support", "patience60-dtmf9W1-at4", "0611111111")
        hung_up = service.ari.expect(left_app(caller), timeout=30)
        cb = (await eventually(lambda: rows(sandbox, "SELECT * FROM callbacks"), timeout=30))[0]
        await hung_up
        await service.writer.flush(timeout=5)
        original = await fetch_call(sandbox.info.database_url, caller)
        assert cb["number"] == ANSWERS and original["outcome"] == "callback"
        assert abs((cb["entered_at"] - original["entered_queue_at"]).total_seconds()) < 0.01
        assert callback_items(service, "support") == [cb["id"]]
        await hangup_all(service)


async def test_caller_who_does_not_confirm_goes_back_to_their_place(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"callback_offer_after": 0, "callback_key": "9"}, [("a1", "ans0")],
                    login=False, policy={"confirm_timeout": 1})
        # No usable caller id: asked to key a number in, three times, and never does.
        first = await call_queue(service, "support", "patience90-dtmf9-at1", "0000")
        await service.acd.wait_until(lambda: waiting_ids(service, "support") == [], timeout=10)
        later = await call_queue(service, "support", "patience90", "0633333333")
        await service.acd.wait_until(lambda: len(waiting_ids(service, "support")) == 2, timeout=30)
        assert waiting_ids(service, "support") == [first, later]  # the original place, before the later caller
        assert await rows(sandbox, "SELECT id FROM callbacks") == []
        await hangup_all(service)


async def test_key_is_ignored_when_the_queue_does_not_offer_callbacks(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"callback_offer_after": 0, "callback_key": "9"}, [("a1", "ans0")],
                    login=False, policy={"offer": "length", "offer_min_waiting": 3})
        caller = await call_queue(service, "support", "patience60-dtmf9-at1", "0611111111")
        await service.ari.expect(lambda e: isinstance(e, ev.ChannelDtmfReceived) and e.channel.id == caller,
                                 timeout=10)
        assert waiting_ids(service, "support") == [caller]  # still in line, no callback dialog
        assert await rows(sandbox, "SELECT id FROM callbacks") == []
        await hangup_all(service)


async def test_customer_who_does_not_answer_is_retried_then_failed(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"strategy": "ring-all", "wrapup_time": 0}, [("a1", "ans0")],
                    policy={"max_attempts": 2, "retry_delay": 1, "dial_timeout": 5, "whisper_number": False})
        status, body = await post_callback(service, number="0622222222", queue="support")
        assert status == 201, body
        failed = await eventually(lambda: rows(sandbox, "SELECT * FROM callbacks WHERE state = 'failed'"),
                                  timeout=40)
        assert failed[0]["attempts"] == 2 and failed[0]["outcome"].startswith("max-attempts:noanswer")
        attempts = await rows(sandbox, "SELECT * FROM callback_attempts ORDER BY attempt")
        assert [(a["attempt"], a["outcome"], a["counted"]) for a in attempts] == [(1, "noanswer", True),
                                                                                   (2, "noanswer", True)]
        assert attempts[1]["started_at"] - attempts[0]["ended_at"] >= timedelta(seconds=1)  # the retry delay
        await service.writer.flush(timeout=5)
        calls = await rows(sandbox, "SELECT id, direction, outcome FROM calls ORDER BY created_at")
        assert [(c["direction"], c["outcome"]) for c in calls] == [("callback", "customer-noanswer")] * 2
        await service.acd.wait_until(lambda: service.acd.engine.agent("a1").status == "available", timeout=5)
        assert callback_items(service, "support") == []
        async with api(service) as http:
            stats = await (await http.get("/api/v1/callbacks/stats")).json()
        assert (stats["requested"], stats["completed"], stats["failed"], stats["attempts"]) == (1, 0, 1, 2)


async def test_app_restart_with_pending_callbacks_loses_none_and_places_each_once(sandbox):
    numbers = ["0633333333", "0644444444"]
    async with service_for(sandbox) as service:
        await setup(service, "support", {"strategy": "ring-all", "wrapup_time": 0}, [("a1", "ans0")], login=False,
                    policy={"whisper_number": False})
        ids = []
        for n in numbers:
            status, body = await post_callback(service, number=n, queue="support")
            assert status == 201, body
            ids.append(body["id"])
        assert callback_items(service, "support") == ids
        await service.writer.flush(timeout=5)
    # Restart with the stored ACD state (which holds the callbacks)...
    async with service_for(sandbox) as service:
        await eventually(lambda: callback_items(service, "support") == ids, timeout=10)
        sweeps = capability(service).sweeps
        await eventually(lambda: capability(service).sweeps >= sweeps + 3, timeout=10)
        assert callback_items(service, "support") == ids  # several passes later: still once each
    # ... and without it (lost ACD state): the callback rows alone put them back, in order, once each.
    await rows(sandbox, "DELETE FROM acd_state_rows")
    async with service_for(sandbox) as service:
        await eventually(lambda: callback_items(service, "support") == ids, timeout=10)
        await login(service, "a1")

        async def both_completed() -> list[dict[str, Any]] | None:
            done = await rows(sandbox, "SELECT id FROM callbacks WHERE state = 'completed' ORDER BY connected_at")
            return done if len(done) == 2 else None
        done = await eventually(both_completed, timeout=40)
        assert [d["id"] for d in done] == ids
        attempts = await rows(sandbox, "SELECT callback_id, count(*) AS n FROM callback_attempts GROUP BY 1")
        assert {a["callback_id"]: a["n"] for a in attempts} == {i: 1 for i in ids}
        await hangup_all(service)


async def test_scheduled_callback_goes_to_the_named_agent_first_then_falls_back(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"strategy": "linear", "wrapup_time": 0}, [("a1", "ans0"), ("a2", "ans0")],
                    policy={"whisper_number": False})
        soon = datetime.now(UTC) + timedelta(seconds=1.5)
        bridged = service.ari.expect(bridged_pair, timeout=30)
        status, body = await post_callback(service, number="0611111111", agent="a2",
                                           not_before=soon.isoformat(), notes="wants a quote")
        assert status == 201 and body["state"] == "scheduled" and body["queue"] == "support", body
        assert callback_items(service, "support") == []  # not before its time
        event = await bridged
        agents = {service.recorder.leg(c).agent_id for c in event.bridge.channels} - {None}
        assert agents == {"a2"}  # linear would have picked a1
        assert time.time() >= soon.timestamp()
        await hangup_all(service)
        # The named agent is away: after fallback_after anyone in the queue takes it.
        await service.acd.wait_until(lambda: service.acd.engine.agent("a2").status == "available", timeout=10)
        async with api(service) as http:
            await http.post("/api/v1/agents/a2/state", json={"state": "logged_out"})
        bridged = service.ari.expect(bridged_pair, timeout=30)
        status, body = await post_callback(service, number="0633333333", agent="a2", queue="support",
                                           fallback_after=1)
        assert status == 201 and body["state"] == "pending", body
        event = await bridged
        assert {service.recorder.leg(c).agent_id for c in event.bridge.channels} - {None} == {"a1"}
        await hangup_all(service)


async def test_customer_first_dials_the_customer_then_the_next_agent(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {"strategy": "ring-all"}, [("a1", "ans1")],
                    policy={"mode": "customer-first"})
        bridged = service.ari.expect(bridged_pair, timeout=30)
        status, body = await post_callback(service, number="0611111111", queue="support")
        assert status == 201, body
        event = await bridged
        item = f"{body['id']}-1"
        assert item in event.bridge.channels  # the customer's channel is the callback's call
        legs = await eventually(lambda: rows(sandbox, "SELECT channel_id, role, answered_at, created_at "
                                                      "FROM call_legs WHERE call_id = $1 ORDER BY created_at", item))
        assert [leg["channel_id"] for leg in legs][0] == item and legs[1]["role"] == "agent"
        assert legs[0]["answered_at"] <= legs[1]["created_at"]  # the customer answered before the agent rang
        done = await eventually(lambda: rows(sandbox, "SELECT * FROM callbacks WHERE state = 'completed'"))
        assert done[0]["attempts"] == 1 and done[0]["agent_id"] == "a1"
        attempts = await rows(sandbox, "SELECT outcome, agent_id FROM callback_attempts")
        assert attempts == [{"outcome": "connected", "agent_id": "a1"}]
        await hangup_all(service)


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(sandbox):
    async with service_for(sandbox) as service:
        await setup(service, "support", {}, [("a1", "ans0")], login=False)
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        sooner = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        cases = [
            ({"number": "0611111111", "queue": "nope"}, 422, "queue"),
            ({"number": "0611111111"}, 422, "queue"),
            ({"number": "0611111111", "agent": "ghost"}, 422, "agent"),
            ({"number": "not a number", "queue": "support"}, 422, "number"),
            ({"number": "0899123456", "queue": "support"}, 422, "number"),   # premium rate
            ({"number": "112", "queue": "support"}, 422, "number"),          # emergency
            ({"number": "+12025550123", "queue": "support"}, 422, "number"),  # country not allowed
            ({"number": "0611111111", "queue": "support", "not_after": past}, 422, "not_after"),
            ({"number": "0611111111", "queue": "support", "not_before": later, "not_after": sooner}, 422,
             "not_after"),
            ({"number": "0611111111", "queue": "support", "not_before": "2024-01-01T10:00:00"}, 422, "not_before"),
            ({"number": "0611111111", "queue": "support", "timezone": "Mars/Olympus"}, 422, "timezone"),
            ({"number": "0611111111", "queue": "support", "colour": "red"}, 422, "colour"),
        ]
        async with api(service) as http:
            for body, status, field in cases:
                r = await http.post("/api/v1/callbacks", json=body)
                data = await r.json()
                assert (r.status, data["error"].get("field")) == (status, field), (body, data)
            assert await rows(sandbox, "SELECT id FROM callbacks") == []
            # Scheduled for later in the caller's zone (naive time + timezone).
            paris = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(hours=3)).replace(tzinfo=None)
            r = await http.post("/api/v1/callbacks", json={"number": "0611111111", "queue": "support",
                                                           "not_before": paris.isoformat(),
                                                           "timezone": "Europe/Paris"})
            created = await r.json()
            assert r.status == 201 and created["state"] == "scheduled", created
            assert abs(datetime.fromisoformat(created["not_before"]).timestamp()
                       - (time.time() + 3 * 3600)) < 60
            # A second open callback for the same number and queue, even when requests race.
            racing = await asyncio.gather(*[http.post("/api/v1/callbacks", json={"number": "0633333333",
                                                                                  "queue": "support"})
                                            for _ in range(5)])
            assert sorted(r.status for r in racing) == [201, 409, 409, 409, 409]
            dup = await http.post("/api/v1/callbacks", json={"number": "+33611111111", "queue": "support"})
            assert dup.status == 409 and (await dup.json())["error"]["field"] == "number"
            assert len(await rows(sandbox, "SELECT id FROM callbacks")) == 2
            # Read, list, cancel.
            r = await http.get(f"/api/v1/callbacks/{created['id']}")
            assert r.status == 200 and (await r.json())["attempt_log"] == []
            r = await http.get("/api/v1/callbacks?state=scheduled")
            assert [c["id"] for c in (await r.json())["callbacks"]] == [created["id"]]
            r = await http.get("/api/v1/callbacks?state=bogus")
            assert r.status == 422 and (await r.json())["error"]["field"] == "state"
            pending = (await (await http.get("/api/v1/callbacks?state=pending&queue=support")).json())["callbacks"]
            assert len(pending) == 1 and pending[0]["position"] == 1
            assert callback_items(service, "support") == [pending[0]["id"]]
            r = await http.delete(f"/api/v1/callbacks/{pending[0]['id']}")
            assert r.status == 200 and (await r.json())["state"] == "cancelled"
            assert callback_items(service, "support") == []  # left the queue at once
            r = await http.delete(f"/api/v1/callbacks/{pending[0]['id']}")
            assert r.status == 409
            assert (await http.get("/api/v1/callbacks/cb-nope")).status == 404
            # Policy: validated, unknown queue.
            r = await http.put("/api/v1/queues/support/callback", json={"max_attempts": 0})
            assert r.status == 422 and (await r.json())["error"]["field"] == "max_attempts"
            assert (await http.put("/api/v1/queues/nope/callback", json={})).status == 404


async def test_with_amd_a_machine_is_a_failed_attempt_and_a_person_is_connected(sandbox):
    """AMD on the customer leg: Asterisk's AMD() hears the simulated voicemail greeting (espeak-ng
    audio) and says MACHINE; the "Hello?" of a person says HUMAN and the agent gets them."""
    async with service_for(sandbox) as service:
        await setup(service, "support", {"strategy": "ring-all", "wrapup_time": 0}, [("a1", "ans0")],
                    policy={"max_attempts": 1, "amd": True, "whisper_number": False})
        status, body = await post_callback(service, number="0677777777", queue="support")
        assert status == 201, body
        failed = await eventually(lambda: rows(sandbox, "SELECT * FROM callbacks WHERE state = 'failed'"),
                                  timeout=60)
        assert failed[0]["id"] == body["id"]
        attempts = await rows(sandbox, "SELECT attempt, outcome, counted FROM callback_attempts ORDER BY attempt")
        assert [(a["attempt"], a["outcome"], a["counted"]) for a in attempts] == [(1, "machine", True)]
        await service.acd.wait_until(lambda: service.acd.engine.agent("a1").status == "available", timeout=5)

        bridged = service.ari.expect(bridged_pair, timeout=60)
        status, body = await post_callback(service, number="0688888888", queue="support")
        assert status == 201, body
        event = await bridged
        assert {service.recorder.leg(c).role for c in event.bridge.channels} == {"agent", "customer"}
        customer = next(c for c in event.bridge.channels if service.recorder.leg(c).role == "customer")
        await service.writer.flush(timeout=5)
        leg = (await rows(sandbox, "SELECT data FROM call_legs WHERE channel_id = $1", customer))[0]
        assert json.loads(leg["data"])["amd"] == "HUMAN"
        await hangup_all(service)
