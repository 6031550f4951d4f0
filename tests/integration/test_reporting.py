"""Reporting on the sandbox: the roll-up against hand-computed figures and against the Python
reference on ~250k synthetic rows, the stats API and its live stream with real simulated callers
and agents, /metrics, the Erlang API, the wallboard in a real headless Chromium, and the
supervisor tools (listen via a snoop channel, move a waiting caller, force an agent's state)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ari_app.ari import events as ev
from ari_app.reporting.capability import REFRESH_IDLE
from ari_app.reporting.core.stats import AgentCounters, QueueCounters
from ari_app.service import Service

from . import reporting_data
from .helpers import (
    API_TOKEN,
    api,
    eventually,
    fetch,
    hangup_all,
    left_app,
    reset_db,
    running_service,
)

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
T0 = datetime(2023, 11, 14, 22, 15, tzinfo=UTC)  # a quarter hour


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def insert_fixed_records(conn: asyncpg.Connection) -> None:
    """The records of tests/unit/reporting/test_reporting_stats.py, as the app would write them:
    T = 20 s (queue config), short abandons under 5 s."""
    await conn.execute("INSERT INTO acd_queues (name, config) VALUES ('support', $1)",
                       json.dumps({"name": "support", "service_level_threshold": 20}))
    calls = [  # id, offset, outcome, wait, talk, hold, agent
        ("c1", 0, "answered", 10, 100, None, "a1"), ("c2", 5, "answered", 30, 200, 15, "a2"),
        ("c3", 10, "answered", 20, None, None, "a3"), ("c4", 20, "abandoned", 3, None, None, None),
        ("c5", 30, "abandoned", 12, None, None, None), ("c6", 40, "abandoned", 45, None, None, None),
        ("c7", 50, "timeout", 180, None, None, None), ("c8", 60, "exitkey", 8, None, None, None),
        ("c9", 70, "callback", 25, None, None, None), ("c10", 80, "full", 0, None, None, None),
        ("c11", 90, None, None, None, None, None)]
    for cid, off, outcome, wait, talk, hold, agent in calls:
        entered = at(off)
        bridged = entered + timedelta(seconds=wait) if outcome == "answered" else None
        ended = (bridged + timedelta(seconds=talk) if talk is not None else None) if outcome == "answered" else (
            entered + timedelta(seconds=wait) if wait is not None else None)
        await conn.execute(
            """INSERT INTO calls (id, direction, queue, agent_id, created_at, entered_queue_at, bridged_at, ended_at,
                                  outcome, data, updated_at) VALUES ($1, 'inbound', 'support', $2, $3, $3, $4, $5, $6, $7, $8)""",
            cid, agent, entered, bridged, ended, outcome, json.dumps({"hold_seconds": hold} if hold else {}),
            ended or entered)
    # A callback in the same interval: not an inbound call, not counted.
    await conn.execute("""INSERT INTO calls (id, direction, queue, created_at, entered_queue_at, bridged_at, ended_at,
                          outcome) VALUES ('cb1', 'callback', 'support', $1, $1, $2, $3, 'answered')""",
                       at(100), at(101), at(200))
    # Wrap-ups after c1 (20 s) and c2 (10 s): the wrapup state at the COMPLETE event's instant.
    for cid, agent, end, wrap in (("c1", "a1", 110, 20), ("c2", "a2", 235, 10)):
        await conn.execute("INSERT INTO queue_events (at, call_id, queue, agent_id, event) VALUES ($1, $2, 'support', $3, "
                           "'COMPLETECALLER')", at(end), cid, agent)
        await conn.execute("INSERT INTO agent_states (agent_id, at, state) VALUES ($1, $2, 'wrapup'), ($1, $3, 'available')",
                           agent, at(end), at(end + wrap))
    # Agent "ag" of the unit test's HISTORY.
    for off, state in ((-300, "available"), (60, "ringing"), (70, "on_call"), (170, "wrapup"), (190, "available"),
                       (800, "paused"), (1000, "available"), (1200, "logged_out")):
        await conn.execute("INSERT INTO agent_states (agent_id, at, state) VALUES ('ag', $1, $2)", at(off), state)
    await conn.execute("INSERT INTO queue_events (at, agent_id, queue, event) VALUES ($1, 'ag', 'support', 'CONNECT'), "
                       "($2, 'ag', 'support', 'RINGNOANSWER')", at(70), at(500))


EXPECTED_QUEUE = QueueCounters(offered=11, answered=3, answered_in_sl=2, abandoned=3, abandoned_short=1,
                               abandoned_after_sl=1, timeout=1, exitkey=1, callback=1, other_exit=1, in_progress=1,
                               wait_answered_sum=60.0, wait_answered_max=30.0, wait_abandoned_sum=60.0, handled=2,
                               talk_sum=300.0, hold_sum=15.0, wrap_sum=30.0)


async def test_rollup_of_fixed_records_matches_the_hand_computed_figures(sandbox):
    conn = await asyncpg.connect(sandbox.info.database_url)
    try:
        await insert_fixed_records(conn)
        await conn.fetchrow("SELECT * FROM report_rollup(5, 20)")
        q, a = await reporting_data.rolled_up(conn)
        assert q == {("support", T0.timestamp()): EXPECTED_QUEUE}
        t0 = T0.timestamp()
        assert a[("ag", t0 - 900)] == AgentCounters(staffed=300, available=300)
        assert a[("ag", t0)] == AgentCounters(calls_handled=1, ring_noanswer=1, staffed=900, available=670,
                                              ringing=10, on_call=100, wrapup=20, paused=100)
        assert a[("ag", t0 + 900)] == AgentCounters(staffed=300, paused=100, available=200)
        # Incremental: c3 ends (talk 50 s, wrap-up 5 s); only its interval is recomputed.
        assert await conn.fetchval("SELECT count(*) FROM report_marks") == 0
        await conn.execute("UPDATE calls SET ended_at = bridged_at + interval '50 seconds' WHERE id = 'c3'")
        await conn.execute("INSERT INTO queue_events (at, call_id, queue, agent_id, event) VALUES ($1, 'c3', 'support', "
                           "'a3', 'COMPLETEAGENT')", at(80))
        await conn.execute("INSERT INTO agent_states (agent_id, at, state) VALUES ('a3', $1, 'wrapup')", at(80))
        row = await conn.fetchrow("SELECT * FROM report_rollup(5, 20)")
        assert row["queue_intervals"] == 1
        q, _ = await reporting_data.rolled_up(conn)
        assert (q[("support", t0)].handled, q[("support", t0)].talk_sum, q[("support", t0)].wrap_sum) == (3, 350, 30)
        # The wrap-up ends later: a row for a3 closes it, and the queue interval is recomputed again.
        await conn.execute("INSERT INTO agent_states (agent_id, at, state) VALUES ('a3', $1, 'available')", at(85))
        row = await conn.fetchrow("SELECT * FROM report_rollup(5, 20)")
        q, _ = await reporting_data.rolled_up(conn)
        assert q[("support", t0)].wrap_sum == 35
        # Reference computation over the same tables agrees.
        ref_q, ref_a = await reporting_data.reference(conn, short_abandon=5, thresholds=20)
        q, a = await reporting_data.rolled_up(conn)
        assert reporting_data.differences(ref_q, q) == []
        assert reporting_data.differences(ref_a, a) == []
    finally:
        await conn.close()


async def test_interval_report_api_json_and_csv(sandbox):
    conn = await asyncpg.connect(sandbox.info.database_url)
    try:
        await insert_fixed_records(conn)
    finally:
        await conn.close()
    async with running_service(sandbox) as service, api(service) as http:
        r = await http.get("/api/v1/reports/intervals", params={"kind": "queue", "from": "2023-11-14T22:00:00Z",
                                                                  "to": "2023-11-15T00:00:00+00:00"})
        assert r.status == 200, await r.text()
        body = await r.json()
        [row] = body["rows"]
        assert row["queue"] == "support" and row["interval_start"] == "2023-11-14T22:15:00+00:00"
        assert row["offered"] == 11 and row["service_level"] == 0.5 and row["abandon_rate"] == 0.2
        assert row["asa"] == 20.0 and row["aht"] == 172.5 and row["sl_threshold"] == 20
        r = await http.get("/api/v1/reports/intervals", params={"kind": "agent", "from": "2023-11-14",
                                                                  "to": "2023-11-15", "format": "csv"})
        assert r.status == 200 and r.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await r.text())))
        ag = {x["interval_start"]: x for x in rows if x["agent_id"] == "ag"}
        mid = ag["2023-11-14T22:15:00+00:00"]
        assert float(mid["occupancy"]) == 0.15 and int(mid["calls_handled"]) == 1 and float(mid["available"]) == 670
        # Bad input names the field and changes nothing.
        for params, field in (({"kind": "weather"}, "kind"), ({"from": "yesterday"}, "from"),
                              ({"from": "2023-11-15", "to": "2023-11-14"}, "to"), ({"format": "xml"}, "format"),
                              ({"from": "2020-01-01", "to": "2023-01-01"}, "to"), ({"bogus": "1"}, "bogus")):
            r = await http.get("/api/v1/reports/intervals", params=params)
            assert r.status == 422, (params, await r.text())
            assert (await r.json())["error"]["field"] == field


async def test_rollup_of_250k_synthetic_rows_matches_the_reference(sandbox):
    """Correctness at volume: 50k calls over 10 days with their queue events and agent states
    (about 250k rows, all through the marking triggers), rolled up in one go, equal the Python
    reference computed from the raw rows. Timing is for BENCHMARKS.md (bench/reporting_rollup.py
    runs the same at 200k and 1M calls), not an assertion."""
    conn = await asyncpg.connect(sandbox.info.database_url)
    try:
        started = time.monotonic()
        await reporting_data.generate(conn, calls=50_000, days=10)
        await conn.execute("ANALYZE")  # fresh tables after a bulk load: give the planner statistics
        generated = time.monotonic()
        row = await conn.fetchrow("SELECT * FROM report_rollup(5, 20)", timeout=600)
        rolled = time.monotonic()
        print(f"\n50k calls: insert {generated - started:.1f}s, roll-up {rolled - generated:.1f}s "
              f"({row['queue_intervals']} queue, {row['agent_intervals']} agent intervals)")
        ref_q, ref_a = await reporting_data.reference(conn, short_abandon=5)
        q, a = await reporting_data.rolled_up(conn)
        assert len(q) >= 8 * 10 * 96 and len(a) >= 40 * 10 * 96 * 0.9
        assert reporting_data.differences(ref_q, q) == []
        assert reporting_data.differences(ref_a, a) == []
        # A month's report reads the roll-up only.
        t = time.monotonic()
        rows = await conn.fetch("SELECT queue, sum(offered) FROM report_queue_intervals WHERE interval_start >= $1 "
                                "AND interval_start < $2 GROUP BY queue", datetime(2024, 3, 1, tzinfo=UTC),
                                datetime(2024, 4, 1, tzinfo=UTC))
        print(f"month report over the roll-up: {1000 * (time.monotonic() - t):.1f} ms")
        assert sum(r["sum"] for r in rows) == 50_000
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------- live


async def setup_queue(service: Service, queue: str, agents: list[tuple[str, str]], *, login: bool = False,
                      **config: Any) -> None:
    async with api(service) as http:
        r = await http.put(f"/api/v1/queues/{queue}", json={"strategy": "ring-all", "ring_timeout": 10,
                                                            "wrapup_time": 0, **config})
        assert r.status in (200, 201), await r.text()
        for agent_id, spec in agents:
            r = await http.put(f"/api/v1/agents/{agent_id}", json={"endpoint": f"Local/{spec}@sim-agent",
                                                                   "memberships": {queue: 0}})
            assert r.status in (200, 201), await r.text()
            if login:
                r = await http.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
                assert r.status == 200, await r.text()


async def call_queue(service: Service, queue: str) -> str:
    """A simulated caller (never hangs up by itself) dials in through the `inbound` context."""
    caller_id = service.ari.new_id("caller")
    started = service.ari.expect_stasis_start(caller_id, timeout=10)
    await service.ari.rest.channels.originate(endpoint="Local/patience0@sim-caller", context="inbound",
                                              extension=queue, priority=1, channel_id=caller_id,
                                              other_channel_id=caller_id + "-phone", caller_id='"C" <0611111111>')
    await started
    return caller_id


def bridged_pair(channel: str):  # type: ignore[no-untyped-def]
    return lambda e: (isinstance(e, ev.ChannelEnteredBridge) and len(e.bridge.channels) == 2
                      and channel in e.bridge.channels)


class Stream:
    """A client of /api/v1/stats/stream: the snapshots as they come, with their arrival time."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.snapshots: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        buf = b""
        async for chunk in self.resp.content.iter_any():
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                lines = block.decode().split("\n")
                if "event: snapshot" in lines:
                    data = next(line[len("data: "):] for line in lines if line.startswith("data: "))
                    self.snapshots.put_nowait((time.monotonic(), json.loads(data)))

    async def until(self, predicate: Any, timeout: float = 5.0) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            arrived, snap = await asyncio.wait_for(self.snapshots.get(), max(0.01, deadline - time.monotonic()))
            if predicate(snap):
                return arrived, snap

    async def close(self) -> None:
        self.task.cancel()
        self.resp.close()


