"""Property tests: random event sequences against the routing invariants.

Invariants checked after every ``handle``:

* an agent has at most one offer or call at a time, and its reported state matches it;
* an item gets several outstanding offers only from ``ring-all``/``ring-progressively``
  queues, each to a different agent; only the first answer connects and the others get
  CancelOffer (a later answer is ``stale``); elsewhere one agent at a time;
* no ``waiting`` item has an eligible agent who could be offered it now (available,
  member, skills after escalation, preferred agent, device state vs ring_in_use);
* FIFO within priority: an agent offered item I has no still-waiting eligible item in its
  queues ranked before I (weight, boost, priority, entered_at);
* with ring_in_use off no agent whose device is busy is offered;
* the commands agree with the state: outstanding offers, agent state changes, positions.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ari_app.acd.core import (
    AcdEngine,
    AgentConfig,
    AgentDeviceState,
    AgentLegLost,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentStateChanged,
    AgentUnpause,
    CallArrived,
    CallEnded,
    CallLeft,
    CallTransferred,
    CancelOffer,
    Command,
    Connect,
    DtmfPressed,
    Event,
    MoveItem,
    Offer,
    OfferAnswered,
    OfferFailed,
    QueueConfig,
    QueueItem,
    Tick,
    UpsertAgent,
    UpsertQueue,
)
from ari_app.acd.core.model import STRATEGIES

QUEUES = ("q1", "q2", "q3")
AGENTS = ("a1", "a2", "a3", "a4", "a5")
SKILLS = ("fr", "de")
REASONS = ("noanswer", "busy", "unavailable", "congestion", "rejected")
MULTI = ("ring-all", "ring-progressively")

queue_cfg = st.builds(
    lambda name, strategy, weight, esc, ring_in_use, retry, wrapup, autopause, max_wait, leave_empty: (
        QueueConfig(
            name,
            strategy=strategy,
            weight=weight,
            skill_escalation=esc,
            ring_in_use=ring_in_use,
            retry_delay=retry,
            wrapup_time=wrapup,
            autopause_after=autopause,
            max_wait=max_wait,
            max_wait_destination="queue:q1" if name != "q1" else None,
            leave_empty=leave_empty,
            exit_key="9",
            ring_timeout=7,
            ring_progressively_interval=3,
            announce_position=True,
            announce_frequency=20,
            max_len=6,
        )
    ),
    st.sampled_from(QUEUES),
    st.sampled_from(sorted(STRATEGIES)),
    st.integers(0, 2),
    st.sampled_from([(), ((10.0, 2),), ((5.0, 3), (15.0, 0))]),
    st.booleans(),
    st.sampled_from([0.0, 2.0]),
    st.sampled_from([0.0, 4.0]),
    st.sampled_from([0, 2]),
    st.sampled_from([None, 40.0]),
    st.sampled_from([frozenset(), frozenset({"paused", "loggedout"})]),
)

agent_cfg = st.builds(
    lambda aid, skills, members: AgentConfig(
        aid, f"PJSIP/{aid}", skills=skills, memberships=members
    ),
    st.sampled_from(AGENTS),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=2),
    st.dictionaries(st.sampled_from(QUEUES), st.integers(0, 2), min_size=1, max_size=3),
)

arrive = st.tuples(
    st.just("arrive"),
    st.sampled_from(QUEUES),
    st.integers(0, 2),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=2),
    st.sampled_from(["call", "call", "callback"]),
    st.sampled_from([None, None, None, "a1", "a2"]),
)
answer = st.tuples(st.just("answer"), st.integers(0, 20))
end = st.tuples(st.just("end"), st.integers(0, 20), st.sampled_from(["caller", "agent"]))
tick = st.tuples(st.just("tick"), st.sampled_from([0.5, 1.0, 3.0, 8.0, 25.0]))
# weighted towards traffic; configuration changes are rarer
action = st.one_of(
    arrive,
    arrive,
    arrive,
    answer,
    answer,
    end,
    end,
    tick,
    tick,
    st.tuples(st.just("leave"), st.integers(0, 20)),
    st.tuples(st.just("fail"), st.integers(0, 20), st.sampled_from(REASONS)),
    st.tuples(
        st.sampled_from(["login", "logout", "pause", "unpause", "leglost"]), st.sampled_from(AGENTS)
    ),
    st.tuples(
        st.just("device"),
        st.sampled_from(AGENTS),
        st.sampled_from(["idle", "idle", "inuse", "unavailable"]),
    ),
    st.tuples(st.just("dtmf"), st.integers(0, 20), st.sampled_from(["9", "1"])),
    st.tuples(st.just("move"), st.integers(0, 20), st.sampled_from(QUEUES), st.booleans()),
    st.tuples(
        st.just("transfer"),
        st.integers(0, 20),
        st.sampled_from([f"queue:{q}" for q in QUEUES] + ["number:0612345678"]),
    ),
    st.tuples(st.just("queue"), queue_cfg),
    st.tuples(st.just("agent"), agent_cfg),
)

setup = st.tuples(
    st.lists(queue_cfg, min_size=3, max_size=3).map(
        lambda cfgs: [
            QueueConfig.from_dict({**c.to_dict(), "name": n})
            for c, n in zip(cfgs, QUEUES, strict=True)
        ]
    ),
    st.lists(agent_cfg, min_size=5, max_size=5).map(
        lambda cfgs: [
            AgentConfig.from_dict({**c.to_dict(), "id": n})
            for c, n in zip(cfgs, AGENTS, strict=True)
        ]
    ),
)


class Driver:
    """Feeds actions to an engine, playing the adapter, and checks invariants."""

    def __init__(self, engine: AcdEngine, now: float = 0.0, check: bool = True) -> None:
        self.engine = engine
        self.now = now
        self.check = check
        self.n = 0
        self.outstanding = {o.offer_id for o in engine.offers()}
        self.reported = {a.id: a.status for a in engine.agents()}
        self.trace: list[Command] = []

    def start(self, queues: list[QueueConfig], agents: list[AgentConfig]) -> None:
        for q in queues:
            self.send(UpsertQueue(q))
        for a in agents:
            self.send(UpsertAgent(a))
            self.send(AgentLogin(a.id))

    def send(self, event: Event) -> list[Command]:
        out = self.engine.handle(event, self.now)
        self.trace.extend(out)
        if self.check:
            self.verify(event, out)
        return out

    def _items(self) -> list[str]:
        return sorted(
            {i.item.id for q in self.engine.queues() for i in self.engine.waiting(q)}
            | {a.item_id for a in self.engine.agents() if a.item_id}
        )

    def run(self, act: tuple[Any, ...]) -> None:
        kind = act[0]
        items = self._items()
        offers = sorted(self.outstanding)
        pick = lambda seq, k: seq[k % len(seq)] if seq else None  # noqa: E731
        if kind == "arrive":
            self.n += 1
            _, queue, prio, skills, item_kind, pref = act
            fallback = 10.0 if pref else None
            self.send(
                CallArrived(
                    QueueItem(
                        f"i{self.n}",
                        queue,
                        kind=item_kind,
                        priority=prio,
                        required_skills=skills,
                        preferred_agent=pref,
                        preferred_fallback_after=fallback,
                    )
                )
            )
        elif kind == "leave" and (item := pick(items, act[1])):
            self.send(CallLeft(item))
        elif kind == "answer" and (oid := pick(offers, act[1])):
            self.send(OfferAnswered(oid))
        elif kind == "fail" and (oid := pick(offers, act[1])):
            self.outstanding.discard(oid)
            self.send(OfferFailed(oid, act[2]))
        elif kind == "end" and (item := pick(items, act[1])):
            self.send(CallEnded(item, by=act[2]))
        elif kind in ("login", "logout", "pause", "unpause", "leglost"):
            cls = {
                "login": AgentLogin,
                "logout": AgentLogout,
                "pause": AgentPause,
                "unpause": AgentUnpause,
                "leglost": AgentLegLost,
            }[kind]
            self.send(cls(act[1]))
        elif kind == "device":
            self.send(AgentDeviceState(act[1], act[2]))
        elif kind == "dtmf" and (item := pick(items, act[1])):
            self.send(DtmfPressed(item, act[2]))
        elif kind == "move" and (item := pick(items, act[1])):
            self.send(MoveItem(item, act[2], act[3]))
        elif kind == "transfer" and (item := pick(items, act[1])):
            self.send(CallTransferred(item, act[2]))
        elif kind == "queue":
            self.send(UpsertQueue(act[1]))
        elif kind == "agent":
            self.send(UpsertAgent(act[1]))
        elif kind == "tick":
            target = self.now + act[1]
            while (deadline := self.engine.next_deadline()) is not None and deadline <= target:
                self.now = max(self.now, deadline)
                self.send(Tick())
            self.now = target
            self.send(Tick())

    # -- invariants ---------------------------------------------------------------------

    def eligible(self, agent_id: str, item_id: str) -> bool:
        """Independent eligibility: membership, skills after escalation, preferred agent."""
        agent = self.engine.agent(agent_id)
        info = self.engine.item(item_id)
        assert agent is not None and info is not None
        if info.queue not in agent.queues:
            return False
        cfg = self.config(info.queue)
        waited = self.now - info.joined_at
        it = info.item
        if it.preferred_agent is not None and it.preferred_agent != agent_id:
            if it.preferred_fallback_after is None or waited < it.preferred_fallback_after:
                return False
        skills = self._skills[agent_id]
        return all(skills.get(s, 0) >= lvl for s, lvl in cfg.relaxed(it.required_skills, waited))

    def config(self, queue: str) -> QueueConfig:
        info = self.engine.queue(queue)
        assert info is not None
        return info.config

    def offerable(self, agent_id: str, queue: str) -> bool:
        a = self.engine.agent(agent_id)
        assert a is not None
        return (
            a.status == "available"
            and a.device != "unavailable"
            and (a.device == "idle" or self.config(queue).ring_in_use)
        )

    def verify(self, event: Event, out: list[Command]) -> None:
        eng = self.engine
        core = eng._core  # the ranking key (boost/seq) is internal
        self._skills = {aid: dict(a.config.skills) for aid, a in core.agents.items()}
        agents = {a.id: a for a in eng.agents()}
        offers = eng.offers()
        # commands vs outstanding offers and reported states
        for c in out:
            if isinstance(c, Offer):
                assert c.offer_id not in self.outstanding
                self.outstanding.add(c.offer_id)
            elif isinstance(c, CancelOffer):
                assert c.offer_id in self.outstanding or c.reason == "stale", c
                self.outstanding.discard(c.offer_id)
            elif isinstance(c, Connect):
                assert c.offer_id in self.outstanding
                self.outstanding.discard(c.offer_id)
            elif isinstance(c, AgentStateChanged):
                assert self.reported.get(c.agent_id, "logged_out") == c.old, c
                self.reported[c.agent_id] = c.new
        assert self.outstanding == {o.offer_id for o in offers}
        for aid, a in agents.items():
            assert self.reported.get(aid, "logged_out") == a.status
        # one offer or call per agent, states consistent
        per_agent: dict[str, int] = {}
        per_item: dict[str, list[str]] = {}
        for o in offers:
            per_agent[o.agent_id] = per_agent.get(o.agent_id, 0) + 1
            per_item.setdefault(o.item_id, []).append(o.agent_id)
        for aid, a in agents.items():
            assert per_agent.get(aid, 0) == (1 if a.status == "ringing" else 0), (aid, a.status)
            if a.status == "on_call":
                info = eng.item(a.item_id or "")
                assert info is not None and info.status == "connected" and info.agent_id == aid
            else:
                assert a.status == "ringing" or a.item_id is None
        connected = [i for i in core.items.values() if i.status == "connected"]
        assert len({i.agent_id for i in connected}) == len(connected)
        for item_id, holders in per_item.items():
            info = eng.item(item_id)
            assert info is not None and info.status == "offering"
            assert len(set(holders)) == len(holders)
            # several offers only come from ring-all/ring-progressively (checked when made:
            # offers in flight survive a later change of strategy)
            if len(holders) > 1 and any(isinstance(c, Offer) and c.item_id == item_id for c in out):
                assert self.config(info.queue).strategy in MULTI
        # new offers: FIFO and ring_in_use
        for c in out:
            if isinstance(c, Offer) and c.offer_id in self.outstanding:
                a = agents[c.agent_id]
                assert a.device != "unavailable"
                assert a.device == "idle" or self.config(c.queue).ring_in_use
        # maximality and FIFO
        waiting = [eng.item(k[-1]) for q in core.queues.values() for k in q.order]
        for info in waiting:
            assert info is not None
            if info.status != "waiting":
                continue
            for aid in agents:
                if self.offerable(aid, info.queue):
                    assert not self.eligible(aid, info.item.id), (aid, info.item.id, event)
        new_offers = [c for c in out if isinstance(c, Offer) and c.item_id in core.items]
        for c in new_offers:
            it = core.items[c.item_id]
            key = (-core.queues[it.queue].config.weight, *it.key)
            for info in waiting:
                assert info is not None
                device_ok = (
                    agents[c.agent_id].device == "idle" or self.config(info.queue).ring_in_use
                )
                if (
                    info.status == "waiting"
                    and device_ok
                    and self.eligible(c.agent_id, info.item.id)
                ):
                    other = core.items[info.item.id]
                    other_key = (-core.queues[other.queue].config.weight, *other.key)
                    assert other_key > key, (c, info.item.id)
        for q in eng.queues():
            assert [i.position for i in eng.waiting(q)] == list(range(1, len(eng.waiting(q)) + 1))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, st.lists(action, min_size=10, max_size=60))
def test_invariants_hold_under_random_events(
    start: tuple[list[QueueConfig], list[AgentConfig]], actions: list[tuple[Any, ...]]
) -> None:
    driver = Driver(AcdEngine(seed=42))
    driver.start(*start)
    for act in actions:
        driver.run(act)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, st.lists(action, min_size=10, max_size=60), st.integers(0, 60))
def test_restore_then_continue_makes_the_same_decisions(
    start: tuple[list[QueueConfig], list[AgentConfig]], actions: list[tuple[Any, ...]], cut: int
) -> None:
    original = Driver(AcdEngine(seed=7), check=False)
    original.start(*start)
    for act in actions[:cut]:
        original.run(act)
    snap = json.loads(json.dumps(original.engine.snapshot()))
    restored = Driver(AcdEngine.restore(snap), now=original.now, check=False)
    restored.n = original.n
    restored.outstanding = set(original.outstanding)
    mark = len(original.trace)
    for act in actions[cut:]:
        original.run(act)
        restored.run(act)
    assert restored.trace == original.trace[mark:]
    assert restored.engine.snapshot() == original.engine.snapshot()
    assert restored.engine.next_deadline() == original.engine.next_deadline()
