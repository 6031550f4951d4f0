"""Supervisor tools: listen to, coach (whisper) or barge into an agent's call.

How: the supervisor's phone is called first (so nothing touches the agent's call until someone
is there to listen); once it answers, a snoop channel is created on the agent's leg and bridged
with the supervisor's leg. The snoop's directions decide who hears whom:

    mode     spy    whisper   the supervisor hears   who hears the supervisor
    listen   both   none      agent and customer     nobody
    whisper  both   out       agent and customer     the agent only
    barge    both   both      agent and customer     agent and customer

A session ends when the supervisor hangs up, the agent's call ends (Asterisk removes the snoop
with the channel it spies on), or `DELETE /supervisor/sessions/{id}`. Every session is a row in
`supervisor_sessions`, written through the batched writer like the call records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ari_app.ari import events as ev
from ari_app.ari.rest import SnoopDirection
from ari_app.calls.direct import dial_failure
from ari_app.reporting.core.prometheus import Family
from ari_app.store.writer import Upsert

if TYPE_CHECKING:
    from ari_app.service import Service

log = logging.getLogger(__name__)

#: mode -> (spy, whisper) directions of the snoop channel, seen from the agent's leg.
MODES: dict[str, tuple[SnoopDirection, SnoopDirection]] = {"listen": ("both", "none"), "whisper": ("both", "out"),
                                     "barge": ("both", "both")}


class NotOnCall(Exception):
    """The agent has no call to join."""


@dataclass
class Session:
    id: str
    mode: str
    agent_id: str
    call_id: str
    agent_channel: str
    endpoint: str
    supervisor_channel: str
    snoop_channel: str
    bridge_id: str
    requested_by: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "ringing"  # ringing | connected | ended
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "mode": self.mode, "agent_id": self.agent_id, "call_id": self.call_id,
                "supervisor_endpoint": self.endpoint, "status": self.status, "outcome": self.outcome,
                "supervisor_channel": self.supervisor_channel, "snoop_channel": self.snoop_channel,
                "bridge_id": self.bridge_id, "created_at": self.created_at, "connected_at": self.connected_at,
                "ended_at": self.ended_at}


class Supervisor:
    def __init__(self, service: Service) -> None:
        from ari_app.supervisor import api

        self.s = service
        self.sessions: dict[str, Session] = {}
        service.routes["supervisor-leg"] = self._stray
        service.routes["supervisor-snoop"] = self._stray
        service.shutdown_hooks.append(self.stop)
        reporting = getattr(service, "reporting", None)
        if reporting is not None:
            reporting.metric_sources.append(self.metrics)
        api.register(service.api, service, self)

    async def start(self) -> None:
        """Sessions live in the process of this app (name): any left open by a previous one ended
        with it (its channels are hung up by the reconcile that follows, as orphans)."""
        try:
            async with self.s.db.acquire() as conn:
                await conn.execute(
                    """UPDATE supervisor_sessions
                          SET ended_at = now(), updated_at = now(),
                              outcome = CASE WHEN connected_at IS NULL THEN 'app-restart' ELSE 'completed' END,
                              data = data || '{"ended_by": "app-restart"}'::jsonb
                        WHERE ended_at IS NULL AND data->>'app' = $1""", self.s.settings.app_name)
        except Exception as exc:  # noqa: BLE001 - only bookkeeping; the writer may still hold rows
            log.warning("could not close supervisor sessions of a previous run", extra={"error": type(exc).__name__})

    async def stop(self) -> None:
        for s in list(self.sessions.values()):
            await self._end(s, "shutdown")

    # ------------------------------------------------------------------ start a session
    def agent_call(self, agent_id: str) -> tuple[str, str]:
        """(call id, agent channel) of the agent's connected call, else NotOnCall."""
        for link in self.s.acd.items.values():
            if link.agent_id == agent_id and link.connected and not link.ended and link.agent_channel:
                return link.item_id, link.agent_channel
        raise NotOnCall(agent_id)

    def begin(self, mode: str, agent_id: str, endpoint: str, *, timeout: int = 30,
              requested_by: str | None = None) -> Session:
        call_id, agent_channel = self.agent_call(agent_id)
        ari = self.s.ari
        sid = ari.new_id("sup")
        session = Session(sid, mode, agent_id, call_id, agent_channel, endpoint, supervisor_channel=f"{sid}-phone",
                          snoop_channel=f"{sid}-snoop", bridge_id=f"{sid}-bridge", requested_by=requested_by)
        self.sessions[sid] = session
        self._record(session, created_at=session.created_at, mode=mode, agent_id=agent_id, call_id=call_id,
                     agent_channel=agent_channel, supervisor_endpoint=endpoint, requested_by=requested_by,
                     supervisor_channel=session.supervisor_channel, snoop_channel=session.snoop_channel,
                     bridge_id=session.bridge_id, data={"app": self.s.settings.app_name})
        self.s.own_channel(session.supervisor_channel, lambda e: self._on_event(session, e))
        self.s.own_channel(session.snoop_channel, lambda e: self._on_event(session, e))
        self.s.spawn(self._run(session, timeout), name=f"supervisor-{sid}")
        return session

    async def _run(self, s: Session, timeout: int) -> None:
        rest, ari = self.s.ari.rest, self.s.ari
        answered = ari.expect(lambda e: isinstance(e, ev.StasisStart | ev.ChannelDestroyed)
                              and e.channel.id == s.supervisor_channel, timeout=timeout + 15)
        try:
            await rest.channels.originate(endpoint=s.endpoint, app=self.s.settings.app_name,
                                          app_args=f"supervisor-leg,{s.id}", channel_id=s.supervisor_channel,
                                          caller_id=f'"{s.mode}: {s.agent_id}" <{s.agent_id}>', timeout=timeout)
            first = await answered
        except Exception as exc:  # noqa: BLE001 - any failure to ring is a failed session
            answered.cancel()
            log.warning("supervisor originate failed", extra={"session": s.id, "error": str(exc)})
            await self._end(s, "failed")
            return
        if isinstance(first, ev.ChannelDestroyed):
            await self._end(s, f"supervisor-{dial_failure(first.cause)}")
            return
        if s.status == "ended":
            return
        spy, whisper = MODES[s.mode]
        snooped = ari.expect_stasis_start(s.snoop_channel, timeout=10)
        try:
            self.agent_call(s.agent_id)  # still on the same call?
            await rest.channels.snoop(channel_id=s.agent_channel, app=self.s.settings.app_name, spy=spy,
                                      whisper=whisper, app_args=f"supervisor-snoop,{s.id}",
                                      snoop_id=s.snoop_channel)
            await snooped
            await rest.bridges.create(bridge_id=s.bridge_id, type="mixing", name=f"supervisor-{s.id}")
            await rest.bridges.add_channel(bridge_id=s.bridge_id, channel=[s.snoop_channel, s.supervisor_channel])
        except Exception as exc:  # noqa: BLE001 - the call ended meanwhile, or Asterisk refused
            snooped.cancel()
            log.info("supervisor session could not join the call", extra={"session": s.id, "error": str(exc)})
            await self._end(s, "call-ended")
            return
        if s.status == "ended":
            return
        s.status, s.connected_at = "connected", datetime.now(UTC)
        self._record(s, connected_at=s.connected_at, outcome="connected")

    # ------------------------------------------------------------------ events and ending
    def _on_event(self, s: Session, e: ev.Event) -> None:
        if isinstance(e, ev.StasisStart):
            return  # awaited by _run
        if isinstance(e, ev.ChannelDestroyed | ev.StasisEnd) and s.status != "ended":
            if s.status == "ringing" and e.channel.id == s.supervisor_channel:
                return  # unanswered: _run reads the cause from the ChannelDestroyed it waits for
            outcome = "supervisor-hangup" if e.channel.id == s.supervisor_channel else "call-ended"
            self.s.spawn(self._end(s, outcome), name=f"supervisor-end-{s.id}")

    async def end(self, session_id: str) -> Session | None:
        s = self.sessions.get(session_id)
        if s is not None:
            await self._end(s, "ended-by-request")
        return s

    async def _end(self, s: Session, outcome: str) -> None:
        if s.status == "ended":
            return
        connected = s.status == "connected"
        s.status, s.ended_at = "ended", datetime.now(UTC)
        # A session that got as far as the call is "completed", whoever ended it; one that never
        # did says why (supervisor-noanswer, supervisor-busy, call-ended, failed, ...).
        s.outcome = "completed" if connected else outcome
        self._record(s, ended_at=s.ended_at, outcome=s.outcome, data={"ended_by": outcome})
        self.sessions.pop(s.id, None)
        rest = self.s.ari.rest
        for cid in (s.snoop_channel, s.supervisor_channel):
            await self.s.quietly(rest.channels.hangup(channel_id=cid))
        await self.s.quietly(rest.bridges.destroy(bridge_id=s.bridge_id))

    def _stray(self, e: ev.StasisStart) -> None:
        """A supervisor leg or snoop we no longer track (its session ended): hang it up."""
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=e.channel.id)))

    def _record(self, s: Session, **fields: Any) -> None:
        self.s.writer.submit(Upsert("supervisor_sessions", s.id, fields))

    def metrics(self) -> list[Family]:
        f = Family("ari_app_supervisor_sessions", "gauge", "Supervisor listen/whisper/barge sessions now, by mode")
        for mode in MODES:
            f.add(sum(1 for s in self.sessions.values() if s.mode == mode), mode=mode)
        return [f]
