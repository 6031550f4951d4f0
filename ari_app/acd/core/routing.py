"""Matching waiting items to available agents.

After every event the engine keeps this invariant: no dispatchable item (status
``waiting``) has an eligible agent that could be offered it now. An event only creates new
possible pairs around what it touched, so routing looks at the *dirty* items (new, retried,
escalated) and *dirty* agents (became available) only, greedily in global item order:

    global key = (-queue weight, -boost, -priority, entered_at, seq)

The candidate set is each dirty item plus, for each dirty agent, the best item that agent
is eligible for (found through the per-queue skill buckets' heads). The smallest candidate
is the best item that has any eligible available agent; the queue strategy picks among
those agents; repeat until no candidate is left. Cost: O(dirty * (buckets + log n)).
"""

from __future__ import annotations

import heapq

from .commands import Offer
from .state import AgentRt, ItemRt, OfferRt, QueueRt, Reqs, State
from .strategies import select

GlobalKey = tuple[int, int, int, float, int, str]


def skills_ok(a: AgentRt, reqs: Reqs) -> bool:
    skills = a.config.skills
    return all(skills.get(skill, 0) >= level for skill, level in reqs)


def eligible(a: AgentRt, it: ItemRt) -> bool:
    return (it.preferred is None or it.preferred == a.id) and skills_ok(a, it.reqs)


class Router(State):
    def global_key(self, it: ItemRt) -> GlobalKey:
        return (-self.queues[it.queue].config.weight, *it.key)

    def best_item_for(self, a: AgentRt) -> GlobalKey | None:
        best: GlobalKey | None = None
        for qname in a.config.memberships:
            q = self.queues.get(qname)
            if q is None or a.id not in q.available:
                continue
            weight = -q.config.weight
            for preferred in (None, a.id):
                group = q.buckets.get(preferred)
                if not group:
                    continue
                for reqs, keys in group.items():
                    head = keys.first()
                    if head is not None and skills_ok(a, reqs):
                        key = (weight, *head)
                        if best is None or key < best:
                            best = key
        return best

    def dispatch(self) -> None:
        heap: list[tuple[GlobalKey, str]] = []
        for iid in self.dirty_items:
            it = self.items.get(iid)
            if it is not None and it.status == "waiting":
                heap.append((self.global_key(it), ""))
        for aid in self.dirty_agents:
            self._push_best(heap, aid)
        self.dirty_items.clear()
        self.dirty_agents.clear()
        heapq.heapify(heap)
        while heap:
            key, source = heapq.heappop(heap)
            it = self.items.get(key[-1])
            if it is None or it.status != "waiting":
                if source:
                    self._push_best(heap, source)
                continue
            q = self.queues[it.queue]
            if source and source not in q.available:
                self._push_best(heap, source)
                continue
            chosen = self.choose_agents(it, q)
            if chosen:
                self.start_attempt(it, q, chosen)
            if source and source not in chosen:
                self._push_best(heap, source)

    def _push_best(self, heap: list[tuple[GlobalKey, str]], aid: str) -> None:
        a = self.agents.get(aid)
        if a is None or a.status != "available":
            return
        best = self.best_item_for(a)
        if best is not None:
            heapq.heappush(heap, (best, aid))

    def choose_agents(self, it: ItemRt, q: QueueRt, exclude: list[str] | None = None) -> list[str]:
        """The queue strategy's pick among eligible offerable agents (several for ring-all)."""
        preferred, reqs, agents = it.preferred, it.reqs, self.agents

        def ok(aid: str) -> bool:
            if exclude and aid in exclude:
                return False
            return not reqs or skills_ok(agents[aid], reqs)

        if preferred is not None:
            keys = [q.available[preferred]] if preferred in q.available else []
        else:
            keys = q.idle
        rr_last = q.index.get(q.rr_last) if q.rr_last is not None else None
        return select(q.config.strategy, keys, ok, it.tried, self.rng, rr_last)

    def start_attempt(self, it: ItemRt, q: QueueRt, agent_ids: list[str]) -> None:
        self.unbucket(it)
        self.touched_items.add(it.id)
        it.status = "offering"
        it.rung = []
        self.timers.cancel(("retry", it.id))
        for aid in agent_ids:
            self.make_offer(it, q, self.agents[aid])
        if q.config.strategy == "ring-progressively":
            self.timers.set(("progress", it.id), self.now + q.config.ring_progressively_interval)

    def make_offer(self, it: ItemRt, q: QueueRt, a: AgentRt) -> None:
        oid = self.next_offer_id()
        self.offers[oid] = OfferRt(oid, it.id, a.id, q.name, self.now)
        self.touched_offers.add(oid)
        self.touched_items.add(it.id)
        self.touched_queues.add(q.name)
        it.offers.append(oid)
        it.rung.append(a.id)
        a.offer_id, a.item_id = oid, it.id
        q.rr_last = a.id
        self.set_status(a, "ringing", "offer")
        timeout = q.config.ring_timeout
        self.timers.set(("offer", oid), self.now + timeout)
        self.emit(Offer(oid, it.id, a.id, a.config.endpoint, timeout, it.item.caller_id, q.name))

    def progress_step(self, it: ItemRt) -> None:
        """ring-progressively: ring one more agent while the earlier ones keep ringing. An
        agent a better-placed waiting item could take is left to routing."""
        q = self.queues[it.queue]
        if it.status != "offering" or q.config.strategy != "ring-progressively":
            return  # answered, or the queue's strategy changed while the first agents rang
        key = self.global_key(it)
        spare = [
            aid
            for aid in q.available
            if (best := self.best_item_for(self.agents[aid])) is not None and best < key
        ]
        chosen = self.choose_agents(it, q, exclude=[*it.rung, *spare])
        if chosen:
            self.make_offer(it, q, self.agents[chosen[0]])
        self.timers.set(("progress", it.id), self.now + q.config.ring_progressively_interval)
