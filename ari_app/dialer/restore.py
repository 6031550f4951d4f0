"""Agents' dialer sessions survive an app restart, as the ACD's callers and agents do.

Asterisk keeps the agent's channel in its bridge while the app is away (the channel stays in the
Stasis application), so a restarted app need not call the agent's phone again: it re-adopts them.

- Every session change is stored as the agent's row in `dialer_sessions` (`AgentDesk.persist`,
  through the batched writer, scoped by app name like `acd_state_rows`).
- At start, before ARI connects (`load`): the rows become sessions again and their channels are
  ours; the customer call on hand is rebuilt from its `dial_attempts` row (connected: its channel
  is ours too and its lead stays claimed; in wrap-up: it waits for the agent's disposition, and the
  wrap-up timer starts again for what was left of it).
- At the first reconcile (`adopt`, with `GET /channels` and `GET /bridges`): a session whose agent
  channel died while the app was down ends as any other (`AgentDesk._gone`: `dialer-ended` state
  record, ACD unpaused, bridge destroyed; the recorder already closed the leg as lost); a live one
  gets its bridge back if Asterisk lost it, and one still being called goes on when it answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ari_app.dialer.core import Lead
from ari_app.dialer.model import AgentSession, OutboundCall

if TYPE_CHECKING:
    import asyncpg

    from ari_app.dialer.dialer import Dialer

log = logging.getLogger(__name__)

_CALL_SQL = """
SELECT a.campaign_id, a.lead_id, a.number, a.attempt, a.dialed_at, a.answered_at, a.connected_at, a.disposition,
       a.ended_at, l.tz, l.retry_at, l.last_abandoned_at
FROM dial_attempts a JOIN dialer_leads l ON l.id = a.lead_id WHERE a.id = $1"""


async def load(dialer: Dialer, conn: asyncpg.Connection) -> list[int]:
    """Rebuild this app's sessions; return the leads of the calls still connected (they stay claimed)."""
    rows = await conn.fetch("SELECT agent_id, state FROM dialer_sessions WHERE app = $1", dialer.s.settings.app_name)
    keep: list[int] = []
    for r in rows:
        data = r["state"] if isinstance(r["state"], dict) else json.loads(r["state"])
        session = AgentSession.load(r["agent_id"], data)
        runner = dialer.runners.get(session.campaign_id)
        if runner is None:  # its campaign could not be loaded: the agent's phone is hung up at reconcile
            log.warning("dialer session of an unknown campaign", extra={"agent_id": session.agent_id,
                                                                         "campaign": session.campaign_id})
            dialer.leftovers.append(session.channel_id)
            dialer.desk.persist(_ended(session))
            continue
        if session.state == "reserved":  # a preview: its lead was released with the instance's claims
            session.state = "ready"
        call = await _load_call(conn, session) if session.call_id else None
        if session.state == "on_call":
            if call is None or call.ended_at is not None:
                session.state = "wrapup"  # the record says the call is over (or never landed)
            else:
                dialer.calls[call.call_id] = call
                dialer.s.own_channel(call.call_id, _handler(dialer.flow.on_event, call))
                keep.append(call.lead_id)
        if session.state == "wrapup":
            if call is not None and call.disposition is None:
                call.state = "ended"
                dialer.undisposed[call.call_id] = call
            left = session.since + runner.spec.wrapup_seconds - time.time()
            session.timer = asyncio.get_running_loop().call_later(max(0.0, left), dialer.desk.wrapup_over,
                                                                   session, None)
        session.extra["restored"] = True
        dialer.sessions[session.agent_id] = session
        dialer.s.own_channel(session.channel_id, _handler(dialer.desk.on_event, session))
    if rows:
        log.info("dialer sessions restored", extra={"sessions": len(dialer.sessions), "calls": len(keep)})
    await _end_calls_in_progress(dialer, conn, keep)
    return keep


_IN_PROGRESS_SQL = """
UPDATE dial_attempts a SET ended_at = now(), updated_at = now(),
       result = CASE WHEN a.answered_at IS NULL THEN 'failed' ELSE 'abandoned' END,
       data = a.data || '{"ended_by": "app-restart"}'::jsonb
FROM dialer_leads l
WHERE l.id = a.lead_id AND l.status = 'dialing' AND l.claimed_by = $1 AND a.ended_at IS NULL
  AND NOT (a.lead_id = ANY($2::bigint[]))
RETURNING a.id, a.lead_id, a.answered_at"""


