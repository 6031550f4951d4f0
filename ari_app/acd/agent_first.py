"""Agent-first connects: the agent answers a channel-less item (a callback, a click-to-call),
hears a whisper, then the customer is dialled and bridged with them.

The customer's channel id is ours and owned before the originate; a guard set by the item's
owner (`AcdAdapter.before_dial`) may still cancel the dial after the whisper (a callback
cancelled or claimed elsewhere meanwhile). With `amd`, an answered customer goes through the
dialplan's `amd` context (Asterisk's AMD()) and comes back before being bridged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ari_app.ari import events as ev
from ari_app.calls.direct import dial_failure

if TYPE_CHECKING:
    from ari_app.acd.adapter import AcdAdapter
    from ari_app.acd.links import ItemLink, OfferLink

log = logging.getLogger(__name__)


async def connect_agent_first(acd: AcdAdapter, link: ItemLink, offer: OfferLink) -> None:
    """The agent answered a channel-less item: whisper to them, dial the customer, bridge."""
    rest, ari = acd.s.ari.rest, acd.s.ari
    assert link.bridge_id is not None
    await acd.create_bridge(link.bridge_id)
    if link.whisper:
        playback_id = ari.new_id("pb")
        done = ari.expect_event("PlaybackFinished", playback_id=playback_id, timeout=30)
        try:
            await rest.channels.play(channel_id=offer.channel_id, media=link.whisper, playback_id=playback_id)
            await done
        except Exception:  # noqa: BLE001 - no whisper is better than no call
            done.cancel()
    if link.ended or offer.offer_id not in acd.offers:
        return  # the agent hung up during the whisper
    guard = acd.before_dial.pop(link.item_id, None)
    if guard is not None:
        try:
            go = await guard()
        except Exception:  # noqa: BLE001 - when in doubt, never dial
            log.exception("before-dial check failed", extra={"item_id": link.item_id})
            go = False
        if not go:
            acd.customer_failed(link, offer, "withdrawn")
            return
        if link.ended or offer.offer_id not in acd.offers:
            return
    if not link.dial:
        log.error("channel-less item without a number to dial", extra={"item_id": link.item_id})
        acd.customer_failed(link, offer, "failed")
        return
    customer = ari.new_id("customer")
    acd.s.recorder.add_leg(customer, call_id=link.item_id, role="customer", endpoint=link.dial)
    # Owned before the originate; until it answers, the waiter below decides what happens.
    acd.s.own_channel(customer, lambda e: acd.on_caller_event(link, e) if link.channel_id == customer else None)
    answered = ari.expect(lambda e: isinstance(e, ev.StasisStart | ev.ChannelDestroyed)
                          and e.channel.id == customer, timeout=link.dial_timeout + 15)
    acd.notify(link.item_id, "customer-ringing", agent_id=offer.agent_id)
    try:
        await rest.channels.originate(endpoint=link.dial, app=acd.s.settings.app_name,
                                      app_args=f"customer-leg,{link.item_id}", channel_id=customer,
                                      caller_id=link.dial_caller_id, timeout=link.dial_timeout,
                                      variables={"AMD_RETURN_APP": acd.s.settings.app_name} if link.amd else None)
        first = await answered
    except Exception as exc:  # noqa: BLE001 - a failed originate is a failed attempt
        answered.cancel()
        log.warning("customer originate failed", extra={"item_id": link.item_id, "error": str(exc)})
        acd.s.recorder.set_leg(customer, outcome="failed", ended_at=datetime.now(UTC))
        acd.s.recorder.legs.pop(customer, None)
        acd.customer_failed(link, offer, "failed")
        return
    if isinstance(first, ev.ChannelDestroyed):
        acd.s.recorder.set_leg(customer, outcome=dial_failure(first.cause))
        acd.customer_failed(link, offer, dial_failure(first.cause))
        return
    if link.ended or offer.offer_id not in acd.offers:
        await acd.s.quietly(rest.channels.hangup(channel_id=customer))
        return
    if link.amd:
        status = await detect_machine(acd, customer)
        acd.s.recorder.set_leg(customer, data={"amd": status})
        if status in ("MACHINE", "HANGUP"):
            reason = "machine" if status == "MACHINE" else "hangup"
            acd.s.recorder.set_leg(customer, outcome=reason)
            await acd.s.quietly(rest.channels.hangup(channel_id=customer))
            acd.customer_failed(link, offer, reason)
            return
        if link.ended or offer.offer_id not in acd.offers:
            await acd.s.quietly(rest.channels.hangup(channel_id=customer))
            return
    link.channel_id = customer
    acd.s.recorder.set_leg(customer, outcome="answered")
    acd.s.recorder.set_call(link.item_id, answered_at=first.timestamp or datetime.now(UTC))
    await rest.bridges.add_channel(bridge_id=link.bridge_id, channel=[offer.channel_id, customer])
    acd.notify(link.item_id, "connected", agent_id=offer.agent_id)


async def detect_machine(acd: AcdAdapter, channel: str) -> str:
    """Send an answered leg through the dialplan's `amd` context (Asterisk's AMD()) and back
    into the app; return AMDSTATUS (HUMAN, MACHINE, NOTSURE) or HANGUP."""
    ari = acd.s.ari
    back = ari.expect(lambda e: (isinstance(e, ev.StasisStart) and e.channel.id == channel
                                 and e.args[:1] == ["amd-result"])
                      or (isinstance(e, ev.ChannelDestroyed) and e.channel.id == channel), timeout=30)
    acd.s.recorder.expect_return(channel)
    try:
        await ari.rest.channels.continue_in_dialplan(channel_id=channel, context="amd", extension="s", priority=1)
        result = await back
    except Exception:  # noqa: BLE001 - the customer hung up (or AMD never came back)
        back.cancel()
        return "HANGUP"
    if isinstance(result, ev.StasisStart):
        return result.args[1] if len(result.args) > 1 and result.args[1] else "NOTSURE"
    return "HANGUP"
