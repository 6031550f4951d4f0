"""Click-to-call on the sandbox: a web request ends in a bridge of an agent's and the visitor's
Local channels, with the statuses the visitor saw and the rows a supervisor would check.

Test numbers are real-looking French mobiles that pass the full number policy; the settings'
`dial_overrides` map them to simulated people (`Local/<spec>@sim-customer`), exactly as a
production deployment maps every validated number to its trunk with `dial_template`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_app.ari import events as ev
from ari_app.clicktocall.capability import ClickToCall
from ari_app.service import Service

from .chromium import chromium_page
from .helpers import api, fetch, fetch_call, hangup_all, reset_db, running_service

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHOP = "https://shop.example"
ANSWERS = "+33612345001"       # answers after 1 s
ANSWERS_TOO = "+33612345004"
NO_ANSWER = "+33612345002"     # rings forever
BUSY = "+33612345003"

C2C: dict[str, Any] = {
    "sites": {
        "shop": {"origins": [SHOP, "self"], "targets": ["queue:web", "queue:web-first", "agent:a1"],
                 "token_secret": "shop-backend-secret-not-real"},
        "locked": {"origins": [SHOP], "targets": ["queue:web"], "token_secret": "other-secret", "require_token": True},
    },
    "targets": {"queue:web-first": {"order": "customer-first", "ring_timeout": 5},
                "queue:web": {"ring_timeout": 5, "whisper_number": False}},
    "caller_id": "+33100000000",
    "dial_overrides": {ANSWERS: "Local/human-ans1@sim-customer", ANSWERS_TOO: "Local/human-ans1@sim-customer",
                       NO_ANSWER: "Local/noanswer@sim-customer", BUSY: "Local/busy@sim-customer"},
    "demo_site": "shop",
    "limits": {"per_ip_per_minute": 50, "per_ip_concurrent": 10, "global_concurrent": 10},
}


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


def c2c_settings(**changes: Any) -> dict[str, Any]:
    return {**C2C, **changes}


def capability(service: Service) -> ClickToCall:
    return next(c for c in service.capabilities if isinstance(c, ClickToCall))


async def setup(service: Service, agents: list[tuple[str, str]], queues: tuple[str, ...] = ("web", "web-first")) -> None:
    async with api(service) as http:
        for q in queues:
            r = await http.put(f"/api/v1/queues/{q}", json={"strategy": "ring-all", "wrapup_time": 0})
            assert r.status in (200, 201), await r.text()
        for agent_id, spec in agents:
            r = await http.put(f"/api/v1/agents/{agent_id}", json={"endpoint": f"Local/{spec}@sim-agent",
                                                                   "memberships": {q: 0 for q in queues}})
            assert r.status in (200, 201), await r.text()
            r = await http.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
            assert r.status == 200, await r.text()


def public(service: Service, origin: str | None = SHOP) -> aiohttp.ClientSession:
    """A browser on the shop's page: no bearer token, an Origin header."""
    return api(service, token=None) if origin is None else aiohttp.ClientSession(
        f"http://127.0.0.1:{service.http_port}", headers={"Origin": origin})


def two_party_bridge() -> Any:
    return lambda e: isinstance(e, ev.ChannelEnteredBridge) and len(e.bridge.channels) == 2


async def read_events(http: aiohttp.ClientSession, url: str, until: str) -> list[dict[str, Any]]:
    """Follow the server-sent events of a request until `until` (or the stream ends)."""
    seen: list[dict[str, Any]] = []
    async with http.get(url) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        async for raw in r.content:
            line = raw.decode().strip()
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["status"] == until or seen[-1]["done"]:
                    break
    return seen


async def request_row(sandbox, request_id: str) -> dict[str, Any]:
    rows = await fetch(sandbox.info.database_url, "SELECT * FROM click_to_call_requests WHERE id = $1", request_id)
    assert rows, f"no record of {request_id}"
    row = rows[0]
    row["data"] = json.loads(row["data"])
    return row


async def legs_of(sandbox, call_id: str) -> dict[str, dict[str, Any]]:
    rows = await fetch(sandbox.info.database_url, "SELECT * FROM call_legs WHERE call_id = $1", call_id)
    return {r["role"]: r for r in rows}


