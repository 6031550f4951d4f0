"""Offer lifecycle: timeouts and retries, auto-pause, stale answers, abandons while ringing."""

from __future__ import annotations

from acd_support import Sim, agents, logs, of, offered

from ari_app.acd.core import (
    AgentLegLost,
    AgentLogin,
    AgentLogout,
    CallEnded,
    CallLeft,
    CancelOffer,
    Connect,
    Offer,
    OfferAnswered,
    OfferFailed,
    QueueConfig,
)


def test_offer_timeout_cancels_logs_and_retries_the_next_agent_after_retry_delay() -> None:
    sim = Sim(QueueConfig("q", strategy="linear", ring_timeout=15, retry_delay=5), agents=agents(2))
    sim.do(AgentLogout("a2"))
    first = of(sim.arrive("c1"), Offer)[0]
    assert first.timeout == 15 and sim.engine.next_deadline() == 15
    sim.do(AgentLogin("a2"), at=1)
    out = sim.advance(15)
    assert of(out, CancelOffer) == [CancelOffer(first.offer_id, "timeout", "c1", "a1")]
    (rna,) = logs(out, "RINGNOANSWER")
    assert (rna.queue, rna.item_id, rna.agent_id, rna.data["ringtime_ms"]) == (
        "q",
        "c1",
        "a1",
        15000,
    )
    assert offered(out) == [] and sim.engine.item("c1").status == "retry"  # type: ignore[union-attr]
    assert offered(sim.advance(19.9)) == []
    assert offered(sim.advance(20)) == [("c1", "a2")]  # a1 already tried: next agent


def test_the_only_agent_is_retried() -> None:
    sim = Sim(QueueConfig("q", ring_timeout=10, retry_delay=2), agents=agents(1))
    sim.arrive("c1")
    assert offered(sim.advance(12)) == [("c1", "a1")]


def test_agent_freed_by_a_timeout_takes_the_next_item_during_retry_delay() -> None:
    sim = Sim(QueueConfig("q", ring_timeout=10, retry_delay=5), agents=agents(1))
    sim.arrive("c1")
    sim.arrive("c2", at=1)
    assert offered(sim.advance(10)) == [("c2", "a1")]


def test_offer_failed_busy_frees_the_agent_and_retries() -> None:
    sim = Sim(QueueConfig("q", retry_delay=3), agents=agents(1))
    offer = of(sim.arrive("c1"), Offer)[0]
    out = sim.do(OfferFailed(offer.offer_id, "busy"), at=1)
    assert logs(out, "RINGNOANSWER")[0].data["reason"] == "busy"
    assert of(out, CancelOffer) == []  # the adapter already knows the leg failed
    assert sim.status("a1") == "available"
    assert offered(sim.advance(4)) == [("c1", "a1")]


def test_autopause_after_n_unanswered_offers() -> None:
    sim = Sim(QueueConfig("q", ring_timeout=10, retry_delay=0, autopause_after=2), agents=agents(1))
    sim.arrive("c1")
    out = sim.advance(10)
    assert offered(out) == [("c1", "a1")] and sim.status("a1") == "ringing"
    out = sim.advance(20)
    assert [e.event for e in logs(out)] == ["RINGNOANSWER", "AUTOPAUSE"]
    assert sim.status("a1") == "paused"
    info = sim.engine.agent("a1")
    assert info is not None and info.pause_reason == "autopause"


def test_an_answer_resets_the_unanswered_count() -> None:
    sim = Sim(QueueConfig("q", ring_timeout=10, retry_delay=0, autopause_after=2), agents=agents(1))
    sim.arrive("c1")
    sim.advance(10)  # one miss, re-offered
    sim.answer(of(sim.out, Offer)[-1], at=11)
    sim.do(CallEnded("c1"), at=20)
    sim.arrive("c2", at=20)
    sim.advance(30)
    assert sim.status("a1") == "ringing"


def test_autopause_busy_and_unavail() -> None:
    sim = Sim(QueueConfig("q", autopause_busy=True), agents=agents(1))
    out = sim.do(OfferFailed(of(sim.arrive("c1"), Offer)[0].offer_id, "busy"))
    assert logs(out, "AUTOPAUSE") and sim.status("a1") == "paused"

    sim = Sim(QueueConfig("q", autopause_unavail=True), agents=agents(1))
    sim.do(OfferFailed(of(sim.arrive("c1"), Offer)[0].offer_id, "unavailable"))
    assert sim.status("a1") == "paused"

    sim = Sim(QueueConfig("q"), agents=agents(1))
    sim.do(OfferFailed(of(sim.arrive("c1"), Offer)[0].offer_id, "unavailable"))
    assert sim.status("a1") == "available"


