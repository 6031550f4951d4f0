"""Campaign bodies map onto the core's CampaignConfig; every error names the body field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ari_app.dialer.calls import greeting_silence
from ari_app.dialer.campaigns import SpecError, parse_campaign, render_dial
from ari_app.dialer.core import CallOutcome, DialMode
from ari_app.dialer.dnc import dnc_number, read_dnc_file
from ari_app.dialer.model import unanswered_result

BASE = {"agents": ["a1"], "caller_id": "0100000000", "safe_harbor_message": "sound:ari-app/safe-harbor"}


def test_defaults_follow_the_rules():
    spec = parse_campaign("c1", BASE)
    c = spec.config
    assert c.mode is DialMode.PREDICTIVE and c.ring_timeout >= 15 and c.connect_within == 2.0
    assert c.abandon_rules[0].name == "FTC_TSR" and c.abandon_rules[0].cap == 0.03
    assert c.abandon_rules[0].window_seconds == 30 * 86400
    assert c.calling_hours.range_at(0, 8 * 3600) is not None and c.calling_hours.range_at(0, 21 * 3600) is None
    assert c.abandon_recall_block == 72 * 3600
    assert spec.dial_template == "PJSIP/{number}@trunk" and spec.safe_harbor_message == ("sound:ari-app/safe-harbor",)


def test_a_full_body_maps_onto_the_core():
    spec = parse_campaign("c2", {**BASE, "mode": "progressive", "ring_timeout": 25, "max_attempts": 3,
                                 "calling_hours": {"monday": ["09:00", "20:00"], "sunday": None},
                                 "retry_delays": {"busy": 60, "no_answer": 600},
                                 "abandon_rule": "OFCOM", "amd_false_positive_rate": 0.05,
                                 "machine_handling": "message", "machine_message": ["sound:vm"],
                                 "dispositions": {"sale": {"action": "close"}, "later": {"action": "retry", "delay": 5}}})
    c = spec.config
    assert c.mode is DialMode.PROGRESSIVE and c.ring_timeout == 25 and c.max_attempts == 3
    assert c.retry.delay(CallOutcome.BUSY) == 60 and c.retry.delay(CallOutcome.MACHINE) == 4 * 3600
    assert c.calling_hours.range_at(6, 12 * 3600) is None and c.calling_hours.range_at(0, 9 * 3600) is not None
    rule = c.abandon_rules[0]
    assert rule.name == "OFCOM" and rule.window_seconds == 86400 and rule.fp_weight == 0.05
    assert spec.dispositions["later"].delay == 5 and spec.dispositions["do-not-call"].action == "dnc"


@pytest.mark.parametrize(("patch", "field"), [
    ({"ring_timeout": 10}, "ring_timeout"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"abandon_cap": 1.5}, "abandon_cap"),
    ({"retry_delays": {"busy": -1}}, "retry_delays.busy"),
    ({"retry_delays": {"weather": 3}}, "retry_delays.weather"),
    ({"calling_hours": {"monday": ["21:00", "08:00"]}}, "calling_hours.monday.end"),
    ({"calling_hours": {"someday": ["08:00", "09:00"]}}, "calling_hours.someday"),
    ({"calling_hours": {"daily": ["8am", "9pm"]}}, "calling_hours.daily.start"),
    ({"agents": []}, "agents"),
    ({"machine_handling": "message"}, "machine_message"),
    ({"dial_template": "PJSIP/trunk"}, "dial_template"),
    ({"dial_template": "PJSIP/{number.__class__}@x"}, "dial_template"),
    ({"amd_max_seconds": 20}, "amd_max_seconds"),
    ({"trunk_limit": 0}, "trunk_limit"),
    ({"dispositions": {"Bad Name": {"action": "close"}}}, "dispositions.Bad Name"),
])
def test_bad_values_name_their_field(patch, field):
    with pytest.raises(SpecError) as err:
        parse_campaign("c", {**BASE, **patch})
    assert err.value.field == field


@pytest.mark.parametrize(("patch", "loc"), [
    ({"mode": "turbo"}, "mode"),
    ({"safe_harbor_message": "beep.wav"}, "safe_harbor_message"),
    ({"colour": "red"}, "colour"),
    ({"dispositions": {"x": {"action": "explode"}}}, "dispositions"),
])
def test_bad_shapes_are_validation_errors_naming_the_field(patch, loc):
    with pytest.raises(ValidationError) as err:
        parse_campaign("c", {**BASE, **patch})
    assert err.value.errors()[0]["loc"][0] == loc


def test_campaign_ids_are_plain():
    with pytest.raises(SpecError) as err:
        parse_campaign("a/b", BASE)
    assert err.value.field == "id"


def test_dial_strings_from_the_template():
    assert render_dial("PJSIP/{number}@trunk", "+33612345678", {}) == "PJSIP/+33612345678@trunk"
    assert render_dial("PJSIP/{digits}@trunk", "+33612345678", {}) == "PJSIP/33612345678@trunk"
    assert render_dial("Local/{sim}@sim-customer", "+33612345678", {"sim": "human-ans1"}) == \
        "Local/human-ans1@sim-customer"
    with pytest.raises(KeyError):
        render_dial("Local/{sim}@sim-customer", "+33612345678", {})


@pytest.mark.parametrize(("cause", "rang", "result"), [
    (17, 1.0, "busy"), (19, 3.0, "no-answer"), (18, 3.0, "no-answer"), (34, 0.1, "congestion"),
    (38, 0.1, "congestion"), (16, 20.0, "no-answer"), (0, 19.5, "no-answer"), (16, 2.0, "failed"),
    (21, 1.0, "failed"), (None, 0.0, "failed"),
])
def test_unanswered_results_from_q850_causes(cause, rang, result):
    assert unanswered_result(cause, rang, 20.0) == result


def test_dnc_numbers_and_files():
    assert dnc_number("06 12 34 56 78") == "+33612345678"
    assert dnc_number("0899 12 34 56") == "+33899123456"  # premium numbers can be listed too
    with pytest.raises(ValueError):
        dnc_number("hello")
    assert read_dnc_file(b"0612345678\n\n+33756781234\n") == [(1, "0612345678"), (3, "+33756781234")]  # line numbers
    assert read_dnc_file(b'["0612345678", 33712345678]') == [(1, "0612345678"), (2, "33712345678")]
    assert read_dnc_file(b"phone,name\n0612345678,Ada\n") == [(1, "0612345678")]


def test_the_greeting_ended_when_amd_started_waiting_for_silence():
    assert greeting_silence("HUMAN-800-800") == 0.8
    assert greeting_silence("HUMAN-1000-1200") == 1.2
    assert greeting_silence("TOOLONG-5000") == 0.0
    assert greeting_silence("") == 0.0


def test_daily_cap_adds_a_24_hour_rule_next_to_the_30_day_one():
    c = parse_campaign("c", {**BASE, "abandon_cap": 0.025, "abandon_daily_cap": True}).config
    assert [(r.name, r.cap, r.window_seconds, r.fp_weight) for r in c.abandon_rules] == [
        ("FTC_TSR", 0.025, 30 * 86400, 0.0), ("DAILY", 0.025, 86400, 0.0)]
    assert parse_campaign("c", BASE).config.abandon_rules[1:] == ()
    assert parse_campaign("c", {**BASE, "abandon_daily_cap": True}).to_dict()["abandon_daily_cap"] is True


def test_daily_cap_with_ofcom_adds_nothing():
    """OFCOM's window is already 24 h: the option is accepted (and echoed) but no second rule is made."""
    spec = parse_campaign("c", {**BASE, "abandon_rule": "OFCOM", "abandon_daily_cap": True})
    assert [r.name for r in spec.config.abandon_rules] == ["OFCOM"]
    assert spec.to_dict()["abandon_daily_cap"] is True


def test_bad_daily_cap_names_its_field():
    with pytest.raises(ValidationError) as err:
        parse_campaign("c", {**BASE, "abandon_daily_cap": "sometimes"})
    assert err.value.errors()[0]["loc"][0] == "abandon_daily_cap"
    with pytest.raises(SpecError) as bad_cap:
        parse_campaign("c", {**BASE, "abandon_daily_cap": True, "abandon_cap": 0})
    assert bad_cap.value.field == "abandon_cap"