async def test_agent_first_bridges_the_agent_with_the_visitor_after_a_whisper(sandbox):
    whisper = {**C2C["targets"], "queue:web": {"whisper": ["sound:beep"], "whisper_number": True}}
    async with running_service(sandbox, click_to_call=c2c_settings(targets=whisper)) as service:
        await setup(service, [("a1", "ans1")])
        bridged = service.ari.expect(two_party_bridge(), timeout=30)
        whispered = service.ari.expect(lambda e: isinstance(e, ev.PlaybackStarted | ev.PlaybackContinuing)
                                       and e.playback.media_uri == "digits:0612345001", timeout=30)
        async with public(service) as http:
            r = await http.post("/api/v1/click-to-call", json={
                "site_key": "shop", "number": "06 12 34 50 01", "queue": "web",
                "context": {"page": "https://shop.example/pricing", "name": "Ada", "note": "wants a quote"}})
            assert r.status == 202, await r.text()
            assert r.headers["Access-Control-Allow-Origin"] == SHOP
            body = await r.json()
            request_id = body["id"]
            assert body["history"][0]["status"] == "queued"     # and an agent may be ringing already
            seen = await read_events(http, body["events_url"], until="connected")
            assert [s["status"] for s in seen] == ["queued", "agent-ringing", "agent-answered", "customer-ringing",
                                                   "connected"]
            event = await bridged
            roles = {service.recorder.leg(c).role: c for c in event.bridge.channels}
            assert set(roles) == {"agent", "customer"}
            assert (await whispered).playback.target_uri == f"channel:{roles['agent']}"
            gone = service.ari.expect(lambda e: isinstance(e, ev.ChannelDestroyed) and e.channel.id == roles["agent"],
                                      timeout=10)
            await service.ari.rest.channels.hangup(channel_id=roles["customer"])
            await gone
            status = await (await http.get(f"/api/v1/click-to-call/{request_id}")).json()
            assert status["status"] == "completed" and status["reason"] == "customer-hangup"
        await service.writer.flush(timeout=5)
        call = await fetch_call(sandbox.info.database_url, request_id)
        assert call["direction"] == "click2call" and call["outcome"] == "answered" and call["agent_id"] == "a1"
        assert call["bridged_at"] is not None and call["ended_at"] is not None
        assert json.loads(call["data"])["click_to_call"]["note"] == "wants a quote"
        legs = await legs_of(sandbox, request_id)
        assert legs["customer"]["endpoint"] == "Local/human-ans1@sim-customer"
        assert legs["customer"]["bridged_at"] is not None and legs["agent"]["bridged_at"] is not None
        row = await request_row(sandbox, request_id)
        assert row["accepted"] and row["reason"] is None and row["source"] == "web" and row["site"] == "shop"
        assert row["number"] == ANSWERS and row["number_input"] == "06 12 34 50 01" and row["origin"] == SHOP
        assert row["status"] == "completed" and row["agent_id"] == "a1" and row["finished_at"] is not None
        assert row["call_order"] == "agent-first" and row["data"]["context"]["name"] == "Ada"


