"""Agents' dialer sessions, and the calls in progress, survive an app restart, as the ACD's callers and agents do.

Asterisk keeps the agent's channel in its bridge while the app is away (the channel stays in the
Stasis application), so a restarted app need not call the agent's phone again: it re-adopts them.

- Every session change is stored as the agent's row in `dialer_sessions` (`AgentDesk.persist`,
  through the batched writer, scoped by app name like `acd_state_rows`).
- At start, before ARI connects (`load`): the rows become sessions again and their channels are
  ours; the customer call on hand is rebuilt from its `dial_attempts` row (connected: its channel
  is ours too and its lead stays claimed; in wrap-up: it waits for the agent's disposition, and the
  wrap-up timer starts again for what was left of it).
- Calls still ringing, in AMD or waiting for an agent are rebuilt from their open `dial_attempts`
  rows (the claimed leads of this instance) and their channels are ours again before ARI connects;
  their leads stay claimed. They count as in flight for the pacer and the abandon budget at once.
- At the first reconcile (`adopt`, with `GET /channels` and `GET /bridges`): a session whose agent
  channel died while the app was down ends as any other (`AgentDesk._gone`: `dialer-ended` state
  record, ACD unpaused, bridge destroyed; the recorder already closed the leg as lost); a live one
  gets its bridge back if Asterisk lost it, and one still being called goes on when it answers.
  Then the calls: one whose channel is gone is ended (`data.ended_by` = app-restart) and its lead
  released; a live one carries on (`CallFlow.resume`) as if this run had placed it.
- A call ringing at the stop whose customer answered while the app was down was hung up by
  Asterisk (no app to take it into Stasis): the dialplan's hangup handler noted it in a global
  variable (`untaken`), and its attempt ends as an abandon, not as failed. Globals are cleared by a
  dialplan reload or an Asterisk restart: the sentinel `MARKS_KEPT`, set at every reconcile, tells
  whether the notes may have been lost since, and then a gone ringing call counts as an abandon
  (the guarantee needs every abandon counted; an unknown one is taken as one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ari_app.ari.errors import AriError
from ari_app.dialer.calls import UNTAKEN_PREFIX, greeting_silence
from ari_app.dialer.core import Lead
from ari_app.dialer.model import AgentSession, OutboundCall, ts

if TYPE_CHECKING:
    import asyncpg

    from ari_app.dialer.dialer import Dialer

log = logging.getLogger(__name__)

_CALL_SQL = """
SELECT a.campaign_id, a.lead_id, a.number, a.attempt, a.dialed_at, a.answered_at, a.connected_at, a.disposition,
       a.ended_at, l.tz, l.retry_at, l.last_abandoned_at
FROM dial_attempts a JOIN dialer_leads l ON l.id = a.lead_id WHERE a.id = $1"""


async def load(dialer: Dialer, conn: asyncpg.Connection) -> list[int]:
    """Rebuild this app's sessions and calls; return the leads of the calls re-adopted (they stay claimed)."""
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
    await _load_calls_in_progress(dialer, conn, keep)
    previewing = {c.reserved_agent for c in dialer.calls.values() if c.restored and c.reserved_agent}
    for session in dialer.sessions.values():
        if session.state == "reserved":
            if session.agent_id in previewing:  # the lead they previewed is being dialled: still theirs
                call_id = next(c.call_id for c in dialer.calls.values() if c.reserved_agent == session.agent_id)
                session.preview = {"call_id": call_id}
            else:  # a preview not dialled: its lead was released with the instance's claims
                session.state = "ready"
    return keep


_IN_PROGRESS_SQL = """
SELECT a.id, a.campaign_id, a.lead_id, a.number, a.attempt, a.dialed_at, a.answered_at, a.amd_at, a.amd_status,
       a.amd_cause, a.connected_at, a.result, a.agent_id, a.data, l.tz, l.retry_at, l.last_abandoned_at
FROM dial_attempts a JOIN dialer_leads l ON l.id = a.lead_id
WHERE l.status = 'dialing' AND l.claimed_by = $1 AND a.ended_at IS NULL AND NOT (a.lead_id = ANY($2::bigint[]))
ORDER BY a.dialed_at"""

_END_SQL = """
UPDATE dial_attempts a SET ended_at = now(), updated_at = now(), result = r.result,
       answered_at = coalesce(a.answered_at, r.answered_at),
       ring_seconds = coalesce(a.ring_seconds, round(extract(epoch FROM r.answered_at - a.dialed_at), 3)),
       data = a.data || r.data::jsonb
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS r(id, result, answered_at, data)
WHERE a.id = r.id AND a.ended_at IS NULL"""

_ENDED_BY = json.dumps({"ended_by": "app-restart"})

