"""Campaign configuration: defaults, presets, and validation errors that name the field."""

from __future__ import annotations

from datetime import time

import pytest

from ari_app.dialer.core import (
    DAY,
    AbandonRule,
    CallingHours,
    CallOutcome,
    CampaignConfig,
    ConfigError,
    DialMode,
    RetryPolicy,
    TimeRange,
)


def test_defaults_are_compliant() -> None:
    c = CampaignConfig("c1")
    assert c.mode is DialMode.PREDICTIVE
    assert c.ring_timeout >= 15
    assert c.connect_within == 2.0
    assert c.abandon_recall_block == 72 * 3600
    assert c.abandon_rules == (AbandonRule.ftc_tsr(),)
    assert c.calling_hours.range_at(0, 8 * 3600) is not None
    assert c.calling_hours.range_at(6, 21 * 3600) is None  # 21:00 is outside [08:00, 21:00)
    assert c.calling_hours.range_at(6, 8 * 3600 - 1) is None


def test_presets() -> None:
    tsr = AbandonRule.ftc_tsr()
    assert (tsr.cap, tsr.window_seconds, tsr.fp_weight, tsr.guard) == (0.03, 30 * DAY, 0.0, 15 * DAY)
    of = AbandonRule.ofcom(amd_false_positive_rate=0.02)
    assert (of.cap, of.window_seconds, of.count_amd_false_positives, of.fp_weight) == (0.03, DAY, True, 0.02)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ring_timeout": 14.9}, "ring_timeout"),
        ({"ring_timeout": float("nan")}, "ring_timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"trunk_limit": 0}, "trunk_limit"),
        ({"connect_within": 2.5}, "connect_within"),
        ({"connect_within": 0}, "connect_within"),
        ({"abandon_recall_block": -1}, "abandon_recall_block"),
        ({"abandon_rules": ()}, "abandon_rules"),
        ({"mode": "robo"}, "mode"),
        ({"campaign_id": ""}, "campaign_id"),
        ({"amd_max_seconds": 0}, "amd_max_seconds"),
    ],
)
def test_campaign_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"campaign_id": "c"} | kwargs
    with pytest.raises(ConfigError) as exc:
        CampaignConfig(**args)  # type: ignore[arg-type]
    assert exc.value.field == field
    assert field in str(exc.value)


def test_mode_accepts_string() -> None:
    assert CampaignConfig("c", mode="progressive").mode is DialMode.PROGRESSIVE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cap": 0.0, "window_seconds": 10}, "cap"),
        ({"cap": 1.0, "window_seconds": 10}, "cap"),
        ({"cap": 0.03, "window_seconds": 0}, "window_seconds"),
        ({"cap": 0.03, "window_seconds": 10, "amd_false_positive_rate": 1.5}, "amd_false_positive_rate"),
        ({"cap": 0.03, "window_seconds": 10, "guard_seconds": 10}, "guard_seconds"),
    ],
)
def test_rule_validation(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        AbandonRule(**kwargs)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_calling_hours_weekly_and_errors() -> None:
    h = CallingHours.weekly({"monday": ("09:00", "20:00"), "saturday": ("10:00", "14:00")})
    assert h.range_at(0, 9 * 3600) is not None
    assert h.range_at(0, 20 * 3600) is None
    assert h.range_at(6, 12 * 3600) is None  # sunday closed
    with pytest.raises(ConfigError) as exc:
        CallingHours.weekly({"monday": ("20:00", "09:00")})
    assert exc.value.field == "calling_hours.monday.end"
    with pytest.raises(ConfigError) as exc:
        CallingHours.weekly({"funday": ("09:00", "10:00")})
    assert exc.value.field == "calling_hours.funday"
    with pytest.raises(ConfigError) as exc:
        CallingHours.weekly({"monday": ("9am", "10:00")})
    assert exc.value.field == "calling_hours.monday.start"
    overlapping = (TimeRange(time(9), time(12)), TimeRange(time(11), time(13)))
    with pytest.raises(ConfigError) as exc:
        CallingHours(days=(overlapping,) + ((),) * 6)
    assert exc.value.field == "calling_hours.monday"
    with pytest.raises(ConfigError) as exc:
        CallingHours(days=((),) * 6)
    assert exc.value.field == "calling_hours.days"


def test_retry_policy_validation() -> None:
    with pytest.raises(ConfigError) as exc:
        RetryPolicy({CallOutcome.BUSY: 60.0})
    assert exc.value.field.startswith("retry.delays.")
    delays = dict.fromkeys(CallOutcome, 60.0)
    delays[CallOutcome.MACHINE] = -1.0
    with pytest.raises(ConfigError) as exc:
        RetryPolicy(delays)
    assert exc.value.field == "retry.delays.machine"
    assert RetryPolicy().delay(CallOutcome.ABANDONED) == 72 * 3600
