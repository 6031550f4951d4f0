"""One outbound call over ARI: originate the customer with our channel id, answering-machine detection,
connect a live person to an agent's bridge, or play the safe-harbor message; records of every step.

AMD: an answered channel is sent into the dialplan's `amd` context (`AMD()`), which returns it into
the app as `Stasis(<app>,amd-result,<AMDSTATUS>,<AMDCAUSE>)`. While it is out of the app we are
subscribed to it explicitly, so a hangup during AMD still reaches us, and the recorder is told the leg
comes back (`expect_return`).

A person (AMD HUMAN or NOTSURE, or any answer without AMD) is added to a ready agent's bridge at once;
if no agent is ready within `connect_within` (2 s) the call is abandoned: the safe-harbor message is
played, the abandon is counted in the ledger, and the lead is blocked for 72 h by the core's gate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ari_app.ari import events as ev
from ari_app.ari.errors import AriHttpError, is_gone
from ari_app.dialer.campaigns import render_dial
from ari_app.dialer.core import Lead
from ari_app.dialer.model import OutboundCall, close_unborn, ts, unanswered_result
from ari_app.store.writer import Upsert

if TYPE_CHECKING:
    from ari_app.dialer.dialer import Dialer
    from ari_app.dialer.model import AgentSession
    from ari_app.dialer.runner import CampaignRunner

log = logging.getLogger(__name__)

AMD_WATCHDOG_MARGIN = 5.0

#: The dialplan's hangup handler of every customer channel (`dialer-customer-hangup` in
#: dialplan/extensions.conf), pushed by the originate's variables. A customer who answers while no
#: app is connected (a restart) is hung up by Asterisk; the handler then sets the global variable
#: `UNTAKEN_PREFIX + <channel id>` to the time (epoch seconds, ms), and writes nothing otherwise.
HANGUP_HANDLER = "dialer-customer-hangup,s,1"
UNTAKEN_PREFIX = "DIALER_UNTAKEN_"


class CallFlow:
    def __init__(self, dialer: Dialer) -> None:
        self.d = dialer
        self.s = dialer.s

    # ------------------------------------------------------------------ records
    def write(self, call: OutboundCall, **fields: Any) -> None:
        """The attempt's record (dial_attempts), through the batched writer."""
        self.s.writer.submit(Upsert("dial_attempts", call.call_id, fields))

    # ------------------------------------------------------------------ dialing
    def dial(self, runner: CampaignRunner, row: Any, lead: Lead, *, amd: bool,
             reserved_agent: str | None = None) -> OutboundCall | None:
        spec = runner.spec
        call_id = self.s.ari.new_id("dial")
        now = time.time()
        try:
            dial = render_dial(spec.dial_template, row["phone"], _data(row))
        except (KeyError, ValueError) as exc:
            dial = ""
            log.warning("dial template needs a field the lead lacks", extra={"campaign": spec.id, "error": str(exc)})
        call = OutboundCall(call_id, spec.id, lead, int(row["id"]), row["phone"], dial, amd and reserved_agent is None,
                            now, reserved_agent=reserved_agent)
        self.d.calls[call_id] = call
        self.write(call, campaign_id=spec.id, lead_id=call.lead_id, number=call.phone, attempt=call.attempt,
                   mode=spec.mode, dialed_at=ts(now), agent_id=reserved_agent, result="ringing",
                   data={"dial": dial, "amd": call.amd})
        rec = self.s.recorder
        rec.start_call(call_id, direction="outbound", created_at=ts(now), caller=spec.caller_id, callee=call.phone,
                       data={"dialer_campaign": spec.id, "lead_id": call.lead_id, "attempt": call.attempt})
        if not dial:
            close_unborn(rec, call_id, None, "failed")
            self._ended(call, None, result="failed")
            return call
        rec.add_leg(call_id, call_id=call_id, role="customer", created_at=ts(now), endpoint=dial)
        self.s.own_channel(call_id, lambda e: self.on_event(call, e))
        app = self.s.settings.app_name
        config = spec.config

        async def originate() -> None:
            try:
                await self.s.ari.rest.channels.originate(
                    endpoint=dial, app=app, app_args=f"dialer-customer,{spec.id}", channel_id=call_id,
                    caller_id=spec.caller_id, timeout=int(config.ring_timeout + 0.999),
                    variables={"AMD_RETURN_APP": app, "AMD_ARGS": f",,,{int(config.amd_max_seconds * 1000)}",
                               "ARI_APP_CAMPAIGN": spec.id, "ARI_APP_LEAD": str(call.lead_id),
                               "CHANNEL(hangup_handler_push)": HANGUP_HANDLER})
            except Exception as exc:  # noqa: BLE001 - a refused originate is a failed attempt
                log.warning("customer originate failed", extra={"campaign": spec.id, "error": str(exc)})
                if call.state == "ringing":
                    close_unborn(self.s.recorder, call_id, call_id, "failed")
                    self._ended(call, None, result="failed")
        self.s.spawn(originate(), name=f"dial-{call_id}")
        self.d.changed(spec.id)
        return call

    # ------------------------------------------------------------------ events of the customer leg
    def on_event(self, call: OutboundCall, e: ev.Event) -> None:
        if call.state == "ended":
            return
        if isinstance(e, ev.StasisStart):
            if e.args[:1] == ["amd-result"]:
                self._amd_result(call, e.args[1] if len(e.args) > 1 else "", e.args[2] if len(e.args) > 2 else "")
            elif call.state == "ringing":
                self._answered(call)
        elif isinstance(e, ev.ChannelDestroyed):
            self._ended(call, e.cause)

    def _answered(self, call: OutboundCall) -> None:
        now = time.time()
        call.answered_at = now
        runner = self.d.runners[call.campaign_id]
        runner.stats.on_answer(now - call.dialed_at)
        self.write(call, answered_at=ts(now), ring_seconds=round(now - call.dialed_at, 3), result="answered")
        self.s.recorder.set_leg(call.call_id, outcome="answered")
        if not call.amd:
            runner.stats.on_classified(True, None)
            self.needs_agent(call)
            return
        call.state = "amd"
        rest, app = self.s.ari.rest, self.s.settings.app_name

        async def to_amd() -> None:
            await rest.applications.subscribe(application_name=app, event_source=f"channel:{call.call_id}")
            self.s.recorder.expect_return(call.call_id)
            await rest.channels.continue_in_dialplan(channel_id=call.call_id, context="amd", extension="s",
                                                     priority=1)
        self.s.spawn(self.s.quietly(to_amd()), name=f"amd-{call.call_id}")
        call.timer = asyncio.get_running_loop().call_later(
            runner.config.amd_max_seconds + AMD_WATCHDOG_MARGIN, self._amd_overdue, call)
        self.d.changed(call.campaign_id)

    def resume(self, call: OutboundCall, channel: Any) -> None:
        """A call re-adopted after an app restart (`restore`) whose channel is alive: go on from where
        the previous run left it. Ringing: Asterisk still runs the originate, with its ring timeout
        from the original dial; the answer arrives as a StasisStart. In AMD: the channel is in the
        dialplan; subscribe to it again (a hangup must be heard) and arm the watchdog from the answer
        time; AMD's result arrives as a StasisStart. Waiting: an agent now, or the safe harbor once
        `connect_within` of the greeting has passed (at once if it passed while the app was down).
        Decided before the stop (machine, abandoned): hang up. A crash may have lost the record of
        an answer: a "ringing" channel that is up is taken as answered now."""
        call.cancel_timer()  # one armed by an event heard while the reconcile was still under way
        if call.state == "ringing" and channel.state == "Up":  # answered just before a crash, not recorded
            dialplan = channel.dialplan
            if dialplan is not None and dialplan.context == "amd":
                now = time.time()
                call.answered_at, call.state = now, "amd"
                self.write(call, answered_at=ts(now), ring_seconds=round(now - call.dialed_at, 3), result="answered")
            elif dialplan is not None and dialplan.app_name == "Stasis":
                self._answered(call)  # into AMD (or to an agent), as at a StasisStart
                return
        if call.state == "amd":
            runner = self.d.runners[call.campaign_id]
            rest, app = self.s.ari.rest, self.s.settings.app_name

            async def watch() -> None:  # Asterisk 22 kept the subscription through the reconnect; costs nothing
                try:
                    await rest.applications.subscribe(application_name=app, event_source=f"channel:{call.call_id}")
                except AriHttpError as exc:
                    if not is_gone(exc):
                        raise
                    self._ended(call, None)  # gone since the reconcile listed it
            self.s.spawn(watch(), name=f"amd-watch-{call.call_id}")
            left = (call.answered_at or time.time()) + runner.config.amd_max_seconds + AMD_WATCHDOG_MARGIN - time.time()
            call.timer = asyncio.get_running_loop().call_later(max(0.0, left), self._amd_overdue, call)
        elif call.state == "waiting":
            self.needs_agent(call, since=call.needs_agent_at)
        elif call.state == "ending":
            self.hangup(call)
        self.d.changed(call.campaign_id)

    def _amd_overdue(self, call: OutboundCall) -> None:
        if call.state == "amd":
            log.warning("no AMD result in time; hanging up", extra={"call_id": call.call_id})
            call.result = "failed"
            self.hangup(call)

    def _amd_result(self, call: OutboundCall, status: str, cause: str) -> None:
        call.cancel_timer()
        if call.state != "amd":
            return
        now = time.time()
        call.amd_at = now
        runner = self.d.runners[call.campaign_id]
        amd_seconds = now - (call.answered_at or now)
        self.write(call, amd_at=ts(now), amd_status=status, amd_cause=cause)
        self.s.recorder.set_call(call.call_id, data={"amd": status, "amd_cause": cause})
        if status in ("HUMAN", "NOTSURE"):
            runner.stats.on_classified(True, amd_seconds)
            self.needs_agent(call, since=now - greeting_silence(cause))
        elif status == "MACHINE":
            runner.stats.on_classified(False, amd_seconds)
            runner.ledger.record_machine(now)
            call.state = "machine"
            call.result = "machine"
            self.write(call, result="machine")
            self.s.recorder.set_call(call.call_id, outcome="machine", hangup_by="system")
            media = runner.spec.machine_message if runner.spec.machine_handling == "message" else ()
            self.s.spawn(self.play_then_hangup(call, media, "machine_message"), name=f"machine-{call.call_id}")
            self.d.changed(call.campaign_id)
        else:  # HANGUP or anything unexpected: the customer is gone or going
            call.result = "hangup"
            self.hangup(call)

    # ------------------------------------------------------------------ a person on the line
    def needs_agent(self, call: OutboundCall, since: float | None = None) -> None:
        """A person is on the line, since `since` (the end of their greeting when AMD heard it, else now):
        an agent within `connect_within` of that, or it is an abandon."""
        now = time.time()
        call.needs_agent_at = min(now, since) if since is not None else now
        call.state = "waiting"
        runner = self.d.runners[call.campaign_id]
        delay = call.needs_agent_at + runner.config.connect_within - now
        if delay < 0:  # the person waited past the rule already (the app was down): an abandon, agent or not
            self._abandon(call)
            return
        session = self.d.desk.pick(call.campaign_id, call.reserved_agent)
        if session is not None:
            self.connect(call, session)
            return
        call.timer = asyncio.get_running_loop().call_later(delay, self._abandon, call)
        self.d.changed(call.campaign_id)

    def waiting_for(self, campaign_id: str, agent_id: str) -> OutboundCall | None:
        """The call waiting longest that this agent may take. Not one re-adopted at a restart whose
        channel the first reconcile has not checked yet (`restore.adopt` then resumes it): an agent
        freed before that (a wrap-up that ended while the app was down) must not be handed a gone
        channel, nor a person whose 2 s ran out meanwhile (an abandon)."""
        waiting = [c for c in self.d.calls.values() if c.campaign_id == campaign_id and c.state == "waiting"
                   and not c.restored and c.reserved_agent in (None, agent_id)]
        return min(waiting, key=lambda c: c.needs_agent_at or 0.0, default=None)

    def connect(self, call: OutboundCall, session: AgentSession) -> None:
        call.cancel_timer()
        now = time.time()
        runner = self.d.runners[call.campaign_id]
        call.state = "connected"
        call.agent_id = session.agent_id
        call.connected_at = now
        self.d.desk.on_call(session, call, now)
        runner.ledger.record_human(now)
        runner.stats.on_connect(True)
        self.s.recorder.set_call(call.call_id, agent_id=session.agent_id, outcome="answered")
        rest = self.s.ari.rest

        async def bridge() -> None:
            await rest.bridges.add_channel(bridge_id=session.bridge_id, channel=call.call_id)
            done = time.time()
            connect_ms = int(round((done - (call.needs_agent_at or done)) * 1000))
            self.write(call, connected_at=ts(now), agent_id=session.agent_id, connect_ms=connect_ms,
                       result="connected")
            self.s.recorder.set_call(call.call_id, bridged_at=ts(done))
        self.s.spawn(self.s.quietly(bridge()), name=f"connect-{call.call_id}")
        self.d.changed(call.campaign_id)

    def _abandon(self, call: OutboundCall) -> None:
        call.timer = None
        if call.state != "waiting":
            return
        now = time.time()
        runner = self.d.runners[call.campaign_id]
        call.state = "abandoning"
        call.result = "abandoned"
        runner.ledger.record_abandon(now)
        runner.stats.on_abandon()
        self.write(call, result="abandoned", data={"safe_harbor": list(runner.spec.safe_harbor_message)})
        self.s.recorder.set_call(call.call_id, outcome="abandoned", hangup_by="system")
        log.info("abandoned: no agent within the connect time", extra={"campaign": call.campaign_id,
                                                                        "call_id": call.call_id})
        self.s.spawn(self.play_then_hangup(call, runner.spec.safe_harbor_message, "safe_harbor"),
                     name=f"safe-harbor-{call.call_id}")
        self.d.changed(call.campaign_id)

    def count_untaken(self, call: OutboundCall, answered_at: float | None) -> dict[str, Any]:
        """Count a ringing call whose customer answered while no app was connected (Asterisk hung the
        person up; `restore.untaken` read the dialplan hangup handler's note) as the abandon it was:
        in the ledger and the statistics. `answered_at` None: the note may have been lost (the globals
        were cleared), so it counts without an answer time. Returns the attempt's record fields."""
        runner = self.d.runners[call.campaign_id]
        fields: dict[str, Any] = {"result": "abandoned",
                                  "data": {"answered_while_down": True if answered_at is not None else "unknown"}}
        if answered_at is not None:
            call.answered_at = answered_at
            runner.stats.on_answer(answered_at - call.dialed_at)
            fields.update(answered_at=ts(answered_at), ring_seconds=round(answered_at - call.dialed_at, 3))
        runner.stats.on_classified(True, None)
        runner.stats.on_abandon()
        runner.ledger.record_abandon(time.time())
        call.result = "abandoned"
        return fields

    def untaken(self, call: OutboundCall, answered_at: float | None) -> None:
        """A ringing call whose customer answered while this app's connection to ARI was down (no
        restart): an abandon (`count_untaken`), the lead kept from a new call for 72 h."""
        if call.state != "ringing":
            return
        fields = self.count_untaken(call, answered_at)
        call.state = "abandoning"
        self.write(call, **fields)
        self.s.recorder.set_call(call.call_id, outcome="abandoned", hangup_by="system")
        log.warning("abandoned: answered while the app was not connected", extra={"campaign": call.campaign_id,
                                                                                 "call_id": call.call_id})
        self._ended(call, None)

    async def play_then_hangup(self, call: OutboundCall, media: tuple[str, ...], what: str) -> None:
        """Play the safe-harbor or the machine message, note it was heard to the end, hang up."""
        ari = self.s.ari
        if media:
            playback_id = ari.new_id("pb")
            done = ari.expect_event("PlaybackFinished", playback_id=playback_id, timeout=60)
            try:
                await ari.rest.channels.play(channel_id=call.call_id, media=list(media), playback_id=playback_id)
                await done
                self.write(call, data={f"{what}_played": True})
            except Exception:  # noqa: BLE001 - the customer hung up during the message
                done.cancel()
        self.hangup(call)

    def hangup(self, call: OutboundCall) -> None:
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=call.call_id)))

    # ------------------------------------------------------------------ the end
    def _ended(self, call: OutboundCall, cause: int | None, *, result: str | None = None) -> None:
        if call.state == "ended":
            return
        call.cancel_timer()
        now = time.time()
        runner = self.d.runners.get(call.campaign_id)
        previous = call.state
        call.state = "ended"
        call.ended_at = now
        fields: dict[str, Any] = {"ended_at": ts(now), "hangup_cause": cause}
        if previous == "ringing":
            call.result = result or unanswered_result(cause, now - call.dialed_at,
                                                      runner.config.ring_timeout if runner else 30.0)
            fields["ring_seconds"] = round(now - call.dialed_at, 3)
            if runner is not None:
                runner.stats.on_not_answered()
            self.s.recorder.set_call(call.call_id, outcome=call.result)
            self.s.recorder.set_leg(call.call_id, outcome=call.result.replace("no-answer", "noanswer"))
        elif previous == "connected":
            call.result = "connected"
            talk = now - (call.connected_at or now)
            fields["talk_seconds"] = round(talk, 3)
            self.d.desk.call_ended(call, now, talk)
        elif previous in ("amd", "waiting"):
            call.result = call.result or "hangup"
            self.s.recorder.set_call(call.call_id, outcome="customer-hangup", hangup_by="customer")
        call.result = call.result or result or "failed"
        fields["result"] = call.result
        self.write(call, **fields)
        self.d.calls.pop(call.call_id, None)
        if runner is not None:
            runner.finish_lead(call, now)
        if call.reserved_agent and previous != "connected":
            self.d.desk.reservation_over(call.reserved_agent)
        self.d.changed(call.campaign_id)


def greeting_silence(cause: str) -> float:
    """Seconds of silence AMD waited for after the greeting: AMDCAUSE `HUMAN-<limit>-<silence>` (ms)."""
    parts = cause.split("-")
    if len(parts) == 3 and parts[0] == "HUMAN" and parts[2].isdigit():
        return min(int(parts[2]), 5000) / 1000.0
    return 0.0


def _data(row: Any) -> dict[str, Any]:
    data = row["data"]
    return json.loads(data) if isinstance(data, str) else dict(data or {})
