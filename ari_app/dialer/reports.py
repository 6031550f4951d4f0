"""Campaign figures per 15-minute interval, for `/api/v1/reports/intervals?kind=campaign`.

Computed in PostgreSQL from `dial_attempts` over the requested range: the (campaign_id, dialed_at)
index bounds the scan to that range, so a report costs what its range holds, not the table.
Definitions (also in docs/statistics.md): live answers are attempts answered by a person
(connected, abandoned, or answered with no agent outcome yet); the abandon rate is abandons over
live answers, as the FTC TSR rule counts it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

CAMPAIGN_INTERVALS = """
SELECT campaign_id AS campaign,
       date_bin('15 minutes', dialed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS interval_start,
       count(*) AS dials,
       count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
       count(*) FILTER (WHERE result IN ('connected', 'abandoned', 'human')) AS live_answers,
       count(*) FILTER (WHERE result = 'connected') AS contacts,
       count(*) FILTER (WHERE result = 'machine') AS machines,
       count(*) FILTER (WHERE result = 'abandoned') AS abandons,
       count(*) FILTER (WHERE result IN ('busy', 'no-answer', 'congestion', 'failed')) AS not_reached,
       coalesce(sum(talk_seconds), 0) AS talk_seconds
  FROM dial_attempts
 WHERE dialed_at >= $1 AND dialed_at < $2 AND campaign_id IS NOT NULL
 GROUP BY 1, 2
 ORDER BY 1, 2
"""


async def campaign_intervals(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    out = []
    for r in await conn.fetch(CAMPAIGN_INTERVALS, start, end):
        row = dict(r)
        row["interval_start"] = row["interval_start"].isoformat()
        row["talk_seconds"] = float(row["talk_seconds"])
        live = row["live_answers"]
        row["answer_rate"] = round(row["answered"] / row["dials"], 4) if row["dials"] else None
        row["abandon_rate"] = round(row["abandons"] / live, 4) if live else None
        out.append(row)
    return out
