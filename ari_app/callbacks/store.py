"""Callbacks in PostgreSQL: written synchronously (a caller is told "you will be called back" only
once the row is there), claimed with row locks so two app instances never place or dial the same
callback.

Life of a row: `scheduled` (not_before in the future) or `pending` -> claimed into one instance's
queue (`owner`, `item_id` set) -> `in-progress` while a dial attempt runs -> `completed` (the
customer was connected with an agent) | back to `pending` for a retry | `failed`; `cancelled` over
the API at any time before a dial.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ari_app.callbacks.core import CallbackPolicy, Next, expired

OPEN = ("scheduled", "pending", "in-progress")


def ts(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)


def secs(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


async def insert(conn: asyncpg.Connection, cb: dict[str, Any]) -> asyncpg.Record:
    """Raises asyncpg.UniqueViolationError when an open callback exists for the number and queue."""
    cols = list(cb)
    values = [json.dumps(v) if c == "skills" else v for c, v in cb.items()]
    row = await conn.fetchrow(
        f"INSERT INTO callbacks ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))}) "
        "RETURNING *", *values)
    assert row is not None
    return row


async def get(conn: asyncpg.Connection, callback_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM callbacks WHERE id = $1", callback_id)


async def find_open(conn: asyncpg.Connection, number: str, queue: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM callbacks WHERE number = $1 AND queue = $2 AND state = ANY($3)",
                               number, queue, list(OPEN))


async def attempts(conn: asyncpg.Connection, callback_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM callback_attempts WHERE callback_id = $1 ORDER BY attempt", callback_id)


async def listing(conn: asyncpg.Connection, *, state: str | None, queue: str | None, limit: int
                  ) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM callbacks WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2) "
        "ORDER BY created_at DESC, id LIMIT $3", state, queue, limit)


async def cancel(conn: asyncpg.Connection, callback_id: str) -> asyncpg.Record | None:
    """Cancel unless a dial attempt is running or it is over; None when not cancelled."""
    return await conn.fetchrow(
        "UPDATE callbacks SET state = 'cancelled', outcome = 'cancelled', ended_at = now(), updated_at = now() "
        "WHERE id = $1 AND state IN ('scheduled', 'pending') RETURNING *", callback_id)


async def claim_due(conn: asyncpg.Connection, owner: str, queues: list[str], now: float, *, limit: int = 200
                    ) -> list[asyncpg.Record]:
    """Take the callbacks due now into this instance's queues, best placed first: each gets
    the item id it waits under. Rows another instance is claiming are skipped, not waited for."""
    return await conn.fetch(
        """UPDATE callbacks c SET owner = $1, state = 'pending', enqueued = c.enqueued + 1,
                  item_id = c.id || '-' || (c.enqueued + 1), updated_at = now()
           FROM (SELECT id FROM callbacks
                 WHERE state IN ('scheduled', 'pending') AND item_id IS NULL AND (owner IS NULL OR owner = $1)
                   AND queue = ANY($2) AND coalesce(greatest(not_before, next_attempt_at), '-infinity') <= $3
                   AND (not_after IS NULL OR not_after > $3)
                 ORDER BY priority DESC, entered_at
                 LIMIT $4 FOR UPDATE SKIP LOCKED) d
           WHERE c.id = d.id RETURNING c.*""", owner, queues, ts(now), limit)


async def expire(conn: asyncpg.Connection, now: float) -> list[asyncpg.Record]:
    """Close callbacks whose window ended before they could be placed."""
    return await conn.fetch(
        "UPDATE callbacks SET state = 'failed', outcome = 'expired', ended_at = now(), updated_at = now() "
        "WHERE state IN ('scheduled', 'pending') AND item_id IS NULL AND not_after <= $1 RETURNING *", ts(now))


async def owned(conn: asyncpg.Connection, owner: str) -> list[asyncpg.Record]:
    """Callbacks this instance holds in its queues (to re-attach or re-enqueue after a restart)."""
    return await conn.fetch(
        "SELECT * FROM callbacks WHERE owner = $1 AND item_id IS NOT NULL AND state IN ('pending', 'in-progress') "
        "ORDER BY priority DESC, entered_at", owner)


async def begin_attempt(conn: asyncpg.Connection, callback_id: str, item_id: str, owner: str,
                        agent_id: str | None, now: float) -> int | None:
    """Claim the callback for a dial: pending -> in-progress under a row lock, and record the
    attempt. None (and nothing dialled) when it was cancelled, expired, or is no longer ours."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT state, item_id, owner, not_after FROM callbacks WHERE id = $1 FOR UPDATE",
                                  callback_id)
        if row is None or row["state"] != "pending" or row["item_id"] != item_id or row["owner"] != owner:
            return None
        if expired(secs(row["not_after"]), now):
            await conn.execute("UPDATE callbacks SET state = 'failed', outcome = 'expired', item_id = NULL, "
                               "ended_at = now(), updated_at = now() WHERE id = $1", callback_id)
            return None
        await conn.execute("UPDATE callbacks SET state = 'in-progress', agent_id = $2, updated_at = now() "
                           "WHERE id = $1", callback_id, agent_id)
        attempt: int = await conn.fetchval(
            "INSERT INTO callback_attempts (callback_id, attempt, call_id, agent_id) "
            "SELECT $1, coalesce(max(attempt), 0) + 1, $2, $3 FROM callback_attempts WHERE callback_id = $1 "
            "RETURNING attempt", callback_id, item_id, agent_id)
        return attempt