#: A global variable the app sets at every reconcile: present at the next one, no dialplan reload
#: or Asterisk restart has cleared the globals (and so the hangup handler's notes) in between.
MARKS_KEPT = "ARI_APP_DIALER_MARKS"


async def _load_calls_in_progress(dialer: Dialer, conn: asyncpg.Connection, keep: list[int]) -> None:
    """Calls that were ringing, in AMD or waiting for an agent when the app stopped are re-adopted:
    they are live calls again (in flight for the pacer and the abandon budget, their leads stay
    claimed), their channels ours, so what Asterisk reports next (answer, AMD's result, hangup,
    its own ring timeout) is handled as for a call placed by this run. Whether each channel still
    exists is known at the first reconcile (`adopt`). A call whose campaign could not be loaded is
    ended now and its channel hung up then, as before re-adoption existed."""
    rows = await conn.fetch(_IN_PROGRESS_SQL, dialer.owner, keep)
    orphans: list[tuple[str, str]] = []
    for r in rows:
        call = _call_from_row(r)
        if call is None or call.campaign_id not in dialer.runners:
            orphans.append((r["id"], "failed" if r["answered_at"] is None else "abandoned"))
            continue
        dialer.calls[call.call_id] = call
        dialer.s.own_channel(call.call_id, _handler(dialer.flow.on_event, call))
        keep.append(call.lead_id)
    if orphans:  # their leads are released with the instance's other claims
        await conn.execute(_END_SQL, [o[0] for o in orphans], [o[1] for o in orphans], [None] * len(orphans),
                           [_ENDED_BY] * len(orphans))
        abandoned = [r["lead_id"] for r in rows if (r["id"], "abandoned") in orphans]
        if abandoned:
            await conn.execute("UPDATE dialer_leads SET last_abandoned_at = now(), last_result = 'abandoned', "
                               "updated_at = now() WHERE id = ANY($1::bigint[])", abandoned)
        dialer.leftovers.extend(o[0] for o in orphans)
        log.warning("calls in progress of unknown campaigns ended", extra={"calls": len(orphans)})
    restored = [c for c in dialer.calls.values() if c.restored]
    if restored:
        log.info("dialer calls in progress restored", extra={"calls": len(restored)})


def _call_from_row(r: Any) -> OutboundCall | None:
    """The live call an attempt row describes; None for one that reached an agent (its session would
    have brought it back: without one it can't be carried on)."""
    if r["connected_at"] is not None or r["lead_id"] is None:
        return None
    data = r["data"] if isinstance(r["data"], dict) else json.loads(r["data"] or "{}")
    attempt = int(r["attempt"] or 1)
    lead = Lead(lead_id=str(r["lead_id"]), phone=r["number"], tz=r["tz"], attempts=attempt - 1,
                retry_not_before=r["retry_at"].timestamp() if r["retry_at"] else None,
                last_abandoned_at=r["last_abandoned_at"].timestamp() if r["last_abandoned_at"] else None)
    answered = r["answered_at"].timestamp() if r["answered_at"] else None
    amd_at = r["amd_at"].timestamp() if r["amd_at"] else None
    call = OutboundCall(r["id"], r["campaign_id"], lead, int(r["lead_id"]), r["number"], str(data.get("dial", "")),
                        bool(data.get("amd")), r["dialed_at"].timestamp(), reserved_agent=r["agent_id"],
                        answered_at=answered, amd_at=amd_at, restored=True)
    if r["result"] in ("machine", "abandoned") or (amd_at is not None and r["amd_status"] not in ("HUMAN", "NOTSURE")):
        call.state = "ending"  # decided before the stop (message or safe harbor under way): hung up at reconcile
        call.result = r["result"] if r["result"] in ("machine", "abandoned") else "hangup"
    elif answered is None:
        call.state = "ringing"
    elif call.amd and amd_at is None:
        call.state = "amd"
    else:  # a person on the line, since the end of their greeting (AMD) or the answer
        call.state = "waiting"
        call.needs_agent_at = amd_at - greeting_silence(r["amd_cause"] or "") if amd_at is not None else answered
    return call


