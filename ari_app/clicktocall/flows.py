"""The two call flows that do not start with an ACD item: customer-first and click to dial.

Customer-first: the visitor is dialled first; on answer they hear a short message and wait in
the queue at high priority, like a caller who rang in (the ACD then rings agents and bridges).
A visitor who does not answer never reaches the queue, so no agent is disturbed.

Click to dial (an agent's CRM button): the agent's own phone rings first; once they answer the
number is dialled and bridged with them. The ACD sees the agent's device "in use" meanwhile,
so it offers them no queue call. Both follow the ARI rules: ids chosen and handlers registered
before each originate, gone channels are normal outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ari_app.acd.links import ItemUpdate
from ari_app.ari import events as ev
from ari_app.ari.client import Waiter
from ari_app.ari.errors import AriError
from ari_app.calls.direct import dial_failure

if TYPE_CHECKING:
    from ari_app.clicktocall.capability import ClickToCall, Request

log = logging.getLogger(__name__)


def _leg_event(channel_id: str, *types: type[ev.Event]) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, types) and getattr(e, "channel", None) is not None \
        and e.channel.id == channel_id  # type: ignore[attr-defined]


async def _originate(c2c: ClickToCall, req: Request, *, endpoint: str, channel_id: str, caller_id: str | None,
                     timeout: int) -> ev.Event | None:
    """Dial `endpoint` into our app and wait for its answer (StasisStart) or its end
    (ChannelDestroyed); None if Asterisk refused the originate (the leg is closed as failed)."""
    s = c2c.s
    first = s.ari.expect(_leg_event(channel_id, ev.StasisStart, ev.ChannelDestroyed), timeout=timeout + 15)
    try:
        await s.ari.rest.channels.originate(endpoint=endpoint, app=s.settings.app_name,
                                            app_args=f"click2call-leg,{req.id}", channel_id=channel_id,
                                            caller_id=caller_id, timeout=timeout)
        return await first
    except Exception as exc:  # noqa: BLE001 - a refused originate is a failed attempt
        first.cancel()
        log.warning("click-to-call originate failed", extra={"request_id": req.id, "error": str(exc)})
        s.recorder.close_lost(channel_id, datetime.now(UTC))
        s.recorder.set_leg(channel_id, outcome="failed")
        return None


# ---------------------------------------------------------------------- customer-first
async def customer_first(c2c: ClickToCall, req: Request) -> None:
    s, rec = c2c.s, c2c.s.recorder
    ari, rest = s.ari, s.ari.rest
    channel = ari.new_id("c2c")
    created = datetime.now(UTC)
    rec.start_call(req.id, direction="click2call", created_at=created, caller=req.number, callee=req.number,
                   queue=req.queue, hold_open=True, data=c2c.call_data(req))
    rec.add_leg(channel, call_id=req.id, role="customer", created_at=created, endpoint=req.dial)
    gone = asyncio.Event()
    s.own_channel(channel, lambda e: gone.set() if isinstance(e, ev.StasisEnd | ev.ChannelDestroyed) else None)
    c2c.advance(req.id, "customer-ringing")
    answered = await _originate(c2c, req, endpoint=req.dial, channel_id=channel,
                                caller_id=c2c.cfg.caller_id or None, timeout=req.config.ring_timeout)
    if not isinstance(answered, ev.StasisStart):
        outcome = "failed" if answered is None else dial_failure(getattr(answered, "cause", None))
        rec.set_leg(channel, outcome=outcome)
        rec.set_call(req.id, outcome=f"customer-{outcome}", hangup_by="customer")
        rec.release(req.id)
        c2c.advance(req.id, "failed", reason=f"customer-{outcome}")
        return
    answered_at = answered.timestamp or datetime.now(UTC)
    rec.set_leg(channel, outcome="answered")
    if req.config.message and not gone.is_set():
        playback = ari.new_id("pb")
        done = ari.expect(lambda e: (isinstance(e, ev.PlaybackFinished) and e.playback.id == playback)
                          or (isinstance(e, ev.StasisEnd | ev.ChannelDestroyed) and e.channel.id == channel),
                          timeout=60)
        try:
            await rest.channels.play(channel_id=channel, media=list(req.config.message), playback_id=playback)
            await done
        except Exception:  # noqa: BLE001 - no message is better than no call
            done.cancel()
    if gone.is_set():
        rec.set_call(req.id, outcome="abandoned", hangup_by="customer")
        rec.release(req.id)
        c2c.advance(req.id, "failed", reason="customer-hangup")
        return
    c2c.advance(req.id, "queued")
    s.acd.enqueue(c2c.queue_item(req, default_priority=10), channel_id=channel, created_at=created,
                  channel_name=answered.channel.name, already_up=True, from_dialplan=False,
                  direction="click2call", observer=connected_observer(c2c, req, channel))
    # The ACD records a channel it queues as the caller; this one is the visitor we called.
    leg = rec.leg(channel)
    if leg is not None:
        leg.role = "customer"
    rec.set_leg(channel, role="customer", created_at=created, answered_at=answered_at)
    rec.set_call(req.id, created_at=created, answered_at=answered_at, data=c2c.call_data(req))
    rec.release(req.id)


def connected_observer(c2c: ClickToCall, req: Request, channel: str):  # type: ignore[no-untyped-def]
    """The ACD reports agent-answered for a caller with a channel, then bridges: "connected" is
    the visitor's leg entering a bridge with the agent."""
    base = c2c.observer(req.id)

    def on_update(u: ItemUpdate) -> None:
        if u.kind == "agent-answered":
            bridged = c2c.s.ari.expect(lambda e: isinstance(e, ev.ChannelEnteredBridge) and e.channel is not None
                                       and channel in e.bridge.channels and len(e.bridge.channels) >= 2,
                                       timeout=30)
            c2c.s.spawn(_when_bridged(c2c, req.id, bridged, u.agent_id))
        base(u)
    return on_update


