"""Parameters and results of a simulated dialer shift."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ari_app.dialer.core import AbandonLedger, AbandonRule, CampaignConfig, DncCheck, Lead

__all__ = ["AgentProfile", "AmdProfile", "LeadPool", "LeadProfile", "SimParams", "SimResult", "lognormal_params"]


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the underlying normal for a lognormal with this mean and CV."""
    sigma = math.sqrt(math.log(1.0 + cv * cv))
    return math.log(mean) - sigma * sigma / 2.0, sigma


@dataclass(frozen=True, slots=True)
class LeadProfile:
    """How the called numbers behave. Shares are per dial; the rest never answer."""

    human: float = 0.25  # a live person answers (before the ring timeout, nominally)
    machine: float = 0.15  # an answering machine answers
    busy: float = 0.08
    ring_mean: float = 10.0  # seconds from dial to answer, lognormal
    ring_cv: float = 0.35
    machine_ring_mean: float = 12.0
    busy_seconds: float = 4.0

    def __post_init__(self) -> None:
        for name in ("human", "machine", "busy"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.human + self.machine + self.busy > 1.0 + 1e-9:
            raise ValueError("human + machine + busy must be <= 1")


@dataclass(frozen=True, slots=True)
class AmdProfile:
    false_positive: float = 0.03  # humans classified as machine: hung up on
    false_negative: float = 0.10  # machines classified as human: sent to an agent
    min_seconds: float = 2.5  # decision time after answer
    max_seconds: float = 3.0


@dataclass(frozen=True, slots=True)
class AgentProfile:
    count: int
    handle_mean: float = 180.0  # talk + wrap-up, lognormal
    handle_cv: float = 0.6
    wrap_seconds: float = 5.0  # part of the handle time that is wrap-up
    machine_seconds: float = 6.0  # agent time lost on an AMD false negative


@dataclass(frozen=True, slots=True)
class LeadPool:
    """Real leads with timezones, DNC and retries (compliance tests); otherwise leads are unlimited
    fresh numbers that are always dialable."""

    leads: Sequence[Lead]
    dnc: DncCheck = frozenset()


@dataclass(frozen=True, slots=True)
class SimParams:
    campaign: CampaignConfig
    agents: AgentProfile
    leads: LeadProfile = field(default_factory=LeadProfile)
    amd: AmdProfile = field(default_factory=AmdProfile)
    shift_seconds: float = 8 * 3600.0
    start: float = 1_762_174_800.0  # Monday 2025-11-03 13:00 UTC (08:00 in New York)
    tick: float = 1.0
    pool: LeadPool | None = None


@dataclass(slots=True)
class SimResult:
    pacer: str
    agents: int
    shift_seconds: float
    start: float
    end: float  # when the last call drained
    ledger: AbandonLedger
    dials: int = 0
    answers: int = 0
    connects: int = 0  # calls connected to agents (humans + AMD false negatives)
    human_connects: int = 0
    abandons: int = 0
    machine_abandons: int = 0  # AMD false negatives dropped (counted as abandons, conservatively)
    machine_classifications: int = 0
    amd_false_positives: int = 0  # true humans hung up on by AMD
    dials_without_amd: int = 0
    talk_seconds: float = 0.0  # with live persons, within the shift
    wrap_seconds: float = 0.0
    machine_seconds: float = 0.0
    idle_seconds: float = 0.0
    max_trunks: int = 0
    trunk_violations: int = 0  # ticks where the pacer asked for more than the trunks allowed
    dial_log: list[tuple[float, Lead]] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def logged_in_hours(self) -> float:
        return self.agents * self.shift_seconds / 3600.0

    @property
    def talk_minutes_per_hour(self) -> float:
        return self.talk_seconds / 60.0 / self.logged_in_hours

    @property
    def idle_seconds_per_call(self) -> float:
        return self.idle_seconds / self.connects if self.connects else float("inf")

    def abandon_rate(self, rule: AbandonRule | None = None) -> float:
        """Rate of this shift alone (= the 30-day and the 24 h window of a fresh campaign)."""
        rule = rule or self.ledger.rules[0]
        return self.ledger.counts(self.start - 1e-6, self.end, rule).rate

    def window_rate(self, rule: AbandonRule | None = None) -> float:
        """Rate of the rule's rolling window ending when the shift's last call ended."""
        rule = rule or self.ledger.rules[0]
        return self.ledger.rate(rule, self.end)

    def true_abandon_rate(self) -> float:
        """Abandons of live persons including AMD false positives, per live answer (ground truth)."""
        humans = self.human_connects + (self.abandons - self.machine_abandons) + self.amd_false_positives
        lost = (self.abandons - self.machine_abandons) + self.amd_false_positives
        return lost / humans if humans else 0.0

    def worst_window(
        self, rule: AbandonRule | None = None, window_seconds: float | None = None, *, min_denominator: float = 0.0
    ) -> float:
        """Highest rate of any rolling window ending during the run (every instant, strict)."""
        rule = rule or self.ledger.rules[0]
        w = rule.window_seconds if window_seconds is None else window_seconds
        return self.ledger.worst_window(
            rule, window_seconds=w, start=self.start, until=self.end, min_denominator=min_denominator
        )

    def worst_full_window(self, window_seconds: float, rule: AbandonRule | None = None) -> float:
        """Highest rate of any rolling window of this length lying entirely inside the run."""
        rule = rule or self.ledger.rules[0]
        return self.ledger.worst_window(
            rule, window_seconds=window_seconds, start=self.start + window_seconds, until=self.end
        )
