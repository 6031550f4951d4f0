"""Which agent gets the call, per strategy, in scenarios with known agent state."""

from __future__ import annotations

from collections import Counter

from acd_support import Sim, agents, of, offered

from ari_app.acd.core import (
    AgentConfig,
    AgentLogin,
    AgentPause,
    AgentUnpause,
    CallEnded,
    CancelOffer,
    Connect,
    Offer,
    QueueConfig,
    UpsertQueue,
)
from ari_app.acd.core.model import STRATEGIES
from ari_app.acd.core.strategies import AgentKey, SplitMix64, preference_order, select


def q(strategy: str, **kw: object) -> QueueConfig:
    return QueueConfig("q", strategy=strategy, retry_delay=0, **kw)  # type: ignore[arg-type]


def give_call(sim: Sim, agent_id: str, item_id: str, talk: float) -> None:
    """Route one call to ``agent_id`` (others paused meanwhile) and end it after ``talk`` s."""
    others = [a.id for a in sim.engine.agents() if a.id != agent_id and a.status == "available"]
    for other in others:
        sim.do(AgentPause(other, "setup"))
    out = sim.arrive(item_id)
    assert offered(out) == [(item_id, agent_id)]
    sim.answer(of(out, Offer)[0])
    sim.do(CallEnded(item_id), at=sim.now + talk)
    for other in others:
        sim.do(AgentUnpause(other))


def next_agent(sim: Sim, item_id: str) -> str:
    out = sim.arrive(item_id)
    (offer,) = of(out, Offer)
    return offer.agent_id


def test_ring_all_rings_the_lowest_penalty_tier_and_first_answer_wins() -> None:
    members = (
        AgentConfig("a1", "PJSIP/a1", memberships={"q": 0}),
        AgentConfig("a2", "PJSIP/a2", memberships={"q": 0}),
        AgentConfig("a3", "PJSIP/a3", memberships={"q": 1}),
    )
    sim = Sim(q("ring-all"), agents=members)
    out = sim.arrive("c1")
    assert offered(out) == [("c1", "a1"), ("c1", "a2")]
    o1, o2 = of(out, Offer)
    out = sim.answer(o2, at=3)
    assert of(out, Connect) == [Connect("c1", "a2", o2.offer_id)]
    assert of(out, CancelOffer) == [CancelOffer(o1.offer_id, "answered-elsewhere", "c1", "a1")]
    assert sim.status("a1") == "available" and sim.status("a2") == "on_call"


def test_longest_idle_prefers_the_oldest_call_end_then_login_time() -> None:
    sim = Sim(q("longest-idle"), agents=agents(3), login=False)
    for i, aid in enumerate(("a3", "a1", "a2")):
        sim.do(AgentLogin(aid), at=float(i))
    assert next_agent(sim, "c1") == "a3"  # logged in first, never had a call
    sim.answer(of(sim.out, Offer)[-1])
    sim.do(CallEnded("c1"), at=10)
    assert next_agent(sim, "c2") == "a1"
    sim.answer(of(sim.out, Offer)[-1])
    assert next_agent(sim, "c3") == "a2"


def test_round_robin_remembers_where_it_stopped() -> None:
    sim = Sim(q("round-robin"), agents=agents(3))
    picks = []
    for n in range(5):
        item = f"c{n}"
        picks.append(next_agent(sim, item))
        sim.answer(of(sim.out, Offer)[-1])
        sim.do(CallEnded(item), at=sim.now + 1)
    assert picks == ["a1", "a2", "a3", "a1", "a2"]


def test_round_robin_skips_busy_members_and_continues_after_them() -> None:
    sim = Sim(q("round-robin"), agents=agents(4))
    assert next_agent(sim, "c1") == "a1"
    sim.do(AgentPause("a2", "lunch"))
    assert next_agent(sim, "c2") == "a3"
    assert next_agent(sim, "c3") == "a4"


def test_fewest_calls() -> None:
    sim = Sim(q("fewest-calls"), agents=agents(3))
    give_call(sim, "a1", "x1", 10)
    give_call(sim, "a1", "x2", 10)
    give_call(sim, "a2", "x3", 10)
    assert next_agent(sim, "c1") == "a3"
    sim.answer(of(sim.out, Offer)[-1])
    assert next_agent(sim, "c2") == "a2"


def test_least_talk_time() -> None:
    sim = Sim(q("least-talk-time"), agents=agents(3))
    give_call(sim, "a1", "x1", 100)
    give_call(sim, "a2", "x2", 10)
    give_call(sim, "a3", "x3", 50)
    assert next_agent(sim, "c1") == "a2"
    sim.answer(of(sim.out, Offer)[-1])
    assert next_agent(sim, "c2") == "a3"


def test_linear_is_top_down_in_member_order_within_penalty() -> None:
    members = (
        AgentConfig("a1", "PJSIP/a1", memberships={"q": 2}),
        AgentConfig("a2", "PJSIP/a2", memberships={"q": 1}),
        AgentConfig("a3", "PJSIP/a3", memberships={"q": 1}),
    )
    sim = Sim(q("linear"), agents=members)
    assert next_agent(sim, "c1") == "a2"
    sim.answer(of(sim.out, Offer)[-1])
    assert next_agent(sim, "c2") == "a3"
    sim.answer(of(sim.out, Offer)[-1])
    assert next_agent(sim, "c3") == "a1"


