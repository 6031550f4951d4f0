"""The number confirmation after the callback key: caller id by default, keyed digits otherwise."""

from __future__ import annotations

from ari_app.callbacks.core import Confirmed, GaveUp, NumberDialog, Play
from ari_app.callbacks.core.dialog import ENTER_PROMPT, REFUSED_PROMPT, confirm_prompt
from ari_app.numbers import NumberPolicy

POLICY = NumberPolicy()


def run(dialog: NumberDialog, keys: str) -> list[object]:
    out: list[object] = list(dialog.start())
    for k in keys:
        out += dialog.timeout() if k == "T" else dialog.digit(k)
    return out


def test_caller_id_read_back_and_confirmed_with_1() -> None:
    d = NumberDialog("0611111111", POLICY.normalise)
    out = run(d, "1")
    assert out[0] == Play(("sound:telephone-number", "digits:0611111111", "sound:vm-tocallnum",
                           "sound:vm-calldiffnum"))
    assert out[-1] == Confirmed("+33611111111", "0611111111")


def test_another_number_keyed_in_then_confirmed() -> None:
    d = NumberDialog("0611111111", POLICY.normalise)
    out = run(d, "20622334455#1")
    assert Play(ENTER_PROMPT) in out and Play(confirm_prompt("0622334455")) in out
    assert out[-1] == Confirmed("+33622334455", "0622334455")


def test_a_pause_ends_the_keyed_number() -> None:
    d = NumberDialog(None, POLICY.normalise)
    assert run(d, "0622334455T1")[-1] == Confirmed("+33622334455", "0622334455")


def test_refused_numbers_are_asked_again_never_accepted() -> None:
    d = NumberDialog("3617", POLICY.normalise)  # premium short code: not offered for confirmation
    out = run(d, "112#0899123456#0622334455#1")
    assert out[0] == Play(ENTER_PROMPT)
    assert out.count(Play(REFUSED_PROMPT + ENTER_PROMPT)) == 2
    assert out[-1] == Confirmed("+33622334455", "0622334455")


def test_silence_or_wrong_keys_give_up_after_three_tries() -> None:
    assert run(NumberDialog("0611111111", POLICY.normalise), "TTT")[-1] == GaveUp("no-input")
    assert run(NumberDialog("0611111111", POLICY.normalise), "795")[-1] == GaveUp("too-many-errors")
    assert run(NumberDialog(None, POLICY.normalise), "1#2#3#")[-1] == GaveUp("too-many-errors")


def test_star_clears_what_was_keyed() -> None:
    out = run(NumberDialog(None, POLICY.normalise), "0699*0622334455#1")
    assert out[-1] == Confirmed("+33622334455", "0622334455")
