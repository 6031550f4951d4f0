"""Call handling: the full app (queue + records) against a minimal hand-written ARI loop.

    .venv/bin/python bench/call_handling/run.py              # full run, updates BENCHMARKS.md
    .venv/bin/python bench/call_handling/run.py --quick      # fewer calls, prints only

One run on one sandbox (instance `bench`, its own ports): for each number of calls in flight,
the floor (`floor.py`) then the app (`full_app.py`) take the same closed-loop load (`load.py`);
warm-up and cool-down calls are excluded. One more pair runs with the simulated phones'
dialplan chatter filtered out at Asterisk for both (see bench/README.md). Then the routing core
benchmark (`bench/routing_core.py`) runs in a subprocess. The tables go into BENCHMARKS.md
under "Call handling" and "Routing core" (other sections are left as they are).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import snapshot_cost  # noqa: E402
from floor import Floor  # noqa: E402
from full_app import FullApp  # noqa: E402
from load import Load, Result, basic_auth  # noqa: E402

from ari_app.sandbox import Sandbox, SandboxInfo  # noqa: E402
from ari_app.settings import UNUSED_EVENT_TYPES  # noqa: E402

TARGET_RATIO = 0.8
TARGET_ADDED_P99_MS = 5.0
#: The event types the app asks Asterisk not to send by default (`UNUSED_EVENT_TYPES`): mostly
#: the Local channels' ;2 halves running the sim-people dialplan (~115 per call; a trunk or PJSIP
#: phone sends none), plus Dial progress and caller-id updates (12 per call). The filtered row
#: gives both systems this same filter.
CHATTER = UNUSED_EVENT_TYPES
FLOOR_APP = "bench-floor"
INTRO = """# Benchmarks