async def end_attempt(conn: asyncpg.Connection, callback_id: str, attempt: int | None, *, outcome: str,
                      counted: bool, nxt: Next, connected_at: float | None = None,
                      agent_id: str | None = None) -> None:
    """Record how an attempt ended and what follows (completed, retry later, failed)."""
    async with conn.transaction():
        if attempt is not None:
            await conn.execute(
                "UPDATE callback_attempts SET outcome = $3, counted = $4, agent_id = coalesce($5, agent_id), "
                "ended_at = CASE WHEN $3 = 'connected' THEN NULL ELSE now() END "
                "WHERE callback_id = $1 AND attempt = $2", callback_id, attempt, outcome, counted, agent_id)
        await conn.execute(
            """UPDATE callbacks SET state = $2, attempts = $3, next_attempt_at = $4, outcome = $5,
                      item_id = CASE WHEN $2 = 'completed' THEN item_id END,
                      owner = CASE WHEN $2 = 'completed' THEN owner END,
                      connected_at = coalesce($6, connected_at), agent_id = coalesce($7, agent_id),
                      ended_at = CASE WHEN $2 IN ('completed', 'failed') THEN now() END, updated_at = now()
               WHERE id = $1 AND state IN ('pending', 'in-progress')""",
            callback_id, nxt.state, nxt.attempts, ts(nxt.next_attempt_at), nxt.reason, ts(connected_at), agent_id)


async def call_ended(conn: asyncpg.Connection, callback_id: str, attempt: int | None) -> None:
    if attempt is not None:
        await conn.execute("UPDATE callback_attempts SET ended_at = now() WHERE callback_id = $1 AND attempt = $2 "
                           "AND ended_at IS NULL", callback_id, attempt)


async def fail(conn: asyncpg.Connection, callback_id: str, reason: str) -> None:
    await conn.execute("UPDATE callbacks SET state = 'failed', outcome = $2, item_id = NULL, ended_at = now(), "
                       "updated_at = now() WHERE id = $1 AND state IN ('scheduled', 'pending', 'in-progress')",
                       callback_id, reason)


async def stats(conn: asyncpg.Connection, *, queue: str | None, since: datetime | None) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT count(*) AS requested,
                  count(*) FILTER (WHERE source = 'virtual-hold') AS from_queue,
                  count(*) FILTER (WHERE source = 'api') AS scheduled,
                  count(*) FILTER (WHERE state = 'completed') AS completed,
                  count(*) FILTER (WHERE state = 'failed') AS failed,
                  count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                  count(*) FILTER (WHERE state IN ('scheduled', 'pending', 'in-progress')) AS open,
                  coalesce(sum(attempts), 0) AS attempts,
                  avg(extract(epoch FROM connected_at - entered_at)) AS avg_wait,
                  avg(extract(epoch FROM connected_at - created_at)) AS avg_time_to_connect
           FROM callbacks WHERE ($1::text IS NULL OR queue = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)""",
        queue, since)
    out = dict(row) if row else {}
    for k in ("avg_wait", "avg_time_to_connect"):
        out[k] = None if out.get(k) is None else round(float(out[k]), 3)
    return out


async def load_policies(conn: asyncpg.Connection) -> dict[str, CallbackPolicy]:
    rows = await conn.fetch("SELECT queue, config FROM callback_policies")
    out = {}
    for r in rows:
        cfg = r["config"]
        out[r["queue"]] = CallbackPolicy.from_dict(json.loads(cfg) if isinstance(cfg, str) else cfg)
    return out


async def save_policy(conn: asyncpg.Connection, queue: str, policy: CallbackPolicy) -> None:
    await conn.execute("INSERT INTO callback_policies (queue, config) VALUES ($1, $2) ON CONFLICT (queue) "
                       "DO UPDATE SET config = EXCLUDED.config, updated_at = now()",
                       queue, json.dumps(policy.to_dict()))
