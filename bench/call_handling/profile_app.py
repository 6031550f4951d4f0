"""Where the app's time per call goes: the full app alone under the benchmark's load.

Runs `FullApp` (as in run.py, no floor) for `--calls` calls at `--inflight`, and prints the REST
requests per call by method and route, the ARI events per call by type, and CPU per call. With
`--cprofile FILE` the run is profiled (cProfile inflates small functions: read it for shape,
not for absolute figures); for a sampling profile, run this under `py-spy record`.

    .venv/bin/python bench/call_handling/profile_app.py --inflight 10 --calls 600
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import logging
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from full_app import FullApp  # noqa: E402
from load import Load  # noqa: E402

from ari_app.ari.rest import AriRest  # noqa: E402
from ari_app.sandbox import Sandbox  # noqa: E402

_ID = re.compile(r"/(channels|bridges|playbacks)/[^/]+")


def count_requests() -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    original = AriRest.request

    async def counted(self: AriRest, method: str, path: str, **kw: object) -> object:
        counts[f"{method} {_ID.sub(lambda m: f'/{m.group(1)}/{{id}}', path)}"] += 1
        return await original(self, method, path, **kw)  # type: ignore[arg-type]

    AriRest.request = counted  # type: ignore[method-assign]
    return counts


async def main(args: argparse.Namespace) -> None:
    sandbox = Sandbox("bench", ari_port=33088, pg_port=33433)
    info = sandbox.up()
    requests = count_requests()
    load = Load(info.ari_url, info.ari_user, info.ari_password, info.app_name, "queue,bench", prefix="prof",
                asterisk_pid=sandbox.asterisk.pid())
    kinds: collections.Counter[str] = collections.Counter()
    feed = load.feed

    def feed_counting(kind: str, *a: object) -> None:
        kinds[kind] += 1
        feed(kind, *a)  # type: ignore[arg-type]

    load.feed = feed_counting  # type: ignore[method-assign]
    app = FullApp(info, load, agents=args.agents, **({"ari_ignored_events": []} if args.parse_all else {}))
    await app.start()
    if args.all_events:  # Asterisk sends every event type, as to the floor in run.py's main rows
        from run import filter_chatter
        await filter_chatter(info, info.app_name, False)
    if args.dump_events:
        stream = app.service.ari.stream  # type: ignore[union-attr]
        handle, raw = stream._handle, open(args.dump_events, "w")  # noqa: SIM115, ASYNC230

        def dumping(message: str | bytes) -> None:
            raw.write((message.decode() if isinstance(message, bytes) else message) + "\n")
            handle(message)
        stream._handle = dumping  # type: ignore[method-assign]
    if args.filter_chatter:
        from run import filter_chatter
        await filter_chatter(info, info.app_name, True)
    requests.clear()
    profiler = cProfile.Profile() if args.cprofile else None
    try:
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        result = await load.run(args.inflight, args.calls, args.warmup)
        took = time.perf_counter() - t0
        if profiler:
            profiler.disable()
        rows, _ = await app.check_records(result.call_ids)
    finally:
        if args.filter_chatter:
            from run import filter_chatter
            await filter_chatter(info, info.app_name, False)
        await app.stop()
    done = len(result.call_ids)
    print(f"{result.inflight} in flight: {result.rate:.1f} calls/s, p50 {result.pct(.5):.1f} ms, "
          f"p99 {result.pct(.99):.1f} ms, cpu/call {result.cpu_ms:.2f} ms (asterisk {result.asterisk_cpu_ms:.2f}), "
          f"{done} calls in {took:.1f} s, records {rows}, failed {result.failed}")
    print(f"REST requests per call: {sum(requests.values()) / done:.2f}")
    for route, n in requests.most_common():
        print(f"  {n / done:5.2f}  {route}")
    print(f"events per call: {sum(kinds.values()) / done:.1f}")
    for kind, n in kinds.most_common(12):
        print(f"  {n / done:6.1f}  {kind}")
    if profiler:
        profiler.dump_stats(args.cprofile)
        print(f"profile: {args.cprofile}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inflight", type=int, default=10)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--filter-chatter", action="store_true",
                        help="ask Asterisk not to send the simulated phones' dialplan chatter (as run.py's extra row)")
    parser.add_argument("--all-events", action="store_true",
                        help="Asterisk sends the app every event type (its filter lifted), as in run.py's main rows")
    parser.add_argument("--parse-all", action="store_true",
                        help="the app parses every event type too (ari_ignored_events = [])")
    parser.add_argument("--cprofile", help="write a cProfile of the run to this file")
    parser.add_argument("--dump-events", help="write every raw ARI event of the run to this file (JSON lines)")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
