"""`Stasis(ari-app,dial,<endpoint>)`: answer the caller, dial one endpoint, bridge the two.

The smallest complete call flow. It exercises the whole foundation (our ids chosen before the
POST, the waiter registered before the originate, legs recorded, cleanup when either side hangs
up) and is the app-side twin of the benchmark's hand-written ARI loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ari_app.ari import events as ev

if TYPE_CHECKING:
    from ari_app.service import Service

log = logging.getLogger(__name__)

#: Q.850 causes of a failed dial, as the outcome we record on the leg.
DIAL_FAILURE_OUTCOMES = {17: "busy", 18: "noanswer", 19: "noanswer", 21: "rejected", 34: "congestion",
                         38: "congestion", 1: "failed", 3: "failed", 20: "unavailable", 27: "unavailable"}


def dial_failure(cause: int | None) -> str:
    return DIAL_FAILURE_OUTCOMES.get(cause or 0, "failed")


@dataclass
class DirectCall:
    call_id: str
    caller_id: str
    bridge_id: str
    callee_id: str
    ended: bool = False
    connected: bool = False
    channels: set[str] = field(default_factory=set)


class DirectDial:
    def __init__(self, service: Service, *, ring_timeout: int = 30) -> None:
        self.s = service
        self.ring_timeout = ring_timeout
        self.calls: dict[str, DirectCall] = {}
        service.routes["dial"] = self.on_stasis_start

    def on_stasis_start(self, e: ev.StasisStart) -> None:
        if len(e.args) < 2 or not e.args[1]:
            log.warning("dial route without an endpoint", extra={"channel_id": e.channel.id})
            self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=e.channel.id)))
            return
        endpoint = e.args[1]
        caller = e.channel
        call = DirectCall(caller.id, caller.id, self.s.ari.new_id("bridge"), self.s.ari.new_id("leg"))
        call.channels = {call.caller_id, call.callee_id}
        self.calls[call.call_id] = call
        rec = self.s.recorder
        rec.start_call(call.call_id, direction="internal", created_at=caller.creationtime,
                       caller=caller.caller.number if caller.caller else None, callee=endpoint)
        rec.add_leg(caller.id, call_id=call.call_id, role="caller", created_at=caller.creationtime,
                    channel_name=caller.name)
        # The caller may already be Up (a Local channel originated into the app); record it now.
        if caller.state == "Up":
            rec.on_event(ev.ChannelStateChange(channel=caller, timestamp=e.timestamp))
        self.s.own_channel(caller.id, lambda ev_, c=call: self._on_leg_event(c, ev_))
        self.s.own_channel(call.callee_id, lambda ev_, c=call: self._on_leg_event(c, ev_))
        self.s.spawn(self._connect(call, endpoint), name=f"direct-{call.call_id}")

    async def _connect(self, call: DirectCall, endpoint: str) -> None:
        rest = self.s.ari.rest
        await rest.channels.answer(channel_id=call.caller_id)
        await rest.bridges.create(bridge_id=call.bridge_id, type="mixing", name=f"call-{call.call_id}")
        self.s.recorder.add_leg(call.callee_id, call_id=call.call_id, role="callee", endpoint=endpoint)
        started = self.s.ari.expect(
            lambda x: isinstance(x, ev.StasisStart | ev.ChannelDestroyed) and x.channel.id == call.callee_id,
            timeout=self.ring_timeout + 10)
        await rest.channels.originate(endpoint=endpoint, app=self.s.settings.app_name,
                                      app_args=f"dial-leg,{call.call_id}", channel_id=call.callee_id,
                                      timeout=self.ring_timeout)
        first = await started
        if isinstance(first, ev.ChannelDestroyed):
            self.s.recorder.set_leg(call.callee_id, outcome=dial_failure(first.cause))
            self.s.recorder.set_call(call.call_id, outcome="failed")
            await self._end(call)
            return
        if call.ended:
            await self.s.quietly(rest.channels.hangup(channel_id=call.callee_id))
            return
        self.s.recorder.set_leg(call.callee_id, outcome="answered")
        call.connected = True
        await rest.bridges.add_channel(bridge_id=call.bridge_id, channel=[call.caller_id, call.callee_id])

    def _on_leg_event(self, call: DirectCall, e: ev.Event) -> None:
        if not isinstance(e, ev.StasisEnd | ev.ChannelDestroyed) or call.ended:
            return
        if call.connected:
            self.s.recorder.set_call(call.call_id, outcome="answered")
            self.s.spawn(self._end(call))
        elif e.channel.id == call.caller_id:  # caller gave up while the callee was ringing
            self.s.recorder.set_call(call.call_id, outcome="abandoned", hangup_by="caller")
            self.s.spawn(self._end(call))

    async def _end(self, call: DirectCall) -> None:
        if call.ended:
            return
        call.ended = True
        self.calls.pop(call.call_id, None)
        rest = self.s.ari.rest
        for cid in (call.caller_id, call.callee_id):
            await self.s.quietly(rest.channels.hangup(channel_id=cid))
        await self.s.quietly(rest.bridges.destroy(bridge_id=call.bridge_id))