def queue_of(snap: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in snap["queues"] if q["name"] == name)


def agent_of(snap: dict[str, Any], agent_id: str) -> dict[str, Any]:
    return next(a for a in snap["agents"] if a["id"] == agent_id)


async def test_today_is_re_read_every_second_only_while_a_stream_client_watches(sandbox):
    """Rolling up and reading today's records every second for nobody is PostgreSQL work that
    competes with the calls: without a client it happens only every REFRESH_UNWATCHED seconds
    (not even every REFRESH_IDLE, the pace of a watched idle system), with one every second while
    things change, and a request gets figures read for it."""
    async with running_service(sandbox) as service, api(service) as http:
        rep = service.reporting
        await setup_queue(service, "support", [("a1", "ans0")], login=True)
        await eventually(lambda: rep.refreshes >= 1)
        before, last = rep.refreshes, rep.refreshed_at

        async def flip_until(deadline: float) -> None:
            state = "paused"
            while time.monotonic() < deadline:
                r = await http.post("/api/v1/agents/a1/state", json={"state": state, "reason": "test"})
                assert r.status == 200, await r.text()
                state = "available" if state == "paused" else "paused"
                await asyncio.sleep(0.2)  # the pace of the changes, not a synchronisation

        await flip_until(last + REFRESH_IDLE + 1.0)  # agents change state, nobody watches
        assert rep.refreshes == before  # (and REFRESH_UNWATCHED is far off)
        r = await http.get("/api/v1/stats/agents/a1")  # a request: read for it
        assert r.status == 200 and rep.refreshes == before + 1 and rep.refreshed_from >= last
        r = await http.get("/api/v1/stats/stream", params={"token": API_TOKEN})
        stream = Stream(r)
        try:
            watched_from = rep.refreshes
            await flip_until(time.monotonic() + 2.6)
            assert rep.refreshes >= watched_from + 2
        finally:
            await stream.close()


