"""The periodic audit frees what vanished, and only that: a call that arrives, or an agent rung,
while the audit's channel list is on its way is missing from the answer without having ended
(found under load by the call-handling benchmark: agents were freed as they answered)."""

from __future__ import annotations

import pytest

from ari_app.ari import events as ev

from .helpers import fetch, hangup_all, reset_db, running_service
from .test_acd import bridged_with, call_queue, setup_queue

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
async def clean(sandbox):
    await reset_db(sandbox.info.database_url)
    yield


async def test_audit_leaves_alone_calls_newer_than_its_channel_list(sandbox):
    async with running_service(sandbox) as service:
        await setup_queue(service, "support", {"strategy": "ring-all", "ring_timeout": 15}, [("a1", "ans2")])
        rest, acd = service.ari.rest, service.acd
        real_list = rest.channels.list
        arrived: dict[str, str] = {}

        async def list_answered_before_a_call_arrived():  # type: ignore[no-untyped-def]
            channels = await real_list()  # Asterisk's answer, computed now ...
            caller = await call_queue(service, "support")  # ... reaches us after this call came in
            await acd.wait_until(lambda: any(o.item_id == caller for o in acd.offers.values()), timeout=10)
            agent_leg = next(o.channel_id for o in acd.offers.values() if o.item_id == caller)
            exists = service.ari.expect(lambda e: ev.channel_id_of(e) == agent_leg, timeout=10)
            await exists  # the agent's phone is ringing (it answers after 2 s)
            arrived.update(caller=caller, agent_leg=agent_leg)
            return channels

        rest.channels.list = list_answered_before_a_call_arrived  # type: ignore[method-assign]
        bridged = service.ari.expect(lambda e: "caller" in arrived and bridged_with(arrived["caller"])(e),
                                     timeout=15)
        await acd.audit()
        rest.channels.list = real_list  # type: ignore[method-assign]

        event = await bridged  # the ringing agent was not freed: it answers and is bridged
        assert set(event.bridge.channels) == {arrived["caller"], arrived["agent_leg"]}
        assert acd.engine.agent("a1").status == "on_call"
        await acd.audit()  # a later audit with a true list finds everything alive
        assert acd.engine.agent("a1").status == "on_call"
        await service.writer.flush(timeout=5)
        legs = await fetch(sandbox.info.database_url,
                           "SELECT channel_id, outcome, ended_at FROM call_legs WHERE call_id = $1 AND role = 'agent'",
                           arrived["caller"])
        assert [(r["channel_id"], r["outcome"], r["ended_at"]) for r in legs] == [
            (arrived["agent_leg"], "answered", None)]
        await hangup_all(service)
