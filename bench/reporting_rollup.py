"""Reporting roll-up at volume (``python bench/reporting_rollup.py --dsn postgresql://... [--calls N]``).

Against a PostgreSQL with the migrations applied (e.g. ``python -m ari_app.sandbox up``; the
tables are TRUNCATED first: never point this at a database you care about). Measures:

* inserting N synthetic calls with their queue events and agent states (the triggers that mark
  changed intervals run on every row, as they do under the app's writer);
* the first roll-up of all of it (a backfill: every interval is dirty);
* an incremental roll-up after one call changed (the steady state: a few intervals);
* reading a month's queue report and agent report from the roll-up;
* the same month's queue totals computed from the records by the same SQL (what a view costs).

Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration import reporting_data  # noqa: E402

TABLES = "calls, call_legs, queue_events, agent_states, report_marks, report_queue_intervals, report_agent_intervals"


async def main(dsn: str, calls: int, days: int) -> None:
    conn = await asyncpg.connect(dsn)
    rows: list[tuple[str, float]] = []

    async def timed(label: str, coro):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        result = await coro
        rows.append((label, time.perf_counter() - t))
        return result

    try:
        await conn.execute(f"TRUNCATE {TABLES}")
        await timed(f"insert {calls:,} calls + events + states (with triggers)",
                    reporting_data.generate(conn, calls=calls, days=days))
        counts = await conn.fetchrow("SELECT (SELECT count(*) FROM queue_events) AS qe, "
                                     "(SELECT count(*) FROM agent_states) AS st, (SELECT count(*) FROM report_marks) AS m")
        r = await timed("first roll-up (a backfill: everything dirty)",
                        conn.fetchrow("SELECT * FROM report_rollup(5, 20)", timeout=3600))
        await conn.execute("VACUUM ANALYZE report_marks, calls, queue_events, agent_states")  # as autovacuum would
        await conn.execute("UPDATE calls SET outcome = 'abandoned' WHERE id = 'syn-1000'")
        await conn.execute("INSERT INTO agent_states (agent_id, at, state) VALUES ('ag7', $1, 'paused')",
                           datetime(2024, 3, 1, 12, 0, 1, tzinfo=UTC))
        r2 = await timed("incremental roll-up (one call, one state change)",
                         conn.fetchrow("SELECT * FROM report_rollup(5, 20)"))
        start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 31, tzinfo=UTC)
        await timed("month, every queue interval, from the roll-up", conn.fetch(
            "SELECT * FROM report_queue_intervals WHERE interval_start >= $1 AND interval_start < $2", start, end))
        await timed("month, every agent interval, from the roll-up", conn.fetch(
            "SELECT * FROM report_agent_intervals WHERE interval_start >= $1 AND interval_start < $2", start, end))
        await timed("month totals per queue, from the roll-up", conn.fetch(
            """SELECT queue, sum(offered), sum(answered), sum(answered_in_sl), sum(abandoned_after_sl),
                      sum(talk_sum + hold_sum + wrap_sum), sum(handled)
                 FROM report_queue_intervals WHERE interval_start >= $1 AND interval_start < $2 GROUP BY queue""",
            start, end))
        await timed("month totals per queue, computed from the records (what a view costs)", conn.fetch(
            """SELECT queue, sum(offered), sum(answered), sum(answered_in_sl), sum(abandoned_after_sl),
                      sum(talk_sum + hold_sum + wrap_sum), sum(handled)
                 FROM report_queue_compute(
                     ARRAY(SELECT 'q' || q FROM generate_series(0, 7) q, generate_series($1::timestamptz,
                           $2::timestamptz - interval '15 minutes', interval '15 minutes') b ORDER BY q, b),
                     ARRAY(SELECT b FROM generate_series(0, 7) q, generate_series($1::timestamptz,
                           $2::timestamptz - interval '15 minutes', interval '15 minutes') b ORDER BY q, b),
                     5, 20) GROUP BY queue""", start, end, timeout=3600))
    finally:
        await conn.close()
    print(f"\n{calls:,} calls over {days} days, 8 queues, 40 agents: {counts['qe']:,} queue events, "
          f"{counts['st']:,} agent states, {counts['m']:,} marks; first roll-up wrote {r['queue_intervals']:,} "
          f"queue and {r['agent_intervals']:,} agent intervals; incremental: {r2['queue_intervals']} queue, "
          f"{r2['agent_intervals']} agent intervals\n")
    print("| step | time |\n| --- | ---: |")
    for label, secs in rows:
        print(f"| {label} | {secs * 1000:,.0f} ms |" if secs < 10 else f"| {label} | {secs:,.1f} s |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--dsn", required=True)
    p.add_argument("--calls", type=int, default=200_000)
    p.add_argument("--days", type=int, default=30)
    a = p.parse_args()
    asyncio.run(main(a.dsn, a.calls, a.days))