async def _when_bridged(c2c: ClickToCall, request_id: str, bridged: Waiter, agent_id: str | None) -> None:
    try:
        await bridged
    except TimeoutError:
        return  # never bridged: the ACD reports how it ended
    c2c.advance(request_id, "connected", agent_id=agent_id)


# ---------------------------------------------------------------------- click to dial
@dataclass
class _Dial:
    agent_channel: str
    customer: str
    bridge: str
    answered: bool = False       # the agent answered
    customer_up: bool = False    # the customer answered
    customer_gone: bool = False
    connected: bool = False
    ended: bool = False


async def agent_dial(c2c: ClickToCall, req: Request) -> None:
    s, rec = c2c.s, c2c.s.recorder
    endpoint = req.endpoint or ""
    ari, rest = s.ari, s.ari.rest
    agent_id = req.agent or ""
    d = _Dial(ari.new_id("agent"), ari.new_id("customer"), ari.new_id("bridge"))
    created = datetime.now(UTC)
    rec.start_call(req.id, direction="outbound", created_at=created, callee=req.number, agent_id=agent_id,
                   hold_open=True, data=c2c.call_data(req))
    rec.add_leg(d.agent_channel, call_id=req.id, role="agent", agent_id=agent_id, created_at=created,
                endpoint=endpoint)
    if agent_id:
        s.acd.devices.hold(agent_id)  # in use for the queues until the call ends

    def fail(reason: str, **call: str) -> None:
        rec.set_call(req.id, outcome=reason, **call)
        c2c.advance(req.id, "failed", reason=reason)
        s.spawn(_end_dial(c2c, req, d))

    def on_leg(e: ev.Event) -> None:
        """Hangups once the agent answered (before that, the originate's waiter reports)."""
        if not isinstance(e, ev.StasisEnd | ev.ChannelDestroyed):
            return
        if e.channel.id == d.customer:
            d.customer_gone = True
        if not d.answered or d.ended:
            return
        who = "agent" if e.channel.id == d.agent_channel else "customer"
        if d.connected:
            c2c.advance(req.id, "completed", reason=f"{who}-hangup")
            s.spawn(_end_dial(c2c, req, d))
        elif who == "agent":
            fail("agent-hangup", hangup_by="agent")
        elif d.customer_up:
            fail("customer-hangup", hangup_by="customer")

    s.own_channel(d.agent_channel, on_leg)
    c2c.advance(req.id, "agent-ringing", agent_id=agent_id)
    first = await _originate(c2c, req, endpoint=endpoint, channel_id=d.agent_channel,
                             caller_id=f'"Calling" <{req.number}>', timeout=c2c.cfg.agent_ring_timeout)
    if not isinstance(first, ev.StasisStart):
        outcome = "failed" if first is None else dial_failure(getattr(first, "cause", None))
        rec.set_leg(d.agent_channel, outcome=outcome)
        fail(f"agent-{outcome}")
        return
    d.answered = True
    rec.set_leg(d.agent_channel, outcome="answered")
    c2c.advance(req.id, "agent-answered", agent_id=agent_id)
    await rest.bridges.create(bridge_id=d.bridge, type="mixing", name=f"c2d-{req.id}")
    await s.quietly(rest.bridges.add_channel(bridge_id=d.bridge, channel=[d.agent_channel]))
    with contextlib.suppress(AriError):
        await rest.channels.ring(channel_id=d.agent_channel)  # the agent hears it ring
    if d.ended:
        return
    rec.add_leg(d.customer, call_id=req.id, role="customer", endpoint=req.dial)
    s.own_channel(d.customer, on_leg)
    c2c.advance(req.id, "customer-ringing", agent_id=agent_id)
    answered = await _originate(c2c, req, endpoint=req.dial, channel_id=d.customer,
                                caller_id=c2c.cfg.caller_id or None, timeout=req.config.ring_timeout)
    if d.ended:
        await s.quietly(rest.channels.hangup(channel_id=d.customer))
        return
    if not isinstance(answered, ev.StasisStart):
        outcome = "failed" if answered is None else dial_failure(getattr(answered, "cause", None))
        rec.set_leg(d.customer, outcome=outcome)
        fail(f"customer-{outcome}", hangup_by="customer")
        return
    d.customer_up = True
    rec.set_leg(d.customer, outcome="answered")
    if d.customer_gone:
        fail("customer-hangup", hangup_by="customer")
        return
    d.connected = True  # from here on, either side hanging up completes the call
    rec.set_call(req.id, outcome="answered")
    with contextlib.suppress(AriError):
        await rest.channels.ring_stop(channel_id=d.agent_channel)
    await s.quietly(rest.bridges.add_channel(bridge_id=d.bridge, channel=[d.customer]))
    if not d.ended:
        c2c.advance(req.id, "connected", agent_id=agent_id)


async def _end_dial(c2c: ClickToCall, req: Request, d: _Dial) -> None:
    if d.ended:
        return
    d.ended = True
    s = c2c.s
    for cid in (d.agent_channel, d.customer):
        await s.quietly(s.ari.rest.channels.hangup(channel_id=cid))
    if d.answered:
        await s.quietly(s.ari.rest.bridges.destroy(bridge_id=d.bridge))
    s.recorder.release(req.id)
    if req.agent:
        s.acd.devices.release(req.agent)
