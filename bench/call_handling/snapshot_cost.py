"""What ACD state persistence costs the event loop, by size.

`AcdAdapter.persist` runs every 100 ms while the state changes (under load: always). It takes the
records changed since the last persist (`AcdEngine.take_changes`), dumps each with its link to
Asterisk, and the writer JSON-encodes them for their `acd_state_rows` rows. All of it runs on the
event loop that handles calls, so its time is time no event is handled. Measured here on the
adapter's persistence code over the pure engine (no Asterisk, no database; the writer's SQL
round trip is not included): one queue, every agent busy on a call, `items` callers waiting.

- persist after a call arrives / after an agent frees (its call ends, it is offered the next
  caller): the median over many single-event persists, JSON included;
- restore: rebuilding the adapter from all the rows (`restore_rows`, as at start-up, after the
  rows were fetched);
- before: what every persist cost until incremental persistence (the whole state, engine
  snapshot and links, + its JSON, one `acd_state` row), for comparison.

    .venv/bin/python bench/call_handling/snapshot_cost.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ari_app.acd.adapter import AcdAdapter  # noqa: E402
from ari_app.acd.core import (  # noqa: E402
    AcdEngine,
    AgentConfig,
    AgentLogin,
    CallArrived,
    CallEnded,
    CallLeft,
    Command,
    Offer,
    OfferAnswered,
    QueueConfig,
    QueueItem,
    UpsertAgent,
    UpsertQueue,
)
from ari_app.acd.links import ItemLink, OfferLink  # noqa: E402
from ari_app.store.writer import _encode  # noqa: E402

SIZES = ((60, 50), (200, 200), (1000, 1000), (1000, 10_000))


class Writer:
    """Stands in for RecordWriter: encodes the rows as its `_write` would."""

    def __init__(self) -> None:
        self.rows = 0
        self.bytes = 0

    def submit_rows(self, table: str, scope: str, rows: dict[tuple[str, ...], Any]) -> None:
        for state in rows.values():
            if state is not None:
                self.bytes += len(json.dumps(state, default=_encode))
        self.rows += len(rows)


class Bench:
    """An adapter over a bare engine; `do` applies an event and the link changes the adapter's
    command execution would make (links for new callers and offers, dropped for ended calls)."""

    def __init__(self) -> None:
        self.writer = Writer()
        service = SimpleNamespace(routes={}, reconnect_hooks=[], shutdown_hooks=[], type_handlers={}, writer=self.writer,
                                  settings=SimpleNamespace(app_name="bench"),
                                  own_channel=lambda channel_id, handler: None)
        self.acd = AcdAdapter(service, audit_interval=0)  # type: ignore[arg-type]
        self.acd.engine = AcdEngine()
        self.now = 0.0
        self.n = 0

    def do(self, event: Any) -> list[Command]:
        acd = self.acd
        if isinstance(event, CallArrived):
            acd.items[event.item.id] = ItemLink(event.item.id, f"ch-{event.item.id}", event.item.queue,
                                                entered_at=event.item.entered_at)
        out = acd.engine.handle(event, self.now)
        acd._dirty = True
        if isinstance(event, CallEnded):
            link = acd.items.pop(event.item_id)
            acd.offers.pop(link.agent_offer or "", None)
        for c in out:
            if isinstance(c, Offer):
                acd.offers[c.offer_id] = OfferLink(c.offer_id, c.item_id, c.agent_id, f"ch-{c.offer_id}")
        return out

    def answer(self, out: list[Command]) -> None:
        for c in out:
            if isinstance(c, Offer):
                self.acd.offers[c.offer_id].answered = True
                self.do(OfferAnswered(c.offer_id))
                link = self.acd.items[c.item_id]
                link.connected, link.agent_offer, link.agent_id = True, c.offer_id, c.agent_id

    def arrive(self) -> list[Command]:
        self.n += 1
        self.now += 0.01
        return self.do(CallArrived(QueueItem(f"c{self.n}", "q", entered_at=self.now)))

    def persist(self) -> float:
        t0 = time.perf_counter()
        self.acd.persist()
        return (time.perf_counter() - t0) * 1000


def build(agents: int, items: int) -> Bench:
    b = Bench()
    b.do(UpsertQueue(QueueConfig("q", strategy="longest-idle")))
    for i in range(agents):
        b.do(UpsertAgent(AgentConfig(f"a{i}", f"PJSIP/a{i}", memberships={"q": 0})))
        b.do(AgentLogin(f"a{i}"))
    for _ in range(agents + items):
        b.answer(b.arrive())
    b.persist()
    return b


def measure(agents: int, items: int, rounds: int = 300) -> dict[str, float]:
    """Single-event persists at a steady size (each measured event is undone, unmeasured)."""
    b = build(agents, items)
    eng = b.acd.engine
    arrive, free, rows = [], [], []
    for _ in range(rounds):
        b.arrive()
        before = b.writer.rows
        arrive.append(b.persist())
        rows.append(b.writer.rows - before)
        b.do(CallLeft(f"c{b.n}"))
        b.acd.items.pop(f"c{b.n}")
        b.persist()
    for _ in range(rounds):
        item_id = next(a.item_id for a in eng.agents() if a.status == "on_call")
        b.now += 0.01
        out = b.do(CallEnded(item_id))
        free.append(b.persist())
        b.answer(out)
        b.answer(b.arrive())
        b.persist()
    # everything, as stored, then a restore from it (the rows' JSON decoding included)
    every = b.acd.state_rows(everything=True)
    stored = [(kind, key, json.dumps(state)) for (kind, key), state in every.items() if state is not None]
    size = sum(len(s) for _, _, s in stored)
    t0 = time.perf_counter()
    b.acd.restore_rows([(kind, key, json.loads(s)) for kind, key, s in stored])
    restore = (time.perf_counter() - t0) * 1000
    # before: the whole state (engine snapshot and links, as the adapter built it) and its JSON
    t0 = time.perf_counter()
    full_size = len(json.dumps(b.acd.snapshot()))
    full = (time.perf_counter() - t0) * 1000
    return {"arrive": statistics.median(arrive), "arrive_p99": sorted(arrive)[int(len(arrive) * 0.99)],
            "free": statistics.median(free), "free_p99": sorted(free)[int(len(free) * 0.99)],
            "rows": statistics.median(rows), "restore": restore, "stored": len(stored), "size": size,
            "full": full, "full_size": full_size}


def table() -> str:
    lines = ["| agents | callers waiting | persist after a call arrives, p50 / p99 (ms) "
             "| persist after an agent frees, p50 / p99 (ms) | restore from all rows (ms) "
             "| rows stored (total size) | before: full snapshot + JSON per persist (ms, row size) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for agents, items in SIZES:
        m = measure(agents, items)
        lines.append(f"| {agents:,} | {items:,} | {m['arrive']:.2f} / {m['arrive_p99']:.2f} "
                     f"| {m['free']:.2f} / {m['free_p99']:.2f} | {m['restore']:,.0f} "
                     f"| {m['stored']:,.0f} ({m['size'] / 1e3:,.0f} kB) "
                     f"| {m['full']:,.1f} ({m['full_size'] / 1e3:,.0f} kB) |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
