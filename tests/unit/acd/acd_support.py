"""Small driver for ACD core tests: an engine, a clock, and filters over commands."""

from __future__ import annotations

from typing import Any, TypeVar

from ari_app.acd.core import (
    AcdEngine,
    AgentConfig,
    AgentLogin,
    CallArrived,
    Command,
    Event,
    Offer,
    OfferAnswered,
    QueueConfig,
    QueueItem,
    QueueLog,
    Tick,
    UpsertAgent,
    UpsertQueue,
)

C = TypeVar("C")


def of(commands: list[Command], kind: type[C]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]


def logs(commands: list[Command], event: str | None = None) -> list[QueueLog]:
    return [c for c in of(commands, QueueLog) if event is None or c.event == event]


class Sim:
    """An engine plus a clock. ``advance(t)`` fires every deadline up to ``t`` in order."""

    def __init__(
        self,
        *queues: QueueConfig,
        agents: tuple[AgentConfig, ...] = (),
        login: bool = True,
        seed: int = 1,
    ) -> None:
        self.engine = AcdEngine(seed=seed)
        self.now = 0.0
        self.out: list[Command] = []
        for q in queues:
            self.do(UpsertQueue(q))
        for a in agents:
            self.do(UpsertAgent(a))
        if login:
            for a in agents:
                self.do(AgentLogin(a.id))

    def do(self, event: Event, at: float | None = None) -> list[Command]:
        if at is not None:
            self.advance(at)
        out = self.engine.handle(event, self.now)
        self.out.extend(out)
        return out

    def advance(self, to: float) -> list[Command]:
        out: list[Command] = []
        while (deadline := self.engine.next_deadline()) is not None and deadline <= to:
            self.now = max(self.now, deadline)
            step = self.engine.handle(Tick(), self.now)
            self.out.extend(step)
            out.extend(step)
        self.now = max(self.now, to)
        return out

    def arrive(
        self, item_id: str, queue: str = "q", at: float | None = None, **kw: Any
    ) -> list[Command]:
        return self.do(CallArrived(QueueItem(item_id, queue, **kw)), at)

    def answer(self, offer: Offer | str, at: float | None = None) -> list[Command]:
        oid = offer if isinstance(offer, str) else offer.offer_id
        return self.do(OfferAnswered(oid), at)

    def status(self, agent_id: str) -> str:
        info = self.engine.agent(agent_id)
        assert info is not None
        return info.status


def agents(n: int, queue: str = "q", **kw: Any) -> tuple[AgentConfig, ...]:
    """Agents a1..an in ``queue`` with penalty 0."""
    return tuple(
        AgentConfig(f"a{i}", f"PJSIP/a{i}", memberships={queue: 0}, **kw) for i in range(1, n + 1)
    )


def offered(commands: list[Command]) -> list[tuple[str, str]]:
    """(item_id, agent_id) of every Offer in ``commands``."""
    return [(o.item_id, o.agent_id) for o in of(commands, Offer)]
