"""Per-queue callback policy: validation naming the field, and when an offer is made."""

from __future__ import annotations

import pytest

from ari_app.acd.core.model import ConfigError
from ari_app.callbacks.core import CallbackPolicy


def test_defaults_round_trip() -> None:
    p = CallbackPolicy()
    assert CallbackPolicy.from_dict(p.to_dict()) == p
    assert p.mode == "agent-first" and p.max_attempts == 3


@pytest.mark.parametrize(("data", "field"), [
    ({"mode": "sideways"}, "mode"), ({"offer": "sometimes"}, "offer"), ({"max_attempts": 0}, "max_attempts"),
    ({"retry_delay": -1}, "retry_delay"), ({"max_attempts": True}, "max_attempts"), ({"bogus": 1}, "bogus"),
    ({"whisper": [1]}, "whisper"), ({"confirm_timeout": "8"}, "confirm_timeout"),
])
def test_bad_values_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        CallbackPolicy.from_dict(data)
    assert err.value.field == field


def test_media_names_become_sound_uris() -> None:
    assert CallbackPolicy.from_dict({"whisper": "beep"}).whisper == ("sound:beep",)


def test_offer_conditions() -> None:
    assert CallbackPolicy(offer="always").should_offer(waiting=0, ewt=0)
    ewt = CallbackPolicy(offer="ewt", offer_min_ewt=120)
    assert not ewt.should_offer(waiting=9, ewt=60) and ewt.should_offer(waiting=0, ewt=180)
    assert ewt.should_offer(waiting=0, ewt=None)  # nobody serving: the wait is unknown, so long
    length = CallbackPolicy(offer="length", offer_min_waiting=3)
    assert not length.should_offer(waiting=2, ewt=None) and length.should_offer(waiting=3, ewt=0)
    assert not CallbackPolicy(offer="overflow").should_offer(waiting=99, ewt=None)
    assert not CallbackPolicy(offer="never").should_offer(waiting=99, ewt=None)
