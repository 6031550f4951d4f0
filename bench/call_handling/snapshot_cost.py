"""What one ACD state persist costs the event loop, by size.

`AcdAdapter.persist` runs every 100 ms while the state changes (under load: always): it takes the
full `AcdEngine.snapshot()` and the writer JSON-encodes it for the `acd_state` row. Both run on
the event loop that handles calls, so their time is time no event is handled. Measured here on
the pure engine: one queue, every agent busy on a call, `items` callers waiting.

    .venv/bin/python bench/call_handling/snapshot_cost.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ari_app.acd.core import (  # noqa: E402
    AcdEngine,
    AgentConfig,
    AgentLogin,
    CallArrived,
    Offer,
    OfferAnswered,
    QueueConfig,
    QueueItem,
    UpsertAgent,
    UpsertQueue,
)

SIZES = ((60, 50), (200, 200), (1000, 1000), (1000, 10_000))
INTERVAL = 0.1  # AcdAdapter._persist_loop


def engine(agents: int, items: int) -> AcdEngine:
    eng, now = AcdEngine(), 0.0
    eng.handle(UpsertQueue(QueueConfig("q", strategy="longest-idle")), now)
    for i in range(agents):
        eng.handle(UpsertAgent(AgentConfig(f"a{i}", f"PJSIP/a{i}", memberships={"q": 0})), now)
        eng.handle(AgentLogin(f"a{i}"), now)
    for i in range(agents + items):
        now += 0.01
        for c in eng.handle(CallArrived(QueueItem(f"c{i}", "q", entered_at=now)), now):
            if isinstance(c, Offer):
                eng.handle(OfferAnswered(c.offer_id), now)
    return eng


def measure(agents: int, items: int, rounds: int = 5) -> tuple[float, float, int]:
    """Median ms of snapshot(), of json.dumps(), and the row's size in bytes."""
    eng = engine(agents, items)
    snaps, dumps, size = [], [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        snap = eng.snapshot()
        t1 = time.perf_counter()
        size = len(json.dumps(snap))
        t2 = time.perf_counter()
        snaps.append((t1 - t0) * 1000)
        dumps.append((t2 - t1) * 1000)
    return statistics.median(snaps), statistics.median(dumps), size


def table() -> str:
    lines = ["| agents | callers waiting | snapshot (ms) | JSON (ms) | row size | share of the event loop at one persist per 100 ms |",
             "|---:|---:|---:|---:|---:|---:|"]
    for agents, items in SIZES:
        snap, dump, size = measure(agents, items)
        share = (snap + dump) / 1000 / INTERVAL
        lines.append(f"| {agents:,} | {items:,} | {snap:.1f} | {dump:.1f} | {size / 1e3:,.0f} kB "
                     f"| {min(share, 1):.0%}{' (saturated)' if share >= 1 else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