def test_random_is_deterministic_per_seed_and_covers_everyone() -> None:
    def picks(seed: int) -> list[str]:
        sim = Sim(q("random"), agents=agents(4), seed=seed)
        out = []
        for n in range(40):
            out.append(next_agent(sim, f"c{n}"))
            sim.do(CallEnded(f"c{n}"))  # abandon while ringing frees the agent again
        return out

    assert picks(7) == picks(7)
    assert set(picks(7)) == {"a1", "a2", "a3", "a4"}
    assert picks(7) != picks(8)


def test_random_stays_within_the_lowest_penalty() -> None:
    members = agents(3) + (AgentConfig("a9", "PJSIP/a9", memberships={"q": 5}),)
    sim = Sim(q("random"), agents=members)
    for n in range(30):
        assert next_agent(sim, f"c{n}") != "a9"
        sim.do(CallEnded(f"c{n}"))


def test_weighted_random_favours_low_penalty() -> None:
    pool: list[AgentKey] = [(0, 0.0, 0, "low"), (9, 0.0, 1, "high")]
    rng = SplitMix64(3)
    counts = Counter(
        select("weighted-random", pool, lambda _: True, (), rng)[0] for _ in range(2000)
    )
    # weights 1 : 1/10
    assert 1700 < counts["low"] < 1900 and counts["high"] > 100


def test_every_strategy_prefers_agents_not_yet_tried_for_the_item() -> None:
    pool: list[AgentKey] = [(0, 0.0, 0, "tried"), (3, 99.0, 1, "fresh")]
    for strategy in STRATEGIES - {"ring-all"}:
        got = select(
            strategy,
            pool,
            lambda _: True,
            ["tried"],
            SplitMix64(),
        )
        assert got == ["fresh"], strategy
    # ...but a tried agent is still better than nobody
    assert select("linear", pool, lambda aid: aid == "tried", ["tried"], SplitMix64()) == ["tried"]


def test_round_robin_order_rotates_within_each_penalty_tier() -> None:
    keys: list[AgentKey] = sorted(
        [(0, 0.0, 0, "a"), (0, 0.0, 2, "c"), (0, 0.0, 4, "e"), (1, 0.0, 1, "b"), (1, 0.0, 3, "d")]
    )
    order = [k[3] for k in preference_order("round-robin", keys, rr_last_index=2)]
    assert order == ["e", "a", "c", "d", "b"]


def test_ring_progressively_adds_one_agent_per_interval_and_keeps_the_earlier_ringing() -> None:
    sim = Sim(
        q("ring-progressively", ring_progressively_interval=5, ring_timeout=30), agents=agents(3)
    )
    out = sim.arrive("c1")
    assert offered(out) == [("c1", "a1")]
    assert offered(sim.advance(5)) == [("c1", "a2")]
    assert offered(sim.advance(10)) == [("c1", "a3")]
    assert [a.status for a in sim.engine.agents()] == ["ringing"] * 3
    offers = of(sim.out, Offer)
    out = sim.answer(offers[1], at=12)
    assert of(out, Connect) == [Connect("c1", "a2", offers[1].offer_id)]
    assert {c.agent_id for c in of(out, CancelOffer)} == {"a1", "a3"}
    assert [a.status for a in sim.engine.agents()] == ["available", "on_call", "available"]


def test_ring_progressively_stops_adding_agents_once_the_strategy_changed() -> None:
    """Found by the property test: a step scheduled under ring-progressively rang one more
    agent after the queue had become a one-agent strategy (two offers for one caller)."""
    sim = Sim(q("ring-progressively", ring_progressively_interval=5, ring_timeout=30), agents=agents(3))
    assert offered(sim.arrive("c1")) == [("c1", "a1")]
    sim.do(UpsertQueue(q("fewest-calls", ring_progressively_interval=5, ring_timeout=30)), at=1)
    assert offered(sim.advance(12)) == []
    assert [a.status for a in sim.engine.agents()] == ["ringing", "available", "available"]


def test_random_draws_are_uniform_over_eligible_agents_only() -> None:
    keys: list[AgentKey] = [(0, 0.0, i, f"x{i}") for i in range(40)] + [(1, 0.0, 40, "late")]
    rng = SplitMix64(11)
    few = Counter(
        select("random", keys, lambda aid: aid in ("x3", "x30"), (), rng)[0] for _ in range(1000)
    )
    assert set(few) == {"x3", "x30"} and 400 < few["x3"] < 600
    only_late = select("random", keys, lambda aid: aid == "late", (), rng)
    assert only_late == ["late"]  # the lowest penalty *among eligible* agents
    spread = Counter(select("random", keys, lambda _: True, (), rng)[0] for _ in range(4000))
    assert "late" not in spread and len(spread) == 40 and max(spread.values()) < 180


def test_changing_the_strategy_reorders_the_idle_agents() -> None:
    sim = Sim(q("linear"), agents=agents(3), login=False)
    for i, aid in enumerate(("a3", "a2", "a1")):
        sim.do(AgentLogin(aid), at=float(i))
    assert next_agent(sim, "c1") == "a1"
    sim.do(CallEnded("c1"))
    sim.do(UpsertQueue(q("longest-idle")))
    assert next_agent(sim, "c2") == "a3"
