"""Blind transfer of the caller an agent is bridged with: `POST /api/v1/agents/{id}/transfer`.

`{"to": "queue", "queue": "billing"}`: the agent's leg is hung up (the agent goes to wrap-up as
after any call), the caller leaves the bridge and enters the target queue (music, announcements,
a new bridge once an agent answers). The entry keeps the caller's priority, skills and original
enter time: FIFO place and reported wait count from the first queue (app_queue gives a fresh
entry). The agent who transferred comes last for the caller.

`{"to": "number", "number": "0612345678"}`: the agent's leg is hung up and the caller, hearing
ringback, is connected to a leg we originate to `transfer_dial_template` (e.g.
`PJSIP/{number}@trunk`) with our own channel id, its waiter registered before the POST, in a
bridge of ours. If that leg fails, the caller is hung up and the call's outcome says why
(`transfer-busy`, ...). The ACD is done with the call at the transfer; this module owns it.

Records: queue event BLINDTRANSFER (with the target) instead of COMPLETEAGENT; the call's data
names the target and the agent; a transfer to a number adds a leg with role `transfer` and the
call's outcome becomes `transferred`. Every check is made before anything changes: 404 unknown
agent, 409 agent not bridged with a caller, 422 a bad body naming the field.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ari_app.acd.core import events as ce
from ari_app.ari import events as ev
from ari_app.calls.direct import dial_failure
from ari_app.http.api import Api, json_response, read_body
from ari_app.http.errors import ApiError, not_found

if TYPE_CHECKING:
    from ari_app.acd.adapter import AcdAdapter
    from ari_app.acd.links import ItemLink
    from ari_app.service import Service

log = logging.getLogger(__name__)


class TransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Literal["queue", "number"] = Field(description="queue: into one of our queues; number: dial it")
    queue: str | None = Field(None, min_length=1, description="to=queue: the target queue")
    number: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9+*#._-]+$",
                               description="to=number: filled into the transfer_dial_template setting")


def register(api: Api, service: Service, acd: AcdAdapter) -> None:
    @api.route("POST", "/agents/{agent_id}/transfer", tag="agents", body=TransferBody, status=202,
               summary="Blind-transfer the agent's caller to a queue or a number (the agent goes to wrap-up)",
               extra_responses={404: "no such agent", 409: "the agent is not bridged with a caller"})
    async def transfer(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        body = await read_body(request, TransferBody)
        target = _target(body, acd)
        if acd.engine.agent(agent_id) is None:
            raise not_found("agent", agent_id)
        link = _bridged_caller(acd, agent_id)
        if target.startswith("queue:"):
            to_queue(acd, link, target)
        else:
            to_number(acd, link, target, service.settings.transfer_dial_template.format(number=body.number))
        return json_response({"agent_id": agent_id, "item_id": link.item_id, "target": target}, status=202)


def _target(body: TransferBody, acd: AcdAdapter) -> str:
    used, unused = ("queue", "number") if body.to == "queue" else ("number", "queue")
    if getattr(body, unused) is not None:
        raise ApiError(422, f"{unused} is only for to={unused}", field=unused)
    value = getattr(body, used)
    if value is None:
        raise ApiError(422, f"to={used} needs {used}", field=used)
    if body.to == "queue" and value not in acd.engine.queues():
        raise ApiError(422, f"unknown queue {value!r}", field="queue")
    return f"{used}:{value}"


def _bridged_caller(acd: AcdAdapter, agent_id: str) -> ItemLink:
    info = acd.engine.agent(agent_id)
    link = acd.items.get(info.item_id or "") if info is not None and info.status == "on_call" else None
    if (link is None or not link.connected or link.ended or link.channel_id is None
            or link.agent_id != agent_id or link.agent_channel is None):
        raise ApiError(409, "the agent is not bridged with a caller", field="agent_id")
    return link


def _detach_agent(acd: AcdAdapter, link: ItemLink, target: str) -> tuple[str, str | None]:
    """The agent's leg is no longer the call's: its hangup must not end the caller's call."""
    agent_channel, bridge_id = link.agent_channel, link.bridge_id
    assert agent_channel is not None
    if link.agent_offer is not None:
        acd.offers.pop(link.agent_offer, None)
    rec = acd.s.recorder
    rec.set_leg(agent_channel, data={"transfer": target})
    rec.set_call(link.item_id, data={"transfer_target": target, "transferred_by": link.agent_id,
                                     "transferred_from": link.queue})
    link.connected, link.agent_channel, link.agent_offer, link.agent_id = False, None, None, None
    link.bridge_id, link.moh = None, False
    if bridge_id is not None:
        acd.bridges.forget(bridge_id)  # destroyed with the transfer (the caller stays in the app)
    return agent_channel, bridge_id