async def test_customer_first_dials_the_visitor_then_queues_them_at_high_priority(sandbox):
    async with running_service(sandbox, click_to_call=C2C) as service:
        await setup(service, [("a1", "ans0")])
        bridged = service.ari.expect(two_party_bridge(), timeout=40)
        message = service.ari.expect(lambda e: isinstance(e, ev.PlaybackFinished)
                                     and e.playback.media_uri == "sound:one-moment-please", timeout=30)
        async with public(service) as http:
            r = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": ANSWERS,
                                                               "queue": "web-first"})
            assert r.status == 202, await r.text()
            body = await r.json()
            seen = await read_events(http, body["events_url"], until="connected")
        assert [s["status"] for s in seen] == ["customer-ringing", "queued", "agent-ringing", "agent-answered",
                                               "connected"]
        visitor = (await message).playback.target_uri.split(":", 1)[1]
        event = await bridged
        assert visitor in event.bridge.channels
        roles = {service.recorder.leg(c).role for c in event.bridge.channels}
        assert roles == {"agent", "customer"}
        await service.writer.flush(timeout=5)  # queue events go through the batched writer
        queued = [e for e in await fetch(sandbox.info.database_url,
                                         "SELECT data FROM queue_events WHERE call_id = $1 AND event = 'ENTERQUEUE'",
                                         body["id"])]
        assert json.loads(queued[0]["data"])["priority"] == 10
        gone = service.ari.expect(lambda e: isinstance(e, ev.ChannelDestroyed) and e.channel.id == visitor, timeout=10)
        other = next(c for c in event.bridge.channels if c != visitor)
        await service.ari.rest.channels.hangup(channel_id=other)
        await gone
        await service.writer.flush(timeout=5)
        call = await fetch_call(sandbox.info.database_url, body["id"])
        assert call["direction"] == "click2call" and call["outcome"] == "answered" and call["agent_id"] == "a1"
        assert call["answered_at"] is not None and call["bridged_at"] is not None and call["ended_at"] is not None
        legs = await legs_of(sandbox, body["id"])
        assert set(legs) == {"customer", "agent"}
        assert legs["customer"]["channel_id"] == visitor and legs["customer"]["answered_at"] is not None
        assert legs["customer"]["answered_at"] < legs["agent"]["created_at"]   # the visitor came first
        row = await request_row(sandbox, body["id"])
        assert row["call_order"] == "customer-first" and row["status"] == "completed"


@pytest.mark.parametrize("queue", ["web", "web-first"])
async def test_visitor_who_does_not_answer_is_recorded_and_the_agent_freed_at_once(sandbox, queue):
    async with running_service(sandbox, click_to_call=C2C) as service:
        await setup(service, [("a1", "ans0")])
        async with public(service) as http:
            r = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": NO_ANSWER, "queue": queue})
            assert r.status == 202, await r.text()
            body = await r.json()
            seen = await read_events(http, body["events_url"], until="failed")
        assert seen[-1]["status"] == "failed" and seen[-1]["reason"] == "customer-noanswer" and seen[-1]["done"]
        assert service.acd.engine.agent("a1").status == "available"
        await service.writer.flush(timeout=5)
        call = await fetch_call(sandbox.info.database_url, body["id"])
        assert call["outcome"] == "customer-noanswer" and call["ended_at"] is not None
        legs = await legs_of(sandbox, body["id"])
        assert legs["customer"]["outcome"] == "noanswer" and legs["customer"]["ended_at"] is not None
        if queue == "web-first":
            assert "agent" not in legs                  # nobody was disturbed
        else:
            assert legs["agent"]["ended_at"] is not None
        row = await request_row(sandbox, body["id"])
        assert row["status"] == "failed" and row["status_reason"] == "customer-noanswer"


async def test_limits_answer_429_with_retry_after_and_record_the_reason(sandbox):
    limits = {"per_ip_per_minute": 3, "per_ip_concurrent": 5, "global_concurrent": 5}
    async with running_service(sandbox, click_to_call=c2c_settings(limits=limits)) as service:
        await setup(service, [("a1", "noanswer")])        # requests wait, ringing the agent
        async with public(service) as http:
            r1 = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": ANSWERS, "queue": "web"})
            assert r1.status == 202
            r2 = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": "0612345001",
                                                                "queue": "web"})
            assert r2.status == 429
            err = (await r2.json())["error"]
            assert err["field"] == "number" and err["details"][-1]["reason"] == "number-busy"
            assert int(r2.headers["Retry-After"]) > 0 and r2.headers["Access-Control-Allow-Origin"] == SHOP
            r3 = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": "0899 12 34 56",
                                                                "queue": "web"})
            assert r3.status == 422
            r4 = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": ANSWERS_TOO,
                                                                "queue": "web"})
            assert r4.status == 429 and 55 <= int(r4.headers["Retry-After"]) <= 60
            assert (await r4.json())["error"]["details"][-1]["reason"] == "rate-ip"
        assert len(service.acd.engine.waiting("web")) == 1
        await service.writer.flush(timeout=5)
        rows = await fetch(sandbox.info.database_url,
                           "SELECT accepted, reason, number FROM click_to_call_requests ORDER BY created_at")
        assert [(r["accepted"], r["reason"]) for r in rows] == [
            (True, None), (False, "number-busy"), (False, "number-premium"), (False, "rate-ip")]
        await hangup_all(service)