async def untaken(dialer: Dialer, calls: list[OutboundCall]) -> dict[str, float | None]:
    """Of these calls, ringing when last heard of and whose channel is now gone, those a person
    answered while no app was connected (Asterisk hung them up): call id -> the answer time, as the
    dialplan's hangup handler noted it in the global `DIALER_UNTAKEN_<channel id>` (read, then
    deleted). The time is None when it can't be known: the globals were cleared since the last
    reconcile (no `MARKS_KEPT`: a dialplan reload or an Asterisk restart) or ARI failed; such a call
    counts as an abandon too. One GET per gone ringing call, only at a (re)connect."""
    ringing = [c for c in calls if c.state == "ringing" and c.answered_at is None]
    if not ringing:
        return {}
    asterisk = dialer.s.ari.rest.asterisk
    out: dict[str, float | None] = {}
    try:
        kept = (await asterisk.get_global_var(variable=MARKS_KEPT)).value == "1"
        for call in ringing:
            name = UNTAKEN_PREFIX + call.call_id
            value = (await asterisk.get_global_var(variable=name)).value
            if value:
                out[call.call_id] = float(value)
                await asterisk.set_global_var(variable=name)  # no value: the global is deleted
            elif not kept:
                out[call.call_id] = None
    except (AriError, ValueError) as exc:
        log.warning("could not read the notes of answers while the app was away; counting abandons",
                    extra={"error": str(exc)})
        out.update({c.call_id: out.get(c.call_id) for c in ringing})
    if out:
        log.warning("customers answered while no app was connected: abandons",
                    extra={"calls": len(out), "unknown": sum(1 for v in out.values() if v is None)})
    return out


async def keep_marks(dialer: Dialer) -> None:
    """Set `MARKS_KEPT` (every reconcile, after `untaken` read it)."""
    await dialer.s.quietly(dialer.s.ari.rest.asterisk.set_global_var(variable=MARKS_KEPT, value="1"))


async def _end_gone_calls(dialer: Dialer, calls: list[OutboundCall], answered: dict[str, float | None]) -> None:
    """Re-adopted calls whose channel died while the app was down: no event will tell how they went.
    The attempt ends with what is known (failed if unanswered; abandoned if a person had answered and
    no agent had them, whether or not AMD had decided: the conservative count; abandoned too if the
    customer of a ringing call answered while the app was down, `answered` from `untaken`: its
    `answered_at` is the hangup handler's time, `data.answered_while_down`; machine or abandoned as
    already decided), `data.ended_by` = app-restart; its lead is scheduled by the core's rules
    and released. The rows are written before this returns, so the ledger the runner rebuilds when
    it takes the campaign's lock (after this first reconcile) counts these abandons."""
    now = time.time()
    data: dict[str, dict[str, Any]] = {}
    for call in calls:
        call.cancel_timer()
        data[call.call_id] = {"ended_by": "app-restart"}
        if call.call_id in answered:
            data[call.call_id].update(dialer.flow.count_untaken(call, answered[call.call_id])["data"])
        elif call.result not in ("machine", "abandoned"):
            call.result = "failed" if call.answered_at is None else "abandoned"
            if call.result == "abandoned":
                dialer.runners[call.campaign_id].ledger.record_abandon(now)
        call.state = "ended"
        call.ended_at = now
        dialer.calls.pop(call.call_id, None)
        dialer.s.channel_handlers.pop(call.call_id, None)
    answer_times = [ts(answered.get(c.call_id)) for c in calls]
    try:
        async with dialer.s.db.acquire() as conn:
            await conn.execute(_END_SQL, [c.call_id for c in calls], [c.result for c in calls], answer_times,
                               [json.dumps(data[c.call_id]) for c in calls])
    except Exception as exc:  # noqa: BLE001 - a database blink: the writer holds the records through it
        log.warning("ending calls lost at a restart through the writer", extra={"error": type(exc).__name__})
        for call, at in zip(calls, answer_times, strict=True):
            fields: dict[str, Any] = {"ended_at": ts(now), "result": call.result, "data": data[call.call_id]}
            if at is not None:
                fields.update(answered_at=at, ring_seconds=round(at.timestamp() - call.dialed_at, 3))
            dialer.flow.write(call, **fields)
    for call in calls:
        dialer.runners[call.campaign_id].finish_lead(call, now)
        if call.reserved_agent:
            dialer.desk.reservation_over(call.reserved_agent)
    log.warning("calls in progress at the last stop ended while the app was down",
                extra={"calls": len(calls), "abandoned": sum(1 for c in calls if c.result == "abandoned")})


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
    """First reconcile after a start: sessions and calls whose channel is alive go on; the others end."""
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
    calls = [c for c in dialer.calls.values() if c.restored]
    for call in calls:
        call.restored = False
    gone = [c for c in calls if c.call_id not in alive]
    if gone:
        await _end_gone_calls(dialer, gone, await untaken(dialer, gone))
    live = [c for c in calls if c.call_id in alive]
    for campaign_id in dict.fromkeys(c.campaign_id for c in live):  # their ledger is kept from now on
        await dialer.runners[campaign_id].own_for_adopted_calls()
    for call in live:
        log.info("dialer call re-adopted", extra={"call_id": call.call_id, "state": call.state})
        dialer.flow.resume(call, alive[call.call_id])
    for campaign_id in list(dialer.runners):
        dialer.changed(campaign_id)