async def test_live_stats_stream_and_metrics_follow_a_real_call(sandbox):
    async with running_service(sandbox) as service, api(service) as http, aiohttp.ClientSession() as anon:
        await setup_queue(service, "support", [("a1", "ans0")], service_level_threshold=30)
        r = await anon.get(f"http://127.0.0.1:{service.http_port}/api/v1/stats/stream")
        assert r.status == 401 and (await r.json())["error"]["field"] == "Authorization"
        r = await anon.get(f"http://127.0.0.1:{service.http_port}/api/v1/stats/stream", params={"token": API_TOKEN})
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        stream = Stream(r)
        try:
            await stream.until(lambda s: queue_of(s, "support")["waiting"] == 0)
            # A caller waits (no agent logged in): the stream shows it within a second.
            caller = await call_queue(service, "support")
            await service.acd.wait_until(lambda: service.acd.engine.queue("support").waiting == 1, timeout=5)
            changed = time.monotonic()
            arrived, snap = await stream.until(lambda s: queue_of(s, "support")["waiting"] == 1)
            assert arrived - changed < 1.0
            assert queue_of(snap, "support")["agents"]["logged_out"] == 1

            r = await http.get("/api/v1/stats/queues/support")
            q = await r.json()
            assert q["waiting"] == 1 and q["items"][0]["item_id"] == caller and q["items"][0]["position"] == 1
            r = await anon.get(f"http://127.0.0.1:{service.http_port}/metrics")
            assert r.status == 401
            r = await http.get("/metrics")
            text = await r.text()
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert 'ari_app_queue_callers_waiting{queue="support"} 1' in text
            assert 'ari_app_agents{state="logged_out"} 1' in text
            assert "# TYPE ari_app_calls_total counter" in text and "ari_app_record_writer_pending " in text

            # The agent logs in and answers: the stream shows the call taken.
            bridged = service.ari.expect(bridged_pair(caller), timeout=15)
            r = await http.post("/api/v1/agents/a1/state", json={"state": "available"})
            assert r.status == 200
            await bridged
            changed = time.monotonic()
            arrived, snap = await stream.until(lambda s: queue_of(s, "support")["waiting"] == 0
                                               and agent_of(s, "a1")["state"] == "on_call")
            assert arrived - changed < 1.0
            # The caller hangs up after talking: today's figures come from the records.
            gone = service.ari.expect(left_app(caller), timeout=10)
            await service.ari.rest.channels.hangup(channel_id=caller)
            await gone
            _, snap = await stream.until(lambda s: queue_of(s, "support")["today"]["handled"] == 1, timeout=10)
            today = queue_of(snap, "support")["today"]
            assert (today["offered"], today["answered"], today["answered_in_sl"]) == (1, 1, 1)
            assert today["service_level"] == 1.0 and today["abandon_rate"] == 0.0 and today["aht"] > 0
            assert queue_of(snap, "support")["series"][0]["offered"] == 1
            _, snap = await stream.until(lambda s: agent_of(s, "a1")["today"]["calls_handled"] == 1, timeout=10)
            assert agent_of(snap, "a1")["today"]["staffed"] > 0  # logged in since the call came
            r = await http.get("/api/v1/stats/agents/a1")
            a1 = await r.json()
            assert a1["state"] == "available" and a1["today"]["calls_handled"] == 1 and a1["in_state"] >= 0
            r = await http.get("/api/v1/stats/agents/nobody")
            assert r.status == 404
            r = await http.get("/api/v1/reports/intervals", params={"kind": "queue"})
            [row] = (await r.json())["rows"]
            assert row["queue"] == "support" and row["answered"] == 1 and row["sl_threshold"] == 30
        finally:
            await stream.close()
            await hangup_all(service)