Figures measured on this project's sandbox (a stock Asterisk 22 and PostgreSQL on the same
machine as the app). Absolute numbers depend on the machine and on what else runs on it; the
ratios and growth rates are what the targets are about. Each section says how to reproduce it.
"""


@dataclass
class Pair:
    inflight: int
    floor: Result
    app: Result
    rows: int
    chatter_filtered: bool = False
    #: Offered calls/s of an open-loop pair (None: closed loop at `inflight`), and what share of
    #: the capacity that is.
    rate: float | None = None
    share: float | None = None

    @property
    def label(self) -> str:
        if self.rate is not None:
            return f"{self.rate:.0f} calls/s offered to both ({self.share:.0%} of capacity, open loop)"
        return f"{self.inflight}" + (" (chatter filtered)" if self.chatter_filtered else "")

    @property
    def ratio(self) -> float:
        return self.app.rate / self.floor.rate

    @property
    def added_p99(self) -> float:
        return self.app.pct(0.99) - self.floor.pct(0.99)


async def filter_chatter(info: SandboxInfo, app: str, on: bool) -> None:
    """Ask Asterisk not to send (or to send again) the chatter event types to `app`."""
    body = {"disallowed": [{"type": t} for t in CHATTER]} if on else {}
    async with aiohttp.ClientSession(headers={"Authorization": basic_auth(info.ari_user, info.ari_password)}) as s:
        async with s.put(f"{info.ari_url}/ari/applications/{app}/eventFilter", json=body) as r:
            if r.status >= 300:
                raise RuntimeError(f"eventFilter for {app}: HTTP {r.status} {await r.text()}")


def _show(name: str, r: Result, extra: str = "") -> None:
    print(f"  {name:<5} {r.inflight:>3} in flight: {r.rate:6.1f} calls/s  p50 {r.pct(.5):6.2f} ms  "
          f"p99 {r.pct(.99):6.2f} ms  failed {r.failed}  {r.events:.0f} events/call  cpu/call {r.cpu_ms:.1f} ms "
          f"(asterisk {r.asterisk_cpu_ms:.1f}, postgres {r.postgres_cpu_ms:.2f}){extra}" + (f"  failures: {r.why_failed}" if r.why_failed else ""),
          file=sys.stderr, flush=True)


async def run_floor(info: SandboxInfo, pid: int | None, inflight: int, calls: int, warmup: int,
                    chatter_filtered: bool = False, pg_pid: int | None = None, rate: float | None = None) -> Result:
    load = Load(info.ari_url, info.ari_user, info.ari_password, FLOOR_APP, "caller", prefix="floor",
                asterisk_pid=pid, postgres_pid=pg_pid)
    floor = Floor(info.ari_url, info.ari_user, info.ari_password, FLOOR_APP, load)
    await floor.start()
    try:
        await filter_chatter(info, FLOOR_APP, chatter_filtered)
        return await load.run(inflight, calls, warmup, rate=rate)
    finally:
        await floor.stop()


async def run_app(info: SandboxInfo, pid: int | None, inflight: int, calls: int, warmup: int,
                  agents: int, chatter_filtered: bool = False, pg_pid: int | None = None,
                  rate: float | None = None) -> tuple[Result, int]:
    load = Load(info.ari_url, info.ari_user, info.ari_password, info.app_name, "queue,bench", prefix="app",
                asterisk_pid=pid, postgres_pid=pg_pid)
    # The app asks Asterisk for no chatter by itself (settings.ari_ignored_events); for the rows
    # where the floor gets every event, Asterisk's filter is lifted again, so the app receives
    # every event too, as from an Asterisk without event filters (it drops the chatter unparsed).
    app = FullApp(info, load, agents=agents)
    await app.start()
    if not chatter_filtered:
        await filter_chatter(info, info.app_name, False)
    try:
        result = await load.run(inflight, calls, warmup, rate=rate)
        rows, _ = await app.check_records(result.call_ids)
    finally:
        await app.stop()
    return result, rows


async def measure(levels: list[int], calls: int, warmup: int, agents: int, chatter_level: int | None,
                  segments: int, rate_shares: tuple[float, ...] = ()) -> list[Pair]:
    """Each configuration in `segments` parts, floor and app alternating, pooled: a burst of other
    work on the machine then lands on both rather than on one. Every part starts on fresh
    connections with its own warm-up (nothing idle holds Asterisk's HTTP sessions).

    Then one open-loop pair per share in `rate_shares`: both systems are offered the same rate,
    that share of the capacity (the lower of the two throughputs at the highest level). Why: in a
    closed loop at saturation a call's latency is about the calls in flight over the throughput,
    so there the p99 compares the two throughputs again; at the same offered load it compares
    what each adds to a call."""
    sandbox = Sandbox("bench", ari_port=33088, pg_port=33433)
    info = sandbox.up()
    pid = sandbox.asterisk.pid()
    pg_pid = int((sandbox.pg.data_dir / "postmaster.pid").read_text().split()[0])
    runs: list[tuple[int, bool, float | None]] = [(n, False, None) for n in levels]
    runs += [(chatter_level, True, None)] if chatter_level else []
    runs += [(max(levels), False, share) for share in rate_shares]
    pairs = []
    for n, filtered, share in runs:
        rate = None
        if share is not None:  # an open-loop pair: its rate a share of the closed loop's capacity
            rate = share * next(min(p.floor.rate, p.app.rate) for p in pairs
                                if p.inflight == n and p.rate is None and not p.chatter_filtered)
        part = (max(calls // 2, 200) if n == 1 else calls) // segments
        floors, apps, rows = [], [], 0
        for _ in range(segments):
            floors.append(await run_floor(info, pid, n, part, warmup, filtered, pg_pid, rate))
            app, got = await run_app(info, pid, n, part, warmup, agents, filtered, pg_pid, rate)
            apps.append(app)
            rows += got
        pair = Pair(n, Result.pool(floors), Result.pool(apps), rows, filtered, rate, share)
        _show("floor", pair.floor, f"  [{pair.label}]")
        _show("app", pair.app, f"  records {rows}/{len(pair.app.call_ids)}  [{pair.label}]")
        pairs.append(pair)
    return pairs


def _ok(good: bool) -> str:
    return "✅" if good else "❌"


#: A closed loop is saturated where more calls in flight no longer bring more calls per second:
#: every call only takes longer, so the p99 gap of such a row is the throughput gap again, not
#: what the app adds to a call. Seen from the floor's run: its throughput within 10% of the
#: highest level's (same event filter), or this share of the machine's CPUs kept busy by its
#: process, Asterisk and PostgreSQL together.
SATURATED = 0.85
PLATEAU = 0.9


def busy_share(r: Result) -> float:
    """The share of the machine's CPUs the run kept busy (driver and system, Asterisk, PostgreSQL)."""
    return (r.cpu_ms + r.asterisk_cpu_ms + r.postgres_cpu_ms) * r.rate / 1000 / (os.cpu_count() or 1)


def saturated(p: Pair, pairs: list[Pair]) -> bool:
    if p.rate is not None:
        return False
    closed = [q for q in pairs if q.rate is None and not q.chatter_filtered]
    levels = sorted({q.inflight for q in closed})
    if len(levels) > 1 and p.inflight > levels[0]:
        top = max(q.floor.rate for q in closed)
        plateau = {q.inflight for q in closed if q.floor.rate >= PLATEAU * top}
        if p.inflight in plateau and p.inflight > levels[0]:
            return True  # (a filtered row: the unfiltered row at its level says)
    return busy_share(p.floor) >= SATURATED


def results_table(pairs: list[Pair]) -> str:
    lines = [
        "| calls in flight | floor calls/s | app calls/s | app/floor | floor p50 / p99 (ms) "
        "| app p50 / p99 (ms) | p99 added (ms) | call records |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in pairs:
        # An open-loop pair's rates are the offered one, measured: their ratio says nothing.
        ratio = "-" if p.rate is not None else f"{p.ratio:.2f}x {_ok(p.ratio >= TARGET_RATIO)}"
        added = f"{p.added_p99:+.1f} " + (
            "(saturated)" if saturated(p, pairs) else _ok(p.added_p99 <= TARGET_ADDED_P99_MS))
        lines.append(
            f"| {p.label} | {p.floor.rate:.0f} | {p.app.rate:.0f} | {ratio} "
            f"| {p.floor.pct(.5):.1f} / {p.floor.pct(.99):.1f} | {p.app.pct(.5):.1f} / {p.app.pct(.99):.1f} "
            f"| {added} | {p.rows} / {len(p.app.call_ids)} |")
    return "\n".join(lines)


def cost_table(pairs: list[Pair]) -> str:
    lines = [
        "| calls in flight | ARI events per call | CPU per call, floor process (ms) | CPU per call, app process (ms) "
        "| Asterisk CPU per call, floor / app run (ms) | PostgreSQL CPU per call, floor / app run (ms) "
        "| CPUs kept busy, floor / app run | failed calls, floor / app |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in pairs:
        lines.append(
            f"| {p.label} | {p.floor.events:.0f} / {p.app.events:.0f} | {p.floor.cpu_ms:.1f} | {p.app.cpu_ms:.1f} "
            f"| {p.floor.asterisk_cpu_ms:.1f} / {p.app.asterisk_cpu_ms:.1f} "
            f"| {p.floor.postgres_cpu_ms:.2f} / {p.app.postgres_cpu_ms:.2f} "
            f"| {busy_share(p.floor):.0%} / {busy_share(p.app):.0%}{' (saturated)' if saturated(p, pairs) else ''} "
            f"| {p.floor.failed} / {p.app.failed} |")
    return "\n".join(lines)


def call_section(pairs: list[Pair], args: argparse.Namespace, took: float, load: tuple[str, str],
                 commit: str, persist: str) -> str:
    small = max(args.calls // 2, 200)
    return f"""## Call handling

`.venv/bin/python bench/call_handling/run.py` (method and caveats: `bench/README.md`). A closed
loop of simulated callers (`Local/patience0@sim-caller`, ulaw) is originated into the Stasis app;
per call the caller is queued or answered, an agent leg (`Local/ans0@sim-agent`) is originated,
both are bridged, the caller hangs up once bridged, and the agent leg is hung up. **Floor**: a
minimal hand-written loop on aiohttp + websockets; it makes and destroys a bridge per call (five
ARI requests per call). **App**: the full `Service` with queue `bench` (longest-idle, wrap-up 0)
and {args.agents} agents, records through the batched writer ("call records": complete `calls` rows after
the final flush / calls completed, warm-ups included); it reuses its queue bridges (three requests
per call: the agent's originate, the add of both legs, the agent's hangup), and its hold music
starts only after `hold_music_delay`, 0.3 s, which these agents beat. Main rows: Asterisk sends both every
event type (the app's event filter is lifted after it starts; it drops the chatter types it ignores
on arrival, unparsed); "chatter filtered": both ask Asterisk not to send the event types the app
ignores by default (the simulated phones' dialplan chatter, Dial progress, caller-id updates), the
same filter for both. Latency: the caller's StasisStart to the
second leg's ChannelEnteredBridge, both stamped when the websocket frame arrives.
{args.calls} measured calls per row ({small} at 1 in flight), in {args.segments} segments with
floor and app alternating, each after {args.warmup} warm-up calls.
Targets: app/floor >= {TARGET_RATIO}x, p99 added <= {TARGET_ADDED_P99_MS:g} ms.
The open-loop rows offer both systems the same load, a call started at fixed intervals whatever
the system does, at {args.rate_shares.replace(",", " / ")} of the capacity (the lower of the two
throughputs at {max(int(v) for v in args.levels.split(","))} in flight). Why they are there: on these 2 CPUs the closed
loop is saturated from 10 in flight on (the throughput at 10 and at 50 is the same), and a call's
latency is then about the calls in flight over the throughput, so the p99 "added" there is the
throughput gap again (at 0.95x and a 150 ms p99, about +8 ms), not what the app's handling adds;
at the same offered load the p99 compares the handling. The latency target is judged on these rows.

{results_table(pairs)}

Where the time goes (CPU per completed call; the process figure includes the load driver, the
same in both):

{cost_table(pairs)}

ACD state persistence (`AcdAdapter.persist`, every 100 ms while anything changes: the rows of
the records changed since the last persist, JSON-encoded for the writer, one transaction), on the
event loop, by size (`bench/call_handling/snapshot_cost.py`; PostgreSQL's side of writing the rows
not included). The last column is what every persist cost before (the whole state in one row):

{persist}

Run {time.strftime('%Y-%m-%d %H:%M')}: app at commit {commit}; {os.cpu_count()} CPUs shared by
Asterisk, PostgreSQL and the benchmark; Python {platform.python_version()}; load average
{load[0]} before / {load[1]} after (other work on the machine counts in every figure); whole run
{took:.0f} s.
"""


def routing_section(output: str) -> str:
    return f"""## Routing core

`.venv/bin/python bench/routing_core.py` (pure `AcdEngine.handle()`, no I/O), same run as the
call-handling figures. Target: decision time p99 under 1 ms with 10,000 waiting calls and 1,000
agents, growing sub-linearly.

{output.strip()}
"""


def update_benchmarks(sections: dict[str, str], path: Path = REPO / "BENCHMARKS.md") -> None:
    """Replace (or append) our `## <name>` sections; leave every other section alone."""
    text = path.read_text() if path.exists() else INTRO
    for name, body in sections.items():
        pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
        found = pattern.search(text)
        if found:
            text = text[:found.start()] + body.rstrip() + "\n\n" + text[found.end():]
        else:
            text = text.rstrip() + "\n\n" + body.rstrip() + "\n"
    path.write_text(text.rstrip() + "\n")


def _shares(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _loadavg() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "ari_app"], cwd=REPO,
                           capture_output=True, text=True)
    return f"`{head.stdout.strip()}`" + (" plus uncommitted changes in ari_app/" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per row")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up calls of each segment")
    parser.add_argument("--segments", type=int, default=3,
                        help="parts each configuration runs in, floor and app alternating")
    parser.add_argument("--levels", default="1,10,50", help="calls in flight, comma-separated")
    parser.add_argument("--chatter-level", type=int, default=10,
                        help="calls in flight of the extra pair with the dialplan chatter filtered (0: none)")
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--rate-shares", default="0.25,0.5,0.8",
                        help="open-loop pairs at these shares of the capacity (the lower throughput of the two "
                             "at the highest level), comma-separated ('': none)")
    parser.add_argument("--quick", action="store_true", help="300 calls, no routing core, no file written")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.warmup, args.segments, args.no_write = 300, 30, 1, True
    logging.basicConfig(level=logging.WARNING)
    levels = [int(v) for v in args.levels.split(",")]
    started, load_before = time.perf_counter(), _loadavg()
    pairs = asyncio.run(measure(levels, args.calls, args.warmup, args.agents, args.chatter_level or None,
                                args.segments, _shares(args.rate_shares)))
    load_after = _loadavg()
    persist = snapshot_cost.table()
    routing = ""
    if not args.quick:
        routing = subprocess.run([sys.executable, str(REPO / "bench" / "routing_core.py")], check=True,
                                 capture_output=True, text=True).stdout
    took = time.perf_counter() - started
    section = call_section(pairs, args, took, (load_before, load_after), _commit(), persist)
    print(section)
    if routing:
        print(routing_section(routing))
    if not args.no_write:
        sections = {"Call handling": section}
        if routing:
            sections["Routing core"] = routing_section(routing)
        update_benchmarks(sections)
        print(f"written to {REPO / 'BENCHMARKS.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
