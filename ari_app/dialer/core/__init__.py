"""Sans-I/O outbound dialer core: campaign config, compliance, abandon ledger, pacing.

Pure, synchronous and deterministic: the clock is a float ``now`` (UTC epoch seconds) passed in.
"""

from .baselines import VicidialAdaptPacer, VicidialSettings
from .compliance import ComplianceGate, DialCheck, DncCheck, Lead, may_dial, record_attempt
from .config import (
    DAY,
    HOUR,
    AbandonRule,
    CallingHours,
    CallOutcome,
    CampaignConfig,
    ConfigError,
    DialMode,
    RetryPolicy,
    TimeRange,
)
from .estimators import CampaignCounters, DecayingRate, LiveStats, SampleWindow, lognormal_prior
from .ledger import AbandonBudget, AbandonLedger, RuleBudget, WindowCounts, may_release_idle_agent
from .pacer import Pacer, PacingState, PredictivePacer, PreviewPacer, ProgressivePacer, make_pacer

__all__ = [
    "DAY",
    "HOUR",
    "AbandonBudget",
    "AbandonLedger",
    "AbandonRule",
    "CallOutcome",
    "CallingHours",
    "CampaignConfig",
    "CampaignCounters",
    "ComplianceGate",
    "ConfigError",
    "DecayingRate",
    "DialCheck",
    "DncCheck",
    "DialMode",
    "Lead",
    "LiveStats",
    "Pacer",
    "PacingState",
    "PredictivePacer",
    "PreviewPacer",
    "ProgressivePacer",
    "RetryPolicy",
    "RuleBudget",
    "SampleWindow",
    "TimeRange",
    "VicidialAdaptPacer",
    "VicidialSettings",
    "WindowCounts",
    "lognormal_prior",
    "make_pacer",
    "may_dial",
    "may_release_idle_agent",
    "record_attempt",
]
