"""The ACD's ARI shell: Asterisk events become core events, core commands become REST calls.

The core decides; this module only translates and keeps the map from the core's ids (items,
offers) to Asterisk's (channels, bridges). Rules it follows:

- ids are ours: an agent leg's channel id is chosen before the originate, and its handler is
  registered before the POST, so a StasisStart that beats the REST reply is not lost;
- REST calls for one caller run in order (`serial`), calls for different callers concurrently;
- 404/409/422 from a channel that just hung up is a normal outcome (`Service.quietly`);
- after every (re)connect and every `audit_interval`, channels we believe alive are checked
  against Asterisk: a vanished agent leg frees its agent (`AgentLegLost`), a vanished caller
  leaves the queue. Stale agent state is the classic failure of app_queue and friends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ari_app.acd import audit as leg_audit
from ari_app.acd.agent_first import connect_agent_first
from ari_app.acd.bridges import BridgePool
from ari_app.acd.core import commands as cmd
from ari_app.acd.core import events as ce
from ari_app.acd.core.engine import AcdEngine
from ari_app.acd.core.model import QueueItem
from ari_app.acd.devices import AgentDevices
from ari_app.acd.links import ItemLink, ItemUpdate, OfferLink, ts
from ari_app.acd.prompts import announcement_media
from ari_app.acd.tracking import LinkMap
from ari_app.ari import errors as ari_errors
from ari_app.ari import events as ev
from ari_app.calls.direct import dial_failure
from ari_app.watchers import Watchers

if TYPE_CHECKING:
    from ari_app.service import Service

log = logging.getLogger(__name__)

#: Outcome of a failed offer from the Q.850 cause of the agent leg.
_FAIL_REASONS: dict[str, ce.FailReason] = {"busy": "busy", "noanswer": "noanswer", "congestion": "congestion",
                                           "rejected": "rejected", "unavailable": "unavailable",
                                           "failed": "unavailable"}

#: Call outcome for each way of leaving the queue without an agent.
_EXIT_OUTCOMES = {"timeout": "timeout", "exitkey": "exitkey", "empty": "empty", "full": "full",
                  "overflow": "overflow", "callback": "callback", "unknown": "failed"}
#: QUEUESTATUS as app_queue sets it, for a dialplan that continues after the app.
_QUEUESTATUS = {"timeout": "TIMEOUT", "exitkey": "EXITWITHKEY", "empty": "LEAVEEMPTY", "full": "FULL",
                "overflow": "TIMEOUT", "callback": "CALLBACK", "unknown": "CONTINUE"}


class AcdAdapter:
    def __init__(self, service: Service, *, audit_interval: float = 15.0) -> None:
        self.s = service
        self.engine = AcdEngine(id_prefix=f"{int(time.time() * 1000):x}-")
        # LinkMaps: they remember what changed since the last persist
        self.items: LinkMap[ItemLink] = LinkMap()
        self.offers: LinkMap[OfferLink] = LinkMap()
        self.audit_interval = audit_interval
        self._chains: dict[str, asyncio.Task[Any]] = {}
        #: The loop timer for the engine's next deadline (see `_rearm`), and that deadline.
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._running = False
        self._audit_task: asyncio.Task[None] | None = None
        self._persist_task: asyncio.Task[None] | None = None
        self._dirty = False
        self.restored = False
        self._watchers = Watchers()
        #: Offers whose originate returned: their agent leg exists in Asterisk until we hear it
        #: ended. The periodic audit judges only these (see `audit`).
        self.rung: set[str] = set()
        #: Queue bridges are reused call after call (`bridges.py`).
        self.bridges = BridgePool()
        #: Capabilities that own items (callbacks, click-to-call) follow them here.
        self.observers: dict[str, Callable[[ItemUpdate], None]] = {}
        #: Called (no arguments, must be quick) after every event the engine handled: reporting
        #: publishes live statistics from it.
        self.change_listeners: list[Callable[[], None]] = []
        #: Capabilities that take a caller over when the core sends it to a destination this
        #: adapter doesn't play itself ("callback"); the handler owns the channel from then on.
        self.exit_handlers: dict[str, Callable[[ItemLink, cmd.ExitQueue], None]] = {}
        #: Vetoes: may this announcement kind play now; may the core see this digit.
        self.announce_filters: dict[str, Callable[[ItemLink, cmd.Announce], bool]] = {}
        self.dtmf_filters: list[Callable[[ItemLink, str], bool]] = []
        #: Per channel-less item: awaited after the whisper, before the customer is dialled;
        #: False means "don't dial" (e.g. the callback was cancelled or claimed elsewhere).
        self.before_dial: dict[str, Callable[[], Awaitable[bool]]] = {}
        service.routes["queue"] = self.on_queue_call
        service.routes["agent-leg"] = self.on_unexpected_agent_leg
        service.routes["agent-feature"] = self.on_agent_feature
        service.reconnect_hooks.append(self.on_reconcile)
        service.shutdown_hooks.append(self.stop)
        #: Agents' device states from Asterisk (after `on_reconcile`: its hook runs second).
        self.devices = AgentDevices(service, self)

    # ------------------------------------------------------------------ clock and core
    @staticmethod
    def now() -> float:
        return time.time()

    def handle(self, event: ce.Event) -> list[cmd.Command]:
        commands = self.engine.handle(event, self.now())
        self._dirty = True
        for listener in self.change_listeners:
            listener()
        self.execute(commands)
        self._rearm()
        if self._watchers:
            self._watchers.check()
        return commands

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        """Wait until `predicate()` holds, re-checked after every event the engine handles."""
        await self._watchers.wait_until(predicate, timeout=timeout)

    async def start(self) -> None:
        self._running = True
        self._rearm()
        self._persist_task = asyncio.create_task(self._persist_loop(), name="acd-persist")
        if self.audit_interval > 0:
            self._audit_task = asyncio.create_task(self._audit_loop(), name="acd-audit")

    async def stop(self) -> None:
        self._running = False
        self._rearm()
        for task in (self._audit_task, self._persist_task):
            if task is not None:
                task.cancel()
        self.persist()

    def _rearm(self) -> None:
        """Keep one loop timer on the engine's next deadline (after every event it handled).

        Why a timer handle and not a task waiting on an event: the deadline is re-read after
        every event, and a `wait_for` per event cost a task and a timeout each time."""
        deadline = self.engine.next_deadline() if self._running else None
        if deadline == self._armed_for and (deadline is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = deadline
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, deadline - self.now()), self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer, self._armed_for = None, None
        try:
            self.handle(ce.Tick())
        except Exception:
            log.exception("ACD tick failed")
            self._rearm()

    # ------------------------------------------------------------------ persistence
    #: The state is stored one row per record in `acd_state_rows` (kind, key): the engine's
    #: scalars ("engine", ""), each queue and agent, and each item and offer with the adapter's
    #: link to its channels ({"rt": engine record or None, "link": link or None}). A persist
    #: writes only the rows changed since the last one, in one transaction; a restore reads them
    #: all. Cost: O(changes), ~0.1 ms after an event whatever the number of callers waiting.
    STATE_TABLE = "acd_state_rows"
    PERSIST_INTERVAL = 0.1

    def snapshot(self) -> dict[str, Any]:
        """The whole state in one dict (tools, tests; what `restore` reads). Persisting no longer
        uses it: it costs O(state)."""
        return {"engine": self.engine.snapshot(),
                "items": {k: asdict(v) for k, v in self.items.items()},
                "offers": {k: asdict(v) for k, v in self.offers.items()}}

    def state_rows(self, *, everything: bool = False) -> dict[tuple[str, ...], dict[str, Any] | None]:
        """The rows changed since the last call (all of them with `everything`); None: delete."""
        eng = self.engine
        changes = eng.take_changes(everything=everything)
        rows: dict[tuple[str, ...], dict[str, Any] | None] = {("engine", ""): eng.dump_scalars()}
        for kind in ("queue", "agent"):
            for key in changes.changed[kind] | changes.removed[kind]:
                rows[(kind, key)] = eng.dump_record(kind, key)
        maps: tuple[tuple[str, LinkMap[Any]], ...] = (("item", self.items), ("offer", self.offers))
        for kind, links in maps:
            keys = changes.changed[kind] | changes.removed[kind] | links.take_touched()
            if everything:
                keys.update(links)
            for key in keys:
                rt, link = eng.dump_record(kind, key), links.get(key)
                rows[(kind, key)] = None if rt is None and link is None else {
                    "rt": rt, "link": None if link is None else asdict(link)}
        return rows

    def persist(self) -> int:
        """Queue the rows changed since the last persist for the writer (merged with any unwritten
        earlier ones); return how many."""
        if not (self._dirty or self.items.touched or self.offers.touched):
            return 0
        self._dirty = False
        rows = self.state_rows()
        self.s.writer.submit_rows(self.STATE_TABLE, self.s.settings.app_name, rows)
        return len(rows)

    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(self.PERSIST_INTERVAL)
            self.persist()

    def restore_rows(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Rebuild from the rows of `acd_state_rows` (kind, key, state)."""
        scalars: dict[str, Any] | None = None
        records: dict[str, list[dict[str, Any]]] = {"queue": [], "agent": [], "item": [], "offer": []}
        links: dict[str, dict[str, dict[str, Any]]] = {"item": {}, "offer": {}}
        for kind, key, state in rows:
            if kind == "engine":
                scalars = state
            elif kind in ("queue", "agent"):
                records[kind].append(state)
            else:
                if state.get("rt") is not None:
                    records[kind].append(state["rt"])
                if state.get("link") is not None:
                    links[kind][key] = state["link"]
        if scalars is None:
            raise ValueError("ACD state rows without the engine row")
        self.engine = AcdEngine.restore_records(
            scalars, records["queue"], records["agent"], records["item"], records["offer"],
            id_prefix=f"{int(time.time() * 1000):x}-")
        self._adopt(links["item"], links["offer"])

    def restore(self, snap: dict[str, Any]) -> None:
        """Rebuild from a whole snapshot: {"engine": AcdEngine.snapshot(), "items": links,
        "offers": links} (the `acd_state` row of versions before incremental persistence)."""
        self.engine = AcdEngine.restore(snap["engine"], id_prefix=f"{int(time.time() * 1000):x}-")
        self._adopt(snap.get("items", {}), snap.get("offers", {}))

    def _adopt(self, items: dict[str, dict[str, Any]], offers: dict[str, dict[str, Any]]) -> None:
        self.items = LinkMap((k, ItemLink(**v)) for k, v in items.items())
        self.offers = LinkMap((k, OfferLink(**v)) for k, v in offers.items())
        self.rung = set(self.offers)
        for link in self.items.values():
            if link.channel_id:
                self.s.own_channel(link.channel_id, self._caller_handler(link))
        for offer in self.offers.values():
            self.s.own_channel(offer.channel_id, self._agent_handler(offer))
        self.restored = True

    # ------------------------------------------------------------------ views for the API
    def agent_ids(self) -> list[str]:
        return [a.id for a in self.engine.agents()]

    def queue_view(self, name: str, *, detail: bool = False) -> dict[str, Any]:
        info = self.engine.queue(name)
        if info is None:
            return {}
        out: dict[str, Any] = {
            "name": name, "waiting": info.waiting, "longest_wait": round(info.longest_wait, 3),
            "members": list(info.members), "available": info.available, "serving": info.serving,
            "handle_time": round(info.handle_time, 3), "service_level": info.service_level,
            "stats": dict(info.stats)}
        if detail:
            out["config"] = info.config.to_dict()
            out["items"] = [{"item_id": i.item.id, "kind": i.item.kind, "status": i.status,
                             "position": i.position, "orig_position": i.orig_position,
                             "priority": i.item.priority, "caller_id": i.item.caller_id,
                             "waited": round(self.now() - (i.item.entered_at or self.now()), 3),
                             "ewt": self.engine.ewt(i.item.id), "agent_id": i.agent_id}
                            for i in self.engine.waiting(name)]
        return out

    def agent_view(self, agent_id: str) -> dict[str, Any]:
        a = self.engine.agent(agent_id)
        if a is None:
            return {}
        out = asdict(a)
        out["queues"] = list(a.queues)
        out["in_state_seconds"] = round(self.now() - a.since, 3)
        return out

    # ------------------------------------------------------------------ entry
    def on_queue_call(self, e: ev.StasisStart) -> None:
        """`Stasis(app,queue,<name>[,priority=N][,skills=a:2&b])`."""
        ch = e.channel
        queue = e.args[1] if len(e.args) > 1 else ""
        opts = dict(a.split("=", 1) for a in e.args[2:] if "=" in a)
        try:
            priority = int(opts.get("priority", "0"))
            skills = _parse_skills(opts.get("skills", ""))
        except ValueError:
            log.warning("bad queue options", extra={"channel_id": ch.id, "args": e.args})
            priority, skills = 0, {}
        caller_number = ch.caller.number if ch.caller else None
        self.enqueue(QueueItem(id=ch.id, queue=queue, kind="call", priority=priority,
                               entered_at=self.now(), required_skills=skills, caller_id=caller_number),
                     channel_id=ch.id, created_at=ch.creationtime, channel_name=ch.name,
                     already_up=ch.state == "Up",
                     from_dialplan=bool(ch.dialplan and ch.dialplan.app_name == "Stasis"))

    def enqueue(self, item: QueueItem, *, channel_id: str | None, created_at: datetime | None = None,
                channel_name: str | None = None, already_up: bool = False, from_dialplan: bool = True,
                direction: str = "inbound", dial: str | None = None, dial_caller_id: str | None = None,
                dial_timeout: int = 30, whisper: list[str] | None = None,
                observer: Callable[[ItemUpdate], None] | None = None,
                before_dial: Callable[[], Awaitable[bool]] | None = None, amd: bool = False) -> list[cmd.Command]:
        """Put an item in a queue: a live caller (with a channel), or a channel-less item that is
        connected agent-first: when an agent answers, they hear `whisper`, then `dial` is called
        and bridged with them."""
        link = ItemLink(item.id, channel_id, item.queue, from_dialplan=from_dialplan, dial=dial,
                        dial_caller_id=dial_caller_id, dial_timeout=dial_timeout, whisper=whisper,
                        entered_at=item.entered_at if item.entered_at is not None else self.now(),
                        priority=item.priority, skills=dict(item.required_skills) or None, amd=amd)
        self.items[item.id] = link
        if observer is not None:
            self.observers[item.id] = observer
        if before_dial is not None:
            self.before_dial[item.id] = before_dial
        rec = self.s.recorder
        rec.start_call(item.id, direction=direction, created_at=created_at, caller=item.caller_id,
                       queue=item.queue, entered_queue_at=ts(item.entered_at or self.now()),
                       hold_open=channel_id is None, data={"priority": item.priority,
                                                           "skills": dict(item.required_skills)} if
                       (item.priority or item.required_skills) else {})
        if channel_id is not None:
            rec.add_leg(channel_id, call_id=item.id, role="caller", created_at=created_at,
                        channel_name=channel_name)
            if already_up:
                rec.set_leg(channel_id, answered_at=created_at)
                rec.set_call(item.id, answered_at=created_at)
                rec.leg(channel_id).answered = True  # type: ignore[union-attr]
            self.s.own_channel(channel_id, self._caller_handler(link))
            if not already_up:
                self.serial(item.id, self._answer(channel_id))
        commands = self.handle(ce.CallArrived(item))
        pos = self.engine.position(item.id)
        if pos is not None:
            rec.set_call(item.id, position_on_entry=pos)
        return commands

    def withdraw(self, item_id: str, *, outcome: str = "withdrawn") -> bool:
        """Take a channel-less item out of its queue before an agent answered it (a cancelled
        callback). False when there is no such item or an agent already has it."""
        link = self.items.get(item_id)
        if link is None or link.channel_id is not None or link.connected:
            return False
        self.items.pop(item_id, None)
        self.observers.pop(item_id, None)
        self.before_dial.pop(item_id, None)
        link.ended = True
        self.s.recorder.set_call(item_id, outcome=outcome)
        self.s.recorder.release(item_id)
        self.handle(ce.CallLeft(item_id, reason=outcome))
        return True

    async def _answer(self, channel_id: str) -> None:
        await self.s.quietly(self.s.ari.rest.channels.answer(channel_id=channel_id))

    def on_unexpected_agent_leg(self, e: ev.StasisStart) -> None:
        """An agent leg we no longer track (its offer was dropped): hang it up."""
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=e.channel.id)))

    def on_agent_feature(self, e: ev.StasisStart) -> None:
        """`Stasis(app,agent-feature,login|logout|pause|unpause,<agent id>[,reason])` from a phone."""
        action = e.args[1] if len(e.args) > 1 else ""
        agent_id = e.args[2] if len(e.args) > 2 else ""
        reason = e.args[3] if len(e.args) > 3 else "phone"
        event: ce.Event | None = {
            "login": ce.AgentLogin(agent_id), "logout": ce.AgentLogout(agent_id, reason),
            "pause": ce.AgentPause(agent_id, reason), "unpause": ce.AgentUnpause(agent_id),
        }.get(action)
        ok = event is not None and self.engine.agent(agent_id) is not None
        if ok and event is not None:
            self.handle(event)
        media = "sound:agent-loginok" if ok and action == "login" else (
            "sound:agent-loggedoff" if ok and action == "logout" else ("sound:beep" if ok else "sound:pbx-invalid"))

        async def confirm() -> None:
            rest = self.s.ari.rest
            await self.s.quietly(rest.channels.answer(channel_id=e.channel.id))
            done = self.s.ari.expect_event("PlaybackFinished", playback_id=f"pb-{e.channel.id}", timeout=10)
            try:
                await rest.channels.play(channel_id=e.channel.id, media=media, playback_id=f"pb-{e.channel.id}")
                await done
            except Exception:  # noqa: BLE001 - the confirmation is a courtesy
                done.cancel()
            await self.s.quietly(rest.channels.hangup(channel_id=e.channel.id))

        self.s.spawn(confirm(), name=f"feature-{e.channel.id}")

    # ------------------------------------------------------------------ Asterisk events
    #: The event types a caller's and an agent's leg react to; a call brings many more.
    _CALLER_EVENTS = frozenset({"ChannelDtmfReceived", "StasisEnd", "ChannelDestroyed", "ChannelLeftBridge"})
    _AGENT_EVENTS = frozenset({"StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelLeftBridge"})

    def _caller_handler(self, link: ItemLink):  # type: ignore[no-untyped-def]
        wanted = self._CALLER_EVENTS

        def on_event(e: ev.Event) -> None:
            if e.type in wanted:
                self.on_caller_event(link, e)
        return on_event

    def _agent_handler(self, offer: OfferLink):  # type: ignore[no-untyped-def]
        wanted = self._AGENT_EVENTS

        def on_event(e: ev.Event) -> None:
            if e.type in wanted:
                self._on_agent_event(offer, e)
        return on_event

    def on_caller_event(self, link: ItemLink, e: ev.Event) -> None:
        if isinstance(e, ev.ChannelLeftBridge):
            self.left_bridge(e)
        elif isinstance(e, ev.ChannelDtmfReceived):
            if not link.connected and not link.ended and all(f(link, e.digit) for f in self.dtmf_filters):
                self.handle(ce.DtmfPressed(link.item_id, e.digit))
        elif isinstance(e, ev.StasisEnd | ev.ChannelDestroyed):
            self.caller_gone(link)

    def caller_gone(self, link: ItemLink) -> None:
        if link.ended:
            return
        link.ended = True
        if link.connected:
            self.s.recorder.set_call(link.item_id, hangup_by="caller")
            self.handle(ce.CallEnded(link.item_id, by="caller"))
            self._teardown(link, gone=link.channel_id)
            self.notify(link.item_id, "completed", agent_id=link.agent_id, detail="caller")
        else:
            self.s.recorder.set_call(link.item_id, hangup_by="caller", outcome="abandoned")
            self.handle(ce.CallLeft(link.item_id))
            self.items.pop(link.item_id, None)
            self._drop_bridge(link)
            self.notify(link.item_id, "abandoned")

    def _on_agent_event(self, offer: OfferLink, e: ev.Event) -> None:
        if isinstance(e, ev.ChannelLeftBridge):
            self.left_bridge(e)
        elif isinstance(e, ev.StasisStart):
            if offer.offer_id in self.offers and not offer.answered:
                offer.answered = True
                self.handle(ce.OfferAnswered(offer.offer_id))
            elif offer.offer_id not in self.offers:
                self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=e.channel.id)))
        elif isinstance(e, ev.ChannelDestroyed | ev.StasisEnd):
            if isinstance(e, ev.StasisEnd) and not offer.answered:
                return  # not answered yet: the ChannelDestroyed that follows carries the cause
            self.agent_gone(offer, getattr(e, "cause", None))

    def agent_gone(self, offer: OfferLink, cause: int | None) -> None:
        if self.offers.pop(offer.offer_id, None) is None:
            return
        link = self.items.get(offer.item_id)
        if link is not None and link.connected and link.agent_channel == offer.channel_id:
            if not link.ended:
                link.ended = True
                self.s.recorder.set_call(link.item_id, hangup_by="agent")
                self.handle(ce.CallEnded(link.item_id, by="agent"))
                self._teardown(link, gone=offer.channel_id)
                self.notify(link.item_id, "completed", agent_id=link.agent_id, detail="agent")
            return
        if not offer.answered:
            reason = _FAIL_REASONS.get(dial_failure(cause), "unavailable")
            self.s.recorder.set_leg(offer.channel_id, outcome=reason)
            self.handle(ce.OfferFailed(offer.offer_id, reason))
        else:
            # Answered, but gone before the bridge: the agent hung up at once.
            self.handle(ce.AgentLegLost(offer.agent_id))

    def notify(self, item_id: str, kind: str, *, agent_id: str | None = None, detail: str | None = None) -> None:
        observer = self.observers.get(item_id)
        if observer is None:
            return
        if kind in ("completed", "exited", "abandoned", "customer-failed"):
            self.observers.pop(item_id, None)
            self.before_dial.pop(item_id, None)
        try:
            observer(ItemUpdate(item_id, kind, agent_id, detail))
        except Exception:
            log.exception("item observer failed", extra={"item_id": item_id})
        if self._watchers:
            self._watchers.check()

    def _teardown(self, link: ItemLink, *, gone: str | None = None) -> None:
        """End a connected call: hang up whichever side is still there (not `gone`, the leg whose
        end brought us here: a request for it would only earn a 404), drop the bridge."""
        self.items.pop(link.item_id, None)
        self.s.recorder.release(link.item_id)
        if link.agent_offer is not None:
            self.offers.pop(link.agent_offer, None)
        rest = self.s.ari.rest

        bridge_id = link.bridge_id
        # Back to the pool once both legs left it (before the hangups: their events may be quick).
        destroy = bridge_id is not None and self.bridges.release(bridge_id, self.now())

        async def down() -> None:
            await asyncio.gather(*(self.s.quietly(rest.channels.hangup(channel_id=cid))
                                   for cid in (link.channel_id, link.agent_channel) if cid and cid != gone))
            if destroy and bridge_id:
                await self.s.quietly(rest.bridges.destroy(bridge_id=bridge_id))
        self.serial(link.item_id, down())

    # ------------------------------------------------------------------ commands
    def execute(self, commands: list[cmd.Command]) -> None:
        for c in commands:
            try:
                self._execute_one(c)
            except Exception:
                log.exception("ACD command failed", extra={"command": type(c).__name__})

    def _execute_one(self, c: cmd.Command) -> None:
        w = self.s.writer
        if isinstance(c, cmd.QueueLog):
            w.queue_event(at=ts(c.at), event=c.event, queue=c.queue, call_id=c.item_id, agent_id=c.agent_id,
                          data=dict(c.data))
        elif isinstance(c, cmd.AgentStateChanged):
            w.agent_state(at=ts(c.at), agent_id=c.agent_id, old_state=c.old, state=c.new, reason=c.reason)
        elif isinstance(c, cmd.Offer):
            self._offer(c)
        elif isinstance(c, cmd.CancelOffer):
            self._cancel_offer(c)
        elif isinstance(c, cmd.Connect):
            self._connect(c)
        elif isinstance(c, cmd.StartHold):
            link = self.items.get(c.item_id)
            if link and link.channel_id:
                delay = self.s.settings.hold_music_delay
                if delay > 0:
                    asyncio.get_running_loop().call_later(delay, self.start_hold, link)
                else:
                    self.start_hold(link)
        elif isinstance(c, cmd.Announce):
            self._announce(c)
        elif isinstance(c, cmd.ExitQueue):
            self._exit(c)
        elif isinstance(c, cmd.ItemMoved):
            self.s.recorder.set_call(c.item_id, queue=c.to_queue, data={"moved_from": c.from_queue,
                                                                         "move_reason": c.reason})
            link = self.items.get(c.item_id)
            if link is not None:
                link.queue = c.to_queue

    def start_hold(self, link: ItemLink) -> None:
        """Music for a caller still waiting (`hold_music_delay` after the core asked for it)."""
        if link.connected or link.ended or link.moh or link.channel_id is None or self.items.get(link.item_id) is not link:
            return
        link.moh = True
        self.serial(link.item_id, self.s.quietly(self.s.ari.rest.channels.start_moh(channel_id=link.channel_id)))

    def _prepare_bridge(self, link: ItemLink) -> None:
        """Have the caller's bridge ready while the first agent rings (an idle one from the pool,
        else a new one), so that an answer costs one request (add both legs) before the two
        talk. It serves every offer of the item and goes back to the pool with the call
        (teardown) or with the caller (abandon, exit)."""
        if link.bridge_id is not None or link.channel_id is None:
            return
        pooled = self.bridges.take()
        if pooled is not None:
            link.bridge_id = pooled
            return
        bridge_id = link.bridge_id = self.s.ari.new_id("bridge")
        self.bridges.adopt(bridge_id)

        async def create() -> None:
            try:
                await self.create_bridge(bridge_id)
            except Exception as exc:  # noqa: BLE001 - the connect creates it again if need be
                log.warning("queue bridge not created", extra={"item_id": link.item_id, "error": str(exc)})
        self.serial(link.item_id, create())

    async def create_bridge(self, bridge_id: str) -> None:
        """Make a queue bridge (for the call at hand; the pool reuses it for others later)."""
        await self.s.ari.rest.bridges.create(bridge_id=bridge_id, type="mixing", name=self.bridge_name("pool"))

    def bridge_name(self, suffix: str) -> str:
        """Names say whose bridges they are, so a reconcile can find its own leftovers."""
        return f"{self.s.settings.app_name}:queue:{suffix}"

    def left_bridge(self, e: ev.ChannelLeftBridge) -> None:
        """A leg left a bridge: a finished call's bridge that is now empty goes back to the pool."""
        if self.bridges.left(e.bridge.id, len(e.bridge.channels)):
            self.s.spawn(self.s.quietly(self.s.ari.rest.bridges.destroy(bridge_id=e.bridge.id)))

    def _drop_bridge(self, link: ItemLink) -> None:
        """The caller left without being connected: the bridge readied for it, which no leg
        joined, goes back to the pool (after its creation, if that is still on its way)."""
        bridge_id, link.bridge_id = link.bridge_id, None
        if bridge_id is None:
            return

        async def back() -> None:
            if self.bridges.release(bridge_id, self.now(), empty=True):
                await self.s.quietly(self.s.ari.rest.bridges.destroy(bridge_id=bridge_id))
        self.serial(link.item_id, back())

    def _offer(self, c: cmd.Offer) -> None:
        link = self.items.get(c.item_id)
        if link is not None:
            self._prepare_bridge(link)
        channel_id = self.s.ari.new_id("agent")
        offer = OfferLink(c.offer_id, c.item_id, c.agent_id, channel_id)
        self.offers[c.offer_id] = offer
        self.s.own_channel(channel_id, self._agent_handler(offer))
        self.s.recorder.add_leg(channel_id, call_id=c.item_id, role="agent", agent_id=c.agent_id,
                                endpoint=c.endpoint, data={"offer_id": c.offer_id})
        caller = c.caller_id_hint or "unknown"
        caller_id = f'"{c.queue}: {caller}" <{caller}>'
        rest = self.s.ari.rest

        async def originate() -> None:
            try:
                await rest.channels.originate(endpoint=c.endpoint, app=self.s.settings.app_name,
                                              app_args=f"agent-leg,{c.item_id}", channel_id=channel_id,
                                              caller_id=caller_id, timeout=int(c.timeout) + 5)
                self.rung.add(c.offer_id)
            except Exception as exc:  # noqa: BLE001 - any failure to ring is "unavailable"
                log.warning("agent originate failed", extra={"agent_id": c.agent_id, "error": str(exc)})
                if self.offers.pop(c.offer_id, None) is not None:
                    self.s.recorder.set_leg(channel_id, outcome="failed", ended_at=datetime.now(UTC))
                    self.s.recorder.legs.pop(channel_id, None)
                    self.handle(ce.OfferFailed(c.offer_id, "unavailable"))
        self.s.spawn(originate(), name=f"offer-{c.offer_id}")
        self.notify(c.item_id, "agent-ringing", agent_id=c.agent_id)

    def _cancel_offer(self, c: cmd.CancelOffer) -> None:
        offer = self.offers.pop(c.offer_id, None)
        if offer is None:
            return
        outcome = {"timeout": "noanswer", "caller-left": "canceled", "answered-elsewhere": "canceled"}.get(
            c.reason, "canceled")
        self.s.recorder.set_leg(offer.channel_id, outcome=outcome)
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=offer.channel_id)))

    def _connect(self, c: cmd.Connect) -> None:
        link = self.items.get(c.item_id)
        offer = self.offers.get(c.offer_id)
        if link is None or offer is None:
            return
        link.connected = True
        link.agent_channel = offer.channel_id
        link.agent_offer = offer.offer_id
        link.agent_id = c.agent_id
        if link.bridge_id is None:
            link.bridge_id = self.s.ari.new_id("bridge")
        self.s.recorder.set_leg(offer.channel_id, outcome="answered")
        self.s.recorder.set_call(c.item_id, agent_id=c.agent_id, outcome="answered")
        self.notify(c.item_id, "agent-answered", agent_id=c.agent_id)
        if link.channel_id is None:
            self.serial(c.item_id, connect_agent_first(self, link, offer))
            return
        rest = self.s.ari.rest
        bridge_id, caller, agent = link.bridge_id, link.channel_id, offer.channel_id
        stop_music, link.moh = link.moh, False
        if link.playback_id is not None:  # an announcement: cut it short, the agent is there
            self.s.spawn(self.s.quietly(rest.playbacks.stop(playback_id=link.playback_id)))

        async def join() -> None:
            await rest.bridges.add_channel(bridge_id=bridge_id, channel=[caller, agent])

        async def bridge() -> None:
            # The bridge exists since the offer (`_prepare_bridge`): adding both legs and ending
            # the music go out together, one round trip between the answer and the two talking.
            try:
                await asyncio.gather(join(), *([self.s.quietly(rest.channels.stop_moh(channel_id=caller))]
                                                if stop_music else []))
            except ari_errors.AriHttpError as exc:
                if exc.status != 404:  # 404: no such bridge (its creation failed): make it now
                    raise
                await self.create_bridge(bridge_id)
                await join()
        self.serial(c.item_id, bridge())

    def customer_failed(self, link: ItemLink, offer: OfferLink, reason: str) -> None:
        """The customer of a channel-less item did not answer: free the agent now, tell the owner."""
        link.ended = True
        self.s.recorder.set_call(link.item_id, outcome=f"customer-{reason}", hangup_by="customer")
        self.handle(ce.CallEnded(link.item_id, by="caller"))
        self._teardown(link)
        self.s.recorder.release(link.item_id)
        self.notify(link.item_id, "customer-failed", agent_id=offer.agent_id, detail=reason)

    def _announce(self, c: cmd.Announce) -> None:
        link = self.items.get(c.item_id)
        media = announcement_media(c)
        if link is None or link.channel_id is None or not media:
            return
        allow = self.announce_filters.get(c.kind)
        if allow is not None and not allow(link, c):
            return
        rest, channel = self.s.ari.rest, link.channel_id

        async def play() -> None:
            if link.connected or link.ended:
                return
            playback_id = self.s.ari.new_id("pb")
            done = self.s.ari.expect_event("PlaybackFinished", playback_id=playback_id, timeout=60)
            try:
                if link.moh:
                    link.moh = False
                    await self.s.quietly(rest.channels.stop_moh(channel_id=channel))
                link.playback_id = playback_id
                await rest.channels.play(channel_id=channel, media=media, playback_id=playback_id)
                await done
            except Exception:  # noqa: BLE001 - gone caller or failed prompt: back to music
                done.cancel()
            finally:
                link.playback_id = None
            if not link.connected and not link.ended and not link.moh:
                link.moh = True
                await self.s.quietly(rest.channels.start_moh(channel_id=channel))
        self.serial(c.item_id, play())

    def _exit(self, c: cmd.ExitQueue) -> None:
        link = self.items.pop(c.item_id, None)
        self.s.recorder.set_call(c.item_id, outcome=_EXIT_OUTCOMES.get(c.reason, c.reason))
        self.notify(c.item_id, "exited", detail=c.reason)
        if link is None or link.channel_id is None:
            if link is not None:
                self.s.recorder.release(c.item_id)
            return
        link.ended = True
        self._drop_bridge(link)
        self.s.channel_handlers.pop(link.channel_id, None)
        takeover = self.exit_handlers.get(c.destination or "")
        if takeover is not None:
            takeover(link, c)
            return
        rest, channel = self.s.ari.rest, link.channel_id
        dest = c.destination

        music, link.moh = link.moh, False

        async def leave() -> None:
            if music:
                await self.s.quietly(rest.channels.stop_moh(channel_id=channel))
            await self.s.quietly(rest.channels.set_variable(channel_id=channel, variable="QUEUESTATUS",
                                                            value=_QUEUESTATUS.get(c.reason, "CONTINUE")))
            if dest and dest.startswith("context:"):
                ctx, _, rest_ = dest[len("context:"):].partition(",")
                exten, _, prio = rest_.partition(",")
                await self.s.quietly(rest.channels.continue_in_dialplan(
                    channel_id=channel, context=ctx, extension=exten, priority=int(prio or 1)))
            elif dest and dest.startswith("voicemail:"):
                await self.s.quietly(rest.channels.continue_in_dialplan(
                    channel_id=channel, context="ari-app-voicemail", extension=dest.split(":", 1)[1], priority=1))
            elif dest is None and link.from_dialplan:
                await self.s.quietly(rest.channels.continue_in_dialplan(channel_id=channel))
            else:
                await self.s.quietly(rest.channels.hangup(channel_id=channel))
        self.serial(c.item_id, leave())

    def serial(self, key: str, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` after the previous REST work for the same item (one caller's calls in order)."""
        prev = self._chains.get(key)

        async def run() -> None:
            if prev is not None and not prev.done():
                await asyncio.gather(prev, return_exceptions=True)
            await coro

        task = self.s.spawn(run(), name=f"acd-{key}")
        self._chains[key] = task
        task.add_done_callback(lambda t: self._chains.pop(key, None) if self._chains.get(key) is t else None)

    # ------------------------------------------------------------------ reconcile and audit
    async def on_reconcile(self, result: dict[str, Any]) -> None:
        await leg_audit.reconcile(self, result)

    async def _audit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.audit_interval)
            if self.s.ari.connected:
                await self.audit()

    async def audit(self) -> None:
        """Free what vanished from Asterisk without the events we expected (`audit.py`)."""
        await leg_audit.audit(self)


def _parse_skills(text: str) -> dict[str, int]:
    skills: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.replace("+", "&").split("&"))):
        name, _, level = part.partition(":")
        skills[name] = int(level) if level else 1
    return skills
