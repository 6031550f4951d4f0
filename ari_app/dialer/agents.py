"""Agents working a campaign, VICIdial-style: a persistent session per agent.

When an agent starts working a campaign the app calls their phone once and keeps it in the agent's own
mixing bridge. A live customer is added to that bridge, which is one REST call after AMD's decision,
so the 2-second connect rule is met with room to spare. After the customer hangs up the agent stays in
the bridge in wrap-up until they post a disposition (or `wrapup_seconds` pass), then is ready again.

While an agent is in a dialer session the ACD is told they are paused (reason `dialer:<campaign>`),
so inbound queues don't ring the same phone.

Pausing or logging out never puts a call at risk: it is applied at once only when the calls in flight
stay covered by the other ready agents (the core's `may_release_idle_agent`), otherwise when the next
call or wrap-up ends. A phone that hangs up can't be refused: its session just ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ari_app.acd.core import events as ce
from ari_app.ari import events as ev
from ari_app.dialer.core import may_release_idle_agent
from ari_app.dialer.model import AgentSession, OutboundCall, close_unborn, ts

if TYPE_CHECKING:
    from ari_app.dialer.campaigns import CampaignSpec
    from ari_app.dialer.dialer import Dialer

log = logging.getLogger(__name__)

AGENT_RING_SECONDS = 30


class AgentDesk:
    def __init__(self, dialer: Dialer) -> None:
        self.d = dialer
        self.s = dialer.s

    # ------------------------------------------------------------------ joining and leaving
    def join(self, spec: CampaignSpec, agent_id: str, endpoint: str) -> AgentSession:
        ari = self.s.ari
        now = time.time()
        session = AgentSession(agent_id, spec.id, endpoint, ari.new_id("dagent"), ari.new_id("dbridge"), since=now)
        self.d.sessions[agent_id] = session
        self.persist(session)
        rec = self.s.recorder
        rec.start_call(session.channel_id, direction="internal", created_at=ts(now), agent_id=agent_id,
                       callee=endpoint, data={"kind": "agent-session", "dialer_campaign": spec.id})
        rec.add_leg(session.channel_id, call_id=session.channel_id, role="agent", agent_id=agent_id,
                    created_at=ts(now), endpoint=endpoint)
        self.s.own_channel(session.channel_id, lambda e: self.on_event(session, e))
        self._acd_pause(session)

        async def originate() -> None:
            try:
                await ari.rest.channels.originate(
                    endpoint=endpoint, app=self.s.settings.app_name, app_args=f"dialer-agent,{spec.id},{agent_id}",
                    channel_id=session.channel_id, caller_id=f'"Campaign {spec.id}" <{spec.id}>',
                    timeout=AGENT_RING_SECONDS)
            except Exception as exc:  # noqa: BLE001 - their phone can't be called: no session
                log.warning("agent phone originate failed", extra={"agent_id": agent_id, "error": str(exc)})
                close_unborn(self.s.recorder, session.channel_id, session.channel_id, "failed")
                self._gone(session)
        self.s.spawn(originate(), name=f"dagent-{agent_id}")
        return session

    def on_event(self, session: AgentSession, e: ev.Event) -> None:
        if isinstance(e, ev.StasisStart) and session.state == "connecting":
            self.s.spawn(self._answered(session), name=f"dagent-up-{session.agent_id}")
        elif isinstance(e, ev.ChannelDestroyed):
            self._gone(session)

    async def _answered(self, session: AgentSession) -> None:
        rest = self.s.ari.rest
        await rest.bridges.create(bridge_id=session.bridge_id, type="mixing",
                                  name=f"dialer-{session.campaign_id}-{session.agent_id}")
        await self.s.quietly(rest.bridges.add_channel(bridge_id=session.bridge_id, channel=session.channel_id))
        self.s.recorder.set_leg(session.channel_id, outcome="answered")
        if session.state != "connecting":
            return
        self.free(session)

    def persist(self, session: AgentSession) -> None:
        """The session's row in `dialer_sessions` (deleted once it ended), so a restarted app can
        re-adopt the agent's channel and bridge (`dialer.restore`). Rows are merged while they wait in
        the writer: a burst of state changes costs one write."""
        row = None if session.state == "ended" else session.dump()
        self.s.writer.submit_rows("dialer_sessions", self.s.settings.app_name, {(session.agent_id,): row})

    def _gone(self, session: AgentSession) -> None:
        """The agent's phone hung up (or never answered): the session is over."""
        if session.state == "ended":
            return
        was = session.state
        session.cancel_timer()
        self._set(session, "ended")
        if self.d.sessions.get(session.agent_id) is session:
            del self.d.sessions[session.agent_id]
        call = self.d.calls.get(session.call_id or "")
        if was == "on_call" and call is not None:
            self.d.flow.hangup(call)  # the customer would be left alone in the bridge
        if session.preview is not None:
            self.d.release_preview(session)
        self._acd_unpause(session)
        self.s.spawn(self.s.quietly(self.s.ari.rest.bridges.destroy(bridge_id=session.bridge_id)))
        self.d.finish_undisposed(session.agent_id)
        self.d.changed(session.campaign_id)

    def hangup(self, session: AgentSession) -> None:
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=session.channel_id)))

    # ------------------------------------------------------------------ states
    def _set(self, session: AgentSession, state: str) -> None:
        if session.state != state:
            self.s.writer.agent_state(at=datetime.now(UTC), agent_id=session.agent_id, state=f"dialer-{state}",
                                      old_state=f"dialer-{session.state}", reason=session.campaign_id)
            session.state = state
            session.since = time.time()
        self.persist(session)

    def request(self, session: AgentSession, state: str) -> None:
        """`ready`, `paused` or `logged_out` from the API."""
        if state == "ready":
            session.pending = None
            self.persist(session)
            if session.state == "paused":
                self.free(session)
            return
        session.pending = "pause" if state == "paused" else "logout"
        self.persist(session)
        if session.state == "paused":
            self._release(session)
        elif session.state == "ready":
            self.apply_pending(session.campaign_id)
        # connecting, on a call, in wrap-up or previewing: applied when that is over

    def _release(self, session: AgentSession) -> None:
        pending, session.pending = session.pending, None
        self._set(session, "paused")
        if pending == "logout":
            self.hangup(session)

    def apply_pending(self, campaign_id: str) -> None:
        """Release ready agents who asked to pause or log out, while that keeps every call covered."""
        runner = self.d.runners.get(campaign_id)
        for session in [s for s in self.d.sessions.values() if s.campaign_id == campaign_id]:
            if session.pending is None or session.state != "ready":
                continue
            idle = sum(1 for s in self.d.sessions.values() if s.campaign_id == campaign_id and s.state == "ready")
            if may_release_idle_agent(idle, runner.in_flight() if runner else 0):
                self._release(session)

    def pick(self, campaign_id: str, reserved: str | None) -> AgentSession | None:
        """The agent for a live answer: the reserved one, else the longest-idle ready agent."""
        if reserved is not None:
            s = self.d.sessions.get(reserved)
            return s if s is not None and s.state == "reserved" else None
        ready = [s for s in self.d.sessions.values() if s.campaign_id == campaign_id and s.state == "ready"]
        return min(ready, key=lambda s: (s.pending is not None, s.since), default=None)

    def free(self, session: AgentSession) -> None:
        """The agent can take a call: a customer waiting for one first; else the pause or logout they
        asked for (going straight from a call to a pause uncovers no call), else ready."""
        call = self.d.flow.waiting_for(session.campaign_id, session.agent_id)
        if call is not None:
            self._set(session, "ready")
            self.d.flow.connect(call, session)
            return
        if session.pending is not None and session.state != "ready":
            self._release(session)
        else:
            self._set(session, "ready")
        self.d.changed(session.campaign_id)

    def on_call(self, session: AgentSession, call: OutboundCall, now: float) -> None:
        session.cancel_timer()
        session.call_id = call.call_id
        session.connected_at = now
        self._set(session, "on_call")
        session.preview = None
        session.extra.pop("row", None)  # the previewed lead is now this call's

    def call_ended(self, call: OutboundCall, now: float, talk: float) -> None:
        session = self.d.sessions.get(call.agent_id or "")
        self.d.undisposed[call.call_id] = call
        if session is None or session.call_id != call.call_id or session.state != "on_call":
            return
        session.calls += 1
        session.talk_seconds += talk
        self._set(session, "wrapup")
        wrap = self.d.runners[call.campaign_id].spec.wrapup_seconds
        if wrap <= 0:
            self.wrapup_over(session, None)
        else:
            session.timer = asyncio.get_running_loop().call_later(wrap, self.wrapup_over, session, None)

    def wrapup_over(self, session: AgentSession, disposition: str | None) -> None:
        """Wrap-up ends (disposition posted, or the time is up): the agent takes calls again."""
        session.cancel_timer()
        if session.state != "wrapup":
            return
        call_id = session.call_id
        if disposition is None and call_id in self.d.undisposed and self.d.runners[session.campaign_id].spec.wrapup_seconds > 0:
            self.d.dispose_default(call_id)
        if session.connected_at is not None:
            self.d.runners[session.campaign_id].stats.on_handle_done(time.time() - session.connected_at)
        session.connected_at = None
        self.free(session)

    def reservation_over(self, agent_id: str) -> None:
        """A previewed call ended without reaching the agent: they are free again."""
        session = self.d.sessions.get(agent_id)
        if session is not None and session.state == "reserved":
            session.preview = None
            self.free(session)

    # ------------------------------------------------------------------ the ACD
    def _acd_pause(self, session: AgentSession) -> None:
        acd = self.s.acd
        info = acd.engine.agent(session.agent_id)
        if info is not None and info.status == "available":
            acd.handle(ce.AgentPause(session.agent_id, f"dialer:{session.campaign_id}"))
            session.acd_paused = True

    def _acd_unpause(self, session: AgentSession) -> None:
        acd = self.s.acd
        info = acd.engine.agent(session.agent_id)
        if session.acd_paused and info is not None and info.status == "paused" \
                and info.pause_reason == f"dialer:{session.campaign_id}":
            acd.handle(ce.AgentUnpause(session.agent_id))
