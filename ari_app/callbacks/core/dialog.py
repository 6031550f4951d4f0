"""The number confirmation a caller goes through after pressing the callback key.

"Telephone number 0 6 1 2 ...: to call this number press 1, to enter a different number press 2."
Keyed numbers end with # (or a pause) and are checked by the dialling policy before they are
read back. Pure: digits and timeouts in, prompts and a result out; the shell plays and listens.
Prompts are Asterisk's stock English sounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

CONFIRM_KEY = "1"
CHANGE_KEY = "2"
MAX_DIGITS = 20

ENTER_PROMPT = ("sound:vm-enter-num-to-call", "sound:vm-then-pound")
REFUSED_PROMPT = ("sound:check-number-dial-again",)
INVALID_PROMPT = ("sound:pm-invalid-option",)
CONFIRMED_PROMPT = ("sound:auth-thankyou", "sound:vm-goodbye")


def confirm_prompt(raw: str) -> tuple[str, ...]:
    digits = "".join(c for c in raw if c.isdigit())
    said = ("sound:telephone-number", f"digits:{digits}") if digits else ()
    return (*said, "sound:vm-tocallnum", "sound:vm-calldiffnum")


@dataclass(frozen=True)
class Play:
    """Stop whatever is playing and play this."""

    media: tuple[str, ...]


@dataclass(frozen=True)
class Confirmed:
    number: str  # as the dialling policy normalised it
    raw: str  # as the caller knows it


@dataclass(frozen=True)
class GaveUp:
    reason: Literal["no-input", "too-many-errors"]


Action = Play | Confirmed | GaveUp


class NumberDialog:
    def __init__(self, default: str | None, normalise: Callable[[str], str], *, max_errors: int = 3) -> None:
        """``default`` is the caller id; ``normalise`` returns the dialable form or raises
        ValueError (the dialling policy's NumberRefused)."""
        self._normalise = normalise
        self._max_errors = max_errors
        self.errors = 0
        self.state: Literal["confirm", "entry", "done"] = "entry"
        self.raw = ""
        self.number = ""
        self.buffer = ""
        if default:
            try:
                self.number, self.raw, self.state = normalise(default), default, "confirm"
            except ValueError:
                pass

    def start(self) -> list[Action]:
        return [Play(confirm_prompt(self.raw) if self.state == "confirm" else ENTER_PROMPT)]

    def digit(self, d: str) -> list[Action]:
        if self.state == "confirm":
            if d == CONFIRM_KEY:
                self.state = "done"
                return [Confirmed(self.number, self.raw)]
            if d == CHANGE_KEY:
                self.state, self.buffer = "entry", ""
                return [Play(ENTER_PROMPT)]
            return self._error(INVALID_PROMPT + confirm_prompt(self.raw))
        if self.state == "entry":
            if d == "#":
                return self._submit()
            if d == "*":
                self.buffer = ""
                return [Play(ENTER_PROMPT)]
            if d.isdigit():
                self.buffer += d
                return self._submit() if len(self.buffer) >= MAX_DIGITS else []
        return []

    def timeout(self) -> list[Action]:
        """Nothing pressed for a while after the prompt (or after the last keyed digit)."""
        if self.state == "entry" and self.buffer:
            return self._submit()
        if self.state == "done":
            return []
        prompt = confirm_prompt(self.raw) if self.state == "confirm" else ENTER_PROMPT
        return self._error(prompt, reason="no-input")

    def _submit(self) -> list[Action]:
        keyed, self.buffer = self.buffer, ""
        try:
            number = self._normalise(keyed)
        except ValueError:
            return self._error(REFUSED_PROMPT + ENTER_PROMPT)
        self.number, self.raw, self.state = number, keyed, "confirm"
        return [Play(confirm_prompt(keyed))]

    def _error(self, prompt: tuple[str, ...], *, reason: Literal["no-input", "too-many-errors"] = "too-many-errors"
               ) -> list[Action]:
        self.errors += 1
        if self.errors >= self._max_errors:
            self.state = "done"
            return [GaveUp(reason)]
        return [Play(prompt)]