async def test_erlang_api(sandbox):
    async with running_service(sandbox) as service, api(service) as http:
        await setup_queue(service, "support", [("a1", "ans0")], login=True)
        r = await http.get("/api/v1/erlang", params={"calls": "100", "aht": "180", "interval": "1800",
                                                      "threshold": "20", "target_sl": "0.8", "agents": "11"})
        body = await r.json()
        assert r.status == 200, body
        assert body["model"] == "erlang_c" and body["traffic_erlangs"] == 10.0
        assert body["agents_needed"]["agents"] == 14 and body["prediction"]["probability_wait"] == 0.6821
        r = await http.get("/api/v1/erlang", params={"calls": "100", "aht": "180", "patience": "120",
                                                      "queue": "support"})
        body = await r.json()
        assert body["model"] == "erlang_a" and body["queue"]["serving"] == 1 and body["prediction"]["agents"] == 1
        for params, field in (({"aht": "180"}, "calls"), ({"calls": "10", "aht": "0"}, "aht"),
                              ({"calls": "10", "aht": "60", "target_sl": "80"}, "target_sl"),
                              ({"calls": "10", "aht": "60", "queue": "nope"}, "queue"),
                              ({"calls": "x", "aht": "60"}, "calls")):
            r = await http.get("/api/v1/erlang", params=params)
            assert r.status == 422 and (await r.json())["error"]["field"] == field, params


