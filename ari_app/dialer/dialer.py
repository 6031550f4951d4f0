"""The outbound dialer capability (`service.dialer`): campaigns, their runners, agent sessions, calls,
dispositions and preview dialing. Pacing and compliance decisions are the core's (`dialer/core`);
this is the glue between them, Asterisk and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from ari_app.ari import events as ev
from ari_app.dialer import restore, store
from ari_app.dialer.agents import AgentDesk
from ari_app.dialer.calls import CallFlow
from ari_app.dialer.campaigns import CampaignSpec, Disposition, SpecError, parse_campaign
from ari_app.dialer.core import may_dial
from ari_app.dialer.imports import Importer
from ari_app.dialer.metrics import campaign_families
from ari_app.dialer.model import AgentSession, OutboundCall, ts
from ari_app.dialer.ownership import PacingLocks
from ari_app.dialer.runner import CampaignRunner, lead_from_row
from ari_app.http.errors import ApiError
from ari_app.reporting.core.prometheus import Family
from ari_app.store.db import is_transient
from ari_app.watchers import Watchers

if TYPE_CHECKING:
    from ari_app.service import Service

log = logging.getLogger(__name__)

SYNC_INTERVAL = 1.0


class Dialer:
    def __init__(self, service: Service) -> None:
        from ari_app.dialer import api

        self.s = service
        #: Who claims leads: one name per app instance (leads it held when it stopped are released at start).
        self.owner = f"{socket.gethostname()}/{service.settings.app_name}"
        self.runners: dict[str, CampaignRunner] = {}
        self.sessions: dict[str, AgentSession] = {}
        self.calls: dict[str, OutboundCall] = {}
        #: Calls that reached an agent and still wait for the agent's disposition.
        self.undisposed: dict[str, OutboundCall] = {}
        self.flow = CallFlow(self)
        self.desk = AgentDesk(self)
        self.reporting = getattr(service, "reporting", None)  # set by Reporting, added before us
        if self.reporting is not None:
            from ari_app.dialer.reports import campaign_intervals
            self.reporting.interval_sources["campaign"] = campaign_intervals
            self.reporting.extensions["campaigns"] = self.live_view
            self.reporting.metric_sources.append(self.metrics)
        self.importer = Importer(self)
        self._lead_chains: dict[int, asyncio.Task[Any]] = {}
        #: Agent channels of stored sessions that could not be restored: hung up at the first reconcile.
        self.leftovers: list[str] = []
        self._adopted = False
        #: The campaigns this instance paces (one instance per campaign: `ownership`).
        self.pacing = PacingLocks(service.settings.database_url.get_secret_value())
        self._watchers = Watchers()
        service.dialer = self  # type: ignore[attr-defined]
        service.routes["dialer-customer"] = self._stray
        service.routes["dialer-agent"] = self._stray
        service.reconnect_hooks.append(self.on_reconcile)
        service.shutdown_hooks.append(self.stop)
        api.register(service.api, service, self)

    # ------------------------------------------------------------------ lifecycle
    def live_view(self) -> list[dict[str, Any]]:
        """Campaigns for the live statistics stream and the wallboard."""
        out = []
        for r in self.runners.values():
            agents = [x for x in self.sessions.values() if x.campaign_id == r.id and x.state != "ended"]
            out.append({"id": r.id, "mode": r.spec.to_dict().get("mode"), **r.view(),
                        "agents": len(agents), "agents_ready": sum(1 for x in agents if x.state == "ready"),
                        "agents_on_call": sum(1 for x in agents if x.state in ("reserved", "on_call"))})
        return out

    def metrics(self) -> list[Family]:
        """Per-campaign families for /metrics (`dialer.metrics`)."""
        now = time.time()
        return campaign_families(r.figures(now) for r in self.runners.values())

    async def _publish_loop(self) -> None:
        """While a campaign runs, its figures change without the ACD noticing: keep the stream fresh."""
        while True:
            await asyncio.sleep(1.0)
            if self.reporting is not None and any(r.state == "running" for r in self.runners.values()):
                self.reporting.mark_dirty()

    async def start(self) -> None:
        if self.reporting is not None:
            self.s.spawn(self._publish_loop(), name="dialer-publish")
        self.s.spawn(self._sync_loop(), name="dialer-sync")
        try:
            async with self.s.db.acquire() as conn:
                campaigns = await store.load_campaigns(conn)
        except Exception as exc:  # noqa: BLE001 - start without campaigns; the API can add them
            log.warning("could not load campaigns", extra={"error": type(exc).__name__})
            return
        for campaign_id, body, state, changed_at in campaigns:
            try:
                spec = parse_campaign(campaign_id, body)
            except (SpecError, ValueError) as exc:
                log.error("stored campaign is invalid; not loaded", extra={"campaign": campaign_id, "error": str(exc)})
                continue
            self.runners[campaign_id] = runner = CampaignRunner(self, spec, state)
            runner.synced_at = changed_at
        try:
            async with self.s.db.acquire() as conn:
                keep = await restore.load(self, conn)  # agents' sessions, and the calls they are on
                released = await store.release_stale_claims(conn, self.owner, keep=keep)
            if released:
                log.info("released leads claimed before a restart", extra={"count": released})
            for runner in self.runners.values():
                await runner.load_history()
        except Exception as exc:  # noqa: BLE001 - runners reload their history when they take the campaign lock
            log.warning("could not restore the dialer's sessions and history", extra={"error": type(exc).__name__})
        for runner in self.runners.values():
            runner.start_loop()

    async def stop(self) -> None:
        for runner in self.runners.values():
            runner.stop_loop()
        for item in [*self.sessions.values(), *self.calls.values()]:
            item.cancel_timer()  # wrap-up and connect timers: the next start sets them again
        self.importer.close()
        try:  # the next owner rebuilds its ledger from the records: they land before the locks go
            await asyncio.wait_for(self.lead_writes_done(), 5)
            await self.s.writer.flush(timeout=5)
        except Exception:  # noqa: BLE001 - a database outage: hand over anyway, the records follow
            log.warning("records not all written before handing the campaigns over")
        await self.pacing.close()

    async def _sync_loop(self) -> None:
        """Every second: keep the pacing locks' connection checked, and follow campaign changes made
        through another instance's API (state and configuration live in `dialer_campaigns`)."""
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            try:
                await self.pacing.keep_alive()
                await self.sync_campaigns()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database blink: next time
                log.debug("campaign sync failed", extra={"error": type(exc).__name__})

    async def sync_campaigns(self) -> None:
        async with self.s.db.acquire() as conn:
            rows = await store.campaign_versions(conn)
        for r in rows:
            at = r["updated_at"].timestamp()
            runner = self.runners.get(r["id"])
            if runner is not None and at <= runner.synced_at:
                continue
            try:
                spec = parse_campaign(r["id"], _json(r["config"]))
            except (SpecError, ValueError):
                continue  # logged where it was loaded or stored
            if runner is None:
                runner = CampaignRunner(self, spec, r["state"])
                runner.synced_at = at
                self.runners[r["id"]] = runner
                await runner.load_history()
                runner.start_loop()
                continue
            runner.synced_at = at
            if spec.body != runner.spec.body and runner.replace_spec(spec):
                await runner.load_history()
            if r["state"] != runner.state:
                log.info("campaign state changed elsewhere", extra={"campaign": runner.id, "state": r["state"]})
                self.apply_state(runner.id, r["state"])

    def _stray(self, e: ev.StasisStart) -> None:
        """A dialer leg we no longer track (e.g. from before a restart): hang it up."""
        self.s.spawn(self.s.quietly(self.s.ari.rest.channels.hangup(channel_id=e.channel.id)))

    async def on_reconcile(self, result: dict[str, Any]) -> None:
        if not self._adopted:  # the first after a start: sessions stored by the previous run
            self._adopted = True
            await restore.adopt(self, result)
        alive = set(result["channels"])
        now = time.time()
        gone = [c for c in self.calls.values() if c.call_id not in alive and now - c.dialed_at > 5]
        answered = await restore.untaken(self, gone)  # customers who answered while ARI was disconnected
        await restore.keep_marks(self)
        for call in gone:
            if call.call_id in answered:
                self.flow.untaken(call, answered[call.call_id])
            else:
                self.flow._ended(call, None)
        for session in list(self.sessions.values()):
            if session.channel_id not in alive and (session.state != "connecting" or now - session.since > 5):
                self.desk._gone(session)

    # ------------------------------------------------------------------ change notification
    def changed(self, campaign_id: str) -> None:
        """A call or an agent changed state: release pending pauses, let the runner re-pace."""
        runner = self.runners.get(campaign_id)
        self.desk.apply_pending(campaign_id)
        if runner is not None:
            runner.wake()
        self._watchers.check()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        """Wait until `predicate()` holds, re-checked at every call or agent change (for tests)."""
        await self._watchers.wait_until(predicate, timeout=timeout)

    def lead_write(self, lead_id: int, fn: Callable[[asyncpg.Connection], Awaitable[Any]],
                   then: Callable[[], None] | None = None) -> None:
        """Lead updates in order per lead, retried through a database outage; `then` runs once it landed."""
        prev = self._lead_chains.get(lead_id)

        async def run() -> None:
            if prev is not None and not prev.done():
                await asyncio.gather(prev, return_exceptions=True)
            for attempt in range(30):
                try:
                    async with self.s.db.acquire() as conn:
                        await fn(conn)
                    if then is not None:
                        then()
                    return
                except Exception as exc:
                    if not is_transient(exc):
                        log.exception("lead update failed", extra={"lead_id": lead_id})
                        return
                    await asyncio.sleep(min(5.0, 0.1 * 2 ** attempt))
            log.error("lead update given up after a long outage", extra={"lead_id": lead_id})

        task = self.s.spawn(run(), name=f"lead-{lead_id}")
        self._lead_chains[lead_id] = task
        task.add_done_callback(lambda t: self._lead_chains.pop(lead_id, None)
                               if self._lead_chains.get(lead_id) is t else None)

    async def lead_writes_done(self) -> None:
        while self._lead_chains:
            await asyncio.gather(*list(self._lead_chains.values()), return_exceptions=True)

    # ------------------------------------------------------------------ campaigns
    async def put_campaign(self, campaign_id: str, data: dict[str, Any]) -> tuple[CampaignSpec, bool]:
        spec = parse_campaign(campaign_id, data)
        async with self.s.db.acquire() as conn:
            existed, at = await store.save_campaign(conn, campaign_id, spec.body)
        runner = self.runners.get(campaign_id)
        if runner is None:
            runner = CampaignRunner(self, spec, "stopped")
            runner.synced_at = at.timestamp()
            self.runners[campaign_id] = runner
            await runner.load_history()
            runner.start_loop()
        else:
            runner.synced_at = max(runner.synced_at, at.timestamp())
            if runner.replace_spec(spec):
                await runner.load_history()
        return spec, existed

    def apply_state(self, campaign_id: str, state: str, *, at: datetime | None = None) -> None:
        """running | paused | stopped (already stored, at `at`). Pausing or stopping never cuts a call short."""
        runner = self.runners[campaign_id]
        if at is not None:
            runner.synced_at = max(runner.synced_at, at.timestamp())
        runner.state = state
        if state == "stopped":  # agents go home once their calls are over
            for session in [s for s in self.sessions.values() if s.campaign_id == campaign_id]:
                self.desk.request(session, "logged_out")
        runner.invalidate()
        self.changed(campaign_id)

    # ------------------------------------------------------------------ agents
    async def agent_request(self, runner: CampaignRunner, agent_id: str, state: str,
                            endpoint: str | None) -> AgentSession | None:
        session = self.sessions.get(agent_id)
        if session is not None and session.campaign_id != runner.id:
            raise ApiError(409, f"agent {agent_id!r} is working campaign {session.campaign_id!r}", field="agent_id")
        if session is None:
            if state != "ready":
                return None
            info = self.s.acd.engine.agent(agent_id)
            if info is not None and info.status in ("ringing", "on_call", "wrapup"):
                raise ApiError(409, f"agent {agent_id!r} is on an inbound call ({info.status})", field="agent_id")
            endpoint = await self._agent_endpoint(runner.spec, agent_id, endpoint)
            return self.desk.join(runner.spec, agent_id, endpoint)
        self.desk.request(session, state)
        self.changed(runner.id)
        return session

    async def _agent_endpoint(self, spec: CampaignSpec, agent_id: str, endpoint: str | None) -> str:
        """The phone to call for an agent who may work this campaign: listed in its `agents`, or a member
        of its `queue`; the ACD's endpoint for them unless one is given."""
        async with self.s.db.acquire() as conn:
            raw = await conn.fetchval("SELECT config FROM acd_agents WHERE id = $1", agent_id)
        config = (json.loads(raw) if isinstance(raw, str) else raw) if raw is not None else None
        if config is None and (endpoint is None or agent_id not in spec.agents):
            raise ApiError(404, f"agent {agent_id!r} not found", code="not_found")
        member = config is not None and spec.queue is not None and spec.queue in config.get("memberships", {})
        if agent_id not in spec.agents and not member:
            raise ApiError(403, f"agent {agent_id!r} does not work campaign {spec.id!r}", field="agent_id")
        return endpoint or str(config["endpoint"])  # type: ignore[index]

    # ------------------------------------------------------------------ dispositions
    def dispose(self, agent_id: str, call_id: str, name: str, callback_at: float | None) -> OutboundCall:
        call = self.undisposed.get(call_id)
        if call is None:
            live = self.calls.get(call_id)
            if live is not None and live.agent_id == agent_id:
                raise ApiError(409, "the call is still in progress; disposition it at wrap-up", field="call_id")
            raise ApiError(404, f"no call {call_id!r} waiting for a disposition", field="call_id", code="not_found")
        if call.agent_id != agent_id:
            raise ApiError(409, f"call {call_id!r} was taken by another agent", field="call_id")
        rule = self.runners[call.campaign_id].spec.dispositions.get(name)
        if rule is None:
            known = ", ".join(sorted(self.runners[call.campaign_id].spec.dispositions))
            raise ApiError(422, f"unknown disposition {name!r}; known: {known}", field="disposition")
        self._apply_disposition(call, name, rule, callback_at)
        session = self.sessions.get(agent_id)
        if session is not None and session.state == "wrapup" and session.call_id == call_id:
            self.desk.wrapup_over(session, name)
        return call

    def dispose_default(self, call_id: str | None) -> None:
        call = self.undisposed.get(call_id or "")
        if call is not None:
            rule = self.runners[call.campaign_id].spec.dispositions["no-disposition"]
            self._apply_disposition(call, "no-disposition", rule, None)

    def finish_undisposed(self, agent_id: str) -> None:
        """The agent's session ended: what they left undisposed gets the default disposition."""
        for call in [c for c in self.undisposed.values() if c.agent_id == agent_id]:
            self.dispose_default(call.call_id)

    def _apply_disposition(self, call: OutboundCall, name: str, rule: Disposition, callback_at: float | None) -> None:
        self.undisposed.pop(call.call_id, None)
        call.disposition = name
        runner = self.runners[call.campaign_id]
        now = time.time()
        status: str | None = None
        retry_at: float | None = None
        if rule.action in ("retry", "callback"):
            retry_at = callback_at if rule.action == "callback" and callback_at is not None else now + rule.delay
            status = "ready" if call.attempt < runner.config.max_attempts else "exhausted"
        elif rule.action == "dnc":
            status = "dnc"
            scope = "" if runner.spec.dnc_scope == "global" else runner.id
            phone = call.phone
            self.lead_write(call.lead_id, lambda conn: store.dnc_add(conn, scope, phone, f"disposition:{call.call_id}"))
        self.lead_write(call.lead_id, lambda conn: store.apply_disposition(
            conn, call.lead_id, disposition=name, status=status, retry_at=ts(retry_at)), then=runner.invalidate)
        self.flow.write(call, disposition=name, data={"disposition_at": now})
        self.s.recorder.set_call(call.call_id, data={"disposition": name})

    # ------------------------------------------------------------------ preview dialing
    async def preview_next(self, agent_id: str) -> dict[str, Any] | None:
        session, runner = self._preview_session(agent_id)
        if session.state != "ready":
            raise ApiError(409, f"agent {agent_id!r} is {session.state}, not ready", field="agent_id")
        session.state = "reserved"
        session.since = time.time()
        self.desk.persist(session)  # a restart while the lead is dialled keeps the agent reserved for it
        try:
            for _ in range(10):
                now = time.time()
                async with self.s.db.acquire() as conn:
                    rows = await store.claim_leads(
                        conn, runner.id, 1, owner=self.owner, now=datetime.fromtimestamp(now, UTC),
                        max_attempts=runner.config.max_attempts, abandoned_before=None,
                        zones=await runner.zones_now(conn, now))
                    if not rows:
                        break
                    listed = await store.numbers_on_dnc(conn, runner.id, [rows[0]["phone"]])
                    ok, _ = may_dial(lead_from_row(rows[0]), now, runner.config, listed, agent_reserved=True)
                    if not ok:
                        await store.release_leads(conn, [rows[0]["id"]], owner=self.owner)
                        continue
                row = rows[0]
                session.extra["row"] = row
                session.preview = {"lead_id": row["id"], "phone": row["phone"], "tz": row["tz"],
                                   "attempts": row["attempts"], "data": _json(row["data"])}
                return session.preview
        except BaseException:
            session.state = "ready"
            self.desk.persist(session)
            raise
        self.desk.free(session)
        return None

    async def preview_dial(self, agent_id: str, lead_id: int) -> OutboundCall:
        session, runner = self._preview_session(agent_id)
        row = self._previewed(session, lead_id)
        if session.preview and session.preview.get("call_id"):
            raise ApiError(409, "this lead is being dialled already", field="lead_id")
        now = time.time()
        async with self.s.db.acquire() as conn:
            listed = await store.numbers_on_dnc(conn, runner.id, [row["phone"]])
        lead = lead_from_row(row)
        ok, why = may_dial(lead, now, runner.config, listed, agent_reserved=True)
        if not ok:
            self.release_preview(session)
            self.desk.free(session)
            raise ApiError(409, f"the lead may not be dialled now: {why.value}", field="lead_id")
        runner.stats.on_dial(1)
        call = self.flow.dial(runner, row, lead, amd=False, reserved_agent=agent_id)
        assert call is not None
        session.preview = {**(session.preview or {}), "call_id": call.call_id}
        return call

    async def preview_skip(self, agent_id: str, lead_id: int) -> None:
        session, _ = self._preview_session(agent_id)
        self._previewed(session, lead_id)
        if session.preview and session.preview.get("call_id"):
            raise ApiError(409, "this lead is being dialled already", field="lead_id")
        row = session.extra.pop("row")
        session.preview = None
        async with self.s.db.acquire() as conn:
            await store.release_leads(conn, [int(row["id"])], owner=self.owner)
        self.desk.free(session)

    def release_preview(self, session: AgentSession) -> None:
        row = session.extra.pop("row", None)
        preview, session.preview = session.preview, None
        if row is not None and not (preview or {}).get("call_id"):
            lead_id = int(row["id"])
            self.lead_write(lead_id, lambda conn: store.release_leads(conn, [lead_id], owner=self.owner))

    def _preview_session(self, agent_id: str) -> tuple[AgentSession, CampaignRunner]:
        session = self.sessions.get(agent_id)
        if session is None:
            raise ApiError(409, f"agent {agent_id!r} is not working a campaign", field="agent_id")
        runner = self.runners[session.campaign_id]
        if runner.spec.mode != "preview":
            raise ApiError(409, f"campaign {runner.id!r} is {runner.spec.mode}, not preview", field="agent_id")
        if runner.state != "running":
            raise ApiError(409, f"campaign {runner.id!r} is {runner.state}", field="agent_id")
        return session, runner

    @staticmethod
    def _previewed(session: AgentSession, lead_id: int) -> Any:
        row = session.extra.get("row")
        if session.state != "reserved" or row is None or int(row["id"]) != lead_id:
            raise ApiError(409, f"lead {lead_id} is not the one this agent is previewing", field="lead_id")
        return row


def _json(data: Any) -> dict[str, Any]:
    return json.loads(data) if isinstance(data, str) else dict(data or {})
