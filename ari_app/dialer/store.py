"""SQL for campaigns, leads, do-not-call lists, imports and campaign statistics.

The leads table is the coordination point between app instances: a lead is claimed by one UPDATE
whose sub-select locks candidate rows `FOR UPDATE SKIP LOCKED` and marks them `dialing`, so two
instances (or two ticks) never get the same lead, and nobody waits on anybody's locks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ari_app.dialer.leads import LeadRecord, RowError

MAX_STORED_ERRORS = 1000


# ------------------------------------------------------------------------------------------ campaigns
async def save_campaign(conn: asyncpg.Connection, campaign_id: str, body: dict[str, Any]) -> tuple[bool, datetime]:
    """Create or replace; (True if it existed, the row's new updated_at)."""
    row = await conn.fetchrow(
        "INSERT INTO dialer_campaigns (id, config) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (id) DO UPDATE SET config = EXCLUDED.config, updated_at = now() "
        "RETURNING (xmax <> 0) AS existed, updated_at", campaign_id, json.dumps(body))
    return bool(row["existed"]), row["updated_at"]


async def set_campaign_state(conn: asyncpg.Connection, campaign_id: str, state: str) -> datetime | None:
    """The row's new updated_at (None: no such campaign)."""
    at: datetime | None = await conn.fetchval(
        "UPDATE dialer_campaigns SET state = $2, updated_at = now() WHERE id = $1 RETURNING updated_at",
        campaign_id, state)
    return at


async def campaign_versions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every campaign's configuration, state and last change (instances follow each other's changes)."""
    return list(await conn.fetch("SELECT id, config, state, updated_at FROM dialer_campaigns ORDER BY id"))


async def load_campaigns(conn: asyncpg.Connection) -> list[tuple[str, dict[str, Any], str, float]]:
    """(id, configuration, state, last change as epoch seconds) of every campaign."""
    return [(r["id"], json.loads(r["config"]), r["state"], r["updated_at"].timestamp())
            for r in await campaign_versions(conn)]


# ------------------------------------------------------------------------------------------ leads
_LEAD_COLS = "l.id, l.phone, l.tz, l.data, l.attempts, l.retry_at, l.last_abandoned_at, l.priority, l.status"


async def claim_leads(conn: asyncpg.Connection, campaign_id: str, n: int, *, owner: str, now: datetime,
                      max_attempts: int, abandoned_before: datetime | None, zones: Sequence[str],
                      lead_id: int | None = None) -> list[asyncpg.Record]:
    """Claim up to `n` dialable leads in one statement (see module docstring). `abandoned_before`:
    leads abandoned after it are skipped (None when an agent is reserved for the call). `zones`: only
    leads in these time zones (the ones inside their calling window now). Order: priority, then retries
    that are due (oldest first, so they come back on schedule), then fresh leads in import order."""
    if n <= 0 or not zones:
        return []
    rows = await conn.fetch(
        f"""UPDATE dialer_leads l SET status = 'dialing', claimed_by = $6, claimed_at = now(), updated_at = now()
            FROM (SELECT c.id FROM dialer_leads c
                  WHERE c.campaign_id = $1 AND c.status = 'ready' AND c.attempts < $2
                    AND (c.retry_at IS NULL OR c.retry_at <= $3)
                    AND ($4::timestamptz IS NULL OR c.last_abandoned_at IS NULL OR c.last_abandoned_at <= $4)
                    AND c.tz = ANY($5::text[])
                    AND ($8::bigint IS NULL OR c.id = $8)
                    AND NOT EXISTS (SELECT 1 FROM dialer_dnc d WHERE d.number = c.phone AND d.scope IN ('', $1))
                  ORDER BY c.priority DESC, c.retry_at NULLS LAST, c.id
                  LIMIT $7
                  FOR UPDATE SKIP LOCKED) pick
            WHERE l.id = pick.id
            RETURNING {_LEAD_COLS}""",
        campaign_id, max_attempts, now, abandoned_before, list(zones), owner, n, lead_id)
    never = datetime.max.replace(tzinfo=UTC)
    return sorted(rows, key=lambda r: (-r["priority"], r["retry_at"] or never, r["id"]))


async def release_leads(conn: asyncpg.Connection, lead_ids: Sequence[int], *, owner: str | None = None) -> None:
    """Give claimed leads back without an attempt (not dialled after all); only our own claims."""
    if lead_ids:
        await conn.execute("UPDATE dialer_leads SET status = 'ready', claimed_by = NULL, claimed_at = NULL, "
                           "updated_at = now() WHERE id = ANY($1::bigint[]) AND status = 'dialing' "
                           "AND ($2::text IS NULL OR claimed_by = $2)", list(lead_ids), owner)


async def release_stale_claims(conn: asyncpg.Connection, owner: str, keep: Sequence[int] = ()) -> int:
    """At start: leads this instance had claimed when it stopped are dialable again, but for `keep`
    (the leads of calls still connected to an agent whose session was restored)."""
    res = await conn.execute("UPDATE dialer_leads SET status = 'ready', claimed_by = NULL, claimed_at = NULL, "
                             "updated_at = now() WHERE status = 'dialing' AND claimed_by = $1 "
                             "AND NOT (id = ANY($2::bigint[]))", owner, list(keep))
    return int(res.split()[-1])


async def finish_attempt(conn: asyncpg.Connection, lead_id: int, *, status: str, attempts: int,
                         retry_at: datetime | None, last_abandoned_at: datetime | None, result: str) -> None:
    await conn.execute(
        "UPDATE dialer_leads SET status = $2, attempts = $3, retry_at = $4, last_abandoned_at = $5, "
        "last_result = $6, claimed_by = NULL, claimed_at = NULL, updated_at = now() WHERE id = $1",
        lead_id, status, attempts, retry_at, last_abandoned_at, result)


async def apply_disposition(conn: asyncpg.Connection, lead_id: int, *, disposition: str, status: str | None,
                            retry_at: datetime | None) -> None:
    if status is None:
        await conn.execute("UPDATE dialer_leads SET last_disposition = $2, updated_at = now() WHERE id = $1",
                           lead_id, disposition)
    else:
        await conn.execute("UPDATE dialer_leads SET last_disposition = $2, status = $3, retry_at = $4, "
                           "updated_at = now() WHERE id = $1 AND status <> 'dialing'",
                           lead_id, disposition, status, retry_at)


async def get_lead(conn: asyncpg.Connection, campaign_id: str, lead_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_LEAD_COLS}, l.claimed_by FROM dialer_leads l "
                               "WHERE l.campaign_id = $1 AND l.id = $2", campaign_id, lead_id)


async def ready_zones(conn: asyncpg.Connection, campaign_id: str) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT tz FROM dialer_leads WHERE campaign_id = $1 AND status = 'ready'",
                            campaign_id)
    return [r["tz"] for r in rows]


async def count_leads(conn: asyncpg.Connection, campaign_id: str, *, max_attempts: int, now: datetime,
                      abandoned_before: datetime, zones: Sequence[str]) -> tuple[int, int]:
    """(dialable, remaining): how many leads `claim_leads` could give now (the pacer's `leads_available`),
    and how many are left at all (ready or being dialled, attempts left; /metrics), in one scan."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (
                    WHERE c.status = 'ready' AND (c.retry_at IS NULL OR c.retry_at <= $3)
                      AND (c.last_abandoned_at IS NULL OR c.last_abandoned_at <= $4)
                      AND c.tz = ANY($5::text[])
                      AND NOT EXISTS (SELECT 1 FROM dialer_dnc d WHERE d.number = c.phone
                                      AND d.scope IN ('', $1))) AS dialable,
                  count(*) AS remaining
           FROM dialer_leads c
           WHERE c.campaign_id = $1 AND c.status IN ('ready', 'dialing') AND c.attempts < $2""",
        campaign_id, max_attempts, now, abandoned_before, list(zones))
    return int(row["dialable"]), int(row["remaining"])


async def numbers_on_dnc(conn: asyncpg.Connection, campaign_id: str, numbers: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT number FROM dialer_dnc WHERE number = ANY($1::text[]) AND scope IN ('', $2)",
                            list(numbers), campaign_id)
    return {r["number"] for r in rows}


# ------------------------------------------------------------------------------------------ imports
async def create_import(conn: asyncpg.Connection, import_id: str, campaign_id: str, *, kind: str,
                        total: int) -> None:
    await conn.execute("INSERT INTO dialer_imports (id, campaign_id, kind, total, phase) "
                       "VALUES ($1, $2, $3, $4, 'normalising')", import_id, campaign_id, kind, total)


async def update_import(conn: asyncpg.Connection, import_id: str, **fields: Any) -> None:
    if "errors" in fields:
        fields["errors"] = json.dumps(fields["errors"][:MAX_STORED_ERRORS])
    cols = sorted(fields)
    sets = ", ".join(f"{c} = ${i + 2}" + ("::jsonb" if c == "errors" else "") for i, c in enumerate(cols))
    await conn.execute(f"UPDATE dialer_imports SET {sets}, updated_at = now() WHERE id = $1",
                       import_id, *(fields[c] for c in cols))


async def get_import(conn: asyncpg.Connection, campaign_id: str, import_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM dialer_imports WHERE id = $1 AND campaign_id = $2",
                              import_id, campaign_id)
    if row is None:
        return None
    out = dict(row)
    out["errors"] = json.loads(out["errors"])
    return out


async def import_leads(conn: asyncpg.Connection, campaign_id: str, import_id: str,
                       records: Sequence[LeadRecord]) -> tuple[int, int, list[RowError]]:
    """Bulk load: COPY into a staging table, scrub against the DNC lists, then one INSERT ... SELECT that
    merges numbers already in the campaign. Returns (inserted, merged into existing, scrubbed rows)."""
    async with conn.transaction():
        await conn.execute("CREATE TEMP TABLE dialer_import_stage (row integer, phone text, tz text, "
                           "priority integer, data jsonb) ON COMMIT DROP")
        await conn.copy_records_to_table(
            "dialer_import_stage", columns=["row", "phone", "tz", "priority", "data"],
            records=[(r.row, r.phone, r.tz, r.priority, json.dumps(r.data)) for r in records])
        scrubbed = await conn.fetch(
            "DELETE FROM dialer_import_stage s USING dialer_dnc d WHERE d.number = s.phone "
            "AND d.scope IN ('', $1) RETURNING s.row, s.phone", campaign_id)
        counts = await conn.fetchrow(
            """WITH ins AS (
                 INSERT INTO dialer_leads (campaign_id, phone, tz, priority, data, import_id)
                 SELECT $1, phone, tz, priority, data, $2 FROM dialer_import_stage
                 ON CONFLICT (campaign_id, phone) DO UPDATE
                   SET data = dialer_leads.data || EXCLUDED.data, tz = EXCLUDED.tz,
                       priority = GREATEST(dialer_leads.priority, EXCLUDED.priority), updated_at = now()
                 RETURNING (xmax = 0) AS inserted)
               SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS merged
               FROM ins""", campaign_id, import_id)
    errors = sorted((RowError(r["row"], "dnc", f"{r['phone']} is on a do-not-call list") for r in scrubbed),
                    key=lambda e: e.row)
    return int(counts["inserted"]), int(counts["merged"]), errors


# ------------------------------------------------------------------------------------------ DNC
async def dnc_add(conn: asyncpg.Connection, scope: str, number: str, source: str | None) -> bool:
    """True if newly added."""
    res = await conn.execute("INSERT INTO dialer_dnc (scope, number, source) VALUES ($1, $2, $3) "
                             "ON CONFLICT DO NOTHING", scope, number, source)
    return str(res).endswith(" 1")


async def dnc_add_many(conn: asyncpg.Connection, scope: str, numbers: Sequence[str], source: str | None) -> int:
    async with conn.transaction():
        await conn.execute("CREATE TEMP TABLE dialer_dnc_stage (number text) ON COMMIT DROP")
        await conn.copy_records_to_table("dialer_dnc_stage", columns=["number"], records=[(n,) for n in numbers])
        res = await conn.execute("INSERT INTO dialer_dnc (scope, number, source) SELECT DISTINCT $1, number, $2 "
                                 "FROM dialer_dnc_stage ON CONFLICT DO NOTHING", scope, source)
    return int(res.split()[-1])


async def dnc_remove(conn: asyncpg.Connection, scope: str, number: str) -> bool:
    res = await conn.execute("DELETE FROM dialer_dnc WHERE scope = $1 AND number = $2", scope, number)
    return str(res) != "DELETE 0"


async def dnc_scopes(conn: asyncpg.Connection, number: str) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT scope, source, added_at FROM dialer_dnc WHERE number = $1 ORDER BY scope",
                            number)
    return [dict(r) for r in rows]


# ------------------------------------------------------------------------------------------ stats
async def attempt_history(conn: asyncpg.Connection, campaign_id: str, since: datetime) -> list[asyncpg.Record]:
    """Attempts in the longest abandon window, oldest first: to rebuild the ledger after a restart."""
    return list(await conn.fetch(
        "SELECT result, dialed_at, answered_at, amd_at, connected_at, ended_at, ring_seconds, talk_seconds "
        "FROM dial_attempts WHERE campaign_id = $1 AND dialed_at >= $2 ORDER BY dialed_at", campaign_id, since))


#: An attempt whose call may still need an agent, and so may yet abandon: not ended, and neither
#: connected, abandoned nor classified a machine yet (ringing, in AMD, or a person waiting).
OPEN_ATTEMPT = "ended_at IS NULL AND coalesce(result, 'ringing') IN ('ringing', 'answered', 'human')"


async def open_attempts(conn: asyncpg.Connection, campaign_id: str, since: datetime) -> list[asyncpg.Record]:
    """The campaign's calls in flight by its records (whoever placed them), dialled since `since`."""
    return list(await conn.fetch(
        "SELECT id, amd_at, coalesce((data->>'amd')::boolean, true) AS amd FROM dial_attempts "
        f"WHERE campaign_id = $1 AND dialed_at >= $2 AND {OPEN_ATTEMPT}",
        campaign_id, since))