def test_answer_for_an_unknown_offer_is_cancelled_as_stale() -> None:
    sim = Sim(QueueConfig("q", ring_timeout=5), agents=agents(1))
    offer = of(sim.arrive("c1"), Offer)[0]
    sim.advance(5)  # timed out, cancelled
    out = sim.do(OfferAnswered(offer.offer_id), at=5.2)
    assert out == [CancelOffer(offer.offer_id, "stale", None, None)]


def test_connect_logs_hold_and_ring_time() -> None:
    sim = Sim(QueueConfig("q"), agents=agents(1), login=False)
    sim.arrive("c1", at=0)
    offer = of(sim.do(AgentLogin("a1"), at=8), Offer)[0]
    out = sim.answer(offer, at=10)
    assert of(out, Connect) == [Connect("c1", "a1", offer.offer_id)]
    (connect,) = logs(out, "CONNECT")
    assert connect.data["holdtime"] == 10 and connect.data["ringtime_ms"] == 2000
    assert sim.engine.position("c1") is None
    assert sim.engine.item("c1").status == "connected"  # type: ignore[union-attr]


def test_abandon_while_ringing_cancels_every_offer_and_frees_agents() -> None:
    sim = Sim(QueueConfig("q", strategy="ring-all"), agents=agents(2))
    offers = of(sim.arrive("c1"), Offer)
    out = sim.do(CallLeft("c1"), at=4)
    assert {(c.offer_id, c.reason) for c in of(out, CancelOffer)} == {
        (o.offer_id, "caller-left") for o in offers
    }
    assert len(logs(out, "RINGCANCELED")) == 2
    (abandon,) = logs(out, "ABANDON")
    assert (
        abandon.data["position"] == 1
        and abandon.data["origposition"] == 1
        and abandon.data["waittime"] == 4
    )
    assert [a.status for a in sim.engine.agents()] == ["available", "available"]
    assert sim.engine.item("c1") is None and sim.engine.offers() == []


def test_agent_logout_while_ringing_reoffers_at_once() -> None:
    sim = Sim(QueueConfig("q", strategy="linear", retry_delay=30), agents=agents(2))
    offer = of(sim.arrive("c1"), Offer)[0]
    out = sim.do(AgentLogout("a1"), at=1)
    assert CancelOffer(offer.offer_id, "agent-logout", "c1", "a1") in out
    assert offered(out) == [("c1", "a2")]
    assert sim.status("a1") == "logged_out"


def test_leg_lost_while_ringing_is_an_unavailable_failure() -> None:
    sim = Sim(
        QueueConfig("q", strategy="linear", retry_delay=0, autopause_unavail=True), agents=agents(2)
    )
    sim.arrive("c1")
    out = sim.do(AgentLegLost("a1"), at=1)
    assert logs(out, "RINGNOANSWER")[0].data["reason"] == "unavailable"
    assert sim.status("a1") == "paused"
    assert offered(out) == [("c1", "a2")]


def test_leg_lost_on_a_call_completes_it_and_frees_the_agent() -> None:
    sim = Sim(QueueConfig("q", wrapup_time=0), agents=agents(1))
    sim.answer(of(sim.arrive("c1"), Offer)[0])
    sim.arrive("c2", at=1)
    out = sim.do(AgentLegLost("a1"), at=30)
    (done,) = logs(out, "COMPLETEAGENT")
    assert done.data["reason"] == "leg-lost" and done.data["calltime"] == 30
    assert offered(out) == [("c2", "a1")]


def test_ring_all_answer_from_a_cancelled_loser_is_stale() -> None:
    sim = Sim(QueueConfig("q", strategy="ring-all"), agents=agents(2))
    o1, o2 = of(sim.arrive("c1"), Offer)
    sim.answer(o1, at=1)
    assert sim.answer(o2, at=1.1) == [CancelOffer(o2.offer_id, "stale", None, None)]


def test_ring_all_attempt_ends_when_every_offer_failed() -> None:
    sim = Sim(QueueConfig("q", strategy="ring-all", retry_delay=4), agents=agents(2))
    o1, o2 = of(sim.arrive("c1"), Offer)
    sim.do(OfferFailed(o1.offer_id, "busy"), at=1)
    assert sim.engine.item("c1").status == "offering"  # type: ignore[union-attr]
    sim.do(OfferFailed(o2.offer_id, "rejected"), at=2)
    assert sim.engine.item("c1").status == "retry"  # type: ignore[union-attr]
    assert offered(sim.advance(6)) == [("c1", "a1"), ("c1", "a2")]