# ---------------------------------------------------------------------------------- wallboard

WAIT_FOR = """(cond, ms) => new Promise((resolve, reject) => {
  const t0 = Date.now();
  const poll = () => { let v = false; try { v = cond(); } catch (e) {}
    if (v) resolve(true); else if (Date.now() - t0 > ms) reject(new Error("timed out: " + cond)); else setTimeout(poll, 50); };
  poll(); })"""


async def test_wallboard_in_chromium_shows_a_waiting_caller_then_the_answer(sandbox):
    from .chromium import chromium_page

    async with running_service(sandbox) as service:
        await setup_queue(service, "support", [("a1", "ans0")])
        url = f"http://127.0.0.1:{service.http_port}/wallboard#token={API_TOKEN}"
        async with chromium_page(ARTIFACTS / "wallboard-chromium.log") as page:
            await page.send("Emulation.setDeviceMetricsOverride", width=1280, height=800, deviceScaleFactor=1,
                            mobile=False)
            await page.goto(url)

            async def wait_for(cond: str, ms: int = 10_000) -> None:
                await page.evaluate(f"({WAIT_FOR})(() => {cond}, {ms})", timeout=ms / 1000 + 5)

            waiting = "document.querySelector('[data-queue=\"support\"] .waiting')"
            await wait_for(f"{waiting}.textContent === '0'")
            assert await page.evaluate("document.querySelector('#status').textContent") == "live"
            assert await page.evaluate("location.hash") == ""  # the token left the address bar
            caller = await call_queue(service, "support")
            await wait_for(f"{waiting}.textContent === '1'")
            assert await page.evaluate(f"{waiting}.classList.contains('alert')")
            await page.screenshot(ARTIFACTS / "wallboard-waiting.png")
            bridged = service.ari.expect(bridged_pair(caller), timeout=15)
            async with api(service) as http:
                await http.post("/api/v1/agents/a1/state", json={"state": "available"})
            await bridged
            await wait_for(f"{waiting}.textContent === '0' && "
                           "document.querySelector('[data-agent=\"a1\"]').dataset.state === 'on_call'")
            await page.screenshot(ARTIFACTS / "wallboard-answered.png")
            # A running campaign shows up as its own card (the dialer feeds the same stream).
            async with api(service) as http:
                r = await http.put("/api/v1/campaigns/spring", json={
                    "mode": "progressive", "queue": "support", "caller_id": '"Acme" <0100000000>',
                    "dial_template": "Local/{sim}@sim-customer", "safe_harbor_message": "sound:vm-goodbye"})
                assert r.status == 201, await r.text()
                r = await http.post("/api/v1/campaigns/spring/start")
                assert r.status == 200, await r.text()
            card = "document.querySelector('[data-campaign=\"spring\"]')"
            await wait_for(f"{card} !== null && {card}.textContent.includes('running')")
            await page.screenshot(ARTIFACTS / "wallboard-campaign.png")
            assert page.errors == []
        await hangup_all(service)


