"""Properties of the predictive pacer driven through the simulator with random traffic.

* the measured abandon rate of every rule's rolling window never exceeds the cap, at any instant;
* no call is placed outside the lead's calling window or to a DNC number;
* never more concurrent calls than the trunk limit;
* runs are deterministic for a seed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ari_app.dialer.core import (
    AbandonLedger,
    AbandonRule,
    CallingHours,
    CampaignConfig,
    Lead,
    PredictivePacer,
    ProgressivePacer,
    VicidialAdaptPacer,
)
from ari_app.dialer.sim import AgentProfile, AmdProfile, LeadPool, LeadProfile, SimParams, simulate

traffic = st.fixed_dictionaries(
    {
        "agents": st.integers(2, 25),
        "human": st.floats(0.05, 0.6),
        "machine": st.floats(0.0, 0.3),
        "busy": st.floats(0.0, 0.1),
        "handle": st.floats(15.0, 200.0),
        "cv": st.floats(0.1, 1.2),
        "ring": st.floats(3.0, 18.0),
        "fp": st.floats(0.0, 0.1),
        "fn": st.floats(0.0, 0.3),
        "trunks": st.integers(1, 6),
        "minutes": st.integers(5, 20),
        "seed": st.integers(0, 2**31),
        "rules": st.sampled_from(["tsr", "ofcom", "both", "tight"]),
        "threshold": st.sampled_from([0.01, 0.1, 0.9]),
        "amd": st.booleans(),
        "history": st.sampled_from([0, 300, 3000]),
    }
)


def _rules(kind: str, fp: float) -> tuple[AbandonRule, ...]:
    if kind == "tsr":
        return (AbandonRule.ftc_tsr(),)
    if kind == "ofcom":
        return (AbandonRule.ofcom(amd_false_positive_rate=max(fp, 0.01)),)
    if kind == "both":
        return (AbandonRule.ftc_tsr(), AbandonRule.ofcom(amd_false_positive_rate=0.03))
    # a tight custom rule: 1% over a 2 h window, guard covers the run
    return (AbandonRule(cap=0.01, window_seconds=7200.0, guard_seconds=3600.0),)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tr=traffic)
def test_predictive_never_exceeds_any_cap_at_any_instant(tr: dict[str, float]) -> None:
    human = float(tr["human"])
    machine = min(float(tr["machine"]), 1.0 - human)
    busy = min(float(tr["busy"]), 1.0 - human - machine)
    agents = int(tr["agents"])
    camp = CampaignConfig(
        "p",
        trunk_limit=max(1, int(tr["trunks"]) * agents),
        abandon_rules=_rules(str(tr["rules"]), float(tr["fp"])),
        amd_enabled=bool(tr["amd"]),
    )
    params = SimParams(
        campaign=camp,
        agents=AgentProfile(agents, handle_mean=float(tr["handle"]), handle_cv=float(tr["cv"])),
        leads=LeadProfile(human=human, machine=machine, busy=busy, ring_mean=float(tr["ring"])),
        amd=AmdProfile(false_positive=float(tr["fp"]), false_negative=float(tr["fn"])),
        shift_seconds=60.0 * int(tr["minutes"]),
    )
    # earlier live answers (half the cap abandoned, plus AMD machine classifications) spread over most of the shortest window, so that the
    # budget is not empty and old answers age out during the run
    ledger = AbandonLedger(camp.abandon_rules, keep_history=True)
    history = int(tr["history"])
    span = 0.9 * min(r.window_seconds for r in camp.abandon_rules)
    cap = min(r.cap for r in camp.abandon_rules)
    every = int(2 / cap)  # abandons: half the cap
    fp = max((r.fp_weight for r in camp.abandon_rules), default=0.0)
    machines = int(0.25 * cap * history / fp) if fp > 0 else history // 5  # FP estimate: a quarter
    every_m = max(1, math.ceil(history / machines)) if machines else history + 1
    for i in range(history):
        t = params.start - span + span * i / max(1, history)
        if i % every == every - 1:
            ledger.record_abandon(t)
        else:
            ledger.record_human(t)
        if i % every_m == 0:
            ledger.record_machine(t)
    pacer = PredictivePacer(camp, initial_threshold=float(tr["threshold"]))
    res = simulate(params, pacer, int(tr["seed"]), ledger=ledger)
    for rule in camp.abandon_rules:
        assert res.worst_window(rule) <= rule.cap + 1e-12, (rule.name, res.abandons, res.human_connects)
    assert res.trunk_violations == 0
    assert res.max_trunks <= camp.trunk_limit


def test_predictive_respects_caps_on_a_second_day_with_a_full_budget() -> None:
    camp = CampaignConfig(
        "d2",
        trunk_limit=200,
        abandon_rules=(AbandonRule.ftc_tsr(), AbandonRule.ofcom(amd_false_positive_rate=0.03)),
    )
    day = SimParams(campaign=camp, agents=AgentProfile(30, handle_mean=60.0), leads=LeadProfile(human=0.3), shift_seconds=3600.0)
    pacer = PredictivePacer(camp, initial_threshold=0.5)
    first = simulate(day, pacer, 11)
    second_params = SimParams(
        campaign=camp,
        agents=day.agents,
        leads=day.leads,
        shift_seconds=3600.0,
        start=day.start + 86400.0,
    )
    second = simulate(second_params, pacer, 12, stats=None, ledger=first.ledger)
    assert second.abandons > 0  # it did use the budget
    for rule in camp.abandon_rules:
        worst = first.ledger.worst_window(rule, start=day.start, until=second.end)
        assert worst <= rule.cap + 1e-12
    assert second.dials_without_amd >= 0


def _local_ok(t: float, lead: Lead, camp: CampaignConfig) -> bool:
    zone = ZoneInfo(lead.tz)
    a = datetime.fromtimestamp(t, tz=UTC).astimezone(zone)
    b = datetime.fromtimestamp(t + camp.ring_timeout, tz=UTC).astimezone(zone)
    if a.date() != b.date():
        return False
    for r in camp.calling_hours.days[a.weekday()]:
        lo, hi = r.start_seconds, r.end_seconds
        sa = a.hour * 3600 + a.minute * 60 + a.second + a.microsecond / 1e6
        sb = b.hour * 3600 + b.minute * 60 + b.second + b.microsecond / 1e6
        if lo <= sa < hi and lo <= sb < hi:
            return True
    return False


ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu", "Europe/London"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    start_hour_utc=st.integers(0, 23),
    dnc_every=st.integers(2, 7),
    kind=st.sampled_from(["predictive", "progressive", "vicidial"]),
)
def test_no_dial_outside_calling_hours_or_to_dnc(seed: int, start_hour_utc: int, dnc_every: int, kind: str) -> None:
    camp = CampaignConfig(
        "w",
        trunk_limit=60,
        calling_hours=CallingHours.weekly(
            {"monday": ("09:00", "20:00"), "tuesday": ("08:00", "21:00"), "saturday": ("10:00", "14:00")}
        ),
        max_attempts=3,
    )
    leads = [Lead(f"l{i}", f"+1555{i:07d}", ZONES[i % len(ZONES)]) for i in range(150)]
    dnc = {ld.phone for i, ld in enumerate(leads) if i % dnc_every == 0}
    start = datetime(2025, 3, 8, start_hour_utc, tzinfo=UTC).timestamp()  # Saturday; DST starts Sunday
    params = SimParams(
        campaign=camp,
        agents=AgentProfile(10, handle_mean=40.0),
        leads=LeadProfile(human=0.3),
        shift_seconds=2 * 3600.0,
        start=start,
        tick=5.0,
        pool=LeadPool(leads, dnc=dnc),
    )
    pacer = {"predictive": PredictivePacer(camp), "progressive": ProgressivePacer(), "vicidial": VicidialAdaptPacer()}[kind]
    res = simulate(params, pacer, seed)
    for t, lead in res.dial_log:
        assert lead.phone not in dnc
        assert _local_ok(t, lead, camp), (t, lead)
        assert lead.attempts < camp.max_attempts
    assert res.max_trunks <= camp.trunk_limit


def test_simulation_is_deterministic() -> None:
    camp = CampaignConfig("det", trunk_limit=100)
    params = SimParams(campaign=camp, agents=AgentProfile(15, handle_mean=90.0), shift_seconds=1800.0)
    a = simulate(params, PredictivePacer(camp), 5)
    b = simulate(params, PredictivePacer(camp), 5)
    assert (a.dials, a.abandons, a.human_connects, a.talk_seconds) == (b.dials, b.abandons, b.human_connects, b.talk_seconds)
    c = simulate(params, PredictivePacer(camp), 6)
    assert (a.dials, a.talk_seconds) != (c.dials, c.talk_seconds)


def test_progressive_never_abandons() -> None:
    camp = CampaignConfig("prog", trunk_limit=100)
    params = SimParams(campaign=camp, agents=AgentProfile(20, handle_mean=30.0), leads=LeadProfile(human=0.5), shift_seconds=3600.0)
    res = simulate(params, ProgressivePacer(), 3)
    assert res.abandons == 0 and res.human_connects > 100


def test_agent_time_adds_up() -> None:
    """talk + wrap-up + AMD false negatives + idle = logged-in time (nothing double counted)."""
    camp = CampaignConfig("acct", trunk_limit=200)
    params = SimParams(campaign=camp, agents=AgentProfile(25, handle_mean=60.0), leads=LeadProfile(human=0.4), shift_seconds=1800.0)
    for pacer in (PredictivePacer(camp, initial_threshold=0.2), VicidialAdaptPacer(), ProgressivePacer()):
        res = simulate(params, pacer, 9)
        total = res.talk_seconds + res.wrap_seconds + res.machine_seconds + res.idle_seconds
        assert abs(total - 25 * 1800.0) < 1e-6 * total
