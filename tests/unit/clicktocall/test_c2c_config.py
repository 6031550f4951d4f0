"""Click-to-call settings and the numbers a visitor may ask us to call (a table of good and bad)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ari_app.clicktocall.config import ClickToCallSettings
from ari_app.numbers import NumberPolicy, NumberRefused, national
from ari_app.settings import Settings

CFG = ClickToCallSettings(dial_overrides={"+33612345001": "Local/human-ans1@sim-customer"})
POLICY = NumberPolicy(default_region=CFG.default_region, allowed_regions=frozenset(CFG.allowed_regions),
                      allowed_prefixes=tuple(CFG.allowed_prefixes), allow_toll_free=CFG.allow_toll_free)


@pytest.mark.parametrize(("typed", "dial"), [
    ("06 12 34 50 01", "Local/human-ans1@sim-customer"),     # a test number: override after validation
    ("+33612345001", "Local/human-ans1@sim-customer"),
    ("06.12.34.56.78", "PJSIP/+33612345678@trunk"),
    ("0033 1 42 68 53 00", "PJSIP/+33142685300@trunk"),
    ("+33 (0)7 55 12 34 56", "PJSIP/+33755123456@trunk"),
])
def test_good_numbers_and_their_dial_strings(typed, dial):
    assert CFG.dial_string(POLICY.normalise(typed)) == dial


@pytest.mark.parametrize(("typed", "reason"), [
    ("112", "emergency"),
    ("15", "emergency"),
    ("3615", "premium"),
    ("3010", "short-code"),
    ("0899 12 34 56", "premium"),
    ("0810 12 34 56", "shared-cost"),
    ("0800 123 456", "toll-free"),                # refused by default for visitors
    ("+44 20 7946 0958", "country"),
    ("+1 202 555 0143", "country"),
    ("06 12", "invalid"),
    ("call me maybe", "malformed"),
    ("", "empty"),
    ("Local/human-ans1@sim-customer", "malformed"),  # no dial string ever passes as a number
    ("PJSIP/+33612345678@trunk", "malformed"),
])
def test_bad_numbers_are_refused_with_a_reason(typed, reason):
    with pytest.raises(NumberRefused) as info:
        POLICY.normalise(typed)
    assert info.value.reason == reason


def test_dial_template_placeholders():
    cfg = ClickToCallSettings(dial_template="SIP/trunk/{national}")
    assert cfg.dial_string("+33612345678") == "SIP/trunk/0612345678"
    cfg = ClickToCallSettings(dial_template="PJSIP/{digits}@gw")
    assert cfg.dial_string("+33612345678") == "PJSIP/33612345678@gw"
    assert national("+32470123456") == "0470123456"


@pytest.mark.parametrize(("value", "field"), [
    ({"dial_template": "PJSIP/trunk"}, "dial_template"),
    ({"dial_template": "PJSIP/{number}@trunk"}, "dial_template"),
    ({"dial_overrides": {"0612345001": "Local/x@y"}}, "dial_overrides"),
    ({"sites": {"s": {"targets": []}}}, "sites"),
    ({"sites": {"s": {"targets": ["support"]}}}, "sites"),
    ({"sites": {"s": {"targets": ["queue:a"], "origins": ["https://x.example/path"]}}}, "sites"),
    ({"sites": {"s": {"targets": ["queue:a"], "require_token": True}}}, "sites"),
    ({"targets": {"queue:a": {"order": "random"}}}, "targets"),
    ({"targets": {"queue:a": {"ring_timeout": 1}}}, "targets"),
    ({"demo_site": "nope"}, "click_to_call"),
    ({"limits": {"per_ip_per_minute": 0}}, "limits"),
])
def test_bad_settings_name_the_field(value, field):
    with pytest.raises(ValidationError) as info:
        Settings(click_to_call=value)
    assert "click_to_call" in str(info.value) and field in str(info.value)


def test_defaults_are_closed():
    cfg = Settings().click_to_call
    assert cfg.sites == {} and cfg.demo_site is None
    assert cfg.target("queue:any").order == "agent-first"


def test_settings_from_env_json(monkeypatch):
    monkeypatch.setenv("ARI_APP_CLICK_TO_CALL", '{"sites": {"shop": {"origins": ["https://shop.example"], '
                                                 '"targets": ["queue:sales"]}}, "caller_id": "+33100000000"}')
    cfg = Settings().click_to_call
    assert cfg.sites["shop"].targets == ["queue:sales"] and cfg.caller_id == "+33100000000"