# ---------------------------------------------------------------------------------- supervisor


@pytest.mark.parametrize("mode", ["listen", "whisper", "barge"])
async def test_supervisor_joins_a_bridged_call_through_a_snoop_channel(sandbox, mode):
    async with running_service(sandbox) as service, api(service) as http:
        await setup_queue(service, "support", [("a1", "ans0")], login=True)
        r = await http.post(f"/api/v1/supervisor/{mode}", json={"agent_id": "a1",
                                                                  "supervisor_endpoint": "Local/ans0@sim-agent"})
        assert r.status == 409 and (await r.json())["error"]["field"] == "agent_id"  # not on a call yet
        caller = await call_queue(service, "support")
        await service.ari.expect(bridged_pair(caller), timeout=15)
        joined = service.ari.expect(lambda e: isinstance(e, ev.ChannelEnteredBridge) and e.bridge.id.startswith("sup")
                                    and len(e.bridge.channels) == 2, timeout=15)
        r = await http.post(f"/api/v1/supervisor/{mode}", json={"agent_id": "a1", "requested_by": "sup1",
                                                                  "supervisor_endpoint": "Local/ans0@sim-agent"})
        session = await r.json()
        assert r.status == 201, session
        event = await joined
        assert set(event.bridge.channels) == {session["snoop_channel"], session["supervisor_channel"]}
        assert event.bridge.id == session["bridge_id"]
        snoop = await service.ari.rest.channels.get(channel_id=session["snoop_channel"])
        assert snoop.name.startswith("Snoop/")

        async def connected_row() -> dict[str, Any] | None:
            """The session is marked connected once the bridge call returned (the event may come
            first), and rows go through the batched writer."""
            await service.writer.flush(timeout=5)
            rows = await fetch(sandbox.info.database_url, "SELECT * FROM supervisor_sessions")
            return rows[0] if len(rows) == 1 and rows[0]["connected_at"] is not None else None

        rec = await eventually(connected_row)
        assert (rec["mode"], rec["agent_id"], rec["call_id"], rec["outcome"], rec["requested_by"]) == (
            mode, "a1", caller, "connected", "sup1")
        assert rec["supervisor_endpoint"] == "Local/ans0@sim-agent"
        r = await http.get(f"/api/v1/supervisor/sessions/{session['id']}")
        assert (await r.json())["status"] == "connected"
        # The call ends: the snoop goes with it, and the supervisor's leg is hung up.
        sup_gone = service.ari.expect(lambda e: isinstance(e, ev.ChannelDestroyed)
                                      and e.channel.id == session["supervisor_channel"], timeout=10)
        await service.ari.rest.channels.hangup(channel_id=caller)
        await sup_gone
        await service.writer.flush(timeout=5)
        [rec] = await fetch(sandbox.info.database_url, "SELECT * FROM supervisor_sessions")
        assert rec["outcome"] == "completed" and rec["ended_at"] is not None
        assert json.loads(rec["data"])["ended_by"] == "call-ended"
        r = await http.get("/api/v1/supervisor/sessions", params={"agent_id": "a1"})
        assert [s["id"] for s in (await r.json())["sessions"]] == [session["id"]]
        await hangup_all(service)


