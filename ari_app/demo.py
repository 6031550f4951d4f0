"""`ari-app demo`: a small contact center working on the local sandbox.

Starts the sandbox (Asterisk 22 + PostgreSQL), the app, simulated agents (Local channels that
answer after a ring and talk for a while) and a stream of simulated callers (random arrivals,
random patience: some give up), configures two queues over the HTTP API like an operator would,
prints a status line every few seconds and a summary at the end, computed from the records in
PostgreSQL. `--duration N` ends it by itself; Ctrl-C ends it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from ari_app.logs import setup_logging
from ari_app.numbers import national

QUEUES: dict[str, dict[str, Any]] = {
    "support": {"strategy": "longest-idle", "wrapup_time": 3, "ring_timeout": 12, "retry_delay": 1,
                "announce_position": True, "announce_frequency": 30, "max_wait": 180,
                "autopause_after": 2, "service_level_threshold": 20,
                "callback_offer_after": 10, "callback_key": "9"},
    "sales": {"strategy": "ring-all", "wrapup_time": 2, "ring_timeout": 15, "retry_delay": 1,
              "max_wait": 120, "service_level_threshold": 20},
}


#: Callers who ask to be called back, and the web visitor, have numbers the sandbox maps to
#: simulated customers that answer (in production the dial template reaches a real trunk).
CALLBACK_NUMBERS = [f"+336555000{i:02d}" for i in range(1, 40)]
#: A different visitor number each run: click-to-call limits calls per number per hour, and the
#: sandbox database (which holds that history) outlives a demo run.
VISITOR_NUMBERS = [f"+336555002{i:02d}" for i in range(100)]


def demo_settings(info: Any, port: int, token: str) -> Any:
    from ari_app.callbacks.config import CallbacksSettings
    from ari_app.clicktocall.config import ClickToCallSettings, SiteConfig
    customers = {n: "Local/human-ans2-hang12@sim-customer" for n in CALLBACK_NUMBERS}
    return info.settings(
        http_port=port, api_tokens=[token], log_level="WARNING",
        callbacks=CallbacksSettings(dial_overrides=customers, caller_id="0100000000", poll_interval=0.5),
        click_to_call=ClickToCallSettings(
            sites={"demo": SiteConfig(origins=["self"], targets=["queue:sales"])}, demo_site="demo",
            caller_id="0100000000",
            dial_overrides={n: "Local/human-ans1-hang20@sim-customer" for n in VISITOR_NUMBERS}))


def local_zone_at(hour: int) -> str:
    """An Etc/GMT zone whose local time now is about `hour` o'clock: the demo's leads are always
    inside their calling window, whatever time the demo runs."""
    off = (hour - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" if off == 0 else f"Etc/GMT{-off:+d}"


def demo_leads(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """Simulated customers: people who answer, answering machines (real AMD hears them), busy
    lines and phones nobody answers."""
    kinds = ["human-ans3-hang15"] * 5 + ["machine-ans2"] * 2 + ["busy", "noanswer"]
    return [{"phone": f"+33612{i:06d}", "tz": local_zone_at(12), "name": f"Lead {i}", "sim": rng.choice(kinds)}
            for i in range(1, n + 1)]


def demo_agents(n: int, rng: random.Random) -> list[dict[str, Any]]:
    agents = []
    for i in range(n):
        ring = rng.choice([1, 2, 3])
        talk = rng.choice([20, 25, 30, 40])  # from the agent's answer: covers a whisper and a callback's ring
        spec = "noanswer" if i == n - 1 and n > 3 else f"ans{ring}-talk{talk}"
        queues = {"support": 0} if i % 3 else {"support": 0, "sales": 1}
        if i == 1:
            queues = {"sales": 0}
        agents.append({"id": f"agent{1001 + i}", "endpoint": f"Local/{spec}@sim-agent", "memberships": queues,
                       "skills": {}})
    return agents


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.token = secrets.token_urlsafe(16)
        self.placed = 0
        self.click_to_call_id: str | None = None
        self.stop = asyncio.Event()
        self.stopped_at = datetime.now(UTC)
        self.started_at = datetime.now(UTC)  # the sandbox database outlives a demo: count this run only

    async def run(self) -> int:
        from ari_app.sandbox import Sandbox  # the sandbox is only needed by the demo
        from ari_app.service import Service, StartupError

        print("starting the sandbox (first run builds an Asterisk 22 root: about a minute)...", flush=True)
        sandbox = Sandbox(instance=self.args.instance, ari_port=self.args.ari_port, pg_port=self.args.pg_port)
        info = await asyncio.to_thread(sandbox.up)
        settings = demo_settings(info, self.args.port, self.token)
        service = Service(settings)
        try:
            await service.start()
        except StartupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        base = f"http://{settings.http_host}:{service.http_port}"
        print(f"app serving on {base}  (API token: {self.token})")
        print(f"  live queues: curl -H 'Authorization: Bearer {self.token}' {base}/api/v1/queues")
        print(f"  call records: {base}/api/v1/calls   OpenAPI: {base}/api/v1/openapi.json")
        print(f"  wallboard: {base}/wallboard#token={self.token}", flush=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        try:
            async with aiohttp.ClientSession(base, headers={"Authorization": f"Bearer {self.token}"}) as http:
                await self.configure(http)
                tasks = [asyncio.create_task(self.callers(service)), asyncio.create_task(self.status(http)),
                         asyncio.create_task(self.web_visitor(http, base))]
                try:
                    await asyncio.wait_for(self.stop.wait(), self.args.duration or None)
                except TimeoutError:
                    pass
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.extra = await self.extra_summary(http)
            self.stopped_at = datetime.now(UTC)
            print("stopping: hanging up calls still in progress...", flush=True)
            for ch in await service.ari.rest.channels.list():
                await service.quietly(service.ari.rest.channels.hangup(channel_id=ch.id))
            await wait_until(lambda: not service.recorder.legs, timeout=5)
        finally:
            await service.stop()
        await self.summary(info.database_url)
        if not self.args.keep_sandbox:
            await asyncio.to_thread(sandbox.down)
        return 0

    async def configure(self, http: aiohttp.ClientSession) -> None:
        for name, cfg in QUEUES.items():
            r = await http.put(f"/api/v1/queues/{name}", json=cfg)
            r.raise_for_status()
        for agent in demo_agents(self.args.agents, self.rng):
            r = await http.put(f"/api/v1/agents/{agent['id']}", json=agent)
            r.raise_for_status()
            r = await http.post(f"/api/v1/agents/{agent['id']}/state", json={"state": "available"})
            r.raise_for_status()
        print(f"configured queues {', '.join(QUEUES)} and {self.args.agents} agents (logged in)", flush=True)
        if self.args.campaign_leads:
            await self.campaign(http)

    async def campaign(self, http: aiohttp.ClientSession) -> None:
        """A small progressive campaign worked by two outbound agents in their own queue."""
        r = await http.put("/api/v1/queues/outbound", json={"strategy": "ring-all"})
        r.raise_for_status()
        for agent in ("agent2001", "agent2002"):
            r = await http.put(f"/api/v1/agents/{agent}", json={"endpoint": "Local/ans0@sim-agent",
                                                                "memberships": {"outbound": 0}})
            r.raise_for_status()
        r = await http.put("/api/v1/campaigns/demo", json={
            "mode": "progressive", "queue": "outbound", "caller_id": '"Acme" <0100000000>',
            "dial_template": "Local/{sim}@sim-customer", "ring_timeout": 15, "max_attempts": 2,
            "retry_delays": {"busy": 20, "no_answer": 20, "failed": 20}, "wrapup_seconds": 2,
            "machine_handling": "hangup", "safe_harbor_message": "sound:vm-goodbye"})
        r.raise_for_status()
        r = await http.post("/api/v1/campaigns/demo/leads", json=demo_leads(self.args.campaign_leads, self.rng))
        r.raise_for_status()
        for agent in ("agent2001", "agent2002"):
            r = await http.post(f"/api/v1/campaigns/demo/agents/{agent}", json={"state": "ready"})
            r.raise_for_status()
        r = await http.post("/api/v1/campaigns/demo/start")
        r.raise_for_status()
        print(f"outbound campaign 'demo' started: {self.args.campaign_leads} leads, 2 agents, progressive", flush=True)

    async def callers(self, service: Any) -> None:
        rate = self.args.rate / 60.0
        callback_numbers = list(CALLBACK_NUMBERS)
        while True:
            await asyncio.sleep(self.rng.expovariate(rate))
            queue = "support" if self.rng.random() < 0.7 else "sales"
            patience = self.rng.choice([0, 0, 20, 30, 45, 60, 90])
            number = f"06{self.rng.randrange(10**8):08d}"
            spec = f"patience{patience}"
            if queue == "support" and callback_numbers and self.rng.random() < 0.25:
                # Asks to be called back: presses 9 once the offer is made, then 1 to confirm.
                number, spec = national(callback_numbers.pop()), "patience120-dtmf9WW1-at12"
            try:
                await service.ari.rest.channels.originate(
                    endpoint=f"Local/{spec}@sim-caller", context="inbound", extension=queue,
                    priority=1, caller_id=f'"Caller" <{number}>')
                self.placed += 1
            except Exception as exc:  # noqa: BLE001 - a demo goes on
                print(f"caller originate failed: {exc}", file=sys.stderr)

    async def web_visitor(self, http: aiohttp.ClientSession, base: str) -> None:
        """A web visitor types their number in the click-to-call widget (the public endpoint)."""
        await asyncio.sleep(min(20.0, (self.args.duration or 60) / 3))
        async with aiohttp.ClientSession(base) as browser:  # no API token: the endpoint is public
            r = await browser.post("/api/v1/click-to-call", headers={"Origin": base},
                                   json={"number": national(random.choice(VISITOR_NUMBERS)), "queue": "sales", "site_key": "demo",
                                         "context": {"page": "/pricing", "name": "Web visitor"}})
            body = await r.json()
        if r.status != 202:
            print(f"click-to-call refused ({r.status}): {body}", flush=True)
            return
        self.click_to_call_id = body.get("id")
        print(f"a web visitor asked to be called (click-to-call {self.click_to_call_id}: {body.get('status')})",
              flush=True)

    async def status(self, http: aiohttp.ClientSession) -> None:
        while True:
            await asyncio.sleep(self.args.status_every)
            queues = (await (await http.get("/api/v1/queues")).json())["queues"]
            agents = (await (await http.get("/api/v1/agents")).json())["agents"]
            states: dict[str, int] = {}
            for a in agents:
                states[a["status"]] = states.get(a["status"], 0) + 1
            q = "  ".join(f"{x['name']}: {x['waiting']} waiting (longest {x['longest_wait']:.0f}s)" for x in queues)
            s = ", ".join(f"{v} {k}" for k, v in sorted(states.items()))
            print(f"[{self.placed} callers so far] {q} | agents: {s}", flush=True)

    async def extra_summary(self, http: aiohttp.ClientSession) -> list[str]:
        lines = []
        if self.args.campaign_leads:
            r = await http.get("/api/v1/campaigns/demo/stats")
            if r.status == 200:
                st = await r.json()
                keys = ("dials", "answer_rate", "contacts", "machines", "abandons", "abandon_rate",
                        "talk_minutes_per_agent_hour", "leads_left")
                lines.append("campaign: " + ", ".join(f"{k} {_short(st[k])}" for k in keys if k in st))
        r = await http.get("/api/v1/callbacks/stats", params={"since": self.started_at.isoformat()})
        if r.status == 200:
            st = await r.json()
            lines.append("callbacks: " + ", ".join(f"{k} {v}" for k, v in st.items()
                                                    if isinstance(v, int | float) and not isinstance(v, bool)))
        if self.click_to_call_id:
            r = await http.get(f"/api/v1/click-to-call/{self.click_to_call_id}")
            if r.status == 200:
                body = await r.json()
                lines.append(f"click-to-call: {body.get('status')} "
                             f"({' > '.join(h.get('status', '?') for h in body.get('history', []))})")
        return lines

    async def summary(self, dsn: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                """SELECT count(*) AS calls,
                          count(*) FILTER (WHERE outcome = 'answered') AS answered,
                          count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
                          count(*) FILTER (WHERE outcome = 'answered' AND
                                bridged_at - entered_queue_at <= interval '20 seconds') AS answered_in_sl,
                          count(*) FILTER (WHERE outcome = 'abandoned' AND
                                ended_at - entered_queue_at > interval '20 seconds') AS abandoned_after_sl,
                          avg(extract(epoch FROM bridged_at - entered_queue_at))
                              FILTER (WHERE outcome = 'answered') AS asa,
                          sum(extract(epoch FROM ended_at - bridged_at)) AS talk
                   FROM calls WHERE queue IS NOT NULL AND created_at >= $2 AND ended_at <= $1""",
                self.stopped_at, self.started_at)
            cut = await conn.fetchval("SELECT count(*) FROM calls WHERE queue IS NOT NULL AND created_at >= $2 AND "
                                      "(ended_at IS NULL OR ended_at > $1)", self.stopped_at, self.started_at)
        finally:
            await conn.close()
        calls, answered, abandoned = row["calls"], row["answered"], row["abandoned"]
        sl_base = answered + row["abandoned_after_sl"]
        sl = 100.0 * row["answered_in_sl"] / sl_base if sl_base else 0.0
        print("\n=== demo summary (from the call records in PostgreSQL) ===")
        print(f"calls: {calls}   answered: {answered}   abandoned: {abandoned}   other: {calls - answered - abandoned}"
              f"   (not counted: {cut} still in progress when the demo stopped)")
        print(f"service level (answered within 20 s / answered + abandoned after 20 s): {sl:.1f}%")
        print(f"abandon rate: {100.0 * abandoned / calls if calls else 0.0:.1f}%   "
              f"ASA: {float(row['asa'] or 0):.1f} s   talk time: {float(row['talk'] or 0) / 60:.1f} min")
        for line in getattr(self, "extra", []):
            print(line)
        sys.stdout.flush()


def _short(v: Any) -> Any:
    return round(v, 3) if isinstance(v, float) else v


async def wait_until(condition: Any, *, timeout: float, interval: float = 0.05) -> bool:
    """Wait for the hangup events to reach the recorder before the final flush."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ari-app demo", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=0, help="seconds to run (0: until Ctrl-C)")
    p.add_argument("--agents", type=int, default=5)
    p.add_argument("--rate", type=float, default=6, help="callers per minute")
    p.add_argument("--port", type=int, default=8080, help="HTTP port of the app")
    p.add_argument("--instance", default="demo", help="sandbox instance name (its own Asterisk and PostgreSQL)")
    p.add_argument("--ari-port", type=int, default=18088)
    p.add_argument("--pg-port", type=int, default=15433)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--campaign-leads", type=int, default=20, help="leads of the outbound campaign (0: none)")
    p.add_argument("--status-every", type=float, default=5)
    p.add_argument("--keep-sandbox", action="store_true", help="leave Asterisk and PostgreSQL running")
    args = p.parse_args(argv)
    setup_logging("WARNING")
    return asyncio.run(Demo(args).run())