REFUSED = [
    # body, headers (None: no Origin), status, recorded reason, field
    ({"site_key": "shop", "number": "0899 12 34 56", "queue": "web"}, SHOP, 422, "number-premium", "number"),
    ({"site_key": "shop", "number": "112", "queue": "web"}, SHOP, 422, "number-emergency", "number"),
    ({"site_key": "shop", "number": "+44 20 7946 0958", "queue": "web"}, SHOP, 422, "number-country", "number"),
    ({"site_key": "shop", "number": "Local/human-ans1@sim-customer", "queue": "web"}, SHOP, 422,
     "number-malformed", "number"),
    ({"site_key": "shop", "number": ANSWERS, "queue": "web"}, "https://evil.example", 403, "origin", "Origin"),
    ({"site_key": "shop", "number": ANSWERS, "queue": "web"}, None, 403, "origin-missing", "Origin"),
    ({"site_key": "nope", "number": ANSWERS, "queue": "web"}, SHOP, 403, "site-unknown", "site_key"),
    ({"site_key": "locked", "number": ANSWERS, "queue": "web"}, SHOP, 401, "token-required", "token"),
    ({"site_key": "shop", "number": ANSWERS, "queue": "vip"}, SHOP, 403, "target-not-allowed", "queue"),
    ({"number": ANSWERS, "queue": "web"}, SHOP, 401, "no-credentials", "site_key"),
    ({"site_key": "shop", "number": ANSWERS, "token": "c2c1.e30.xx"}, SHOP, 401, "token-malformed", "token"),
    ({"site_key": "shop", "number": ANSWERS, "queue": "web", "extra": 1}, SHOP, 422, "bad-request", "extra"),
]


async def test_refused_requests_dial_nothing_and_are_recorded(sandbox, monkeypatch):
    async with running_service(sandbox, click_to_call=C2C) as service:
        await setup(service, [("a1", "ans0")])
        originated: list[dict[str, Any]] = []
        real = service.ari.rest.channels.originate

        async def spy(**kw: Any) -> Any:
            originated.append(kw)
            return await real(**kw)
        monkeypatch.setattr(service.ari.rest.channels, "originate", spy)
        for body, origin, status, reason, field in REFUSED:
            async with public(service, origin) as http:
                r = await http.post("/api/v1/click-to-call", json=body)
                assert r.status == status, (body, await r.text())
                err = (await r.json())["error"]
                assert err["field"] == field and err["details"][-1]["reason"] == reason
        assert originated == []
        assert await service.ari.rest.channels.list() == []
        assert service.acd.engine.waiting("web") == []
        assert service.acd.engine.agent("a1").status == "available"
        await service.writer.flush(timeout=5)
        rows = await fetch(sandbox.info.database_url,
                           "SELECT accepted, reason, number_input FROM click_to_call_requests ORDER BY created_at")
        assert [(r["accepted"], r["reason"]) for r in rows] == [(False, x[3]) for x in REFUSED]
        assert await fetch(sandbox.info.database_url, "SELECT id FROM calls") == []