async def test_supervisor_bad_requests_name_the_field_and_record_nothing(sandbox):
    async with running_service(sandbox) as service, api(service) as http:
        await setup_queue(service, "support", [("a1", "ans0")], login=True)
        body = {"agent_id": "a1", "supervisor_endpoint": "Local/ans0@sim-agent"}
        for path, b, status, field in (
                ("listen", {**body, "supervisor_endpoint": "Local/x@y,1,Hangup()"}, 422, "supervisor_endpoint"),
                ("listen", {**body, "agent_id": "ghost"}, 404, None), ("spy", body, 404, "mode"),
                ("listen", {**body, "timeout": 1}, 422, "timeout"), ("barge", {"agent_id": "a1"}, 422,
                                                                     "supervisor_endpoint")):
            r = await http.post(f"/api/v1/supervisor/{path}", json=b)
            assert r.status == status, (path, b, await r.text())
            if field:
                assert (await r.json())["error"]["field"] == field
        await service.writer.flush(timeout=5)
        assert await fetch(sandbox.info.database_url, "SELECT * FROM supervisor_sessions") == []


async def test_supervisor_moves_a_waiting_caller_and_forces_an_agent_state(sandbox):
    async with running_service(sandbox) as service, api(service) as http:
        await setup_queue(service, "support", [("a1", "ans0")])
        await setup_queue(service, "vip", [])
        first = await call_queue(service, "support")
        second = await call_queue(service, "support")
        await service.acd.wait_until(lambda: service.acd.engine.queue("support").waiting == 2, timeout=5)
        r = await http.post(f"/api/v1/queues/support/items/{second}/move", json={"queue": "support", "to_head": True})
        assert r.status == 200 and (await r.json())["position"] == 1
        assert service.acd.engine.position(first) == 2
        r = await http.post(f"/api/v1/queues/support/items/{first}/move", json={"queue": "vip"})
        assert r.status == 200 and (await r.json())["queue"] == "vip"
        r = await http.get("/api/v1/stats/queues/vip")
        vip = await r.json()
        assert vip["waiting"] == 1 and vip["items"][0]["item_id"] == first
        r = await http.post(f"/api/v1/queues/support/items/{first}/move", json={"queue": "nowhere"})
        assert r.status == 422 and (await r.json())["error"]["field"] == "queue"
        r = await http.post("/api/v1/queues/support/items/no-such-item/move", json={"queue": "vip"})
        assert r.status == 404
        await service.writer.flush(timeout=5)
        [row] = await fetch(sandbox.info.database_url, "SELECT queue, data FROM calls WHERE id = $1", first)
        assert row["queue"] == "vip" and json.loads(row["data"])["moved_from"] == "support"
        moves = await fetch(sandbox.info.database_url, "SELECT call_id FROM queue_events WHERE event = 'MOVE'")
        assert {m["call_id"] for m in moves} >= {first}
        # Force an agent's state (in a queue nobody waits in): logged in, then paused with a reason.
        await setup_queue(service, "backoffice", [("b1", "ans0")])
        for state, reason in (("available", ""), ("paused", "supervisor: coaching")):
            r = await http.post("/api/v1/agents/b1/state", json={"state": state, "reason": reason})
            assert r.status == 200, await r.text()
        r = await http.get("/api/v1/stats/agents/b1")
        b1 = await r.json()
        assert b1["state"] == "paused" and b1["pause_reason"] == "supervisor: coaching"
        await service.writer.flush(timeout=5)
        states = await fetch(sandbox.info.database_url, "SELECT state, reason FROM agent_states WHERE agent_id = 'b1' "
                             "ORDER BY id")
        assert states[-1] == {"state": "paused", "reason": "supervisor: coaching"}
        await hangup_all(service)


