"""Stale state is the classic failure of app_queue and friends: here it can't last.

After every (re)connect (`reconcile`) and every `audit_interval` (`audit`), the legs we believe
alive are checked against Asterisk's channels. A vanished agent leg frees its agent
(`AgentLegLost`), a vanished caller leaves the queue, and after a restart a ring we were timing
is cancelled (the core re-offers) and a waiting caller's music is started again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ari_app.acd.core import events as ce

if TYPE_CHECKING:
    from ari_app.acd.adapter import AcdAdapter

log = logging.getLogger(__name__)


async def reconcile(acd: AcdAdapter, result: dict[str, Any]) -> None:
    """After every (re)connect: judge every leg against Asterisk's channels, drop leftover bridges."""
    check_alive(acd, set(result["channels"]), set(result["bridges"]), restarted=acd.restored)
    acd.restored = False
    # Empty queue bridges no call holds: idle in the pool, or made while an agent rang just before
    # a crash. The pool trusts none of its idle ones after a (re)connect: they go, and it refills.
    acd.bridges.forget_unused()
    known = {link.bridge_id for link in acd.items.values()} | acd.bridges.in_use
    prefix = acd.bridge_name("")
    for bridge in result["bridges"].values():
        if bridge.name.startswith(prefix) and not bridge.channels and bridge.id not in known:
            acd.s.spawn(acd.s.quietly(acd.s.ari.rest.bridges.destroy(bridge_id=bridge.id)))


async def audit(acd: AcdAdapter) -> None:
    """Compare the legs we believe alive with Asterisk's channels.

    Only legs that surely existed in Asterisk before the list was asked for are judged:
    calls keep arriving and agents keep being rung while it is on its way, and a leg missing
    from the answer for that reason has not vanished (under load that freed agents as they
    answered and sent their callers back to wait for a retry)."""
    await acd.devices.reread()  # agents' devices: an event lost since the last connect is corrected
    acd.rung &= set(acd.offers)
    settled = ({(o.offer_id, o.channel_id) for o in acd.offers.values() if o.offer_id in acd.rung}
               | {(i.item_id, i.channel_id) for i in acd.items.values()})
    for bridge_id in acd.bridges.stale(acd.now()):  # a finished call's bridge that never emptied
        acd.s.spawn(acd.s.quietly(acd.s.ari.rest.bridges.destroy(bridge_id=bridge_id)))
    try:
        channels = await acd.s.ari.rest.channels.list()
    except Exception:  # noqa: BLE001
        return
    check_alive(acd, {c.id for c in channels}, None, restarted=False, only=settled)


def check_alive(acd: AcdAdapter, alive: set[str], bridges: set[str] | None, *, restarted: bool,
                only: set[tuple[str, str | None]] | None = None) -> None:
    """Free agents and items whose channels vanished without the events we expected (of
    those in `only`, (offer or item id, channel id) pairs, when given)."""
    for offer in list(acd.offers.values()):
        if only is not None and (offer.offer_id, offer.channel_id) not in only:
            continue
        if offer.channel_id in alive:
            if restarted and not offer.answered:
                # A ring we were timing before the restart: cancel it, the core re-offers.
                acd.offers.pop(offer.offer_id, None)
                acd.s.spawn(acd.s.quietly(acd.s.ari.rest.channels.hangup(channel_id=offer.channel_id)))
                acd.handle(ce.OfferFailed(offer.offer_id, "unavailable"))
            continue
        link = acd.items.get(offer.item_id)
        log.warning("agent leg vanished", extra={"agent_id": offer.agent_id, "channel_id": offer.channel_id})
        acd.s.recorder.close_lost(offer.channel_id, datetime.now(UTC))
        if link is not None and link.connected and link.agent_channel == offer.channel_id:
            acd.agent_gone(offer, None)
        elif offer.offer_id in acd.offers:
            acd.offers.pop(offer.offer_id, None)
            if offer.answered:
                acd.handle(ce.AgentLegLost(offer.agent_id))
            else:
                acd.handle(ce.OfferFailed(offer.offer_id, "unavailable"))
    for link in list(acd.items.values()):
        if link.channel_id is None or link.ended:
            continue
        if only is not None and (link.item_id, link.channel_id) not in only:
            continue
        if link.channel_id not in alive:
            acd.s.recorder.close_lost(link.channel_id, datetime.now(UTC))
            acd.caller_gone(link)
        elif restarted and not link.connected:
            link.moh = False  # Asterisk kept playing it, or not: start it again either way
            acd.start_hold(link)
    for agent_id in [a.id for a in acd.engine.agents() if a.status == "on_call"]:
        if not any(o.agent_id == agent_id for o in acd.offers.values()) and not any(
                link.agent_id == agent_id and link.connected for link in acd.items.values()):
            acd.handle(ce.AgentLegLost(agent_id))