async def test_signed_tokens_are_minted_by_the_backend_bound_to_a_number_and_used_once(sandbox):
    async with running_service(sandbox, click_to_call=C2C) as service:
        await setup(service, [("a1", "ans0")])
        async with api(service) as backend:
            r = await backend.post("/api/v1/click-to-call/tokens", json={"site": "shop", "queue": "web",
                                                                         "number": "06 12 34 50 01", "ttl": 60})
            assert r.status == 201, await r.text()
            minted = await r.json()
            assert minted["number"] == ANSWERS and minted["target"] == "queue:web"
            r = await backend.post("/api/v1/click-to-call/tokens", json={"site": "shop", "ttl": 99999})
            assert r.status == 422 and (await r.json())["error"]["field"] == "ttl"
        async with api(service, token=None) as anon:
            r = await anon.post("/api/v1/click-to-call/tokens", json={"site": "shop"})
            assert r.status == 401
        bridged = service.ari.expect(two_party_bridge(), timeout=30)
        async with public(service, origin=None) as http:     # a token needs no Origin
            r = await http.post("/api/v1/click-to-call", json={"token": minted["token"], "number": ANSWERS_TOO})
            assert r.status == 403 and (await r.json())["error"]["details"][-1]["reason"] == "token-number"
            r = await http.post("/api/v1/click-to-call", json={"token": minted["token"], "number": "0612345001"})
            assert r.status == 202, await r.text()
            r2 = await http.post("/api/v1/click-to-call", json={"token": minted["token"], "number": "0612345001"})
            assert r2.status == 401 and (await r2.json())["error"]["details"][-1]["reason"] == "token-used"
        await bridged
        await service.writer.flush(timeout=5)
        rows = await fetch(sandbox.info.database_url,
                           "SELECT source, accepted, reason FROM click_to_call_requests ORDER BY created_at")
        assert [(r["source"], r["accepted"], r["reason"]) for r in rows] == [
            ("token", False, "token-number"), ("token", True, None), ("web", False, "token-used")]
        await hangup_all(service)


async def test_cors_preflight_allows_listed_origins_only(sandbox):
    async with running_service(sandbox, click_to_call=C2C) as service:
        async with public(service) as http:
            r = await http.options("/api/v1/click-to-call", headers={"Access-Control-Request-Method": "POST"})
            assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == SHOP
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
        async with public(service, "https://evil.example") as http:
            r = await http.options("/api/v1/click-to-call")
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
            r = await http.get("/api/v1/click-to-call/c2c-nothing-here")
            assert r.status == 404


async def test_click_to_dial_rings_the_agent_then_the_number(sandbox):
    async with running_service(sandbox, click_to_call=C2C) as service:
        await setup(service, [("a1", "ans1")])
        bridged = service.ari.expect(two_party_bridge(), timeout=30)
        async with api(service) as http:
            r = await http.post("/api/v1/agents/a1/dial", json={"number": "0899123456"})
            assert r.status == 422 and (await r.json())["error"]["field"] == "number"
            r = await http.post("/api/v1/agents/nobody/dial", json={"number": ANSWERS})
            assert r.status == 404
            r = await http.post("/api/v1/agents/a1/dial", json={"number": ANSWERS, "note": "follow-up"})
            assert r.status == 202, await r.text()
            body = await r.json()
            seen = await read_events(http, body["events_url"], until="connected")
            assert [s["status"] for s in seen] == ["agent-ringing", "agent-answered", "customer-ringing", "connected"]
            event = await bridged
            assert service.acd.engine.agent("a1").device == "inuse"     # no queue call is offered meanwhile
            r = await http.post("/api/v1/agents/a1/dial", json={"number": ANSWERS_TOO})
            assert r.status == 409
        roles = {service.recorder.leg(c).role: c for c in event.bridge.channels}
        assert set(roles) == {"agent", "customer"}
        gone = service.ari.expect(lambda e: isinstance(e, ev.ChannelDestroyed) and e.channel.id == roles["customer"],
                                  timeout=10)
        await service.ari.rest.channels.hangup(channel_id=roles["agent"])
        await gone
        await service.acd.wait_until(lambda: service.acd.engine.agent("a1").device == "idle", timeout=5)
        await service.writer.flush(timeout=5)
        call = await fetch_call(sandbox.info.database_url, body["id"])
        assert call["direction"] == "outbound" and call["agent_id"] == "a1" and call["outcome"] == "answered"
        assert call["bridged_at"] is not None and call["ended_at"] is not None
        row = await request_row(sandbox, body["id"])
        assert row["source"] == "agent" and row["status"] == "completed" and row["status_reason"] == "agent-hangup"


