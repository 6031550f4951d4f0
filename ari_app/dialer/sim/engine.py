"""Seeded discrete-event simulation of one outbound shift, driving any pacer.

Model
-----
* All agents log in at ``start`` for ``shift_seconds``; the pacer is called every ``tick`` seconds of
  simulated time during the shift (the same cadence for every pacer) and the requested calls are placed
  at once. After the shift nothing new is dialed; calls in flight drain.
* Each dial is, with the lead profile's shares, a live person, an answering machine, busy, or no
  answer. Answer times are lognormal; an answer later than the ring timeout is a no-answer.
* Answered calls run AMD (decision after ``amd.min_seconds..max_seconds``). A person classified machine
  (AMD false positive) is hung up on; a machine classified human (false negative) is sent to an agent
  and costs ``machine_seconds`` of agent time. When the abandon rules count AMD false positives, new
  calls use AMD only while the budget allows it (calls without AMD go straight to an agent).
* A call that needs an agent is connected to the longest-idle agent at once; if none is idle it waits
  ``connect_within`` (2 s) and is abandoned (safe-harbor message) if no agent frees up in time.
* Agents' handle time (talk + wrap-up) is lognormal; the last ``wrap_seconds`` are wrap-up.
* The ledger records what the system sees: live answers connected, abandons (an unanswered waiting
  call is counted as an abandoned live answer even when it was really a machine), AMD machine
  classifications. Ground truth (AMD false positives) is counted separately.

Only simulated time exists; a run of 200 agents x 8 h takes seconds.
"""

from __future__ import annotations

import heapq
import time as _time
from collections import deque
from itertools import count
from random import Random

from ari_app.dialer.core import (
    AbandonLedger,
    CallOutcome,
    ComplianceGate,
    Lead,
    LiveStats,
    Pacer,
    PacingState,
    record_attempt,
)

from .model import SimParams, SimResult, lognormal_params

__all__ = ["simulate"]

_TICK, _FAIL, _ANSWER, _AMD, _FREE, _ABANDON = 0, 1, 2, 3, 4, 5
_HUMAN, _MACHINE = 0, 1
_UNLIMITED_LEADS = 1_000_000_000


def _overlap(a: float, b: float, lo: float, hi: float) -> float:
    x = min(b, hi) - max(a, lo)
    return x if x > 0 else 0.0


