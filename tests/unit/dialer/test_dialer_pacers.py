"""Pacers on hand-built states: preview, progressive, the predictive hard limit, VICIdial's level rules."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ari_app.dialer.core import (
    AbandonLedger,
    AbandonRule,
    CampaignConfig,
    DialMode,
    LiveStats,
    PacingState,
    PredictivePacer,
    PreviewPacer,
    ProgressivePacer,
    VicidialAdaptPacer,
    VicidialSettings,
    make_pacer,
)

CFG = CampaignConfig("c", trunk_limit=1000)


def ledger_with(humans: int = 0, abandons: int = 0, t: float = 0.0) -> AbandonLedger:
    led = AbandonLedger([AbandonRule.ftc_tsr()])
    for _ in range(humans):
        led.record_human(t)
    for _ in range(abandons):
        led.record_abandon(t)
    return led


def state(
    *,
    logged_in: int = 20,
    idle: int = 0,
    busy: Sequence[float] = (),
    wrap: int = 0,
    ringing: Sequence[tuple[float, int]] = (),
    answered: Sequence[float] = (),
    waiting: int = 0,
    leads: int = 10**6,
    trunks: int = 1000,
    stats: LiveStats | None = None,
    ledger: AbandonLedger | None = None,
    now: float = 10.0,
) -> PacingState:
    return PacingState(
        agents_logged_in=logged_in,
        agents_idle=idle,
        busy_elapsed=list(busy),
        agents_in_wrapup=wrap,
        ringing=list(ringing),
        answered_elapsed=list(answered),
        waiting=waiting,
        amd_in_flight=0,
        leads_available=leads,
        trunk_limit=trunks,
        stats=stats or LiveStats(),
        budget=(ledger or ledger_with()).budget(now),
    )


def test_preview_never_dials() -> None:
    assert PreviewPacer().decide(state(idle=10), 0.0) == 0
    assert isinstance(make_pacer(CampaignConfig("c", mode=DialMode.PREVIEW)), PreviewPacer)
    assert isinstance(make_pacer(CampaignConfig("c", mode=DialMode.PROGRESSIVE)), ProgressivePacer)
    assert isinstance(make_pacer(CampaignConfig("c")), PredictivePacer)


def test_progressive_one_call_per_uncovered_idle_agent() -> None:
    p = ProgressivePacer()
    assert p.decide(state(idle=5), 0.0) == 5
    assert p.decide(state(idle=5, ringing=[(3.0, 2)], waiting=1), 0.0) == 2
    assert p.decide(state(idle=2, ringing=[(3.0, 4)]), 0.0) == 0
    assert p.decide(state(idle=5, leads=3), 0.0) == 3
    # trunks: 10 - (2 ringing + 6 talking) = 2
    assert p.decide(state(idle=5, busy=[10.0] * 7, wrap=1, ringing=[(1.0, 2)], trunks=10), 0.0) == 2


def test_predictive_without_budget_is_exactly_progressive() -> None:
    pacer = PredictivePacer(CFG)
    for idle, ringing in [(5, 0), (5, 3), (0, 4), (20, 19)]:
        s = state(idle=idle, busy=[30.0] * (20 - idle), ringing=[(2.0, ringing)] if ringing else [])
        assert pacer.decide(s, 10.0) == max(0, idle - ringing)


def test_predictive_never_exceeds_the_hard_limit_or_trunks() -> None:
    led = ledger_with(humans=200)  # 6 abandons worth -> 6 at-risk calls
    budget_cap = led.budget(10.0).abandons_affordable()
    assert budget_cap == 6
    pacer = PredictivePacer(CFG, initial_threshold=0.9)  # as aggressive as it gets
    s = state(idle=0, busy=[170.0] * 20, ledger=led)
    assert pacer.decide(s, 10.0) == 6
    s = state(idle=3, busy=[170.0] * 17, ringing=[(1.0, 2)], ledger=led)
    assert pacer.decide(s, 10.0) == 3 - 2 + 6
    s = state(idle=0, busy=[170.0] * 20, ringing=[(1.0, 6)], ledger=led)
    assert pacer.decide(s, 10.0) == 0
    s = state(idle=0, busy=[170.0] * 20, ledger=led, trunks=22)
    assert pacer.decide(s, 10.0) == 2


def test_predictive_dials_for_agents_about_to_free_but_not_for_fresh_calls() -> None:
    led = ledger_with(humans=100_000)  # plenty of budget: only the forecast limits
    stats = LiveStats(answer_prior=0.4, need_prior=0.8)
    pacer = PredictivePacer(CFG, initial_threshold=0.03)
    # 20 agents who just connected (elapsed 1 s, mean handle ~120 s): few will free within 25 s
    fresh = pacer.decide(state(idle=0, busy=[1.0] * 20, stats=stats, ledger=led), 10.0)
    # 20 agents far into their calls: many will free soon
    late = pacer.decide(state(idle=0, busy=[240.0] * 20, stats=stats, ledger=led), 11.0)
    assert fresh < late
    # with calls already ringing for them it dials fewer
    late_ringing = pacer.decide(state(idle=0, busy=[240.0] * 20, ringing=[(5.0, late)], stats=stats, ledger=led), 12.0)
    assert late_ringing < late


# -- VICIdial ADAPT_HARD_LIMIT --------------------------------------------------------------------


def run_vici(settings: VicidialSettings, seconds: int, make: object) -> VicidialAdaptPacer:
    v = VicidialAdaptPacer(settings)
    for t in range(seconds + 1):
        v.decide(make(t), float(t))  # type: ignore[operator]
    return v


def test_vicidial_level_rises_with_waiting_agents() -> None:
    s = state(logged_in=20, idle=10, busy=[30.0] * 10)
    v = run_vici(VicidialSettings(auto_dial_level=1.0, adaptive_maximum_level=3.0), 15, lambda t: s)
    # differential = ready - waiting = 10 over 20 agents -> level * 1.5
    assert v.level == pytest.approx(1.5)
    v = run_vici(VicidialSettings(auto_dial_level=1.0, adaptive_intensity=50), 15, lambda t: s)
    assert v.level == pytest.approx(1.75)  # positive diff scaled by 1 + 50/100
    v = run_vici(VicidialSettings(auto_dial_level=2.5, adaptive_maximum_level=3.0), 15, lambda t: s)
    assert v.level == pytest.approx(3.0)  # capped


def test_vicidial_level_falls_when_calls_wait() -> None:
    s = state(logged_in=20, idle=0, busy=[30.0] * 20, waiting=5)
    v = run_vici(VicidialSettings(auto_dial_level=2.0), 15, lambda t: s)
    assert v.level == pytest.approx(2.0 * (1 - 5 / 20))
    v = run_vici(VicidialSettings(auto_dial_level=2.0, adaptive_intensity=-50), 15, lambda t: s)
    assert v.level == pytest.approx(2.0 * (1 - 1.5 * 5 / 20))  # negative diff scaled by |-0.5 - 1|
    v = run_vici(VicidialSettings(auto_dial_level=1.2), 15, lambda t: s)
    assert v.level == 1.0  # floor


def test_vicidial_hard_limit_drops_level_to_one() -> None:
    stats = LiveStats()
    s = state(logged_in=20, idle=10, busy=[30.0] * 10, stats=stats)

    def make(t: int) -> PacingState:
        if t == 5:  # 60 calls placed, 100 answers, 4 drops = 4% of answers > 3%
            stats.counters.dials += 60
            stats.counters.humans += 100
            stats.counters.abandons += 4
        return s

    v = run_vici(VicidialSettings(auto_dial_level=2.0, drop_interval=1.0), 15, make)
    assert v.drops_today_pct_of_answers == pytest.approx(4.0)
    assert v.level == 1.0
    # under the limit again -> adapts upward from there
    stats.counters.humans += 100
    for t in range(16, 31):
        v.decide(s, float(t))
    assert v.level == pytest.approx(1.5)


def test_vicidial_halves_on_last_minute_drops() -> None:
    stats = LiveStats()
    s = state(logged_in=20, idle=10, busy=[30.0] * 10, stats=stats)

    def make(t: int) -> PacingState:
        if t == 3:  # 30 calls in the last minute, 20 dropped (but the day has plenty of answers)
            stats.counters.dials += 30
            stats.counters.abandons += 20
            stats.counters.humans += 10_000
        return s

    v = run_vici(VicidialSettings(auto_dial_level=2.0, drop_interval=1.0, adaptive_maximum_level=5.0), 15, make)
    assert v.level == pytest.approx(2.0 * 1.5 / 2)


def test_vicidial_calls_to_place() -> None:
    v = VicidialAdaptPacer(VicidialSettings(auto_dial_level=2.0))
    # goal = round(2 * (5 ready + 10 talking)) = 30; existing = 8 ringing + 1 queued + 10 talking
    s = state(logged_in=20, idle=5, busy=[30.0] * 15, wrap=5, ringing=[(2.0, 8)], waiting=1)
    assert v.decide(s, 0.0) == 30 - 19
    v = VicidialAdaptPacer(VicidialSettings(auto_dial_level=2.0, available_only_ratio_tally=True))
    assert v.decide(s, 0.0) == 10 - 9  # round(2 * 5 ready) - (8 ringing + 1 queued)
    v = VicidialAdaptPacer(VicidialSettings(auto_dial_level=1.0))
    assert v.decide(state(idle=5, busy=[30.0] * 15, ringing=[(2.0, 8)]), 0.0) == 0


def test_predictive_feedback_is_not_skewed_by_a_second_decision_in_the_same_tick() -> None:
    """The shell decides once to claim leads and again at the dial moment: the feedback's averages are
    weighted by time, so the extra decision (milliseconds later) barely counts."""
    led = ledger_with(humans=3000)
    once, twice = PredictivePacer(CFG), PredictivePacer(CFG)
    for pacer, repeat in ((once, False), (twice, True)):
        stats = LiveStats(answer_prior=0.4, need_prior=0.8)
        for t in range(0, 200):
            now = 1000.0 + t
            stats.counters.needs_agent += 2
            stats.counters.abandons += 1 if t % 50 == 0 else 0
            # alternate a state where the budget holds the pacer at progressive with one where it forecasts
            s = state(idle=0, busy=[200.0 if t % 2 else 5.0] * 20, stats=stats, ledger=led, now=now)
            pacer.decide(s, now)
            if repeat and t % 2:
                pacer.decide(s, now + 0.002)
    assert twice._risk_ewma == pytest.approx(once._risk_ewma, rel=0.01)
    assert twice.threshold == pytest.approx(once.threshold, rel=0.01)
