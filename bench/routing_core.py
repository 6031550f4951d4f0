"""Decision time of the sans-I/O ACD core (``python bench/routing_core.py``).

Measures the wall time of one ``AcdEngine.handle()`` call, p50/p99, for:

* agent frees  - a busy agent's call ends with items waiting: it becomes available and is
                 offered the best eligible item across its queues (the core of routing);
* call arrives - a call joins while every agent is busy: it is ranked and queued;
* call arrives, agents idle - no backlog: the strategy picks among the idle members.

Each size has 10 queues with mixed strategies, agents in 2 queues each (penalty 0/1) with
random skills, and 20% of the items requiring a skill. Items waiting stay constant: every
freed agent takes one item and one new item arrives. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.acd.core import (  # noqa: E402
    AcdEngine,
    AgentConfig,
    AgentLogin,
    CallArrived,
    CallEnded,
    CallLeft,
    Offer,
    OfferAnswered,
    QueueConfig,
    QueueItem,
    UpsertAgent,
    UpsertQueue,
)

STRATEGIES = (
    "longest-idle",
    "round-robin",
    "fewest-calls",
    "least-talk-time",
    "linear",
    "random",
    "weighted-random",
    "longest-idle",
    "round-robin",
    "fewest-calls",
)
SKILLS = ("fr", "de", "es")
QUEUES = [f"q{i}" for i in range(10)]


class World:
    def __init__(self, items: int, agents: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.engine = AcdEngine(seed=seed)
        self.now = 0.0
        self.n = 0
        for i, name in enumerate(QUEUES):
            self.engine.handle(
                UpsertQueue(
                    QueueConfig(
                        name, strategy=STRATEGIES[i], ring_timeout=20, skill_escalation=((60, 1),)
                    )
                ),
                self.now,
            )
        self.agents = [f"a{i}" for i in range(agents)]
        for aid in self.agents:
            home, other = self.rng.sample(QUEUES, 2)
            skills = {s: self.rng.randint(1, 5) for s in self.rng.sample(SKILLS, 2)}
            self.engine.handle(
                UpsertAgent(
                    AgentConfig(aid, f"PJSIP/{aid}", skills=skills, memberships={home: 0, other: 1})
                ),
                self.now,
            )
        self.target_items = items

    def item(self) -> QueueItem:
        self.n += 1
        skills = (
            {self.rng.choice(SKILLS): self.rng.randint(1, 3)} if self.rng.random() < 0.2 else {}
        )
        return QueueItem(
            f"c{self.n}",
            self.rng.choice(QUEUES),
            priority=self.rng.choice((0, 0, 0, 1)),
            required_skills=skills,
        )

    def handle(self, event: object) -> tuple[tuple[float, float], list[object]]:
        """Handle one event; returns ((cpu seconds, wall seconds), commands)."""
        self.now += 0.01
        c0, w0 = time.thread_time(), time.perf_counter()
        out = self.engine.handle(event, self.now)  # type: ignore[arg-type]
        w1, c1 = time.perf_counter(), time.thread_time()
        return (c1 - c0, w1 - w0), list(out)

    def answer_all(self, out: list[object]) -> None:
        for c in out:
            if isinstance(c, Offer):
                _, answered = self.handle(OfferAnswered(c.offer_id))
                self.on_call[c.agent_id] = c.item_id

    def fill(self) -> None:
        """Log everyone in, keep every agent on a call, then queue the backlog."""
        self.on_call: dict[str, str] = {}
        for aid in self.agents:
            self.handle(AgentLogin(aid))
        for _ in range(10 * len(self.agents)):
            if len(self.on_call) == len(self.agents):
                break
            _, out = self.handle(CallArrived(self.item()))
            self.answer_all(out)
        for _ in range(self.target_items):
            self.handle(CallArrived(self.item()))


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def bench_backlog(items: int, agents: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    world = World(items, agents)
    world.fill()
    frees: list[tuple[float, float]] = []
    arrivals: list[tuple[float, float]] = []
    gc.collect()
    for _ in range(rounds):
        agent = world.rng.choice(sorted(world.on_call))
        dt, out = world.handle(CallEnded(world.on_call.pop(agent)))
        frees.append(dt)
        world.answer_all(out)
        dt, _ = world.handle(CallArrived(world.item()))
        arrivals.append(dt)
    return {"agent frees": frees, "call arrives": arrivals}


def bench_idle(agents: int, rounds: int) -> list[tuple[float, float]]:
    world = World(0, agents)
    for aid in world.agents:
        world.handle(AgentLogin(aid))
    times = []
    gc.collect()
    for _ in range(rounds):
        item = world.item()
        dt, _ = world.handle(CallArrived(item))
        times.append(dt)
        world.handle(CallLeft(item.id))  # frees the ringing agent again
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument(
        "--sizes", default="1000x100,10000x1000,100000x10000", help="comma-separated ITEMSxAGENTS"
    )
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    for items, agents in sizes:
        results = bench_backlog(items, agents, args.rounds)
        results["call arrives, agents idle"] = bench_idle(agents, args.rounds)
        for name, samples in results.items():
            cpu = [c for c, _ in samples]
            wall = [w for _, w in samples]
            shown = 0 if "idle" in name else items
            rows.append(
                (
                    name,
                    shown,
                    agents,
                    statistics.median(cpu),
                    percentile(cpu, 0.99),
                    percentile(wall, 0.99),
                )
            )
    print(
        f"ACD core: time per handle() (Python {sys.version.split()[0]}, {args.rounds} rounds per row; "
        "CPU = thread CPU time, immune to other processes; wall p99 for reference)\n"
    )
    print("| event | items waiting | agents | p50 CPU (µs) | p99 CPU (µs) | p99 wall (µs) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, items, agents, p50, p99, wall99 in rows:
        print(
            f"| {name} | {items:,} | {agents:,} | {p50 * 1e6:.0f} | {p99 * 1e6:.0f} | {wall99 * 1e6:.0f} |"
        )
    print("\nGrowth of p99 CPU relative to the smallest size:\n")
    print("| event | " + " | ".join(f"{i:,} items / {a:,} agents" for i, a in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name in dict.fromkeys(r[0] for r in rows):
        p99s = [r[4] for r in rows if r[0] == name]
        print(f"| {name} | " + " | ".join(f"x{p / p99s[0]:.2f}" for p in p99s) + " |")


if __name__ == "__main__":
    main()