def simulate(
    params: SimParams,
    pacer: Pacer,
    seed: int,
    *,
    stats: LiveStats | None = None,
    ledger: AbandonLedger | None = None,
) -> SimResult:
    """Run one shift and return its measurements (the ledger keeps the full history).

    Pass the ``stats`` and ``ledger`` of a previous shift (and the same pacer object) to simulate the
    next day of the same campaign: the rolling windows then still contain the earlier live answers.
    """
    wall0 = _time.perf_counter()
    rng = Random(seed)
    rnd = rng.random
    lognorm = rng.lognormvariate
    uniform = rng.uniform
    camp = params.campaign
    ag = params.agents
    lp = params.leads
    amdp = params.amd
    start = params.start
    end_shift = start + params.shift_seconds
    ring_timeout = camp.ring_timeout
    grace = camp.connect_within
    trunk_limit = camp.trunk_limit
    use_amd = camp.amd_enabled
    amd_gated = use_amd and any(r.count_amd_false_positives and r.amd_false_positive_rate > 0 for r in camp.abandon_rules)
    p_h = lp.human
    p_hm = lp.human + lp.machine
    p_hmb = p_hm + lp.busy
    mu_r, s_r = lognormal_params(lp.ring_mean, lp.ring_cv)
    mu_m, s_m = lognormal_params(lp.machine_ring_mean, lp.ring_cv)
    talk_mean = max(1.0, ag.handle_mean - ag.wrap_seconds)
    mu_t, s_t = lognormal_params(talk_mean, ag.handle_cv * ag.handle_mean / talk_mean)
    wrap = ag.wrap_seconds
    fp_rate = amdp.false_positive
    fn_rate = amdp.false_negative

    if ledger is None:
        ledger = AbandonLedger(camp.abandon_rules, keep_history=True)
    stats = stats if stats is not None else LiveStats()
    res = SimResult(
        pacer=pacer.name, agents=ag.count, shift_seconds=params.shift_seconds, start=start, end=start, ledger=ledger
    )

    # pool mode (compliance): leads, DNC, retries
    pool = params.pool
    gate = ComplianceGate(camp, pool.dnc) if pool is not None else None
    leads: list[Lead] = list(pool.leads) if pool is not None else []
    lead_busy: set[int] = set()
    call_lead: dict[int, int] = {}

    heap: list[tuple[float, int, int, int, object]] = []
    push = heapq.heappush
    pop = heapq.heappop
    seq = count()

    idle: deque[int] = deque(range(ag.count))
    idle_since = [start] * ag.count
    busy: dict[int, tuple[float, float]] = {}  # agent -> (connected at, talk ends at)
    ringing: dict[float, int] = {}  # dial time -> calls still ringing
    pending: dict[int, float] = {}  # call -> answered at (AMD running)
    waiting: dict[int, int] = {}  # call -> _HUMAN/_MACHINE, FIFO
    amd_open = 0
    call_ids = count()

    def finish_lead(cid: int, outcome: CallOutcome, t: float) -> None:
        li = call_lead.pop(cid, None)
        if li is None:
            return
        lead_busy.discard(li)
        leads[li] = record_attempt(leads[li], outcome, t, camp)

    def connect(agent: int, kind: int, t: float, cid: int) -> None:
        res.connects += 1
        res.idle_seconds += _overlap(idle_since[agent], t, start, end_shift)
        if kind == _HUMAN:
            talk = lognorm(mu_t, s_t)
            handle = talk + wrap
            ledger.record_human(t)
            stats.on_connect(True)
            res.human_connects += 1
            res.talk_seconds += _overlap(t, t + talk, start, end_shift)
            res.wrap_seconds += _overlap(t + talk, t + handle, start, end_shift)
            busy[agent] = (t, t + talk)
            finish_lead(cid, CallOutcome.HUMAN, t)
        else:
            handle = ag.machine_seconds
            stats.on_connect(False)
            res.machine_seconds += _overlap(t, t + handle, start, end_shift)
            busy[agent] = (t, t + handle)
            finish_lead(cid, CallOutcome.MACHINE, t)
        push(heap, (t + handle, next(seq), _FREE, agent, handle))

    def need_agent(cid: int, kind: int, t: float) -> None:
        if idle:
            connect(idle.popleft(), kind, t, cid)
        else:
            waiting[cid] = kind
            push(heap, (t + grace, next(seq), _ABANDON, cid, None))

    push(heap, (start, next(seq), _TICK, 0, None))
    t = start
    while heap:
        t, _, code, a, b = pop(heap)
        if code == _FAIL:
            assert isinstance(b, tuple)
            dial_t, was_busy = b
            n_left = ringing[dial_t] - 1
            if n_left:
                ringing[dial_t] = n_left
            else:
                del ringing[dial_t]
            if a < 0:  # encoded: -(cid+1) with AMD, cid without
                amd_open -= 1
                cid = -a - 1
            else:
                cid = a
            stats.on_not_answered()
            if call_lead:
                finish_lead(cid, CallOutcome.BUSY if was_busy else CallOutcome.NO_ANSWER, t)
        elif code == _ANSWER:
            cid = a
            assert isinstance(b, tuple)
            dial_t, kind, amd_on = b
            n_left = ringing[dial_t] - 1
            if n_left:
                ringing[dial_t] = n_left
            else:
                del ringing[dial_t]
            res.answers += 1
            stats.on_answer(t - dial_t)
            if amd_on:
                pending[cid] = t
                d = uniform(amdp.min_seconds, amdp.max_seconds)
                push(heap, (t + d, next(seq), _AMD, cid, (kind, d)))
            else:
                stats.on_classified(True, None)
                need_agent(cid, kind, t)
        elif code == _AMD:
            cid = a
            assert isinstance(b, tuple)
            kind, d = b
            del pending[cid]
            amd_open -= 1
            if kind == _HUMAN:
                says_human = rnd() >= fp_rate
                if not says_human:
                    res.amd_false_positives += 1
            else:
                says_human = rnd() < fn_rate
            if says_human:
                stats.on_classified(True, d)
                need_agent(cid, kind, t)
            else:
                stats.on_classified(False, d)
                ledger.record_machine(t)
                res.machine_classifications += 1
                if call_lead:
                    finish_lead(cid, CallOutcome.MACHINE, t)
        elif code == _FREE:
            agent = a
            assert isinstance(b, float)
            del busy[agent]
            stats.on_handle_done(b)
            if waiting:
                cid = next(iter(waiting))
                kind = waiting.pop(cid)
                idle_since[agent] = t
                connect(agent, kind, t, cid)
            else:
                idle.append(agent)
                idle_since[agent] = t
        elif code == _ABANDON:
            cid = a
            kind_w = waiting.pop(cid, None)
            if kind_w is not None:
                ledger.record_abandon(t)
                stats.on_abandon()
                res.abandons += 1
                if kind_w == _MACHINE:
                    res.machine_abandons += 1
                if call_lead:
                    finish_lead(cid, CallOutcome.ABANDONED, t)
        else:  # _TICK
            if t >= end_shift:
                continue
            busy_elapsed = [t - c for c, _ in busy.values()]
            in_wrap = 0
            for _, te in busy.values():
                if t >= te:
                    in_wrap += 1
            if pool is not None:
                leads_available = len(leads) - len(lead_busy)
            else:
                leads_available = _UNLIMITED_LEADS
            ring_groups = [(t - dt, c) for dt, c in ringing.items()]
            state = PacingState(
                agents_logged_in=ag.count,
                agents_idle=len(idle),
                busy_elapsed=busy_elapsed,
                agents_in_wrapup=in_wrap,
                ringing=ring_groups,
                answered_elapsed=[t - x for x in pending.values()],
                waiting=len(waiting),
                amd_in_flight=amd_open,
                leads_available=leads_available,
                trunk_limit=trunk_limit,
                stats=stats,
                budget=ledger.budget(t),
            )
            n = pacer.decide(state, t)
            in_flight = sum(ringing.values()) + len(pending) + len(waiting)
            talking = len(busy) - in_wrap
            room = trunk_limit - in_flight - talking
            if n > room:
                res.trunk_violations += 1
                n = max(0, room)
            chosen: list[int] = []
            if pool is not None and n > 0:
                assert gate is not None
                max_attempts = camp.max_attempts
                for li, lead in enumerate(leads):
                    if li in lead_busy or lead.closed or lead.attempts >= max_attempts:
                        continue
                    if lead.retry_not_before is not None and t < lead.retry_not_before:
                        continue
                    if gate.may_dial(lead, t)[0]:
                        chosen.append(li)
                        if len(chosen) >= n:
                            break
                n = len(chosen)
            if n > 0:
                n_amd = n
                if amd_gated:
                    at_risk = max(0, in_flight + n - len(idle))
                    n_amd = min(n, state.budget.amd_allowance(at_risk, amd_open))
                elif not use_amd:
                    n_amd = 0
                ringing[t] = n
                res.dials += n
                res.dials_without_amd += n - n_amd
                stats.on_dial(n)
                for i in range(n):
                    cid = next(call_ids)
                    amd_on = i < n_amd
                    if amd_on:
                        amd_open += 1
                    if pool is not None:
                        li = chosen[i]
                        lead_busy.add(li)
                        call_lead[cid] = li
                        res.dial_log.append((t, leads[li]))
                    u = rnd()
                    if u < p_hm:
                        kind = _HUMAN if u < p_h else _MACHINE
                        ring = lognorm(mu_r, s_r) if kind == _HUMAN else lognorm(mu_m, s_m)
                        if ring < ring_timeout:
                            push(heap, (t + ring, next(seq), _ANSWER, cid, (t, kind, amd_on)))
                            continue
                        delay, was_busy = ring_timeout, False
                    elif u < p_hmb:
                        delay, was_busy = lp.busy_seconds, True
                    else:
                        delay, was_busy = ring_timeout, False
                    push(heap, (t + delay, next(seq), _FAIL, -cid - 1 if amd_on else cid, (t, was_busy)))
                used = in_flight + n + talking
                if used > res.max_trunks:
                    res.max_trunks = used
            push(heap, (t + params.tick, next(seq), _TICK, 0, None))
    # agents idle until the end of the shift
    for agent in idle:
        res.idle_seconds += _overlap(idle_since[agent], end_shift, start, end_shift)
    res.end = max(t, end_shift)
    res.wall_seconds = _time.perf_counter() - wall0
    return res