async def attempt_outcomes(conn: asyncpg.Connection, ids: list[str]) -> list[asyncpg.Record]:
    """How these attempts stand now, with whether each is still open (`OPEN_ATTEMPT`)."""
    return list(await conn.fetch(
        "SELECT id, result, dialed_at, answered_at, amd_at, connected_at, ended_at, "
        f"coalesce((data->>'amd')::boolean, true) AS amd, ({OPEN_ATTEMPT}) AS open "
        "FROM dial_attempts WHERE id = ANY($1::text[])", ids))


async def abandon_window_rate(conn: asyncpg.Connection, campaign_id: str, *, window_seconds: float,
                              fp_weight: float) -> float:
    """The abandon rate of the attempts dialled in the last ``window_seconds`` under one rule (rounded
    to 4 places; 0.0 with no live answer)."""
    since = datetime.now(UTC) - timedelta(seconds=window_seconds)
    window = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE result = 'connected') AS humans,
                  count(*) FILTER (WHERE result = 'abandoned') AS abandons,
                  count(*) FILTER (WHERE result = 'machine') AS machines
           FROM dial_attempts WHERE campaign_id = $1 AND dialed_at >= $2""", campaign_id, since)
    fp = fp_weight * int(window["machines"])
    den = int(window["humans"]) + int(window["abandons"]) + fp
    return round((int(window["abandons"]) + fp) / den, 4) if den else 0.0


async def campaign_stats(conn: asyncpg.Connection, campaign_id: str, *, max_attempts: int,
                         window_seconds: float, fp_weight: float) -> dict[str, Any]:
    totals = await conn.fetchrow(
        """SELECT count(*) AS dials,
                  count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
                  count(*) FILTER (WHERE result = 'connected') AS contacts,
                  count(*) FILTER (WHERE result = 'abandoned') AS abandons,
                  count(*) FILTER (WHERE result = 'machine') AS machines,
                  coalesce(sum(talk_seconds), 0) AS talk_seconds
           FROM dial_attempts WHERE campaign_id = $1 AND result IS NOT NULL""", campaign_id)
    per_agent = await conn.fetch(
        """SELECT agent_id, count(*) AS calls, coalesce(sum(talk_seconds), 0) AS talk_seconds
           FROM dial_attempts WHERE campaign_id = $1 AND result = 'connected' AND agent_id IS NOT NULL
           GROUP BY agent_id ORDER BY agent_id""", campaign_id)
    sessions = await conn.fetch(
        """SELECT agent_id, sum(extract(epoch FROM coalesce(ended_at, now()) - coalesce(answered_at, created_at)))
                  AS seconds
           FROM calls WHERE data->>'dialer_campaign' = $1 AND data->>'kind' = 'agent-session'
           GROUP BY agent_id""", campaign_id)
    leads = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE status IN ('ready', 'dialing') AND attempts < $2) AS left,
                  count(*) AS total
           FROM dialer_leads WHERE campaign_id = $1""", campaign_id, max_attempts)
    logged = {r["agent_id"]: float(r["seconds"] or 0) for r in sessions}
    agent_seconds = sum(logged.values())
    dials = int(totals["dials"])
    talk = float(totals["talk_seconds"])
    agents = []
    for r in per_agent:
        hours = logged.get(r["agent_id"], 0.0) / 3600
        agents.append({"agent_id": r["agent_id"], "calls": int(r["calls"]),
                       "talk_minutes": round(float(r["talk_seconds"]) / 60, 2), "logged_in_hours": round(hours, 4),
                       "talk_minutes_per_hour": round(float(r["talk_seconds"]) / 60 / hours, 2) if hours else None})
    return {
        "dials": dials,
        "answered": int(totals["answered"]),
        "answer_rate": round(int(totals["answered"]) / dials, 4) if dials else None,
        "contacts": int(totals["contacts"]),
        "abandons": int(totals["abandons"]),
        "machines": int(totals["machines"]),
        "abandon_rate": await abandon_window_rate(conn, campaign_id, window_seconds=window_seconds,
                                                  fp_weight=fp_weight),
        "abandon_window_seconds": window_seconds,
        "talk_minutes": round(talk / 60, 2),
        "agent_hours": round(agent_seconds / 3600, 4),
        "talk_minutes_per_agent_hour": round(talk / 60 / (agent_seconds / 3600), 2) if agent_seconds else None,
        "agents": agents,
        "leads_left": int(leads["left"]),
        "leads_total": int(leads["total"]),
    }