async def test_supervisor_sessions_left_open_by_a_previous_run_are_closed_at_start(sandbox):
    app = sandbox.info.settings().app_name
    conn = await asyncpg.connect(sandbox.info.database_url)
    try:
        await conn.execute(
            """INSERT INTO supervisor_sessions (id, mode, agent_id, supervisor_endpoint, created_at, connected_at, data)
               VALUES ('old-1', 'listen', 'a1', 'PJSIP/201', now(), now(), $1),
                      ('other-app', 'barge', 'a1', 'PJSIP/201', now(), NULL, '{"app": "someone-else"}')""",
            json.dumps({"app": app}))
    finally:
        await conn.close()
    async with running_service(sandbox):
        rows = {r["id"]: r for r in await fetch(sandbox.info.database_url, "SELECT * FROM supervisor_sessions")}
        assert rows["old-1"]["ended_at"] is not None and rows["old-1"]["outcome"] == "completed"
        assert json.loads(rows["old-1"]["data"])["ended_by"] == "app-restart"
        assert rows["other-app"]["ended_at"] is None


async def test_campaign_interval_report_from_the_dial_attempts(sandbox):
    """Per campaign and 15-minute interval: dials, answers, live answers, contacts, machines,
    abandons (rate over live answers, as FTC TSR counts it) and talk time, from fixed attempts."""
    t0 = datetime(2023, 11, 14, 9, 0, tzinfo=UTC)
    attempts = [  # (campaign, seconds after t0, result, answered, talk seconds)
        ("spring", 10, "connected", True, 120.0), ("spring", 20, "connected", True, 60.0),
        ("spring", 30, "abandoned", True, None), ("spring", 40, "machine", True, None),
        ("spring", 50, "busy", False, None), ("spring", 60, "no-answer", False, None),
        ("spring", 16 * 60, "connected", True, 30.0),  # next interval
        ("autumn", 5, "no-answer", False, None),
    ]
    conn = await asyncpg.connect(sandbox.info.database_url)
    try:
        for i, (campaign, dt, result, answered, talk) in enumerate(attempts):
            at = t0 + timedelta(seconds=dt)
            await conn.execute(
                "INSERT INTO dial_attempts (id, campaign_id, dialed_at, answered_at, result, talk_seconds) "
                "VALUES ($1, $2, $3, $4, $5, $6)", f"att-{i}", campaign, at,
                at + timedelta(seconds=8) if answered else None, result, talk)
    finally:
        await conn.close()
    async with running_service(sandbox) as service, api(service) as http:
        r = await http.get("/api/v1/reports/intervals", params={"kind": "campaign", "from": "2023-11-14T09:00:00Z",
                                                                  "to": "2023-11-14T10:00:00Z"})
        assert r.status == 200, await r.text()
        rows = {(x["campaign"], x["interval_start"]): x for x in (await r.json())["rows"]}
        first = rows[("spring", "2023-11-14T09:00:00+00:00")]
        assert (first["dials"], first["answered"], first["live_answers"], first["contacts"], first["machines"],
                first["abandons"], first["not_reached"]) == (6, 4, 3, 2, 1, 1, 2)
        assert first["abandon_rate"] == round(1 / 3, 4) and first["answer_rate"] == round(4 / 6, 4)
        assert first["talk_seconds"] == 180.0
        assert rows[("spring", "2023-11-14T09:15:00+00:00")]["contacts"] == 1
        assert rows[("autumn", "2023-11-14T09:00:00+00:00")]["dials"] == 1
        r = await http.get("/api/v1/reports/intervals", params={"kind": "campaign", "from": "2023-11-14",
                                                                  "to": "2023-11-15", "format": "csv"})
        assert r.status == 200 and r.content_type == "text/csv"
        assert len(list(csv.DictReader(io.StringIO(await r.text())))) == 3
