"""How one queue handles callbacks: when the offer is made, how the callback is placed, retries.

One policy per queue (stored by the callbacks capability next to the queue's ACD config); a
queue without one uses the defaults. The ACD's own queue config still says *when* an offer is
considered (``callback_offer_after``/``callback_offer_frequency``) and which key accepts it
(``callback_key``); the policy adds *whether* it is made then (``offer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ari_app.acd.core.model import ConfigError

Mode = Literal["agent-first", "customer-first"]
Offer = Literal["always", "ewt", "length", "overflow", "never"]


def _media(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(name, "expected a list of media URIs (e.g. 'sound:beep')")
    return tuple(v if ":" in v else f"sound:{v}" for v in value)


@dataclass(frozen=True)
class CallbackPolicy:
    #: agent-first: the agent rings, hears ``whisper``, then the customer is dialled.
    #: customer-first: the customer is dialled when the callback reaches the head of the queue,
    #: hears ``customer_message`` and waits for the next agent with ``customer_first_priority``.
    mode: Mode = "agent-first"
    #: When a waiting caller is offered a callback (and the key works): always; when their
    #: estimated wait is at least ``offer_min_ewt`` seconds (unknown counts as long); when at
    #: least ``offer_min_waiting`` items wait; only on overflow (the queue's max_wait/full/empty
    #: destination is ``callback``); never.
    offer: Offer = "always"
    offer_min_ewt: float = 0.0
    offer_min_waiting: int = 0
    #: Dial attempts (busy, no answer, failed) before the callback is closed as failed.
    max_attempts: int = 3
    retry_delay: float = 300.0
    #: Priority of callbacks scheduled over the API (virtual-hold callbacks keep the caller's).
    scheduled_priority: int = 10
    #: A scheduled callback for a named agent waits this long for them, then any agent.
    agent_fallback_after: float = 300.0
    whisper: tuple[str, ...] = ("sound:beep",)
    #: After the whisper the agent hears the number they are calling back (never surprised).
    whisper_number: bool = True
    customer_message: tuple[str, ...] = ("sound:one-moment-please",)
    customer_first_priority: int = 1_000_000
    #: Seconds the customer's phone rings per attempt.
    dial_timeout: int = 30
    #: Seconds the caller has to answer each prompt of the number confirmation.
    confirm_timeout: float = 8.0
    #: Answering-machine detection on the customer leg (agent-first): Asterisk's AMD() runs on
    #: the answered leg while the agent waits; a machine is a failed attempt ("machine").
    amd: bool = False

    def __post_init__(self) -> None:
        if self.mode not in get_args(Mode):
            raise ConfigError("mode", f"expected one of {list(get_args(Mode))}, got {self.mode!r}")
        for flag in ("whisper_number", "amd"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(flag, f"expected true/false, got {getattr(self, flag)!r}")
        if self.offer not in get_args(Offer):
            raise ConfigError("offer", f"expected one of {list(get_args(Offer))}, got {self.offer!r}")
        for name, low, high in (("offer_min_waiting", 0, 10**6), ("max_attempts", 1, 20),
                                ("scheduled_priority", -(10**6), 10**6),
                                ("customer_first_priority", -(10**9), 10**9), ("dial_timeout", 5, 300)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise ConfigError(name, f"expected an integer between {low} and {high}, got {v!r}")
        for fname, lo, hi in (("offer_min_ewt", 0.0, 86400.0), ("retry_delay", 0.0, 7 * 86400.0),
                              ("agent_fallback_after", 0.0, 7 * 86400.0), ("confirm_timeout", 1.0, 60.0)):
            x = getattr(self, fname)
            if isinstance(x, bool) or not isinstance(x, int | float) or not lo <= x <= hi:
                raise ConfigError(fname, f"expected a number between {lo:g} and {hi:g}, got {x!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallbackPolicy:
        if not isinstance(data, Mapping):
            raise ConfigError("body", "expected an object")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                raise ConfigError(str(key), "unknown field")
            kwargs[key] = _media(key, value) if key in ("whisper", "customer_message") else value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["whisper"], out["customer_message"] = list(self.whisper), list(self.customer_message)
        return out

    def should_offer(self, *, waiting: int, ewt: float | None) -> bool:
        """Is a callback offered (and its key honoured) to a caller waiting now? ``waiting``
        counts the items in the queue, ``ewt`` is the caller's estimated wait (None: unknown).
        ("overflow" offers only when the queue sends the caller to its ``callback`` destination.)"""
        if self.offer == "always":
            return True
        if self.offer == "ewt":
            return ewt is None or ewt >= self.offer_min_ewt
        if self.offer == "length":
            return waiting >= self.offer_min_waiting
        return False
