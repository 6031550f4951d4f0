"""Inbound queueing on the sandbox: simulated callers and agents are real Local channels.

Each test asserts what a supervisor would check: who got bridged with whom, and which rows the
call left in PostgreSQL (calls, queue_events, agent_states)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from ari_app.ari import events as ev
from ari_app.service import Service
from ari_app.settings import UNUSED_EVENT_TYPES

from .helpers import (
    api,
    crash_asterisk,
    eventually,
    fetch,
    fetch_call,
    hangup_all,
    left_app,
    reset_db,
    running_service,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


async def setup_queue(service: Service, queue: str, config: dict[str, Any],
                      agents: list[tuple[str, str]], *, login: bool = True) -> None:
    """Declare a queue and its agents over the HTTP API, then log the agents in, in list order."""
    async with api(service) as http:
        r = await http.put(f"/api/v1/queues/{queue}", json=config)
        assert r.status in (200, 201), await r.text()
        for agent_id, spec in agents:
            body = {"endpoint": f"Local/{spec}@sim-agent", "memberships": {queue: 0}}
            r = await http.put(f"/api/v1/agents/{agent_id}", json=body)
            assert r.status in (200, 201), await r.text()
        if login:
            for agent_id, _ in agents:
                r = await http.post(f"/api/v1/agents/{agent_id}/state", json={"state": "available"})
                assert r.status == 200, await r.text()


async def call_queue(service: Service, queue: str, caller_spec: str = "patience0", *,
                     number: str = "0611111111", options: str = "") -> str:
    """A simulated caller dials in through the `inbound` dialplan context, into the queue; with
    `options` (Stasis arguments such as `skills=spanish:3`) it enters the app directly instead."""
    caller_id = service.ari.new_id("caller")
    started = service.ari.expect_stasis_start(caller_id, timeout=10)
    common = {"endpoint": f"Local/{caller_spec}@sim-caller", "channel_id": caller_id,
              "other_channel_id": caller_id + "-phone", "caller_id": f'"C" <{number}>'}
    if options:
        await service.ari.rest.channels.originate(app=service.settings.app_name,
                                                  app_args=f"queue,{queue},{options}", **common)
    else:
        await service.ari.rest.channels.originate(context="inbound", extension=queue, priority=1, **common)
    await started
    return caller_id


def bridged_with(caller: str):  # type: ignore[no-untyped-def]
    return lambda e: (isinstance(e, ev.ChannelEnteredBridge) and len(e.bridge.channels) == 2
                      and caller in e.bridge.channels)


def agent_of(service: Service, event: ev.ChannelEnteredBridge, caller: str) -> str | None:
    other = next(c for c in event.bridge.channels if c != caller)
    leg = service.recorder.leg(other)
    return leg.agent_id if leg else None


async def queue_events(sandbox, call_id: str) -> list[str]:
    rows = await fetch(sandbox.info.database_url, "SELECT event FROM queue_events WHERE call_id = $1 ORDER BY id",
                       call_id)
    return [r["event"] for r in rows]


@pytest.mark.parametrize(("strategy", "expected"), [
    ("longest-idle", "a2"),      # a2 logged in first: idle longest
    ("linear", "a1"),            # top-down in member order
    ("fewest-calls", "a2"),      # a1 has taken a call already (first caller)
])
async def test_strategy_picks_the_expected_agent(sandbox, strategy, expected):
    async with running_service(sandbox) as service:
        agents = [("a2", "ans0"), ("a1", "ans0")] if strategy == "longest-idle" else [("a1", "ans0"), ("a2", "ans0")]
        await setup_queue(service, "support", {"strategy": strategy, "ring_timeout": 10}, agents)
        if strategy == "fewest-calls":
            # a1 takes one call first (linear order would also give a1): it now has more calls.
            first = service.ari.expect(
                lambda e: isinstance(e, ev.ChannelEnteredBridge) and len(e.bridge.channels) == 2, timeout=10)
            async with api(service) as http:
                await http.post("/api/v1/agents/a2/state", json={"state": "paused", "reason": "test"})
            c0 = await call_queue(service, "support")
            e0 = await first
            assert agent_of(service, e0, c0) == "a1"
            gone = service.ari.expect(left_app(c0), timeout=10)
            await service.ari.rest.channels.hangup(channel_id=c0)
            await gone
            async with api(service) as http:
                await http.post("/api/v1/agents/a2/state", json={"state": "available"})
        caller = await call_queue(service, "support")
        event = await service.ari.expect(bridged_with(caller), timeout=10)
        assert agent_of(service, event, caller) == expected
        gone = service.ari.expect(left_app(caller), timeout=10)
        await service.ari.rest.channels.hangup(channel_id=caller)
        await gone
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller)
        assert row["queue"] == "support" and row["agent_id"] == expected and row["outcome"] == "answered"
        assert row["position_on_entry"] == 1
        events = await queue_events(sandbox, caller)
        assert events[0] == "ENTERQUEUE" and "CONNECT" in events and events[-1] == "COMPLETECALLER"
        await hangup_all(service)


async def test_no_answer_rings_next_agent_and_autopauses(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "linear", "ring_timeout": 2, "retry_delay": 0.2,
                                               "autopause_after": 1},
                          [("lazy", "noanswer"), ("eager", "ans0")])
        caller = await call_queue(service, "support")
        event = await service.ari.expect(bridged_with(caller), timeout=15)
        assert agent_of(service, event, caller) == "eager"
        assert service.acd.engine.agent("lazy").status == "paused"
        await service.writer.flush(timeout=5)
        events = await queue_events(sandbox, caller)
        assert events.index("RINGNOANSWER") < events.index("CONNECT")
        offers = await fetch(sandbox.info.database_url,
                             "SELECT agent_id, outcome FROM call_legs WHERE call_id = $1 AND role = 'agent' "
                             "ORDER BY created_at", caller)
        assert [(o["agent_id"], o["outcome"]) for o in offers] == [("lazy", "noanswer"), ("eager", "answered")]
        states = await fetch(sandbox.info.database_url,
                             "SELECT state, reason FROM agent_states WHERE agent_id = 'lazy' ORDER BY id")
        assert states[-1]["state"] == "paused"
        await hangup_all(service)


async def test_abandon_while_waiting_is_recorded(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans0")], login=False)
        caller = await call_queue(service, "support", "patience2")
        await service.ari.expect(left_app(caller), timeout=10)
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller)
        assert row["outcome"] == "abandoned" and row["hangup_by"] == "caller"
        assert row["bridged_at"] is None
        wait = (row["ended_at"] - row["entered_queue_at"]).total_seconds()
        assert 1.5 <= wait <= 5, wait
        assert (await queue_events(sandbox, caller))[-1] == "ABANDON"


async def test_abandon_while_ringing_cancels_the_agent_leg_and_frees_the_agent(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all", "ring_timeout": 30}, [("a1", "noanswer")])
        caller = await call_queue(service, "support", "patience2")
        await service.ari.expect(left_app(caller), timeout=10)
        agent_leg_gone = service.ari.expect(lambda e: isinstance(e, ev.ChannelDestroyed)
                                            and e.channel.id.startswith("agent-"), timeout=10)
        await agent_leg_gone
        assert service.acd.engine.agent("a1").status == "available"
        await service.writer.flush(timeout=5)
        legs = await fetch(sandbox.info.database_url,
                           "SELECT outcome FROM call_legs WHERE call_id = $1 AND role = 'agent'", caller)
        assert [leg["outcome"] for leg in legs] == ["canceled"]
        assert (await fetch_call(sandbox.info.database_url, caller))["outcome"] == "abandoned"


async def test_wrapup_after_the_call_then_available(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all", "wrapup_time": 1.0}, [("a1", "ans0-talk1")])
        caller = await call_queue(service, "support")
        await service.ari.expect(bridged_with(caller), timeout=10)
        await service.ari.expect(left_app(caller), timeout=10)  # the agent hangs up after 1 s
        assert service.acd.engine.agent("a1").status == "wrapup"
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller)
        assert row["hangup_by"] == "agent"
        assert (await queue_events(sandbox, caller))[-1] == "COMPLETEAGENT"
        await service.acd.wait_until(lambda: service.acd.engine.agent("a1").status == "available", timeout=5)
        await service.writer.flush(timeout=5)
        states = [r["state"] for r in await fetch(sandbox.info.database_url,
                                                  "SELECT state FROM agent_states WHERE agent_id = 'a1' ORDER BY id")]
        assert states[-4:] == ["ringing", "on_call", "wrapup", "available"]


async def test_skill_requirement_relaxes_over_time_keeping_the_call(sandbox):
    async with running_service(sandbox) as service:
        async with api(service) as http:
            r = await http.put("/api/v1/queues/support", json={"strategy": "ring-all",
                                                               "skill_escalation": [[2, 1]]})
            assert r.status == 201, await r.text()
            r = await http.put("/api/v1/agents/junior", json={"endpoint": "Local/ans0@sim-agent",
                                                              "memberships": {"support": 0}, "skills": {"spanish": 1}})
            assert r.status == 201, await r.text()
            await http.post("/api/v1/agents/junior/state", json={"state": "available"})
        caller = await call_queue(service, "support", options="skills=spanish:3")
        event = await service.ari.expect(bridged_with(caller), timeout=10)
        assert agent_of(service, event, caller) == "junior"
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller)
        waited = (row["bridged_at"] - row["entered_queue_at"]).total_seconds()
        assert waited >= 1.9, f"the junior agent was offered before the requirement relaxed ({waited:.2f}s)"
        await hangup_all(service)


async def test_app_restart_keeps_waiting_callers_in_order(sandbox):
    async with running_service(sandbox) as first:
        await setup_queue(first, "support", {"strategy": "ring-all"}, [("a1", "ans0")], login=False)
        c1 = await call_queue(first, "support", number="0600000001")
        c2 = await call_queue(first, "support", number="0600000002")
        assert first.acd.engine.position(c1) == 1 and first.acd.engine.position(c2) == 2
    # The app stopped; the callers are still in Asterisk, waiting in the Stasis app.
    async with running_service(sandbox) as second:
        assert second.acd.engine.position(c1) == 1 and second.acd.engine.position(c2) == 2
        bridged = second.ari.expect(bridged_with(c1), timeout=10)
        async with api(second) as http:
            r = await http.post("/api/v1/agents/a1/state", json={"state": "available"})
            assert r.status == 200
        await bridged
        assert second.acd.engine.position(c2) == 1
        await hangup_all(second)


async def state_rows(sandbox, app: str) -> dict[tuple[str, str], Any]:
    rows = await fetch(sandbox.info.database_url,
                       "SELECT kind, key, updated_at FROM acd_state_rows WHERE app = $1", app)
    return {(r["kind"], r["key"]): r["updated_at"] for r in rows}


async def test_app_restart_with_agents_in_wrapup_and_paused_then_only_changed_rows_are_written(sandbox):
    """The state is stored one row per record: after a restart callers keep their order and
    agents their states, and a persist after one event rewrites only the rows it touched."""
    async with running_service(sandbox) as first:
        await setup_queue(first, "support", {"strategy": "linear", "wrapup_time": 600},
                          [("a1", "ans0"), ("a2", "ans0")], login=False)
        async with api(first) as http:
            assert (await http.post("/api/v1/agents/a2/state", json={"state": "available"})).status == 200
        c0 = await call_queue(first, "support", number="0600000000")
        await first.ari.expect(bridged_with(c0), timeout=10)
        await first.ari.rest.channels.hangup(channel_id=c0)
        await first.acd.wait_until(lambda: first.acd.engine.agent("a2").status == "wrapup", timeout=10)
        async with api(first) as http:
            assert (await http.post("/api/v1/agents/a1/state", json={"state": "available"})).status == 200
            r = await http.post("/api/v1/agents/a1/state", json={"state": "paused", "reason": "lunch"})
            assert r.status == 200
        c1 = await call_queue(first, "support", number="0600000001")
        c2 = await call_queue(first, "support", number="0600000002")
        wrapup_until = first.acd.engine.agent("a2").wrapup_until
        app = first.settings.app_name
    rows = await state_rows(sandbox, app)
    assert set(rows) == {("engine", ""), ("queue", "support"), ("agent", "a1"), ("agent", "a2"),
                         ("item", c1), ("item", c2)}  # c0's rows deleted with its call
    async with running_service(sandbox) as second:
        eng = second.acd.engine
        assert eng.position(c1) == 1 and eng.position(c2) == 2
        a1, a2 = eng.agent("a1"), eng.agent("a2")
        assert (a1.status, a1.pause_reason) == ("paused", "lunch")
        assert (a2.status, a2.wrapup_until) == ("wrapup", wrapup_until)
        await second.writer.flush(timeout=5)
        await asyncio.sleep(0.3)  # start-up settled (configs re-applied, persisted)
        await second.writer.flush(timeout=5)
        before, written = await state_rows(sandbox, app), second.writer.stats.rows_written
        c3 = await call_queue(second, "support", number="0600000003")
        await asyncio.sleep(0.3)  # one persist interval and then some
        await second.writer.flush(timeout=5)
        after = await state_rows(sandbox, app)
        assert set(after) == set(before) | {("item", c3)}
        changed = {k for k in before if after[k] != before[k]}
        assert changed == {("engine", ""), ("queue", "support")}  # clock and counters; c3 is new
        assert second.writer.stats.rows_written - written == 3
        assert eng.position(c3) == 3
        await hangup_all(second)


def legacy_snapshot(service: Service) -> dict[str, Any]:
    """The `acd_state` row versions before sql/007 wrote: the engine snapshot (version 1: one
    timers list in firing order) and the links."""
    from dataclasses import asdict

    engine = service.acd.engine.snapshot()
    timers = []
    for kind, key_of in (("agents", lambda d: d["config"]["id"]), ("items", lambda d: d["item"]["id"]),
                         ("offers", lambda d: d["id"])):
        for record in engine[kind]:
            for name, (deadline, order) in record.pop("timers").items():
                timers.append((order, [name, key_of(record), deadline]))
    engine.pop("timer_seq")
    engine.update(version=1, timers=[t for _, t in sorted(timers)])
    return {"engine": engine, "items": {k: asdict(v) for k, v in service.acd.items.items()},
            "offers": {k: asdict(v) for k, v in service.acd.offers.items()}}


async def test_a_snapshot_from_before_state_rows_is_restored_once_then_kept_as_rows(sandbox):
    async with running_service(sandbox) as first:
        await setup_queue(first, "support", {"strategy": "ring-all"}, [("a1", "ans0")], login=False)
        c1 = await call_queue(first, "support", number="0600000001")
        c2 = await call_queue(first, "support", number="0600000002")
        snap, app = legacy_snapshot(first), first.settings.app_name
    # as an older version left the database: one snapshot row, no state rows
    conn = await asyncpg.connect(sandbox.info.database_url)
    try:
        await conn.execute("DELETE FROM acd_state_rows")
        await conn.execute("INSERT INTO acd_state (id, snapshot) VALUES ($1, $2::jsonb)", app, json.dumps(snap))
    finally:
        await conn.close()
    async with running_service(sandbox) as second:
        assert second.acd.engine.position(c1) == 1 and second.acd.engine.position(c2) == 2
        assert await fetch(sandbox.info.database_url, "SELECT id FROM acd_state") == []
        rows = await state_rows(sandbox, app)
        assert {("engine", ""), ("queue", "support"), ("agent", "a1"), ("item", c1), ("item", c2)} <= set(rows)
    async with running_service(sandbox) as third:  # from the rows now
        assert third.acd.engine.position(c1) == 1 and third.acd.engine.position(c2) == 2
        bridged = third.ari.expect(bridged_with(c1), timeout=10)
        async with api(third) as http:
            assert (await http.post("/api/v1/agents/a1/state", json={"state": "available"})).status == 200
        await bridged
        await hangup_all(third)


@pytest.mark.parametrize("how", ["graceful", "crash"])
async def test_asterisk_restart_mid_call_frees_the_agent_and_closes_the_call(sandbox, how):
    """crash: no hangup event reaches the app; reconcile must notice the vanished legs and free
    the agent (stale agent state is the classic failure of app_queue and mod_callcenter)."""
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans0")])
        caller = await call_queue(service, "support")
        await service.ari.expect(bridged_with(caller), timeout=10)
        assert service.acd.engine.agent("a1").status == "on_call"
        reconnected = service.ari.expect(lambda e: isinstance(e, ev.ClientConnected) and e.reconnect, timeout=60)
        service.reconciled.clear()
        await asyncio.to_thread(sandbox.restart_asterisk if how == "graceful" else lambda: crash_asterisk(sandbox))
        await reconnected
        await asyncio.wait_for(service.reconciled.wait(), 10)
        assert service.acd.engine.agent("a1").status in ("wrapup", "available")
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller)
        assert row["ended_at"] is not None and row["outcome"] == "answered"


async def test_bad_queue_config_is_refused_naming_the_field_and_changes_nothing(sandbox):
    async with running_service(sandbox) as service, api(service) as http:
        r = await http.put("/api/v1/queues/support", json={"strategy": "round-the-houses"})
        assert r.status == 422
        assert (await r.json())["error"]["field"] == "strategy"
        r = await http.put("/api/v1/queues/support", json={"ring_timeout": -1})
        assert r.status == 422 and (await r.json())["error"]["field"] == "ring_timeout"
        r = await http.get("/api/v1/queues/support")
        assert r.status == 404
        r = await http.put("/api/v1/agents/x", json={"endpoint": "Local/ans0@sim-agent", "memberships": {"nope": 0}})
        assert r.status == 422 and (await r.json())["error"]["field"] == "memberships"
        rows = await fetch(sandbox.info.database_url, "SELECT * FROM acd_queues")
        assert rows == []


async def test_channelless_item_is_connected_agent_first_with_a_whisper(sandbox):
    """The mechanism callbacks and click-to-call stand on: the agent answers, hears a whisper,
    then the customer is dialed and bridged with them."""
    from ari_app.acd.core.model import QueueItem

    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans1")])
        updates: list[str] = []
        item = QueueItem(id="cb-test-1", queue="support", kind="callback", entered_at=service.acd.now(),
                         caller_id="+33612345678")
        bridged = service.ari.expect(lambda e: isinstance(e, ev.ChannelEnteredBridge) and len(e.bridge.channels) == 2,
                                     timeout=20)
        service.acd.enqueue(item, channel_id=None, direction="callback", dial="Local/human-ans1@sim-customer",
                            dial_caller_id="0100000000", whisper=["sound:beep"],
                            observer=lambda u: updates.append(u.kind))
        event = await bridged
        legs = {service.recorder.leg(c).role for c in event.bridge.channels}
        assert legs == {"agent", "customer"}
        await service.acd.wait_until(lambda: "connected" in updates, timeout=5)  # the REST reply may trail the event
        assert updates == ["agent-ringing", "agent-answered", "customer-ringing", "connected"]
        customer = next(c for c in event.bridge.channels if service.recorder.leg(c).role == "customer")
        gone = service.ari.expect(lambda e: isinstance(e, ev.ChannelDestroyed) and e.channel.id == customer, timeout=10)
        await service.ari.rest.channels.hangup(channel_id=customer)
        await gone
        await service.acd.wait_until(lambda: updates[-1] == "completed", timeout=5)
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, "cb-test-1")
        assert row["direction"] == "callback" and row["outcome"] == "answered" and row["agent_id"] == "a1"
        assert row["bridged_at"] is not None and row["ended_at"] is not None


async def test_channelless_item_customer_busy_frees_the_agent_at_once(sandbox):
    from ari_app.acd.core.model import QueueItem

    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all", "wrapup_time": 0}, [("a1", "ans0")])
        updates: list[tuple[str, str | None]] = []
        item = QueueItem(id="cb-test-2", queue="support", kind="callback", entered_at=service.acd.now())
        service.acd.enqueue(item, channel_id=None, direction="callback", dial="Local/busy@sim-customer",
                            observer=lambda u: updates.append((u.kind, u.detail)))
        await service.acd.wait_until(lambda: bool(updates) and updates[-1][0] == "customer-failed", timeout=15)
        assert updates[-1] == ("customer-failed", "busy")
        await service.acd.wait_until(lambda: service.acd.engine.agent("a1").status == "available", timeout=5)
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, "cb-test-2")
        assert row["outcome"] == "customer-busy" and row["ended_at"] is not None


async def test_ivr_digit_picks_the_queue(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "sales", {"strategy": "ring-all"}, [("s1", "ans0")], login=False)
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans0")])
        caller_id = service.ari.new_id("caller")
        bridged = service.ari.expect(bridged_with(caller_id), timeout=20)
        # The default menu lists the queues in name order: 1 = sales, 2 = support.
        await service.ari.rest.channels.originate(
            endpoint="Local/patience0-dtmf2-at1@sim-caller", context="inbound", extension="ivr", priority=1,
            channel_id=caller_id, other_channel_id=caller_id + "-phone")
        event = await bridged
        assert agent_of(service, event, caller_id) == "a1"
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller_id)
        assert row["queue"] == "support"
        await hangup_all(service)


@pytest.mark.parametrize(("config", "caller_spec", "outcome", "event"), [
    ({"exit_key": "5"}, "patience0-dtmf5-at1", "exitkey", "EXITWITHKEY"),
    ({"max_wait": 2}, "patience0", "timeout", "EXITWITHTIMEOUT"),
])
async def test_caller_leaves_the_queue_by_key_or_timeout(sandbox, config, caller_spec, outcome, event):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all", **config}, [("a1", "ans0")], login=False)
        caller = await call_queue(service, "support", caller_spec)
        await service.ari.expect(left_app(caller), timeout=10)
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller)
        assert row["outcome"] == outcome
        assert (await queue_events(sandbox, caller))[-1] == event
        await hangup_all(service)


async def test_exit_to_dialplan_closes_the_record(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all", "max_wait": 1}, [("a1", "ans0")], login=False)
        caller = await call_queue(service, "support")
        await service.ari.expect(left_app(caller), timeout=10)
        await service.writer.flush(timeout=5)
        row = await fetch_call(sandbox.info.database_url, caller)
        assert row["outcome"] == "timeout" and row["ended_at"] is not None
        assert service.recorder.leg(caller) is None
        await hangup_all(service)


async def test_agent_logs_in_and_pauses_from_the_phone(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("1001", "ans0")], login=False)
        for code, expected in (("*111001", "available"), ("*131001", "paused"), ("*141001", "available"),
                               ("*121001", "logged_out")):
            done = service.ari.expect(lambda e: isinstance(e, ev.StasisEnd | ev.ChannelDestroyed)
                                      and e.channel.id.startswith("phone-"), timeout=15)
            await service.ari.rest.channels.originate(
                endpoint="Local/patience0@sim-caller", context="agent-features", extension=code, priority=1,
                channel_id=service.ari.new_id("phone"))
            await done
            assert service.acd.engine.agent("1001").status == expected, code
        await service.writer.flush(timeout=5)
        states = [r["state"] for r in await fetch(sandbox.info.database_url,
                                                  "SELECT state FROM agent_states WHERE agent_id = '1001' ORDER BY id")]
        assert states == ["available", "paused", "available", "logged_out"]


class RestSpy:
    """Counts the ARI requests a test cares about, passing them through to Asterisk."""

    def __init__(self, service: Service, *names: str) -> None:
        self.calls: list[tuple[str, str]] = []
        self._changed = asyncio.Event()
        channels = service.ari.rest.channels
        for name in names:
            real = getattr(channels, name)

            async def spy(*, _real=real, _name=name, **kw: Any) -> Any:
                self.calls.append((_name, kw.get("channel_id", "")))
                self._changed.set()
                return await _real(**kw)
            setattr(channels, name, spy)

    def count(self, name: str, channel_id: str) -> int:
        return self.calls.count((name, channel_id))

    async def wait(self, name: str, channel_id: str, *, timeout: float) -> None:
        async def seen() -> None:
            while not self.count(name, channel_id):
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(seen(), timeout)


async def test_music_on_hold_only_for_callers_who_wait(sandbox):
    """An agent who answers within `hold_music_delay` (auto-answer) gets the caller without a
    burst of music; a caller who waits hears music, stopped when the agent answers."""
    async with running_service(sandbox, hold_music_delay=0.5) as service:
        spy = RestSpy(service, "start_moh", "stop_moh")
        await setup_queue(service, "support", {"strategy": "ring-all", "wrapup_time": 0}, [("a1", "ans0")])
        quick = await call_queue(service, "support", options="priority=0")
        await service.ari.expect(bridged_with(quick), timeout=10)
        gone = service.ari.expect(left_app(quick), timeout=10)
        await service.ari.rest.channels.hangup(channel_id=quick)
        await gone
        async with api(service) as http:
            r = await http.post("/api/v1/agents/a1/state", json={"state": "paused", "reason": "test"})
            assert r.status == 200
        waiting = await call_queue(service, "support", options="priority=0")
        await spy.wait("start_moh", waiting, timeout=5)
        async with api(service) as http:
            r = await http.post("/api/v1/agents/a1/state", json={"state": "available"})
            assert r.status == 200
        await service.ari.expect(bridged_with(waiting), timeout=10)
        await spy.wait("stop_moh", waiting, timeout=5)
        assert spy.count("start_moh", quick) == 0 and spy.count("stop_moh", quick) == 0
        assert spy.count("start_moh", waiting) == 1
        await hangup_all(service)


async def bridge_ids(service: Service) -> list[str]:
    return [b.id for b in await service.ari.rest.bridges.list()]


async def test_the_bridge_made_while_the_agent_rings_goes_back_to_the_pool_with_an_abandon(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all", "ring_timeout": 30}, [("a1", "noanswer")])
        caller = await call_queue(service, "support", "patience2")
        await service.acd.wait_until(lambda: any(o.item_id == caller for o in service.acd.offers.values()),
                                     timeout=10)
        bridge_id = service.acd.items[caller].bridge_id
        chain = service.acd._chains.get(caller)
        if chain is not None:
            await chain  # the item's REST work so far, the bridge's creation included
        assert bridge_id is not None and bridge_id in await bridge_ids(service)  # made while the agent rings
        await service.ari.expect(left_app(caller), timeout=10)
        await eventually(lambda: service.acd.bridges.idle == [bridge_id])  # no leg ever joined it
        bridge = await service.ari.rest.bridges.get(bridge_id=bridge_id)
        assert bridge.channels == []


async def test_a_finished_call_s_bridge_serves_the_next_call_once_both_legs_left(sandbox):
    """Queue bridges are reused, not made and destroyed per call: the next caller and agent meet
    in the same bridge, and only they are in it."""
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans0")])
        c1 = await call_queue(service, "support")
        first = await service.ari.expect(bridged_with(c1), timeout=10)
        agent1 = next(c for c in first.bridge.channels if c != c1)
        emptied = service.ari.expect(lambda e: isinstance(e, ev.ChannelLeftBridge) and e.bridge.id == first.bridge.id
                                     and not e.bridge.channels, timeout=10)
        await service.ari.rest.channels.hangup(channel_id=c1)
        await emptied  # the app hung the agent's leg up: both left
        await eventually(lambda: service.acd.bridges.idle == [first.bridge.id])
        c2 = await call_queue(service, "support")
        second = await service.ari.expect(bridged_with(c2), timeout=10)
        agent2 = next(c for c in second.bridge.channels if c != c2)
        assert second.bridge.id == first.bridge.id and agent2 != agent1
        assert sorted(second.bridge.channels) == sorted([c2, agent2])
        assert (await bridge_ids(service)).count(first.bridge.id) == 1
        gone = service.ari.expect(left_app(c2), timeout=10)
        await service.ari.rest.channels.hangup(channel_id=c2)
        await gone
        await service.writer.flush(5)
    for call_id in (c1, c2):
        row = await fetch_call(sandbox.info.database_url, call_id)
        assert row is not None and row["outcome"] == "answered" and row["agent_id"] == "a1"
        assert row["bridged_at"] is not None and row["ended_at"] is not None


async def test_idle_bridges_left_by_a_previous_run_are_removed_at_start(sandbox):
    async with running_service(sandbox) as first:
        await setup_queue(first, "support", {"strategy": "ring-all"}, [("a1", "ans0")])
        caller = await call_queue(first, "support")
        bridged = await first.ari.expect(bridged_with(caller), timeout=10)
        await first.ari.rest.channels.hangup(channel_id=caller)
        await eventually(lambda: first.acd.bridges.idle == [bridged.bridge.id])
        assert bridged.bridge.id in await bridge_ids(first)
    async with running_service(sandbox) as second:  # reconciled: nothing of the last run is trusted
        async def removed() -> bool:
            return bridged.bridge.id not in await bridge_ids(second)
        await eventually(removed)
        assert second.acd.bridges.idle == []


async def test_dialplan_chatter_is_filtered_at_asterisk(sandbox):
    """The app asks Asterisk not to send the event types nobody uses (Local channels running
    dialplan send dozens per call), and none arrives during a call."""
    async with running_service(sandbox) as service:
        app = await service.ari.rest.applications.get(application_name=service.settings.app_name)
        assert {f["type"] for f in app.events_disallowed} == set(UNUSED_EVENT_TYPES)
        kinds: list[str] = []
        service.ari.on_event(lambda e: kinds.append(e.type))
        await setup_queue(service, "support", {"strategy": "ring-all"}, [("a1", "ans0")])
        caller = await call_queue(service, "support")
        await service.ari.expect(bridged_with(caller), timeout=10)
        gone = service.ari.expect(left_app(caller), timeout=10)
        await service.ari.rest.channels.hangup(channel_id=caller)
        await gone
        assert "StasisStart" in kinds and "ChannelEnteredBridge" in kinds
        assert not set(UNUSED_EVENT_TYPES) & set(kinds)