async def _end_calls_in_progress(dialer: Dialer, conn: asyncpg.Connection, keep: list[int]) -> None:
    """Calls that were ringing or in AMD when the app stopped are not taken over: end them now.

    Why before the instance's claims are released: their channels may still ring in Asterisk, and
    a released lead could be dialled again while the first call still rings, or that call answered
    and hung up on as an unknown channel. So each is hung up at the first reconcile (a leftover), its
    attempt ends here, and one a person had already answered counts as an abandon (the ledger is
    rebuilt from these rows next; the lead's 72 h rule applies), whether or not AMD had decided."""
    rows = await conn.fetch(_IN_PROGRESS_SQL, dialer.owner, keep)
    abandoned = [r["lead_id"] for r in rows if r["answered_at"] is not None]
    if abandoned:
        await conn.execute("UPDATE dialer_leads SET last_abandoned_at = now(), last_result = 'abandoned', "
                           "updated_at = now() WHERE id = ANY($1::bigint[])", abandoned)
    dialer.leftovers.extend(r["id"] for r in rows)
    if rows:
        log.warning("calls in progress at the last stop ended", extra={"calls": len(rows), "abandoned": len(abandoned)})


def _handler(fn: Any, obj: Any) -> Any:
    return lambda e: fn(obj, e)


def _ended(session: AgentSession) -> AgentSession:
    session.state = "ended"
    return session


async def _load_call(conn: asyncpg.Connection, session: AgentSession) -> OutboundCall | None:
    """The call on the agent's line (or in wrap-up), from its attempt record and its lead."""
    row = await conn.fetchrow(_CALL_SQL, session.call_id)
    if row is None or row["lead_id"] is None:
        return None
    attempt = int(row["attempt"] or 1)
    lead = Lead(lead_id=str(row["lead_id"]), phone=row["number"], tz=row["tz"], attempts=attempt - 1,
                retry_not_before=row["retry_at"].timestamp() if row["retry_at"] else None,
                last_abandoned_at=row["last_abandoned_at"].timestamp() if row["last_abandoned_at"] else None)
    assert session.call_id is not None
    dialed = row["dialed_at"].timestamp() if row["dialed_at"] else session.since
    call = OutboundCall(session.call_id, row["campaign_id"], lead, int(row["lead_id"]), row["number"], "", False,
                        dialed, state="connected", agent_id=session.agent_id, disposition=row["disposition"],
                        answered_at=row["answered_at"].timestamp() if row["answered_at"] else None,
                        connected_at=session.connected_at)
    call.needs_agent_at = call.connected_at
    call.ended_at = row["ended_at"].timestamp() if row["ended_at"] else None
    return call


async def adopt(dialer: Dialer, result: dict[str, Any]) -> None:
    """First reconcile after a start: sessions whose channel is alive go on; the others end."""
    alive, bridges = result["channels"], result["bridges"]
    rest = dialer.s.ari.rest
    for channel_id in dialer.leftovers:
        await dialer.s.quietly(rest.channels.hangup(channel_id=channel_id))
    dialer.leftovers.clear()
    for session in [s for s in dialer.sessions.values() if s.extra.pop("restored", False)]:
        channel = alive.get(session.channel_id)
        if channel is None:
            log.info("dialer session ended while the app was down", extra={"agent_id": session.agent_id})
            dialer.desk._gone(session)
            continue
        in_stasis = channel.dialplan is not None and channel.dialplan.app_name == "Stasis"
        if session.state == "connecting":
            if in_stasis:  # answered before the restart, not yet in its bridge
                dialer.s.spawn(dialer.desk._answered(session), name=f"dagent-up-{session.agent_id}")
            continue  # still ringing: its StasisStart will come
        bridge = bridges.get(session.bridge_id)
        if bridge is None:
            await rest.bridges.create(bridge_id=session.bridge_id, type="mixing",
                                      name=f"dialer-{session.campaign_id}-{session.agent_id}")
        if bridge is None or session.channel_id not in bridge.channels:
            await dialer.s.quietly(rest.bridges.add_channel(bridge_id=session.bridge_id, channel=session.channel_id))
        log.info("dialer session re-adopted", extra={"agent_id": session.agent_id, "state": session.state})
    for campaign_id in list(dialer.runners):
        dialer.changed(campaign_id)