async def test_widget_in_headless_chromium_shows_connected(sandbox):
    """A visitor on the demo page types their number and presses the button: the sandbox bridges
    an agent with them and the page says so."""
    async with running_service(sandbox, click_to_call=C2C) as service:
        await setup(service, [("a1", "ans0")])
        bridged = service.ari.expect(two_party_bridge(), timeout=40)
        base = f"http://127.0.0.1:{service.http_port}"
        async with chromium_page(ARTIFACTS / "click-to-call-chromium.log") as page:
            await page.goto(f"{base}/api/v1/click-to-call/demo?target=queue:web")
            await page.evaluate("""window.__connected = new Promise((resolve, reject) => {
                const root = document.getElementById('click-to-call'), seen = [];
                root.addEventListener('ari-click-to-call:status', (e) => {
                  seen.push(e.detail.status);
                  if (e.detail.status === 'connected') resolve(seen);
                  if (['failed', 'refused', 'error'].includes(e.detail.status))
                    reject(new Error(seen.join(',') + ' ' + root.textContent));
                });
              }); true""")
            await page.type_into("input[name=number]", "06 12 34 50 01")
            await page.click("button.acc-call")
            seen = await page.evaluate("window.__connected", timeout=40)
            assert seen[0] == "sending" and seen[-1] == "connected"
            text = await page.evaluate("document.querySelector('.acc-status').textContent")
            assert "Connected" in text
            await page.screenshot(ARTIFACTS / "click-to-call-widget.png")
            assert page.errors == []
        event = await bridged
        roles = {service.recorder.leg(c).role for c in event.bridge.channels}
        assert roles == {"agent", "customer"}
        await service.writer.flush(timeout=5)
        rows = await fetch(sandbox.info.database_url, "SELECT origin, accepted, data FROM click_to_call_requests")
        assert len(rows) == 1 and rows[0]["accepted"] and rows[0]["origin"] == base
        assert json.loads(rows[0]["data"])["context"]["page"].startswith(f"{base}/api/v1/click-to-call/demo")
        await hangup_all(service)


async def test_an_agent_target_is_served_by_that_agent_only(sandbox):
    async with running_service(sandbox, click_to_call=C2C) as service:
        await setup(service, [("a2", "ans0"), ("a1", "ans0")])    # a2 idles longest, but the visitor asked for a1
        bridged = service.ari.expect(two_party_bridge(), timeout=30)
        async with public(service) as http:
            r = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": ANSWERS, "agent": "a1"})
            assert r.status == 202, await r.text()
            body = await r.json()
            r = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": ANSWERS_TOO,
                                                               "agent": "a2"})
            assert r.status == 403 and (await r.json())["error"]["field"] == "agent"    # not a target of the site
        event = await bridged
        agents = {service.recorder.leg(c).agent_id for c in event.bridge.channels} - {None}
        assert agents == {"a1"}
        await service.writer.flush(timeout=5)
        rows = await fetch(sandbox.info.database_url, "SELECT agent_id FROM call_legs WHERE role = 'agent'")
        assert [r["agent_id"] for r in rows] == ["a1"]
        assert (await fetch_call(sandbox.info.database_url, body["id"]))["agent_id"] == "a1"
        await hangup_all(service)


async def test_a_waiting_request_is_followed_again_after_an_app_restart(sandbox):
    async with running_service(sandbox, click_to_call=C2C) as first:
        await setup(first, [("a1", "noanswer")])
        async with public(first) as http:
            r = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": ANSWERS, "queue": "web"})
            assert r.status == 202, await r.text()
            body = await r.json()
        await first.acd.wait_until(lambda: first.acd.engine.agent("a1").status == "ringing", timeout=10)
    async with running_service(sandbox, click_to_call=C2C) as second:
        bridged = second.ari.expect(two_party_bridge(), timeout=40)
        async with api(second) as http:                # the agent's phone answers now
            r = await http.put("/api/v1/agents/a1", json={"endpoint": "Local/ans0@sim-agent",
                                                          "memberships": {"web": 0, "web-first": 0}})
            assert r.status == 200, await r.text()
        async with public(second) as http:
            seen = await read_events(http, body["events_url"], until="connected")
            assert [s["status"] for s in seen] == ["queued", "agent-ringing", "agent-answered", "customer-ringing",
                                                   "connected"]
            r = await http.post("/api/v1/click-to-call", json={"site_key": "shop", "number": ANSWERS, "queue": "web"})
            assert r.status == 429 and (await r.json())["error"]["details"][-1]["reason"] == "number-busy"
        event = await bridged
        assert {second.recorder.leg(c).role for c in event.bridge.channels} == {"agent", "customer"}
        await hangup_all(second)