def to_queue(acd: AcdAdapter, link: ItemLink, target: str) -> None:
    agent_id = link.agent_id
    agent_channel, bridge_id = _detach_agent(acd, link, target)
    rest, quietly = acd.s.ari.rest, acd.s.quietly

    async def detach() -> None:  # first in the caller's chain: before any music or new bridge
        if bridge_id is not None:
            await quietly(rest.bridges.destroy(bridge_id=bridge_id))  # the caller stays in the app
        await quietly(rest.channels.hangup(channel_id=agent_channel))
    acd.serial(link.item_id, detach())
    link.queue = target.split(":", 1)[1]
    acd.s.recorder.set_call(link.item_id, queue=link.queue)
    acd.handle(ce.CallTransferred(link.item_id, target))
    acd.notify(link.item_id, "completed", agent_id=agent_id, detail="transfer")  # the agent's part


@dataclass
class _Transfer:
    item_id: str
    caller: str
    leg: str
    bridge_id: str
    connected: bool = False
    over: bool = False


def to_number(acd: AcdAdapter, link: ItemLink, target: str, dial: str) -> None:
    s, rec = acd.s, acd.s.recorder
    agent_id = link.agent_id
    caller = link.channel_id
    assert caller is not None
    item = acd.engine.item(link.item_id)
    caller_number = item.item.caller_id if item is not None else None
    agent_channel, bridge_id = _detach_agent(acd, link, target)
    acd.items.pop(link.item_id, None)
    link.ended = True  # the ACD is done with this caller: the transfer owns the channel now
    t = _Transfer(link.item_id, caller, s.ari.new_id("transfer"), s.ari.new_id("bridge"))
    rec.set_call(t.item_id, outcome="transferred")
    rec.add_leg(t.leg, call_id=t.item_id, role="transfer", endpoint=dial)

    def end(hangup_by: str, *, hang_up: tuple[str, ...]) -> None:
        if t.over:
            return
        t.over = True
        rec.set_call(t.item_id, hangup_by=hangup_by)
        rec.release(t.item_id)

        async def down() -> None:
            for channel in hang_up:
                await s.quietly(s.ari.rest.channels.hangup(channel_id=channel))
            if t.connected:
                await s.quietly(s.ari.rest.bridges.destroy(bridge_id=t.bridge_id))
        s.spawn(down(), name=f"transfer-end-{t.item_id}")

    def on_caller(e: ev.Event) -> None:
        if isinstance(e, ev.StasisEnd | ev.ChannelDestroyed):
            end("caller", hang_up=(t.leg,))

    def on_leg(e: ev.Event) -> None:
        if isinstance(e, ev.StasisEnd | ev.ChannelDestroyed) and t.connected:
            end("transfer", hang_up=(t.caller,))

    s.own_channel(caller, on_caller)
    s.own_channel(t.leg, on_leg)
    answered = s.ari.expect(lambda e: isinstance(e, ev.StasisStart | ev.ChannelDestroyed) and e.channel.id == t.leg,
                            timeout=s.settings.transfer_ring_timeout + 15)
    acd.handle(ce.CallTransferred(t.item_id, target))
    acd.notify(t.item_id, "completed", agent_id=agent_id, detail="transfer")
    rest = s.ari.rest

    async def run() -> None:
        if bridge_id is not None:
            await s.quietly(rest.bridges.destroy(bridge_id=bridge_id))
        await s.quietly(rest.channels.hangup(channel_id=agent_channel))
        await s.quietly(rest.channels.ring(channel_id=caller))
        try:
            await rest.channels.originate(endpoint=dial, app=s.settings.app_name, app_args=f"transfer-leg,{t.item_id}",
                                          channel_id=t.leg, caller_id=caller_number,
                                          timeout=s.settings.transfer_ring_timeout)
            first = await answered
        except Exception as exc:  # noqa: BLE001 - a failed originate is a failed transfer
            answered.cancel()
            log.warning("transfer originate failed", extra={"item_id": t.item_id, "error": str(exc)})
            rec.set_leg(t.leg, outcome="failed", ended_at=datetime.now(UTC))
            rec.legs.pop(t.leg, None)
            first = None
        if t.over:  # the caller hung up while it rang
            if isinstance(first, ev.StasisStart):
                await s.quietly(rest.channels.hangup(channel_id=t.leg))
            return
        if first is None or isinstance(first, ev.ChannelDestroyed):
            reason = "failed" if first is None else dial_failure(first.cause)
            rec.set_leg(t.leg, outcome=reason)
            rec.set_call(t.item_id, outcome=f"transfer-{reason}")
            end("transfer", hang_up=(t.caller,))
            return
        rec.set_leg(t.leg, outcome="answered")
        await rest.bridges.create(bridge_id=t.bridge_id, type="mixing", name=f"{s.settings.app_name}:transfer:{t.item_id}")
        t.connected = True
        await s.quietly(rest.channels.ring_stop(channel_id=caller))
        await s.quietly(rest.bridges.add_channel(bridge_id=t.bridge_id, channel=[caller, t.leg]))
        if t.over:
            await s.quietly(rest.bridges.destroy(bridge_id=t.bridge_id))
    acd.serial(t.item_id, run())

