"""Reporting queries: run the roll-up, read interval rows, and the agents' unfinished state periods.

The roll-up (sql/006_reporting.sql) recomputes only the intervals records changed since its last
run, so calling it before every report is cheap and makes the report exact up to the last
committed record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

QUEUE_COLUMNS = ("offered", "answered", "answered_in_sl", "abandoned", "abandoned_short",
                 "abandoned_after_sl", "timeout", "exitkey", "callback", "other_exit", "in_progress",
                 "wait_answered_sum", "wait_answered_max", "wait_abandoned_sum", "handled", "talk_sum",
                 "hold_sum", "wrap_sum")
AGENT_COLUMNS = ("calls_handled", "ring_noanswer", "staffed", "available", "ringing", "on_call", "wrapup",
                 "paused")


async def rollup(conn: asyncpg.Connection, *, short_abandon: float, default_sl: float = 20.0) -> tuple[int, int]:
    # A backlog (after an outage, or a bulk import) can take a while: longer than the pool's default.
    row = await conn.fetchrow("SELECT * FROM report_rollup($1, $2)", short_abandon, default_sl, timeout=600)
    assert row is not None
    return int(row["queue_intervals"]), int(row["agent_intervals"])


async def queue_intervals(conn: asyncpg.Connection, start: datetime, end: datetime,
                          queues: Sequence[str] | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT queue, interval_start, sl_threshold, short_abandon, {', '.join(QUEUE_COLUMNS)}
              FROM report_queue_intervals
             WHERE interval_start >= report_bucket($1) AND interval_start < $2
               AND ($3::text[] IS NULL OR queue = ANY($3))
             ORDER BY interval_start, queue""", start, end, list(queues) if queues is not None else None)
    return [dict(r) for r in rows]


async def agent_intervals(conn: asyncpg.Connection, start: datetime, end: datetime,
                          agents: Sequence[str] | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT agent_id, interval_start, {', '.join(AGENT_COLUMNS)}
              FROM report_agent_intervals
             WHERE interval_start >= report_bucket($1) AND interval_start < $2
               AND ($3::text[] IS NULL OR agent_id = ANY($3))
             ORDER BY interval_start, agent_id""", start, end, list(agents) if agents is not None else None)
    return [dict(r) for r in rows]


async def open_periods(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Each agent's current state and since when (the period the roll-up does not hold yet), for
    configured agents and agents seen in [start, end). One index probe per agent."""
    rows = await conn.fetch(
        """SELECT a.agent_id, l.at, l.state
             FROM (SELECT id AS agent_id FROM acd_agents
                   UNION SELECT agent_id FROM report_agent_intervals
                          WHERE interval_start >= report_bucket($1) AND interval_start < $2) a
             CROSS JOIN LATERAL (SELECT s.at, s.state FROM agent_states s WHERE s.agent_id = a.agent_id
                                  ORDER BY s.at DESC, s.id DESC LIMIT 1) l
            WHERE l.state <> 'logged_out' AND l.at < $2""", start, end)
    return [dict(r) for r in rows]
