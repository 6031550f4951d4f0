"""Agents' device states from Asterisk, fed to the ACD core as `AgentDeviceState`.

An agent's device (`AgentConfig.device_name`: the agent's `device`, else a `PJSIP/x`, `SIP/x`
or `IAX2/x` endpoint) says whether they are busy outside the ACD (a call from their own phone)
or unreachable (a phone that is unplugged). The app subscribes to each device
(`deviceState:<name>`), maps Asterisk's nine states onto the core's three (`STATES`) and feeds
every change to the core: `unavailable` agents are never offered, `inuse` ones only by
`ring_in_use` queues.

- A device is read (`GET /deviceStates/{name}`) when it starts being followed (an agent created
  or changed) and after every (re)connect: Asterisk does not replay events, and a restarted
  Asterisk has forgotten the subscriptions. A read that an event overtook is dropped.
- Between reconnects, the ACD's audit (every 15 s) re-reads up to `REREAD_BATCH` devices in turn
  (`reread`): an event lost on the way (none is replayed) is corrected within a few audits
  instead of leaving an agent busy or unreachable until the next reconnect.
- Nothing more is persisted than the engine's agent record: the state is re-read at every start.
- The ACD's own legs make an agent's device RINGING/INUSE too. That never counts twice: the
  core looks at the device only while the agent is `available` (not ringing, on a call or in
  wrap-up), and when our leg hangs up the device's NOT_INUSE event follows.
- Calls the app makes to an agent outside the ACD (click-to-call) `hold` the agent in use until
  `release`, whatever the device says (a `Local/` agent has no device that would say so).
- Asterisk ignores a subscription to a `Stasis:` device that no ARI client has set yet (it
  reads as UNKNOWN); such a device is created NOT_INUSE (idle to the core as well: ARI can't
  set UNKNOWN) so that the subscription takes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ari_app.acd.core import events as ce
from ari_app.acd.core.model import DeviceState
from ari_app.ari import errors as ari_errors
from ari_app.ari import events as ev

if TYPE_CHECKING:
    from ari_app.acd.adapter import AcdAdapter
    from ari_app.service import Service

log = logging.getLogger(__name__)

#: Asterisk's device states (ast_devstate_str) -> the core's. UNKNOWN counts as idle (app_queue
#: does the same: a device without state information can be rung); INVALID means no such device.
STATES: dict[str, DeviceState] = {
    "NOT_INUSE": "idle", "UNKNOWN": "idle",
    "INUSE": "inuse", "BUSY": "inuse", "RINGING": "inuse", "RINGINUSE": "inuse", "ONHOLD": "inuse",
    "UNAVAILABLE": "unavailable", "INVALID": "unavailable",
}

#: Device names per subscription request (they all go in the query string).
_BATCH = 50
#: Devices re-read per audit, in turn (one GET each: ARI lists only the states it controls).
REREAD_BATCH = 50


def core_state(asterisk_state: str) -> DeviceState:
    return STATES.get(asterisk_state.upper(), "idle")


class AgentDevices:
    def __init__(self, service: Service, acd: AcdAdapter) -> None:
        self.s = service
        self.acd = acd
        #: agent id -> the device followed for them; device -> its agents (a shared desk phone)
        self.device_of: dict[str, str] = {}
        self.agents_on: dict[str, set[str]] = {}
        #: device -> its state as last heard from Asterisk (absent: not read yet)
        self.states: dict[str, DeviceState] = {}
        #: device -> events received, so that a read an event overtook is dropped
        self._seen: dict[str, int] = {}
        #: agent id -> calls outside the ACD holding the agent in use
        self._holds: dict[str, int] = {}
        #: Where the periodic re-read goes on (index into the sorted followed devices).
        self._reread_at = 0
        service.type_handlers["DeviceStateChanged"] = self.on_event
        service.reconnect_hooks.append(self.on_reconcile)

    # ------------------------------------------------------------------ what the core sees
    def state_of(self, agent_id: str) -> DeviceState:
        device = self.device_of.get(agent_id)
        base = self.states.get(device, "idle") if device is not None else "idle"
        if base != "unavailable" and self._holds.get(agent_id):
            return "inuse"
        return base

    def _feed(self, agent_id: str) -> None:
        info = self.acd.engine.agent(agent_id)
        state = self.state_of(agent_id)
        if info is not None and info.device != state:
            self.acd.handle(ce.AgentDeviceState(agent_id, state))

    def _set(self, device: str, state: DeviceState) -> None:
        self.states[device] = state
        for agent_id in sorted(self.agents_on.get(device, ())):
            self._feed(agent_id)

    def hold(self, agent_id: str) -> None:
        """The app calls the agent outside the ACD: in use until `release`."""
        self._holds[agent_id] = self._holds.get(agent_id, 0) + 1
        self._feed(agent_id)

    def release(self, agent_id: str) -> None:
        left = self._holds.pop(agent_id, 0) - 1
        if left > 0:
            self._holds[agent_id] = left
        self._feed(agent_id)

    # ------------------------------------------------------------------ Asterisk events
    def on_event(self, e: ev.Event) -> None:
        if not isinstance(e, ev.DeviceStateChanged):
            return
        name = e.device_state.name
        if name in self.agents_on:
            self._seen[name] = self._seen.get(name, 0) + 1
            self._set(name, core_state(e.device_state.state))

    # ------------------------------------------------------------------ following devices
    def _update(self) -> tuple[list[str], list[str]]:
        """Follow the devices of the engine's agents now; return (new devices, devices no agent
        has any more). Agents whose device went away, or changed to one already known, are fed
        at once; a new device waits for its read."""
        wanted: dict[str, str] = {}
        for agent_id in self.acd.agent_ids():
            cfg = self.acd.engine.agent_config(agent_id)
            device = cfg.device_name if cfg is not None else None
            if device is not None:
                wanted[agent_id] = device
        new: list[str] = []
        gone: list[str] = []
        for agent_id in sorted(set(self.device_of) | set(wanted)):
            old, device = self.device_of.get(agent_id), wanted.get(agent_id)
            if old == device:
                continue
            if old is not None:
                del self.device_of[agent_id]
                users = self.agents_on[old]
                users.discard(agent_id)
                if not users:
                    del self.agents_on[old]
                    self.states.pop(old, None)
                    self._seen.pop(old, None)
                    gone.append(old)
            if device is not None:
                self.device_of[agent_id] = device
                if device not in self.agents_on:
                    new.append(device)
                self.agents_on.setdefault(device, set()).add(agent_id)
            if device is None or device in self.states:
                self._feed(agent_id)
        gone = [d for d in gone if d not in self.agents_on]  # taken over by another agent meanwhile
        return new, gone

    async def sync(self) -> None:
        """After agents were created, changed or removed: follow their devices now (when ARI is
        connected; otherwise the next reconcile does). Never raises: a failure is logged."""
        new, gone = self._update()
        if not self.s.ari.connected:
            return
        try:
            if gone:
                await self._unsubscribe(gone)
            if new:
                await self._watch(new)
        except Exception:  # noqa: BLE001 - the agent's config is stored; the reconcile tries again
            log.exception("could not follow agent devices")

    async def on_reconcile(self, result: dict[str, Any]) -> None:
        """After every (re)connect: subscribe again and read every device; agents without a device
        are idle (or held). Subscriptions no agent needs any more (agents removed while the app
        was away) are dropped."""
        self._update()
        for agent_id in self.acd.agent_ids():
            if agent_id not in self.device_of:
                self._feed(agent_id)
        try:
            app = await self.s.ari.rest.applications.get(application_name=self.s.settings.app_name)
            extra = [d for d in app.device_names if d not in self.agents_on]
            if extra:
                await self._unsubscribe(extra)
            if self.agents_on:
                await self._watch(sorted(self.agents_on))
        except ari_errors.AriError as exc:  # the next reconnect tries again
            log.warning("could not follow agent devices", extra={"error": str(exc)})

    async def _subscribe(self, devices: list[str]) -> set[str]:
        """Subscribe in batches; return the device names the application now follows."""
        rest, app = self.s.ari.rest, self.s.settings.app_name
        names: set[str] = set()
        for i in range(0, len(devices), _BATCH):
            got = await rest.applications.subscribe(
                application_name=app, event_source=[f"deviceState:{d}" for d in devices[i:i + _BATCH]])
            names = set(got.device_names)
        return names

    async def _unsubscribe(self, devices: list[str]) -> None:
        rest, app = self.s.ari.rest, self.s.settings.app_name
        for device in devices:
            await self.s.quietly(rest.applications.unsubscribe(application_name=app,
                                                               event_source=f"deviceState:{device}"))

    async def _watch(self, devices: list[str]) -> None:
        """Subscribe to `devices`, then read them (in that order: no change between is missed)."""
        rest = self.s.ari.rest
        followed = await self._subscribe(devices)
        missing = [d for d in devices if d not in followed]
        unset = [d for d in missing if d.startswith("Stasis:")]
        if unset:
            await asyncio.gather(*(self.s.quietly(rest.device_states.update(device_name=d, device_state="NOT_INUSE"))
                                   for d in unset))
            followed = await self._subscribe(unset)
            missing = [d for d in missing if d not in followed]
        if missing:
            log.warning("Asterisk did not subscribe the app to these agent devices", extra={"devices": missing})
        await asyncio.gather(*(self._read(d) for d in devices))

    async def reread(self) -> None:
        """The next `REREAD_BATCH` followed devices, read again (the audit calls it). A state that
        differs from what the events said is corrected, and logged: an event was lost."""
        devices = sorted(self.agents_on)
        if not devices or not self.s.ari.connected:
            return
        start = self._reread_at % len(devices)
        batch = (devices[start:] + devices[:start])[:REREAD_BATCH]
        self._reread_at = start + len(batch)
        await asyncio.gather(*(self._read(d, correcting=True) for d in batch))

    async def _read(self, device: str, *, correcting: bool = False) -> None:
        seen = self._seen.get(device, 0)
        try:
            found = await self.s.ari.rest.device_states.get(device_name=device)
        except ari_errors.AriError as exc:
            log.warning("could not read an agent device", extra={"device": device, "error": str(exc)})
            return
        if device not in self.agents_on or self._seen.get(device, 0) != seen:
            return  # no longer followed, or an event overtook the read: it is newer
        if found.state.upper() == "INVALID":
            log.warning("agent device unknown to Asterisk: the agent is not offered calls",
                        extra={"device": device, "agents": sorted(self.agents_on[device])})
        state = core_state(found.state)
        if correcting and self.states.get(device) == state:
            return
        if correcting:
            log.warning("agent device state corrected by a periodic read (an event was lost)",
                        extra={"device": device, "was": self.states.get(device), "now": state})
        self._set(device, state)
