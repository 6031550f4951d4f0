"""Synthetic records for the reporting roll-up (tests and bench/reporting_rollup.py), and the
Python reference computation (ari_app.reporting.core.stats) over whatever is in the tables.

`generate(conn, calls=N)` writes N inbound calls over `days` days in 8 queues handled by 40
agents, with the queue events and agent states the ACD would write for them: each answered call
has CONNECT and COMPLETECALLER events and on_call / wrapup / available states (wrap-up starts at
the COMPLETE event's instant, as the core logs it). The rows go in through the normal tables,
so the roll-up triggers mark everything, as they would in production.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import asyncpg

from ari_app.reporting.core.stats import (
    AgentCounters,
    AgentHistory,
    CallRecord,
    QueueCounters,
    StateChange,
    agent_intervals,
    queue_intervals,
)

BASE = "2024-03-01 00:00:00+00"


async def generate(conn: asyncpg.Connection, *, calls: int, days: int = 30, seed: float = 0.42) -> None:
    span = days * 86400
    await conn.execute("SELECT setseed($1)", seed)
    async with conn.transaction():
        await conn.execute(
            f"""CREATE TEMP TABLE syn ON COMMIT DROP AS
                SELECT g, 'syn-' || g AS id, 'q' || (g % 8) AS queue, 'ag' || (g % 40) AS agent,
                       TIMESTAMPTZ '{BASE}' + make_interval(secs => g::double precision * {span} / {calls}) AS t,
                       random() AS o, 1 + random() * 60 AS wait, 30 + random() * 400 AS talk,
                       random() * 40 AS wrap
                  FROM generate_series(1, {calls}) g""")
        await conn.execute(
            """INSERT INTO calls (id, direction, queue, agent_id, created_at, entered_queue_at, bridged_at, ended_at,
                                  outcome, data)
               SELECT id, 'inbound', queue, CASE WHEN o < 0.8 THEN agent END, t, t,
                      CASE WHEN o < 0.8 THEN t + make_interval(secs => wait) END,
                      CASE WHEN o < 0.8 AND g % 97 <> 0 THEN t + make_interval(secs => wait + talk)
                           WHEN o >= 0.8 THEN t + make_interval(secs => wait) END,
                      CASE WHEN o < 0.8 THEN 'answered' WHEN o < 0.93 THEN 'abandoned'
                           WHEN o < 0.97 THEN 'timeout' WHEN o < 0.99 THEN 'exitkey' ELSE 'full' END,
                      CASE WHEN g % 10 = 0 THEN '{"hold_seconds": 12.5}'::jsonb ELSE '{}'::jsonb END
                 FROM syn""")
        await conn.execute(
            """INSERT INTO queue_events (at, call_id, queue, agent_id, event, data)
               SELECT t + make_interval(secs => wait), id, queue, agent, 'CONNECT', '{}'::jsonb FROM syn WHERE o < 0.8
               UNION ALL
               SELECT t + make_interval(secs => wait + talk), id, queue, agent, 'COMPLETECALLER', '{}'::jsonb
                 FROM syn WHERE o < 0.8 AND g % 97 <> 0
               UNION ALL
               SELECT t + make_interval(secs => wait / 2), id, queue, agent, 'RINGNOANSWER', '{}'::jsonb
                 FROM syn WHERE g % 50 = 0""")
        await conn.execute(
            """INSERT INTO agent_states (agent_id, at, old_state, state, reason)
               SELECT agent, at, NULL, state, 'syn' FROM (
                   SELECT agent, t + make_interval(secs => wait) AS at, 'on_call' AS state, g, 1 AS k
                     FROM syn WHERE o < 0.8
                   UNION ALL
                   SELECT agent, t + make_interval(secs => wait + talk), 'wrapup', g, 2 FROM syn
                    WHERE o < 0.8 AND g % 97 <> 0
                   UNION ALL
                   SELECT agent, t + make_interval(secs => wait + talk + wrap), 'available', g, 3 FROM syn
                    WHERE o < 0.8 AND g % 97 <> 0
                   UNION ALL
                   SELECT agent, t + make_interval(secs => wait), CASE WHEN g % 3 = 0 THEN 'paused'
                          ELSE 'logged_out' END, g, 4 FROM syn WHERE g % 200 = 0) s
               ORDER BY at, g, k""")


async def reference(conn: asyncpg.Connection, *, short_abandon: float,
                    thresholds: dict[str, float] | float = 20.0) -> tuple[dict[tuple[str, float], QueueCounters],
                                                                         dict[tuple[str, float], AgentCounters]]:
    """What the roll-up must hold, computed in Python from every row of the record tables."""
    states = await conn.fetch("SELECT id, agent_id, at, state FROM agent_states ORDER BY agent_id, at, id")
    by_agent: dict[str, list[Any]] = defaultdict(list)
    for r in states:
        by_agent[r["agent_id"]].append(r)
    # wrap-up after a call: the agent's wrapup row at the COMPLETE event's instant, to its next row
    wrap_at: dict[tuple[str, float], float] = {}
    for agent, rows in by_agent.items():
        for i, r in enumerate(rows):
            if r["state"] == "wrapup" and i + 1 < len(rows):
                wrap_at[(agent, r["at"].timestamp())] = (rows[i + 1]["at"] - r["at"]).total_seconds()
    events = await conn.fetch("SELECT call_id, agent_id, at, event FROM queue_events ORDER BY at, id")
    complete: dict[str, tuple[str, float]] = {}
    connects: dict[str, list[float]] = defaultdict(list)
    noanswers: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e["event"] in ("COMPLETECALLER", "COMPLETEAGENT"):
            complete[e["call_id"]] = (e["agent_id"], e["at"].timestamp())
        elif e["event"] == "CONNECT" and e["agent_id"]:
            connects[e["agent_id"]].append(e["at"].timestamp())
        elif e["event"] == "RINGNOANSWER" and e["agent_id"]:
            noanswers[e["agent_id"]].append(e["at"].timestamp())
    records = []
    for c in await conn.fetch("SELECT * FROM calls WHERE queue IS NOT NULL AND entered_queue_at IS NOT NULL"):
        ts = {k: (c[k].timestamp() if c[k] is not None else None) for k in ("bridged_at", "ended_at", "updated_at")}
        wrap = None
        if c["id"] in complete:
            wrap = wrap_at.get(complete[c["id"]])
        data = json.loads(c["data"]) if isinstance(c["data"], str) else (c["data"] or {})
        hold = float(data.get("hold_seconds", 0))
        records.append(CallRecord(queue=c["queue"], entered_at=c["entered_queue_at"].timestamp(),
                                  outcome=c["outcome"], answered_at=ts["bridged_at"], ended_at=ts["ended_at"],
                                  left_at=ts["ended_at"] if ts["ended_at"] is not None else ts["updated_at"],
                                  hold=hold, wrap=wrap, direction=c["direction"]))
    queues = queue_intervals(records, threshold=thresholds, short_abandon=short_abandon)
    agents: dict[tuple[str, float], AgentCounters] = {}
    for agent in set(by_agent) | set(connects) | set(noanswers):
        hist = AgentHistory(states=[StateChange(r["at"].timestamp(), r["state"]) for r in by_agent.get(agent, [])],
                            connects=connects.get(agent, []), noanswers=noanswers.get(agent, []))
        for b, counters in agent_intervals(hist).items():
            if counters.staffed > 0 or counters.calls_handled or counters.ring_noanswer:
                agents[(agent, b)] = counters
    return queues, agents


async def rolled_up(conn: asyncpg.Connection) -> tuple[dict[tuple[str, float], QueueCounters],
                                                       dict[tuple[str, float], AgentCounters]]:
    q = {(r["queue"], r["interval_start"].timestamp()): QueueCounters.from_row(r)
         for r in await conn.fetch("SELECT * FROM report_queue_intervals")}
    a = {(r["agent_id"], r["interval_start"].timestamp()): AgentCounters.from_row(r)
         for r in await conn.fetch("SELECT * FROM report_agent_intervals")}
    return q, a


def differences(expected: dict[Any, Any], actual: dict[Any, Any], *, tol: float = 1e-3) -> list[str]:
    """Keys or counters that differ (floats within `tol` seconds)."""
    out = [f"missing {k}" for k in expected.keys() - actual.keys()]
    out += [f"unexpected {k}: {actual[k]}" for k in actual.keys() - expected.keys()]
    for k in expected.keys() & actual.keys():
        e, a = expected[k].to_dict(), actual[k].to_dict()
        for name, v in e.items():
            if abs(float(v) - float(a[name])) > tol:
                out.append(f"{k} {name}: expected {v}, rolled up {a[name]}")
    return out
