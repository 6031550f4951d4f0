"""One campaign at run time: the core's pacer, abandon ledger and live statistics, fed from the live
calls and agent sessions, and the loop that turns "dial n now" into claimed, gate-checked leads.

Each tick (every `TICK` seconds, or at once when a call or an agent changes state):
1. build the core's `PacingState` from the calls in flight and the agents' sessions;
2. ask the pacer how many calls to place (the predictive pacer's abandon budget holds by construction);
3. claim that many leads in one SQL statement (`FOR UPDATE SKIP LOCKED`, only time zones inside their
   calling window, not on a DNC list, retry time reached, not abandoned in the last 72 h);
4. check the DNC lists again and run the core's compliance gate at the dial moment, with a fresh pacing
   decision (agents may have changed during the claim), and give back what isn't dialled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ari_app.dialer import store
from ari_app.dialer.campaigns import CampaignSpec
from ari_app.dialer.core import (
    AbandonBudget,
    AbandonLedger,
    ComplianceGate,
    Lead,
    LiveStats,
    PacingState,
    make_pacer,
    may_dial,
    record_attempt,
)
from ari_app.dialer.metrics import CampaignFigures, RuleFigures, budget_beyond_idle
from ari_app.dialer.model import IN_FLIGHT, RESULT_OUTCOMES, OutboundCall, ts

if TYPE_CHECKING:
    from ari_app.dialer.dialer import Dialer

log = logging.getLogger(__name__)

TICK = 0.25
COUNT_REFRESH = 2.0
IDLE_COUNT_REFRESH = 10.0
OWN_RETRY = 1.0
ZONES_REFRESH = 15.0


def lead_from_row(row: Any) -> Lead:
    return Lead(lead_id=str(row["id"]), phone=row["phone"], tz=row["tz"], attempts=row["attempts"],
                retry_not_before=row["retry_at"].timestamp() if row["retry_at"] else None,
                last_abandoned_at=row["last_abandoned_at"].timestamp() if row["last_abandoned_at"] else None,
                closed=row["status"] == "done")


class CampaignRunner:
    def __init__(self, dialer: Dialer, spec: CampaignSpec, state: str) -> None:
        self.d = dialer
        self.spec = spec
        self.state = state
        self.ledger = AbandonLedger(spec.config.abandon_rules)
        self.stats = LiveStats()
        self.pacer = make_pacer(spec.config)
        self.last: dict[str, Any] = {}
        self.loops = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._available = 0
        self._available_at = -1e18
        self._zones: list[str] = []
        self._zones_at = -1e18
        #: Leads left (ready or dialling, attempts left), counted with the dialable ones (/metrics).
        self.leads_remaining = 0
        #: Finished attempts by result since this instance started pacing the campaign (/metrics).
        self.results: dict[str, int] = dict.fromkeys(RESULT_OUTCOMES, 0)
        #: This instance paces the campaign (holds its lock, `ownership`); `synced_at`: the campaign
        #: row's last change this runner follows (epoch seconds).
        self.owned = False
        self._owned_epoch = -1
        self._next_try = 0.0
        self.synced_at = 0.0
        #: Calls another instance placed that were still in flight when this one took the campaign
        #: over (attempt id -> whether AMD may still classify it): no agent here can take them, so
        #: their worst case is withheld from the abandon budget until their records tell how they
        #: ended (`_follow_foreign`).
        self.foreign: dict[str, bool] = {}
        self._foreign_at = 0.0

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def config(self) -> Any:
        return self.spec.config

    # ------------------------------------------------------------------ lifecycle
    def replace_spec(self, spec: CampaignSpec) -> bool:
        """A new configuration; True if the ledger must be rebuilt (its rules changed)."""
        old = self.spec
        self.spec = spec
        self.pacer = make_pacer(spec.config)
        self.invalidate()
        if old.config.abandon_rules != spec.config.abandon_rules:
            self.ledger = AbandonLedger(spec.config.abandon_rules)
            return True
        return False

    async def load_history(self) -> None:
        """Rebuild the abandon ledger (and warm the estimators) from the attempts in the longest window,
        so a restart neither forgets abandons nor starts the budget from zero answers."""
        since = datetime.fromtimestamp(time.time() - self.longest_window, UTC)
        async with self.d.s.db.acquire() as conn:
            rows = await store.attempt_history(conn, self.id, since)
        events: list[tuple[float, int]] = []
        for r in rows:
            answered = r["answered_at"]
            event = self.ledger_event(r)
            if event is not None:
                events.append(event)
            if answered is None:
                if r["result"] == "abandoned":  # answered while no app was connected, when unknown (restore.untaken)
                    self.stats.on_classified(True, None)
                else:
                    self.stats.on_not_answered()
                continue
            if r["ring_seconds"] is not None:
                self.stats.on_answer(float(r["ring_seconds"]))
            amd_seconds = (r["amd_at"] - answered).total_seconds() if r["amd_at"] is not None else None
            if r["result"] in ("connected", "abandoned", "machine"):
                self.stats.on_classified(r["result"] != "machine", amd_seconds)
            if event is not None and event[1] == 0 and r["talk_seconds"] is not None:
                self.stats.on_handle_done(float(r["talk_seconds"]))
        for at, kind in sorted(events):
            (self.ledger.record_human, self.ledger.record_abandon, self.ledger.record_machine)[kind](at)

    def ledger_event(self, r: Any) -> tuple[float, int] | None:
        """What an attempt's record adds to the abandon ledger, (time, 0 live answer | 1 abandon |
        2 machine), or None: a connect when it happened, an abandon when the connect grace ran out
        (without an answer time, answered while no app was connected: when it ended), a machine
        when AMD said so."""
        if r["result"] == "connected" and r["connected_at"] is not None:
            return r["connected_at"].timestamp(), 0
        if r["result"] == "abandoned":
            answered = r["amd_at"] or r["answered_at"]
            if answered is None:
                return (r["ended_at"] or r["dialed_at"]).timestamp(), 1
            return answered.timestamp() + self.config.connect_within, 1
        if r["result"] == "machine" and r["amd_at"] is not None:
            return r["amd_at"].timestamp(), 2
        return None

    @property
    def longest_window(self) -> float:
        return max(r.window_seconds for r in self.config.abandon_rules)

    def start_loop(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"dialer-{self.id}")

    def stop_loop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    def invalidate(self) -> None:
        """Leads changed (import, retry, disposition): recount at the next tick."""
        self._available_at = self._zones_at = -1e18
        self.wake()

    async def _loop(self) -> None:
        while True:
            self.loops += 1
            self._wake.clear()
            if self.state != "running" and time.time() - self._available_at >= IDLE_COUNT_REFRESH:
                try:  # a paused or stopped campaign's lead counts stay fresh for /metrics, slowly
                    await self._refresh(time.time())
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the next round tries again
                    self._available_at = time.time()
            try:
                if self.state == "running" and self.d.s.reconciled.is_set():  # sessions checked after a restart
                    if await self._own(time.time()):
                        await self.tick()
                elif self.owned and not self.in_flight_calls():
                    await self._disown()  # paused or stopped, and no call in flight can abandon any more
                elif not self.owned and self.d.s.reconciled.is_set() and self.in_flight_calls():
                    await self._own(time.time())  # calls re-adopted after a restart: their ledger is ours
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database blink must not end the campaign
                log.exception("dialer tick failed", extra={"campaign": self.id})
                await asyncio.sleep(1.0)
            try:
                await asyncio.wait_for(self._wake.wait(), TICK)
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ one pacing instance per campaign
    async def _own(self, now: float) -> bool:
        """Whether this instance paces the campaign now: it holds the campaign's lock, or takes it (at
        most every OWN_RETRY seconds) and then rebuilds the ledger from the records, the previous
        owner's attempts included, before its first decision."""
        locks = self.d.pacing
        if self.owned and (self.id not in locks.held or locks.epoch != self._owned_epoch):
            self.owned = False  # the lock went with its connection: somebody else may pace now
            log.warning("campaign pacing lock lost", extra={"campaign": self.id})
        if self.owned:
            return True
        if now < self._next_try:
            return False
        self._next_try = now + OWN_RETRY
        if not await locks.take(self.id):
            return False
        try:
            # This instance's own records still in the writer belong in the rows the ledger is
            # rebuilt from (a lock lost and taken back while its calls were in flight).
            await self.d.s.writer.flush(timeout=5)
            self.ledger = AbandonLedger(self.config.abandon_rules)
            self.stats = LiveStats()
            await self.load_history()
            await self._load_foreign(now)
        except BaseException:
            await locks.give_back(self.id)
            raise
        self._owned_epoch = locks.epoch
        self.owned = True
        log.info("pacing the campaign here", extra={"campaign": self.id, "owner": self.d.owner})
        return True

    async def own_for_adopted_calls(self) -> bool:
        """Take the campaign's lock (and so rebuild the ledger) before re-adopted calls go on (`restore.adopt`):
        taken later, the rebuild would drop what they recorded meanwhile (a connect, an abandon at once)
        while its record was still in the writer. False: another instance paces, or the database blinked
        (the loop tries again)."""
        try:
            return await self._own(time.time())
        except Exception as exc:  # noqa: BLE001 - the loop takes it later, as before
            log.warning("could not take the campaign's lock at the restart", extra={"campaign": self.id,
                                                                                    "error": type(exc).__name__})
            return False

    async def _load_foreign(self, now: float) -> None:
        """The calls in flight by the records that are not this instance's: a previous owner's."""
        async with self.d.s.db.acquire() as conn:
            rows = await store.open_attempts(conn, self.id, datetime.fromtimestamp(now - self.longest_window, UTC))
        self.foreign = {r["id"]: r["amd"] and r["amd_at"] is None for r in rows
                        if r["id"] not in self.d.calls}
        self._foreign_at = now
        if self.foreign:
            log.warning("another instance's calls in flight: their worst case is held from the abandon budget",
                        extra={"campaign": self.id, "calls": len(self.foreign)})

    async def _follow_foreign(self, now: float) -> None:
        """Every second while a previous owner's calls are in flight: those whose records now say how
        they ended are counted as that (an abandon or a machine at least as late as it happened, a
        live answer only where the ledger still takes it in order: never less than happened) and
        stop holding budget; those older than the longest window no longer matter."""
        if not self.foreign or now - self._foreign_at < 1.0:
            return
        self._foreign_at = now
        async with self.d.s.db.acquire() as conn:
            rows = await store.attempt_outcomes(conn, list(self.foreign))
        seen = set()
        for r in rows:
            seen.add(r["id"])
            if r["open"] and r["dialed_at"].timestamp() >= now - self.longest_window:
                self.foreign[r["id"]] = r["amd"] and r["amd_at"] is None
                continue
            del self.foreign[r["id"]]
            event = self.ledger_event(r)
            if event is None or (event[1] == 0 and event[0] < self.ledger.last_time):
                continue  # a live answer out of time order would be clamped later: left out
            (self.ledger.record_human, self.ledger.record_abandon, self.ledger.record_machine)[event[1]](event[0])
        for gone in set(self.foreign) - seen:  # no record any more: nothing to count
            del self.foreign[gone]
        self.wake()

    async def _disown(self) -> None:
        self.owned = False
        self.foreign = {}
        await self.d.pacing.give_back(self.id)
        log.info("campaign pacing handed back", extra={"campaign": self.id})

    # ------------------------------------------------------------------ the live view for the core
    def calls(self) -> list[OutboundCall]:
        return [c for c in self.d.calls.values() if c.campaign_id == self.id]

    def pacing_state(self, now: float) -> PacingState:
        calls = self.calls()
        sessions = [s for s in self.d.sessions.values() if s.campaign_id == self.id]
        busy = [s for s in sessions if s.state in ("on_call", "wrapup")]
        return PacingState(
            agents_logged_in=sum(1 for s in sessions if s.state not in ("connecting", "ended", "paused")),
            agents_idle=sum(1 for s in sessions if s.state == "ready" and s.pending is None),
            busy_elapsed=[now - (s.connected_at or now) for s in busy],
            agents_in_wrapup=sum(1 for s in busy if s.state == "wrapup"),
            ringing=[(now - c.dialed_at, 1) for c in calls if c.state == "ringing"],
            answered_elapsed=[now - (c.answered_at or now) for c in calls if c.state == "amd"],
            waiting=sum(1 for c in calls if c.state == "waiting"),
            amd_in_flight=sum(1 for c in calls if c.amd and c.state in ("ringing", "amd")),
            leads_available=self._available,
            trunk_limit=self.config.trunk_limit,
            stats=self.stats,
            budget=self.budget(now),
        )

    def budget(self, now: float) -> AbandonBudget:
        """The ledger's abandon budget, less the worst case of another instance's calls in flight."""
        return self.ledger.budget(now).withheld(len(self.foreign), sum(self.foreign.values()))

    def in_flight_calls(self) -> bool:
        return any(c.state in IN_FLIGHT for c in self.calls())

    def in_flight(self) -> int:
        """Calls that may still need an agent and have none reserved."""
        return sum(1 for c in self.calls() if c.state in IN_FLIGHT and c.reserved_agent is None)

    def open_zones(self, now: float) -> list[str]:
        """The leads' time zones that are inside the calling window now (checked by the core)."""
        return [z for z in self._zones if may_dial(Lead("zone", "", z), now, self.config)[0]]

    async def zones_now(self, conn: Any, now: float) -> list[str]:
        if now - self._zones_at >= (ZONES_REFRESH if self._zones else COUNT_REFRESH):
            self._zones = await store.ready_zones(conn, self.id)
            self._zones_at = now
        return self.open_zones(now)

    async def _refresh(self, now: float) -> None:
        async with self.d.s.db.acquire() as conn:
            zones = await self.zones_now(conn, now)
            self._available, self.leads_remaining = await store.count_leads(
                conn, self.id, max_attempts=self.config.max_attempts, now=datetime.fromtimestamp(now, UTC),
                abandoned_before=datetime.fromtimestamp(now - self.config.abandon_recall_block, UTC), zones=zones)
            self._available_at = now

    # ------------------------------------------------------------------ pacing
    async def tick(self) -> None:
        now = time.time()
        await self._follow_foreign(now)
        if now - self._available_at >= COUNT_REFRESH:
            await self._refresh(now)
        n = self.pacer.decide(self.pacing_state(now), now)
        self.last = {"at": now, "decided": n}
        if n <= 0:
            return
        zones = self.open_zones(now)
        block = self.config.abandon_recall_block
        async with self.d.s.db.acquire() as conn:
            rows = await store.claim_leads(
                conn, self.id, n, owner=self.d.owner, now=datetime.fromtimestamp(now, UTC),
                max_attempts=self.config.max_attempts, abandoned_before=ts(now - block), zones=zones)
            if len(rows) < n:
                self._available = len(rows)  # all there is, until the next count
            if not rows:
                return
            listed = await store.numbers_on_dnc(conn, self.id, [r["phone"] for r in rows])
        await self.dial_claimed(rows, listed)

    async def dial_claimed(self, rows: list[Any], listed: set[str]) -> None:
        now = time.time()
        state = self.pacing_state(now)
        n = min(len(rows), self.pacer.decide(state, now)) if self.state == "running" else 0
        gate = ComplianceGate(self.config, listed)
        chosen: list[tuple[Any, Lead]] = []
        release: list[int] = []
        refused: dict[str, int] = {}
        for row in rows:
            lead = lead_from_row(row)
            ok, why = gate.may_dial(lead, now)
            if len(chosen) < n and ok:
                chosen.append((row, lead))
            else:
                release.append(row["id"])
                if not ok:
                    refused[why.value] = refused.get(why.value, 0) + 1
        if refused:
            log.info("claimed leads refused at the dial moment", extra={"campaign": self.id, "refused": refused})
        if release:
            async with self.d.s.db.acquire() as conn:
                await store.release_leads(conn, release, owner=self.d.owner)
        self._available = max(0, self._available - len(chosen))
        n_amd = len(chosen) if self.config.amd_enabled else 0
        if n_amd and any(r.fp_weight > 0 for r in self.config.abandon_rules):
            at_risk = max(0, state.calls_in_flight + len(chosen) - state.agents_idle)
            n_amd = min(n_amd, state.budget.amd_allowance(at_risk, state.amd_in_flight))
        if chosen:
            self.stats.on_dial(len(chosen))
        self.last.update({"dialed": len(chosen), "released": len(release), "refused": refused})
        for i, (row, lead) in enumerate(chosen):
            self.d.flow.dial(self, row, lead, amd=i < n_amd)

    # ------------------------------------------------------------------ outcomes
    def finish_lead(self, call: OutboundCall, now: float) -> None:
        """The attempt is over: schedule the lead by the core's rules (retry delay, 72 h abandon block,
        closed once a person was reached) and give it back."""
        assert call.result is not None
        outcome = RESULT_OUTCOMES[call.result]
        self.results[call.result] = self.results.get(call.result, 0) + 1
        lead = record_attempt(call.lead, outcome, now, self.config)
        status = "done" if lead.closed else ("exhausted" if lead.attempts >= self.config.max_attempts else "ready")
        self.d.lead_write(call.lead_id, lambda conn: store.finish_attempt(
            conn, call.lead_id, status=status, attempts=lead.attempts, retry_at=ts(lead.retry_not_before),
            last_abandoned_at=ts(lead.last_abandoned_at), result=call.result or "failed"), then=self.invalidate)

    def view(self) -> dict[str, Any]:
        now = time.time()
        rule = self.config.abandon_rules[0]
        return {"state": self.state, "paced_here": self.owned, "calls_in_flight": sum(1 for c in self.calls() if c.state in IN_FLIGHT),
                "calls": len(self.calls()), "abandon_rate_now": round(self.ledger.rate(rule, now), 4),
                "abandon_rates_now": {r.name: round(self.ledger.rate(r, now), 4) for r in self.config.abandon_rules},
                "affordable_abandons": round(min(b.affordable_abandons for b in self.budget(now).rules), 3),
                "other_instance_calls_in_flight": len(self.foreign),
                "last_decision": self.last, "dialable_leads": self._available}

    def figures(self, now: float) -> CampaignFigures:
        """What /metrics shows of this campaign now (see `dialer.metrics`)."""
        state = self.pacing_state(now)
        rules = tuple(RuleFigures(rule=r.rule.name, cap=r.rule.cap, window_seconds=r.rule.window_seconds,
                                  live_answers=r.now_counts.humans, abandons=r.now_counts.abandons,
                                  rate=r.now_counts.rate) for r in state.budget.rules)
        agents: dict[str, int] = {}
        for s in self.d.sessions.values():
            if s.campaign_id == self.id:
                agents[s.state] = agents.get(s.state, 0) + 1
        return CampaignFigures(
            campaign=self.id, mode=self.spec.mode, state=self.state,
            calls_in_flight=sum(1 for c in self.calls() if c.state in IN_FLIGHT), results=dict(self.results),
            rules=rules, agents=agents,
            budget_calls=budget_beyond_idle(state.budget, state.agents_idle, state.calls_in_flight,
                                            state.amd_in_flight),
            leads_remaining=self.leads_remaining, leads_callable=self._available, paced_here=self.owned)
