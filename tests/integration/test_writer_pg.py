"""The batched writer against the sandbox's real PostgreSQL: each group of like rows goes as one
statement over a JSON array, so the values must come back in their columns' own types, `data`
must merge, row sets must replace and delete, and a bad row must be rejected alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ari_app.store.db import Database
from ari_app.store.writer import RecordWriter

from .helpers import fetch, reset_db

pytestmark = pytest.mark.integration


@pytest.fixture
async def writer(sandbox, tmp_path: Path):
    dsn = sandbox.info.database_url
    await reset_db(dsn)
    db = Database(dsn)
    w = RecordWriter(db, flush_interval=0, spool_dir=tmp_path, max_backoff=0.05)
    w.start()
    yield w
    await w.close()
    await db.close()


async def test_values_land_in_their_column_types_and_data_merges(writer: RecordWriter, sandbox) -> None:
    t0 = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=UTC)
    for i in range(250):  # more than one chunk of the same group
        writer.upsert_call(f"c{i}", direction="inbound", queue="q", created_at=t0, position_on_entry=i,
                           data={"a": 1, "nested": {"x": [1, 2]}})
    writer.upsert_leg("leg1", call_id="c0", role="caller", created_at=t0, hangup_cause=16,
                      hangup_cause_txt="Normal Clearing")
    writer.queue_event(at=t0, event="ENTERQUEUE", queue="q", call_id="c0", data={"pos": 1})
    writer.agent_state(at=t0, agent_id="a1", state="available", old_state=None, reason=None)
    await writer.flush(10)
    writer.upsert_call("c0", ended_at=t0 + timedelta(seconds=5), outcome="answered",
                       data={"b": Decimal("2.5")})
    await writer.flush(10)

    dsn = sandbox.info.database_url
    calls = {r["id"]: r for r in await fetch(dsn, "SELECT * FROM calls")}
    assert len(calls) == 250 and calls["c249"]["position_on_entry"] == 249
    c0 = calls["c0"]
    assert c0["created_at"] == t0 and c0["ended_at"] == t0 + timedelta(seconds=5)
    assert c0["outcome"] == "answered" and c0["queue"] == "q"
    assert c0["data"] == '{"a": 1, "b": 2.5, "nested": {"x": [1, 2]}}'
    [leg] = await fetch(dsn, "SELECT * FROM call_legs")
    assert (leg["call_id"], leg["role"], leg["hangup_cause"], leg["created_at"]) == ("c0", "caller", 16, t0)
    [qe] = await fetch(dsn, "SELECT * FROM queue_events")
    assert (qe["event"], qe["at"], qe["data"]) == ("ENTERQUEUE", t0, '{"pos": 1}')
    [st] = await fetch(dsn, "SELECT * FROM agent_states")
    assert (st["agent_id"], st["state"], st["old_state"]) == ("a1", "available", None)
    assert writer.stats.rejected == 0


async def test_a_leg_named_only_by_an_update_gets_its_required_columns(writer: RecordWriter, sandbox) -> None:
    writer.upsert_leg("late", ended_at=datetime.now(UTC), hangup_cause=17)  # its creation was never seen
    await writer.flush(10)
    [leg] = await fetch(sandbox.info.database_url, "SELECT * FROM call_legs")
    assert (leg["channel_id"], leg["call_id"], leg["role"], leg["hangup_cause"]) == ("late", "late", "other", 17)
    assert leg["created_at"] is not None


async def test_row_sets_replace_and_delete(writer: RecordWriter, sandbox) -> None:
    writer.submit_rows("acd_state_rows", "app1", {("item", "i1"): {"n": 1}, ("item", "i2"): {"n": 2},
                                                  ("agent", "a1"): {"s": "x"}})
    writer.submit_rows("acd_state_rows", "app2", {("item", "i1"): {"n": 9}})
    await writer.flush(10)
    writer.submit_rows("acd_state_rows", "app1", {("item", "i1"): None, ("item", "i2"): {"n": 3}})
    await writer.flush(10)
    rows = await fetch(sandbox.info.database_url, "SELECT app, kind, key, state::text FROM acd_state_rows")
    assert sorted((r["app"], r["kind"], r["key"], r["state"]) for r in rows) == [
        ("app1", "agent", "a1", '{"s": "x"}'), ("app1", "item", "i2", '{"n": 3}'), ("app2", "item", "i1", '{"n": 9}')]


async def test_a_bad_row_is_rejected_alone_and_its_group_still_lands(writer: RecordWriter, sandbox) -> None:
    now = datetime.now(UTC)
    writer.upsert_call("good1", direction="inbound", created_at=now)
    writer.upsert_call("bad", direction="sideways", created_at=now)  # refused by the CHECK constraint
    writer.upsert_call("good2", direction="outbound", created_at=now)
    await writer.flush(10)
    rows = await fetch(sandbox.info.database_url, "SELECT id, direction FROM calls ORDER BY id")
    assert [(r["id"], r["direction"]) for r in rows] == [("good1", "inbound"), ("good2", "outbound")]
    assert writer.stats.rejected == 1
