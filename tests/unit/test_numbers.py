"""The dialling policy, as a table of good and bad numbers."""

import pytest

from ari_app.numbers import NumberPolicy, NumberRefused

FR = NumberPolicy(default_region="FR", allowed_regions=frozenset({"FR", "BE"}))


@pytest.mark.parametrize(("raw", "e164"), [
    ("06 12 34 56 78", "+33612345678"),
    ("+33 1 42 68 53 00", "+33142685300"),
    ("0033612345678", "+33612345678"),
    ("+32 470 12 34 56", "+32470123456"),       # Belgium is allowed
    ("0800 123 456", "+33800123456"),           # toll free allowed by default
])
def test_good_numbers_normalise_to_e164(raw, e164):
    assert FR.normalise(raw) == e164


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty"),
    ("hello", "malformed"),
    ("112", "emergency"),
    ("15", "emergency"),                        # SAMU
    ("17", "emergency"),
    ("3615", "premium"),                        # Minitel-era premium short code
    ("3010", "short-code"),                     # a toll-free short code is still a short code
    ("0899 12 34 56", "premium"),               # French premium rate
    ("+44 20 7946 0958", "country"),            # UK: not in allowed regions
    ("+33 6 12", "invalid"),
    ("0810 12 34 56", "shared-cost"),
    ("9" * 40, "malformed"),
])
def test_bad_numbers_are_refused_with_a_reason(raw, reason):
    with pytest.raises(NumberRefused) as info:
        FR.normalise(raw)
    assert info.value.reason == reason
    assert str(info.value)


def test_prefix_allow_list_and_toll_free_switch():
    policy = NumberPolicy(allowed_regions=frozenset({"FR"}), allowed_prefixes=("+336", "+337"), allow_toll_free=False)
    assert policy.normalise("0755123456") == "+33755123456"
    with pytest.raises(NumberRefused) as info:
        policy.normalise("0142685300")
    assert info.value.reason == "prefix"
    with pytest.raises(NumberRefused) as info:
        policy.normalise("0800123456")
    assert info.value.reason == "toll-free"


def test_test_prefixes_pass_through_for_the_sandbox():
    policy = NumberPolicy(test_prefixes=("sim:",))
    assert policy.normalise("sim:human-ans1") == "sim:human-ans1"


def test_timezones_of_a_number():
    assert "Europe/Paris" in FR.timezones("+33612345678")
