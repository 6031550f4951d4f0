"""The campaign families of /metrics: names, labels and values as a scraper reads them."""

from __future__ import annotations

from ari_app.dialer.core import AbandonLedger, AbandonRule
from ari_app.dialer.metrics import (
    CampaignFigures,
    RuleFigures,
    budget_beyond_idle,
    campaign_families,
)
from ari_app.reporting.core.prometheus import render


def test_a_running_campaign_renders_every_family_with_its_labels():
    figures = CampaignFigures(
        campaign="c1", mode="predictive", state="running", calls_in_flight=4,
        results={"connected": 12, "abandoned": 1, "no-answer": 30},
        rules=(RuleFigures("FTC_TSR", 0.03, 2592000.0, live_answers=40, abandons=1, rate=0.025),),
        budget_calls=2, agents={"ready": 1, "on_call": 2}, leads_remaining=900, leads_callable=850)
    text = render(campaign_families([figures]))
    lines = set(text.splitlines())
    expected = {
        'ari_app_campaign_state{campaign="c1",state="running"} 1',
        'ari_app_campaign_state{campaign="c1",state="paused"} 0',
        'ari_app_campaign_state{campaign="c1",state="stopped"} 0',
        'ari_app_campaign_paced_here{campaign="c1"} 1',
        'ari_app_campaign_calls_in_flight{campaign="c1"} 4',
        '# TYPE ari_app_campaign_dial_attempts_total counter',
        'ari_app_campaign_dial_attempts_total{campaign="c1",result="connected"} 12',
        'ari_app_campaign_dial_attempts_total{campaign="c1",result="abandoned"} 1',
        'ari_app_campaign_dial_attempts_total{campaign="c1",result="no-answer"} 30',
        'ari_app_campaign_live_answers{campaign="c1",rule="FTC_TSR"} 40',
        'ari_app_campaign_abandons{campaign="c1",rule="FTC_TSR"} 1',
        'ari_app_campaign_abandon_ratio{campaign="c1",rule="FTC_TSR"} 0.025',
        'ari_app_campaign_abandon_cap_ratio{campaign="c1",rule="FTC_TSR"} 0.03',
        'ari_app_campaign_abandon_window_seconds{campaign="c1",rule="FTC_TSR"} 2592000',
        'ari_app_campaign_abandon_budget_calls{campaign="c1"} 2',
        'ari_app_campaign_agents{campaign="c1",state="ready"} 1',
        'ari_app_campaign_agents{campaign="c1",state="on_call"} 2',
        'ari_app_campaign_agents{campaign="c1",state="wrapup"} 0',
        'ari_app_campaign_leads{campaign="c1",status="remaining"} 900',
        'ari_app_campaign_leads{campaign="c1",status="callable"} 850',
    }
    assert expected <= lines, expected - lines
    # every family has its HELP and TYPE, and no family is repeated
    types = [line for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types)) == len([line for line in text.splitlines() if line.startswith("# HELP")])


def test_no_campaign_renders_headers_only():
    text = render(campaign_families([]))
    assert all(line.startswith("#") for line in text.splitlines())


def test_the_budget_is_what_the_core_allows_beyond_the_idle_agents():
    rule = AbandonRule.ftc_tsr(0.03)
    ledger = AbandonLedger([rule])
    now = 1_000_000.0
    budget = ledger.budget(now)
    assert budget_beyond_idle(budget, idle=3, in_flight=1, amd_in_flight=0) == 0  # no answers yet: no budget
    for i in range(200):  # 200 live answers: c*H/(1-c) = 6.18 abandons affordable at worst
        ledger.record_human(now - 3600 + i)
    budget = ledger.budget(now)
    beyond = budget_beyond_idle(budget, idle=3, in_flight=1, amd_in_flight=0)
    assert beyond == budget.max_new_calls(3, 1, 0) - 2 == int(budget.rules[0].affordable_abandons) == 6
    # calls already at risk use the budget up
    assert budget_beyond_idle(budget, idle=0, in_flight=4, amd_in_flight=0) == 2


def test_a_campaign_with_a_daily_cap_shows_both_rules():
    """`abandon_daily_cap`: one series per rule, told apart by the `rule` label, no family repeated."""
    figures = CampaignFigures(
        campaign="c1", mode="predictive", state="running", calls_in_flight=0, results={},
        rules=(RuleFigures("FTC_TSR", 0.03, 2592000.0, live_answers=400, abandons=9, rate=0.0225),
               RuleFigures("DAILY", 0.03, 86400.0, live_answers=100, abandons=3, rate=0.03)),
        budget_calls=0)
    text = render(campaign_families([figures]))
    lines = set(text.splitlines())
    assert {
        'ari_app_campaign_abandon_ratio{campaign="c1",rule="FTC_TSR"} 0.0225',
        'ari_app_campaign_abandon_ratio{campaign="c1",rule="DAILY"} 0.03',
        'ari_app_campaign_abandon_window_seconds{campaign="c1",rule="FTC_TSR"} 2592000',
        'ari_app_campaign_abandon_window_seconds{campaign="c1",rule="DAILY"} 86400',
        'ari_app_campaign_live_answers{campaign="c1",rule="DAILY"} 100',
    } <= lines
    types = [line for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
