"""One batched writer for every call record.

Why: a burst of calls must not become a burst of round trips, and a PostgreSQL outage must delay
records, never lose them. Callers `submit()` synchronously (never blocks the event loop's call
handling); a single task writes batches in one transaction each.

- Upserts to the same row are merged while they wait (later fields win, `data` dicts are merged),
  so a call's many small updates cost one statement.
- On a transient error (outage) the batch goes back in front of newer ops and is retried with
  capped backoff. On a bad statement the batch is split and the offending op is logged and
  written to the reject file; the rest land.
- The buffer is bounded in memory; beyond the bound ops spill to a JSON-lines file and are read
  back once the backlog drains (while anything is spilled, newer ops follow it to the file, so
  they are still written after it). `close()` flushes before returning.
- State kept as many rows (the ACD's one row per queue, agent, item, offer) goes as a `RowSet`:
  rows of one scope to replace or delete, written in one transaction whatever their number, so
  the stored state is never half of one persist and half of the next. Pending row sets of the
  same scope merge (the newer version of each row wins, a deletion included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ari_app.store.db import Database, is_transient

log = logging.getLogger(__name__)

#: Tables the writer knows, with the key column (upserts) and columns the INSERT half needs even
#: when an update does not name them (NOT NULL columns), with the default used then.
UPSERT_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "calls": ("id", {"created_at": "now()"}),
    "call_legs": ("channel_id", {"created_at": "now()", "call_id": "$key", "role": "'other'"}),
    "acd_state": ("id", {}),  # before sql/007 (a spill file may still name it)
    "supervisor_sessions": ("id", {"created_at": "now()", "mode": "'listen'", "agent_id": "''",
                                   "supervisor_endpoint": "''"}),
    "dial_attempts": ("id", {"created_at": "now()"}),
    "click_to_call_requests": ("id", {"created_at": "now()"}),
}
APPEND_TABLES = {"queue_events", "agent_states"}
#: Tables written as row sets: the scope column, the key columns, the (jsonb) value column.
ROWSET_TABLES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "acd_state_rows": ("app", ("kind", "key"), "state"),
    "dialer_sessions": ("app", ("agent_id",), "state"),
}


@dataclass
class Upsert:
    table: str
    key: str
    fields: dict[str, Any]


@dataclass
class Append:
    table: str
    row: dict[str, Any]


RowKey = tuple[str, ...]


@dataclass
class RowSet:
    """Rows of `table` within `scope` (e.g. one app's ACD state): each key's document becomes
    the row's value column, None deletes the row. Written in one transaction."""

    table: str
    scope: str
    rows: dict[RowKey, dict[str, Any] | None]


Op = Upsert | Append | RowSet


def _merge(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    merged = dict(older)
    for k, v in newer.items():
        if k == "data" and isinstance(v, dict) and isinstance(merged.get("data"), dict):
            merged["data"] = {**merged["data"], **v}
        else:
            merged[k] = v
    return merged


@dataclass
class WriterStats:
    written: int = 0
    batches: int = 0
    retries: int = 0
    rejected: int = 0
    spilled: int = 0
    #: Rows of row sets written and deleted.
    rows_written: int = 0
    rows_deleted: int = 0
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RecordWriter:
    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        buffer_limit: int = 100_000,
        spool_dir: Path | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        self._db = db
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._buffer_limit = buffer_limit
        self._spool_dir = spool_dir
        self._max_backoff = max_backoff
        self._upserts: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._appends: list[Append] = []
        self._rowsets: OrderedDict[tuple[str, str], dict[RowKey, dict[str, Any] | None]] = OrderedDict()
        self._rowset_rows = 0
        self._wakeup = asyncio.Event()
        #: Ops submitted so far, and how many of the first of them are durable (written, or
        #: rejected to the reject file): what `flush()` waits on.
        self._submitted = 0
        self._durable = 0
        self._progress = asyncio.Event()
        #: Set while a `flush()`/`close()` waits: records go without gathering meanwhile.
        self._hurry = asyncio.Event()
        self._flushers = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._spilled_count = 0
        self.stats = WriterStats()

    # ----------------------------------------------------------------------------- submit
    def submit(self, op: Op) -> None:
        if isinstance(op, Upsert) and op.table not in UPSERT_TABLES:
            raise ValueError(f"unknown upsert table {op.table}")
        if isinstance(op, Append) and op.table not in APPEND_TABLES:
            raise ValueError(f"unknown append table {op.table}")
        if isinstance(op, RowSet) and op.table not in ROWSET_TABLES:
            raise ValueError(f"unknown row set table {op.table}")
        if self._spool_dir is not None and (self._spilled_count or self.pending >= self._buffer_limit):
            self._spill(op)
        else:
            self._enqueue(op)
        self._submitted += 1
        self._wakeup.set()

    def upsert_call(self, call_id: str, **fields: Any) -> None:
        self.submit(Upsert("calls", call_id, fields))

    def upsert_leg(self, channel_id: str, **fields: Any) -> None:
        self.submit(Upsert("call_legs", channel_id, fields))

    def submit_rows(self, table: str, scope: str, rows: Mapping[RowKey, dict[str, Any] | None]) -> None:
        """Replace (with a JSON document) or delete (None) rows of `scope`, atomically."""
        if rows:
            self.submit(RowSet(table, scope, dict(rows)))

    def queue_event(self, *, at: datetime, event: str, queue: str | None, call_id: str | None = None,
                    agent_id: str | None = None, data: dict[str, Any] | None = None) -> None:
        self.submit(Append("queue_events", {"at": at, "event": event, "queue": queue, "call_id": call_id,
                                            "agent_id": agent_id, "data": data or {}}))

    def agent_state(self, *, at: datetime, agent_id: str, state: str, old_state: str | None = None,
                    reason: str | None = None) -> None:
        self.submit(Append("agent_states", {"at": at, "agent_id": agent_id, "state": state,
                                            "old_state": old_state, "reason": reason}))

    def _enqueue(self, op: Op, *, front: bool = False) -> None:
        if isinstance(op, RowSet):
            k = (op.table, op.scope)
            pending = self._rowsets.get(k)
            self._rowset_rows -= len(pending) if pending else 0
            if pending is None:
                pending = self._rowsets[k] = dict(op.rows)
            elif front:  # an older set going back in front of a newer one
                pending = self._rowsets[k] = {**op.rows, **pending}
            else:
                pending.update(op.rows)
            if front:
                self._rowsets.move_to_end(k, last=False)
            self._rowset_rows += len(pending)
        elif isinstance(op, Upsert):
            k = (op.table, op.key)
            if front:
                newer = self._upserts.pop(k, None)
                self._upserts[k] = _merge(op.fields, newer) if newer else dict(op.fields)
                self._upserts.move_to_end(k, last=False)
            elif k in self._upserts:
                self._upserts[k] = _merge(self._upserts[k], op.fields)
            else:
                self._upserts[k] = dict(op.fields)
        elif front:
            self._appends.insert(0, op)
        else:
            self._appends.append(op)

    @property
    def pending(self) -> int:
        return len(self._upserts) + len(self._appends) + self._rowset_rows + self._spilled_count

    # ----------------------------------------------------------------------------- spill file
    def _spool_file(self, name: str) -> Path:
        assert self._spool_dir is not None
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        return self._spool_dir / name

    def _spill(self, op: Op) -> None:
        record = _op_record(op)
        with self._spool_file("spill.jsonl").open("a") as f:
            f.write(json.dumps(record, default=_encode) + "\n")
        self._spilled_count += 1
        self.stats.spilled += 1
        if self._spilled_count == 1:
            log.warning("record buffer full, spilling to disk", extra={"limit": self._buffer_limit})

    def _unspill(self) -> None:
        if not self._spilled_count or self._spool_dir is None:
            return
        path = self._spool_file("spill.jsonl")
        lines = path.read_text().splitlines()
        path.unlink()
        self._spilled_count = 0
        for line in lines:
            rec = json.loads(line, object_hook=_decode)
            if rec["kind"] == "upsert":
                self._enqueue(Upsert(rec["table"], rec["key"], rec["fields"]))
            elif rec["kind"] == "rows":
                self._enqueue(RowSet(rec["table"], rec["scope"], {tuple(k): v for k, v in rec["rows"]}))
            else:
                self._enqueue(Append(rec["table"], rec["row"]))

    def _reject(self, op: Op, exc: BaseException) -> None:
        self.stats.rejected += 1
        log.error("record rejected by the database", extra={"table": op.table, "error": str(exc)})
        if self._spool_dir is not None:
            rec = {"op": _op_record(op), "error": str(exc)}
            with self._spool_file("rejected.jsonl").open("a") as f:
                f.write(json.dumps(rec, default=_encode) + "\n")

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="record-writer")

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is written (not what comes meanwhile)."""
        target = self._submitted
        self._flushers += 1
        self._hurry.set()
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._until_durable(target), timeout)
        finally:
            self._flushers -= 1
            if not self._flushers:
                self._hurry.clear()

    async def _until_durable(self, target: int) -> None:
        while self._durable < target:
            self._progress.clear()
            await self._progress.wait()

    def _mark_durable(self, upto: int) -> None:
        if upto > self._durable:
            self._durable = upto
            self._progress.set()

    async def close(self, timeout: float = 30.0) -> None:
        self._closing = True
        try:
            if self._task is not None:
                await self.flush(timeout)
        except TimeoutError:
            log.error("record writer closed with records unwritten", extra={"pending": self.pending})
        finally:
            if self._task is not None:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
                self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._upserts and not self._appends and not self._rowsets:
                self._unspill()
            if not self._upserts and not self._appends and not self._rowsets:
                self._mark_durable(self._submitted)
                self._wakeup.clear()
                await self._wakeup.wait()
                await self._gather()
                continue
            batch = self._take_batch()
            # Everything submitted so far is in this batch unless some is still pending.
            complete = self._submitted if not self.pending else 0
            try:
                await self._write(batch)
            except Exception as exc:  # noqa: BLE001
                if is_transient(exc):
                    self.stats.retries += 1
                    self.stats.last_error = type(exc).__name__
                    log.warning("database unavailable, records held for retry",
                                extra={"pending": self.pending + len(batch), "error": type(exc).__name__})
                    for op in reversed(batch):
                        self._enqueue(op, front=True)
                    await asyncio.sleep(backoff * (0.5 + random.random()))
                    backoff = min(backoff * 2, self._max_backoff)
                else:
                    if await self._write_one_by_one(batch):
                        self._mark_durable(complete)
                continue
            backoff = 0.1
            self._mark_durable(complete)
            if len(batch) < self._batch_size:  # caught up: what came meanwhile waits for more
                await self._gather()

    async def _gather(self) -> None:
        """Let records accumulate for one flush interval (cut short by `flush()`/`close()`).

        Why after a write too, not only after idle: under steady traffic something always
        arrives during a write, and writing it at once meant a transaction (and a PostgreSQL
        round trip per statement) every few milliseconds, each for a handful of records. With
        the pause, steady load costs one transaction per interval whatever the call rate."""
        if not self._flush_interval or self._closing or self._flushers:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), self._flush_interval)

    def _take_batch(self) -> list[Op]:
        batch: list[Op] = []
        while self._rowsets and len(batch) < self._batch_size:  # each whole, however large
            (table, scope), rows = self._rowsets.popitem(last=False)
            self._rowset_rows -= len(rows)
            batch.append(RowSet(table, scope, rows))
        while self._upserts and len(batch) < self._batch_size:
            (table, key), fields = self._upserts.popitem(last=False)
            batch.append(Upsert(table, key, fields))
        n = self._batch_size - len(batch)
        if n > 0 and self._appends:
            batch.extend(self._appends[:n])
            del self._appends[:n]
        return batch

    async def _write_one_by_one(self, batch: list[Op]) -> bool:
        """Write each op alone, rejecting the bad ones; False if an outage put some back."""
        for i, op in enumerate(batch):
            try:
                await self._write([op])
            except Exception as exc:  # noqa: BLE001
                if is_transient(exc):
                    for rest in reversed(batch[i:]):
                        self._enqueue(rest, front=True)
                    return False
                self._reject(op, exc)
        return True

    #: Ops prepared, and rows sent per statement, between two turns of the event loop. Why: a
    #: batch gathers a flush interval's records (about a thousand at 300 calls/s), and preparing
    #: and encoding them in one go held the loop, and so every call's events, for ~2 ms.
    CHUNK = 100

    async def _write(self, batch: list[Op]) -> None:
        """One transaction; each group of like rows (same table, kind and columns) goes as one
        statement per CHUNK rows, its rows a JSON array expanded by `json_populate_recordset`.

        Why not `executemany`: that runs the statement once per row (an executor start, a
        trigger call and a round of Bind/Execute each) and encodes every row in Python on the
        event loop; one statement over a JSON array costs PostgreSQL about a third less per row
        and the loop one `json.dumps` per chunk. Keys within a group are unique (upserts and
        row-set rows are merged per key before they get here), so `ON CONFLICT` sees each once."""
        groups: dict[tuple[str, str, tuple[str, ...]], list[dict[str, Any]]] = {}
        written = deleted = 0
        for n, op in enumerate(batch, 1):
            if n % self.CHUNK == 0:
                await asyncio.sleep(0)  # see CHUNK
            if isinstance(op, RowSet):
                scope_col, key_cols, value_col = ROWSET_TABLES[op.table]
                for key, fields in op.rows.items():
                    row: dict[str, Any] = {scope_col: op.scope, **dict(zip(key_cols, key, strict=True))}
                    if fields is None:
                        groups.setdefault(("d", op.table, key_cols), []).append(row)
                        deleted += 1
                    else:
                        row[value_col] = fields
                        groups.setdefault(("r", op.table, key_cols), []).append(row)
                        written += 1
            elif isinstance(op, Upsert):
                groups.setdefault(("u", op.table, tuple(sorted(op.fields))), []).append(
                    {**op.fields, UPSERT_TABLES[op.table][0]: op.key})
            else:
                groups.setdefault(("a", op.table, tuple(sorted(op.row))), []).append(op.row)
        async with self._db.acquire() as conn, conn.transaction():
            for (kind, table, cols), rows in groups.items():
                if kind == "u":
                    sql = _upsert_sql(table, cols)
                elif kind == "a":
                    sql = _append_sql(table, cols)
                else:
                    sql = _rowset_sql(table, delete=kind == "d")
                for start in range(0, len(rows), self.CHUNK):
                    if start:
                        await asyncio.sleep(0)  # see CHUNK
                    await conn.execute(sql, json.dumps(rows[start:start + self.CHUNK], default=_sql_json))
        self.stats.written += len(batch)
        self.stats.batches += 1
        self.stats.rows_written += written
        self.stats.rows_deleted += deleted


def _op_record(op: Op) -> dict[str, Any]:
    """An op as JSON (the spill and reject files)."""
    if isinstance(op, Upsert):
        return {"kind": "upsert", "table": op.table, "key": op.key, "fields": op.fields}
    if isinstance(op, RowSet):
        return {"kind": "rows", "table": op.table, "scope": op.scope,
                "rows": [[list(k), v] for k, v in op.rows.items()]}
    return {"kind": "append", "table": op.table, "row": op.row}


_SQL_CACHE: dict[tuple[str, str, tuple[str, ...]], str] = {}

#: The rows of a statement: its one parameter, a JSON array of objects named by column, typed by
#: the table's own row type (so no column types are repeated here).
_ROWS = "json_populate_recordset(NULL::{table}, $1::json) AS r"


def _upsert_sql(table: str, cols: tuple[str, ...]) -> str:
    cache_key = ("u", table, cols)
    if cache_key in _SQL_CACHE:
        return _SQL_CACHE[cache_key]
    key_col, required = UPSERT_TABLES[table]
    insert_cols = [key_col, *cols]
    values = [f"r.{c}" for c in insert_cols]
    for col, default in required.items():
        if col not in cols:
            insert_cols.append(col)
            values.append(f"r.{key_col}" if default == "$key" else default)
    sets = []
    for c in cols:
        if c == "data":
            sets.append(f"data = {table}.data || EXCLUDED.data")
        else:
            sets.append(f"{c} = EXCLUDED.{c}")
    sets.append("updated_at = now()")
    sql = (f"INSERT INTO {table} ({', '.join(insert_cols)}) SELECT {', '.join(values)} "
           f"FROM {_ROWS.format(table=table)} ON CONFLICT ({key_col}) DO UPDATE SET {', '.join(sets)}")
    _SQL_CACHE[cache_key] = sql
    return sql


def _rowset_sql(table: str, *, delete: bool) -> str:
    scope_col, key_cols, value_col = ROWSET_TABLES[table]
    cols = [scope_col, *key_cols]
    if delete:
        where = " AND ".join(f"t.{c} = r.{c}" for c in cols)
        return f"DELETE FROM {table} AS t USING {_ROWS.format(table=table)} WHERE {where}"
    return (f"INSERT INTO {table} ({', '.join(cols)}, {value_col}) "
            f"SELECT {', '.join(f'r.{c}' for c in cols)}, r.{value_col} FROM {_ROWS.format(table=table)} "
            f"ON CONFLICT ({', '.join(cols)}) DO UPDATE SET {value_col} = EXCLUDED.{value_col}, "
            f"updated_at = now()")


def _append_sql(table: str, cols: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(f'r.{c}' for c in cols)} "
            f"FROM {_ROWS.format(table=table)}")


def _sql_json(v: Any) -> Any:
    """Values JSON has no type for, as PostgreSQL reads them into the column's type."""
    if isinstance(v, datetime):
        return (v if v.tzinfo is not None else v.replace(tzinfo=UTC)).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _encode(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, Decimal):
        return float(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _decode(d: dict[str, Any]) -> Any:
    if set(d) == {"$dt"}:
        return datetime.fromisoformat(d["$dt"])
    return d


