"""The dialer's Prometheus families for `/metrics` (served by reporting, `metric_sources`).

Rendering is a pure function of `CampaignFigures`, plain numbers the runner reads from its live view
(calls, sessions, the abandon ledger, the lead counts it keeps for pacing), so the text can be tested
without a service and a scrape never touches the database. Names follow the queue metrics:
`ari_app_campaign_*`, a `campaign` label, counters end in `_total`, ratios in `_ratio`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ari_app.dialer.core import AbandonBudget
from ari_app.reporting.core.prometheus import Family

#: Every campaign state and agent session state gets a series (0 included), so a dashboard
#: never sees a series appear or vanish when something changes state.
CAMPAIGN_STATES = ("running", "paused", "stopped")
SESSION_STATES = ("connecting", "ready", "reserved", "on_call", "wrapup", "paused")


@dataclass(frozen=True)
class RuleFigures:
    """One abandon rule's measurement window now."""

    rule: str  # FTC_TSR | OFCOM | DAILY (a campaign may have two: FTC_TSR and DAILY)
    cap: float
    window_seconds: float
    live_answers: int  # connected and abandoned live answers in the window
    abandons: int
    rate: float


@dataclass(frozen=True)
class CampaignFigures:
    campaign: str
    mode: str
    state: str
    calls_in_flight: int  # dialled, not yet connected or ended
    results: Mapping[str, int]  # finished attempts by result, since this instance started pacing it
    rules: tuple[RuleFigures, ...]
    budget_calls: int  # calls the guarantee allows now beyond those idle agents cover
    agents: Mapping[str, int] = field(default_factory=dict)  # sessions by state
    leads_remaining: int = 0  # ready or being dialled, attempts left
    leads_callable: int = 0  # dialable now (window, retry time, DNC, 72 h abandon block)
    paced_here: bool = True  # this instance holds the campaign's pacing lock (`ownership`)


def budget_beyond_idle(budget: AbandonBudget, idle: int, in_flight: int, amd_in_flight: int) -> int:
    """How many more calls the guarantee allows now beyond those the idle agents cover (the calls that
    could be abandoned): the core's `max_new_calls` less the covered ones."""
    allowed = budget.max_new_calls(idle, in_flight, amd_in_flight)
    return max(0, allowed - max(0, idle - in_flight))


def campaign_families(campaigns: Iterable[CampaignFigures]) -> list[Family]:
    state = Family("ari_app_campaign_state", "gauge", "1 for the campaign's state (running, paused, stopped)")
    owner = Family("ari_app_campaign_paced_here", "gauge",
                   "1 if this instance paces the campaign (holds its lock and the abandon ledger that counts)")
    in_flight = Family("ari_app_campaign_calls_in_flight", "gauge",
                       "Calls dialled and not yet connected to an agent or ended")
    attempts = Family("ari_app_campaign_dial_attempts_total", "counter",
                      "Finished dial attempts by result, paced by this instance since it started")
    answers = Family("ari_app_campaign_live_answers", "gauge",
                     "Live answers (connected or abandoned) in the abandon rule's measurement window")
    abandons = Family("ari_app_campaign_abandons", "gauge", "Abandons in the abandon rule's measurement window")
    rate = Family("ari_app_campaign_abandon_ratio", "gauge", "Abandon rate now under the rule (abandons / live "
                  "answers, plus the AMD false-positive estimate under OFCOM)")
    cap = Family("ari_app_campaign_abandon_cap_ratio", "gauge", "The abandon rule's cap")
    window = Family("ari_app_campaign_abandon_window_seconds", "gauge", "The abandon rule's measurement window")
    budget = Family("ari_app_campaign_abandon_budget_calls", "gauge",
                    "Calls the abandon guarantee allows now beyond those the idle agents cover")
    agents = Family("ari_app_campaign_agents", "gauge", "Agents in a session on the campaign, by state")
    leads = Family("ari_app_campaign_leads", "gauge",
                   "Leads: remaining (ready or dialling, attempts left) and callable (dialable now)")
    for c in campaigns:
        for s in CAMPAIGN_STATES:
            state.add(1 if c.state == s else 0, campaign=c.campaign, state=s)
        owner.add(1 if c.paced_here else 0, campaign=c.campaign)
        in_flight.add(c.calls_in_flight, campaign=c.campaign)
        for result, n in sorted(c.results.items()):
            attempts.add(n, campaign=c.campaign, result=result)
        for r in c.rules:
            answers.add(r.live_answers, campaign=c.campaign, rule=r.rule)
            abandons.add(r.abandons, campaign=c.campaign, rule=r.rule)
            rate.add(round(r.rate, 6), campaign=c.campaign, rule=r.rule)
            cap.add(r.cap, campaign=c.campaign, rule=r.rule)
            window.add(r.window_seconds, campaign=c.campaign, rule=r.rule)
        budget.add(c.budget_calls, campaign=c.campaign)
        for s in SESSION_STATES:
            agents.add(c.agents.get(s, 0), campaign=c.campaign, state=s)
        leads.add(c.leads_remaining, campaign=c.campaign, status="remaining")
        leads.add(c.leads_callable, campaign=c.campaign, status="callable")
    return [state, owner, in_flight, attempts, answers, abandons, rate, cap, window, budget, agents, leads]
