"""The batched writer against a fake database: row sets (replace/delete many rows of one scope
atomically), their merging, retries after an outage, the spill file and its order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ari_app.store.writer import RecordWriter, RowSet, Upsert


class FakeConn:
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.db.pending = []
        yield
        self.db.transactions.append(self.db.pending)
        self.db.committed.set()

    async def execute(self, sql: str, rows_json: str) -> None:
        if self.db.hold is not None:
            hold, self.db.hold = self.db.hold, None
            self.db.held.set()
            await hold.wait()
        if self.db.fail:
            raise self.db.fail.pop(0)
        self.db.pending.append((sql, json.loads(rows_json)))


class FakeDb:
    """Records each committed transaction as [(sql, rows), ...] (each row the object the
    statement's JSON array holds for it); `fail` raises on the next statements, `hold` pauses the
    next statement until set."""

    def __init__(self) -> None:
        self.transactions: list[list[tuple[str, list[dict[str, Any]]]]] = []
        self.pending: list[tuple[str, list[dict[str, Any]]]] = []
        self.fail: list[BaseException] = []
        self.hold: asyncio.Event | None = None
        self.held = asyncio.Event()
        self.committed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConn]:
        yield FakeConn(self)

    def rows(self) -> dict[tuple[str, ...], Any]:
        """The acd_state_rows table after every committed transaction, in order."""
        table: dict[tuple[str, ...], Any] = {}
        for tx in self.transactions:
            for sql, rows in tx:
                if "acd_state_rows" not in sql:
                    continue
                for row in rows:
                    key = (row["app"], row["kind"], row["key"])
                    if sql.startswith("DELETE"):
                        table.pop(key, None)
                    else:
                        table[key] = row["state"]
        return table

    def calls(self) -> dict[str, Any]:
        """calls.id -> the last value written to its `outcome` column."""
        out: dict[str, Any] = {}
        for tx in self.transactions:
            for sql, rows in tx:
                if sql.startswith("INSERT INTO calls"):
                    for row in rows:
                        out[row["id"]] = row["outcome"]
        return out


@pytest.fixture
async def db() -> FakeDb:
    return FakeDb()


def writer(db: FakeDb, **kw: Any) -> RecordWriter:
    return RecordWriter(db, flush_interval=0, max_backoff=0.01, **kw)  # type: ignore[arg-type]


async def test_a_row_set_replaces_and_deletes_in_one_transaction(db: FakeDb) -> None:
    w = writer(db)
    w.start()
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): {"n": 1}, ("item", "c2"): {"n": 2}})
    await w.flush(5)
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): None, ("agent", "a1"): {"s": "x"}})
    await w.flush(5)
    await w.close()
    assert db.rows() == {("app1", "item", "c2"): {"n": 2}, ("app1", "agent", "a1"): {"s": "x"}}
    assert len(db.transactions) == 2
    assert [sql.split()[0] for sql, _ in db.transactions[1]] == ["DELETE", "INSERT"] or [
        sql.split()[0] for sql, _ in db.transactions[1]] == ["INSERT", "DELETE"]
    assert (w.stats.rows_written, w.stats.rows_deleted) == (3, 1)


async def test_pending_row_sets_of_a_scope_merge_the_newer_row_winning(db: FakeDb) -> None:
    w = writer(db)
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): {"n": 1}, ("item", "c2"): {"n": 1}})
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): None, ("item", "c3"): {"n": 1}})
    w.submit_rows("acd_state_rows", "app1", {("item", "c3"): None, ("item", "c1"): {"n": 2}})
    w.submit_rows("acd_state_rows", "app2", {("item", "c1"): {"n": 9}})
    assert w.pending == 4  # rows, once each
    w.start()
    await w.flush(5)
    await w.close()
    assert len(db.transactions) == 1
    assert db.rows() == {("app1", "item", "c1"): {"n": 2}, ("app1", "item", "c2"): {"n": 1},
                         ("app2", "item", "c1"): {"n": 9}}
    assert (w.stats.rows_written, w.stats.rows_deleted) == (3, 1)


async def test_a_row_set_larger_than_a_batch_is_still_one_transaction(db: FakeDb) -> None:
    w = writer(db, batch_size=10)
    for i in range(5):
        w.upsert_call(f"call{i}", outcome="answered")
    w.submit_rows("acd_state_rows", "app1", {("item", f"c{i}"): {"n": i} for i in range(50)})
    w.start()
    await w.flush(5)
    await w.close()
    with_rows = [tx for tx in db.transactions if any("acd_state_rows" in sql for sql, _ in tx)]
    assert len(with_rows) == 1 and len(db.rows()) == 50


async def test_after_an_outage_an_older_row_set_never_overwrites_a_newer_one(db: FakeDb) -> None:
    w = writer(db)
    hold = db.hold = asyncio.Event()
    db.fail = [OSError("connection refused")]
    w.start()
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): {"n": 1}, ("item", "c2"): {"n": 1}})
    await db.held.wait()  # the first write is under way (and will fail)
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): {"n": 2}, ("item", "c2"): None})
    hold.set()
    await w.flush(5)
    await w.close()
    assert w.stats.retries == 1
    assert db.rows() == {("app1", "item", "c1"): {"n": 2}}


async def test_a_bad_row_set_is_rejected_to_the_file_and_the_rest_lands(
        db: FakeDb, tmp_path: Path) -> None:
    w = writer(db, spool_dir=tmp_path)
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): {"n": 1}})
    w.upsert_call("call1", outcome="answered")
    db.fail = [ValueError("bad statement"), ValueError("bad statement")]
    w.start()
    await w.flush(5)
    await w.close()
    assert w.stats.rejected == 1
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert rejected[0]["op"] == {"kind": "rows", "table": "acd_state_rows", "scope": "app1",
                                 "rows": [[["item", "c1"], {"n": 1}]]}
    assert db.calls() == {"call1": "answered"}


async def test_row_sets_spill_and_come_back_with_their_keys(db: FakeDb, tmp_path: Path) -> None:
    w = writer(db, buffer_limit=1, spool_dir=tmp_path)
    w.upsert_call("call1", outcome="answered")
    w.submit_rows("acd_state_rows", "app1", {("item", "c1"): {"n": 1}, ("offer", "o1"): None})
    assert w.stats.spilled == 1
    w.start()
    await w.flush(5)
    await w.close()
    assert db.rows() == {("app1", "item", "c1"): {"n": 1}}
    assert w.stats.rows_deleted == 1


async def test_ops_after_a_spill_follow_it_so_the_newest_version_lands_last(
        db: FakeDb, tmp_path: Path) -> None:
    w = writer(db, buffer_limit=2, spool_dir=tmp_path)
    w.upsert_call("k", outcome="one")
    w.upsert_call("other", outcome="x")
    w.upsert_call("k", outcome="two")  # buffer full: spilled
    assert w.stats.spilled == 1
    hold = db.hold = asyncio.Event()
    w.start()
    await db.held.wait()  # the buffer was taken: room again, but "two" still waits in the file
    w.upsert_call("k", outcome="three")
    hold.set()
    await w.flush(5)
    await w.close()
    assert db.calls()["k"] == "three"


def test_unknown_row_set_table_is_refused() -> None:
    w = writer(FakeDb())
    with pytest.raises(ValueError, match="row set table"):
        w.submit(RowSet("nope", "app1", {("a",): {}}))
    with pytest.raises(ValueError, match="upsert table"):
        w.submit(Upsert("nope", "k", {}))


async def test_records_arriving_during_a_write_wait_for_the_interval_then_go_as_one_transaction(db: FakeDb) -> None:
    """Under steady traffic something always arrives while a batch is written: it must gather
    for the flush interval (one transaction per interval), not be written at once in a
    transaction of its own each time."""
    w = writer(db)  # no interval yet: the first record is written at once
    w.start()
    db.hold = release = asyncio.Event()
    w.upsert_call("c0", outcome="answered")
    await asyncio.wait_for(db.held.wait(), 5)
    w._flush_interval = 30  # from now on records gather (the test must not depend on timing)
    for i in range(1, 6):  # arrive while the first transaction is being written
        w.upsert_call(f"c{i}", outcome="answered")
    release.set()
    await asyncio.wait_for(db.committed.wait(), 5)
    for _ in range(20):  # the writer runs freely for many loop turns: nothing more is written
        await asyncio.sleep(0)
    assert len(db.transactions) == 1 and w.pending == 5
    await w.flush(5)  # a flush cuts the gathering short: the five go together
    assert len(db.transactions) == 2 and db.calls() == {f"c{i}": "answered" for i in range(6)}
    assert len(db.transactions[1]) == 1 and len(db.transactions[1][0][1]) == 5
    await w.close()


async def test_a_flush_waits_for_what_was_submitted_before_it_not_for_an_idle_writer(db: FakeDb) -> None:
    """Under steady traffic the writer is never idle: a flush must still return."""
    w = RecordWriter(db, flush_interval=30, max_backoff=0.01)  # type: ignore[arg-type]
    w.start()
    db.hold = release = asyncio.Event()
    w.upsert_call("c0", outcome="answered")
    flushing = asyncio.create_task(w.flush(5))
    await asyncio.wait_for(db.held.wait(), 5)
    w.upsert_call("c1", outcome="answered")  # after the flush began: not its business
    db.hold = second = asyncio.Event()  # and its write hangs
    release.set()
    await flushing
    assert db.calls() == {"c0": "answered"}
    second.set()
    await w.close()
    assert db.calls() == {"c0": "answered", "c1": "answered"}
