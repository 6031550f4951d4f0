"""Click-to-call over HTTP.

Public (no bearer token; a browser calls them): `POST /click-to-call`, `GET /click-to-call/{id}`,
`GET /click-to-call/{id}/events` (server-sent events), the widget and its demo page. A request
proves where it comes from with a site key and an allowed Origin, or with a short-lived token
signed by the site's backend. Authenticated: `POST /click-to-call/tokens` (mint a token) and
`POST /agents/{id}/dial` (click to dial).

Order of the checks on the public endpoint: the address's request rate, the body, the site,
the target, the number, then the limits that count calls. Whatever refuses, the request is
recorded with its reason, nothing is dialled, and the answer is a 4xx naming the field (429
with Retry-After for limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import math
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ari_app.clicktocall.capability import Request, utc
from ari_app.clicktocall.config import SiteConfig
from ari_app.clicktocall.core.limits import Refusal
from ari_app.clicktocall.core.tokens import TokenClaims, TokenError, sign, verify
from ari_app.http.api import Api, json_response, read_body
from ari_app.http.errors import ApiError, not_found
from ari_app.numbers import NumberRefused

if TYPE_CHECKING:
    from ari_app.clicktocall.capability import ClickToCall
    from ari_app.service import Service

STATIC = Path(__file__).parent / "static"
TAG = "click-to-call"


class Refused(ApiError):
    """An ApiError that is also a recorded refusal reason."""

    def __init__(self, status: int, reason: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(status, message, field=field, headers=headers, code=code)
        self.reason = reason


def limited(r: Refusal, *, field: str | None = None) -> Refused:
    return Refused(429, r.reason, r.message, field=field, headers={"Retry-After": str(max(1, math.ceil(r.retry_after)))})


class Context(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: str | None = Field(default=None, max_length=500, description="The page the visitor was on")
    name: str | None = Field(default=None, max_length=100, description="The visitor's name")
    note: str | None = Field(default=None, max_length=500, description="A note shown to the agent")


class _Target(BaseModel):
    queue: str | None = Field(default=None, min_length=1, max_length=100)
    agent: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one(self) -> _Target:
        if self.queue is not None and self.agent is not None:
            raise ValueError("give a queue or an agent, not both")
        return self

    def target(self) -> str | None:
        return f"queue:{self.queue}" if self.queue else (f"agent:{self.agent}" if self.agent else None)


class ClickToCallBody(_Target):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=1, max_length=32, description="The visitor's phone number")
    site_key: str | None = Field(default=None, max_length=200)
    token: str | None = Field(default=None, max_length=2048, description="A token signed by the site's backend")
    context: Context = Field(default_factory=lambda: Context())


class TokenBody(_Target):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1, max_length=200)
    number: str | None = Field(default=None, max_length=32, description="Bind the token to this number")
    ttl: int | None = Field(default=None, ge=10, description="Seconds (at most the configured token_ttl)")


class DialBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=1, max_length=32)
    note: str | None = Field(default=None, max_length=500)


def register(api: Api, service: Service, c2c: ClickToCall) -> None:
    cfg = c2c.cfg

    # ------------------------------------------------------------------ origins and CORS
    def self_origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def origin_ok(origin: str, site: SiteConfig, request: web.Request) -> bool:
        return origin in site.origins or ("self" in site.origins and origin == self_origin(request))

    def cors(request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if not origin or not any(origin_ok(origin, s, request) for s in cfg.sites.values()):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Expose-Headers": "Retry-After"}

    async def preflight(request: web.Request) -> web.Response:
        headers = cors(request)
        if not headers:
            raise ApiError(403, "origin not allowed", field="Origin")
        headers.update({"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"})
        return web.Response(status=204, headers=headers)

    def client_ip(request: web.Request) -> str:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if cfg.trust_forwarded_for and forwarded.strip():
            return forwarded.split(",")[-1].strip()[:64]
        return request.remote or "unknown"

    @contextlib.contextmanager
    def recorded(request_id: str, row: dict[str, Any], headers: dict[str, str]) -> Iterator[None]:
        """Record a refusal (any ApiError inside) with its reason; the answer carries CORS."""
        try:
            yield
        except ApiError as err:
            reason = getattr(err, "reason", "bad-request")
            c2c.record(request_id, **row, accepted=False, reason=reason, data={"message": err.message})
            err.headers = {**err.headers, **headers}
            err.details = [*(err.details or []), {"reason": reason, "request_id": request_id}]
            raise

    # ------------------------------------------------------------------ checks
    def authenticate(body: ClickToCallBody, request: web.Request, now: float) -> tuple[str, SiteConfig, str, TokenClaims | None]:
        if body.token:
            try:
                claims = verify(body.token, secret_for, now)
            except TokenError as exc:
                raise Refused(401, exc.reason, str(exc), field="token") from None
            if c2c.nonces.seen(claims.nonce):
                raise Refused(401, "token-used", "token was used already", field="token")
            if body.site_key and body.site_key != claims.site:
                raise Refused(403, "token-site", "token is for another site", field="site_key")
            return claims.site, cfg.sites[claims.site], "token", claims
        if not body.site_key:
            raise Refused(401, "no-credentials", "site_key or token is required", field="site_key")
        site = cfg.sites.get(body.site_key)
        if site is None:
            raise Refused(403, "site-unknown", "unknown site key", field="site_key")
        if site.require_token:
            raise Refused(401, "token-required", "this site requires a signed token", field="token")
        origin = request.headers.get("Origin")
        if not origin:
            raise Refused(403, "origin-missing", "a site key is accepted from a web page only (Origin header)",
                          field="Origin")
        if not origin_ok(origin, site, request):
            raise Refused(403, "origin", f"origin {origin} is not allowed for this site", field="Origin")
        return body.site_key, site, "web", None

    def secret_for(site_key: str) -> bytes | None:
        site = cfg.sites.get(site_key)
        if site is None or site.token_secret is None:
            return None
        return site.token_secret.get_secret_value().encode()

    def choose_target(asked: str | None, site: SiteConfig, claims: TokenClaims | None) -> str:
        field = "agent" if asked and asked.startswith("agent:") else "queue"
        target = asked or (claims.target if claims and claims.target else site.targets[0])
        if claims is not None and claims.target and claims.target != target:
            raise Refused(403, "token-target", "token is for another target", field=field)
        if target not in site.targets:
            raise Refused(403, "target-not-allowed", f"{target} is not a target of this site", field=field)
        return target

    def normalise(number: str) -> str:
        try:
            return c2c.policy.normalise(number)
        except NumberRefused as exc:
            raise Refused(422, f"number-{exc.reason}", str(exc), field="number") from None

    def placement(target: str) -> tuple[str, str | None]:
        """The queue an admitted request waits in (and the agent, for an agent target)."""
        kind, name = target.split(":", 1)
        engine = service.acd.engine
        busy = {"Retry-After": "60"}
        if kind == "queue":
            info = engine.queue(name)
            if info is None:
                raise Refused(503, "target-unavailable", f"queue {name!r} does not exist", headers=busy)
            if info.serving == 0:
                raise Refused(503, "no-agents", "no agent can take the call right now", headers=busy)
            return name, None
        agent = engine.agent(name)
        if agent is None or not agent.queues:
            raise Refused(503, "target-unavailable", f"agent {name!r} takes no calls", headers=busy)
        if agent.status in ("logged_out", "paused"):
            raise Refused(503, "no-agents", "the agent can't take the call right now", headers=busy)
        return agent.queues[0], name

    def links(request_id: str) -> dict[str, str]:
        base = f"{api.prefix}/click-to-call/{request_id}"
        return {"status_url": base, "events_url": f"{base}/events"}

    # ------------------------------------------------------------------ public endpoint
    @api.route("OPTIONS", "/click-to-call", summary="CORS preflight", tag=TAG, public=True, status=204)
    async def preflight_create(request: web.Request) -> web.Response:
        return await preflight(request)

    @api.route("POST", "/click-to-call", summary="A visitor asks to be called (public: site key + Origin, or a signed token)",
               tag=TAG, body=ClickToCallBody, public=True, status=202,
               extra_responses={401: "no or bad credentials", 403: "site, origin or target not allowed",
                                429: "a limit was reached (Retry-After)", 503: "nobody can take the call"})
    async def create(request: web.Request) -> web.Response:
        now = c2c.now()
        request_id = f"c2c-{secrets.token_urlsafe(16)}"
        ip = client_ip(request)
        headers = cors(request)
        row: dict[str, Any] = {"created_at": utc(now), "source": "web", "ip": ip,
                               "origin": (request.headers.get("Origin") or "")[:200] or None}
        with recorded(request_id, row, headers):
            refusal = c2c.limiter.attempt(ip, now)
            if refusal is not None:
                raise limited(refusal)
            body = await read_body(request, ClickToCallBody)
            row["number_input"] = body.number[:32]
            site_key, site, source, claims = authenticate(body, request, now)
            row.update(site=site_key, source=source)
            target = choose_target(body.target(), site, claims)
            row["target"] = target
            number = normalise(body.number)
            row["number"] = number
            if claims is not None and claims.number and claims.number != number:
                raise Refused(403, "token-number", "token is for another number", field="number")
            queue, agent = placement(target)
            refusal = c2c.limiter.admit(request_id, ip, number, now)
            if refusal is not None:
                raise limited(refusal, field="number" if refusal.reason in ("cooldown", "rate-number",
                                                                            "number-busy") else None)
        if claims is not None:
            c2c.nonces.use(claims.nonce, claims.expires, now)
        context = body.context.model_dump(exclude_none=True)
        tcfg = cfg.target(target)
        c2c.record(request_id, **row, accepted=True, data={"context": context})
        tracked = c2c.place(Request(request_id, source, number, c2c.dial_string(number), target, queue, agent,
                                    tcfg, tcfg.order, context, ip))
        return json_response({**public_view(tracked.status.to_dict()), **links(request_id)}, status=202,
                             headers=headers)

    # ------------------------------------------------------------------ widget and demo page
    @api.route("GET", "/click-to-call/widget.js", summary="The embeddable widget (plain JavaScript)", tag=TAG,
               public=True)
    async def widget(_: web.Request) -> web.Response:
        return web.Response(text=(STATIC / "widget.js").read_text(), content_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=300"})

    @api.route("GET", "/click-to-call/demo", summary="Demo page of the widget (when demo_site is set)", tag=TAG,
               public=True)
    async def demo(request: web.Request) -> web.Response:
        if cfg.demo_site is None:
            raise not_found("page", "demo")
        site = cfg.sites[cfg.demo_site]
        asked = request.query.get("target")
        target = asked if asked in site.targets else site.targets[0]
        kind, name = target.split(":", 1)
        page = (STATIC / "demo.html").read_text()
        for key, value in {"SITE_KEY": cfg.demo_site, "TARGET_KIND": kind, "TARGET_NAME": name,
                           "WIDGET_URL": f"{api.prefix}/click-to-call/widget.js",
                           "ENDPOINT": f"{api.prefix}/click-to-call"}.items():
            page = page.replace("{{" + key + "}}", html.escape(value, quote=True))
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ status
    async def stored(request_id: str) -> dict[str, Any] | None:
        async with service.db.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, call_order, status, status_reason, data FROM click_to_call_requests "
                "WHERE id = $1 AND accepted", request_id)
        if row is None:
            return None
        data = json.loads(row["data"]) if isinstance(row["data"], str) else dict(row["data"])
        status = row["status"]
        return {"id": row["id"], "order": row["call_order"], "status": status, "reason": row["status_reason"],
                "done": status in ("completed", "failed"), "history": data.get("history", [])}

    async def current(request_id: str) -> dict[str, Any]:
        t = c2c.tracked.get(request_id)
        view = t.status.to_dict() if t is not None else await stored(request_id)
        if view is None:
            raise not_found("click-to-call request", request_id)
        return public_view(view)

    @api.route("OPTIONS", "/click-to-call/{request_id}", summary="CORS preflight", tag=TAG, public=True, status=204)
    async def preflight_status(request: web.Request) -> web.Response:
        return await preflight(request)

    @api.route("GET", "/click-to-call/{request_id}", summary="Status of a request (public: the id is the secret)",
               tag=TAG, public=True)
    async def get_status(request: web.Request) -> web.Response:
        return json_response(await current(request.match_info["request_id"]), headers=cors(request))

    @api.route("GET", "/click-to-call/{request_id}/events", tag=TAG, public=True,
               summary="Live status (text/event-stream: one JSON status per change; ends when done)")
    async def events(request: web.Request) -> web.StreamResponse:
        request_id = request.match_info["request_id"]
        view = await current(request_id)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no", **cors(request)})
        await resp.prepare(request)
        try:
            await stream(request_id, view, resp)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def stream(request_id: str, view: dict[str, Any], resp: web.StreamResponse) -> None:
        await resp.write(b"retry: 2000\n\n")
        sent = 0
        while True:
            t = c2c.tracked.get(request_id)
            changed = t.changed if t is not None else None
            if t is not None:
                view = public_view(t.status.to_dict())
            history = view["history"]
            for i in range(sent, len(history)):
                event = {**{k: view[k] for k in ("id", "order")}, **history[i],
                         "done": view["done"] and i == len(history) - 1}
                await resp.write(f"id: {i + 1}\ndata: {json.dumps(event)}\n\n".encode())
            sent = len(history)
            if view["done"] or changed is None or c2c.closing.is_set():
                return
            if not await first_of(changed, c2c.closing, timeout=15):
                await resp.write(b": keep-alive\n\n")

    # ------------------------------------------------------------------ authenticated
    @api.route("POST", "/click-to-call/tokens", summary="Mint a short-lived token for a site's page (site backends)",
               tag=TAG, body=TokenBody, status=201)
    async def mint(request: web.Request) -> web.Response:
        body = await read_body(request, TokenBody)
        site = cfg.sites.get(body.site)
        if site is None or site.token_secret is None:
            raise ApiError(422, f"site {body.site!r} has no token_secret", field="site")
        target = body.target()
        if target is not None and target not in site.targets:
            raise ApiError(422, f"{target} is not a target of this site", field="agent" if body.agent else "queue")
        number = None
        if body.number is not None:
            try:
                number = c2c.policy.normalise(body.number)
            except NumberRefused as exc:
                raise ApiError(422, str(exc), field="number") from None
        ttl = body.ttl if body.ttl is not None else cfg.token_ttl
        if ttl > cfg.token_ttl:
            raise ApiError(422, f"ttl is at most {cfg.token_ttl}", field="ttl")
        expires = int(c2c.now()) + ttl
        claims = TokenClaims(body.site, expires, secrets.token_urlsafe(12), target, number)
        token = sign(site.token_secret.get_secret_value().encode(), claims)
        return json_response({"token": token, "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
                              "site": body.site, "target": target, "number": number}, status=201)

    @api.route("POST", "/agents/{agent_id}/dial", summary="Click to dial: ring the agent's phone, then the number",
               tag=TAG, body=DialBody, status=202, extra_responses={404: "no such agent", 409: "the agent is busy"})
    async def agent_dial(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        now = c2c.now()
        request_id = f"c2d-{secrets.token_urlsafe(16)}"
        row: dict[str, Any] = {"created_at": utc(now), "source": "agent", "ip": client_ip(request),
                               "agent_id": agent_id, "target": f"agent:{agent_id}"}
        with recorded(request_id, row, {}):
            body = await read_body(request, DialBody)
            row["number_input"] = body.number[:32]
            info = service.acd.engine.agent(agent_id)
            if info is None:
                raise Refused(404, "agent-unknown", f"agent {agent_id!r} not found")
            if info.status in ("ringing", "on_call") or info.device == "inuse":
                raise Refused(409, "agent-busy", f"agent {agent_id!r} is on a call", field="agent_id")
            number = normalise(body.number)
            row["number"] = number
            endpoint = await agent_endpoint(agent_id)
        context = {"note": body.note} if body.note else {}
        c2c.record(request_id, **row, accepted=True, data={"context": context})
        tracked = c2c.place(Request(request_id, "agent", number, c2c.dial_string(number), row["target"], "",
                                    agent_id, cfg.target(row["target"]), "agent-dial", context,
                                    row["ip"], endpoint))
        return json_response({**public_view(tracked.status.to_dict()), **links(request_id)}, status=202)

    async def agent_endpoint(agent_id: str) -> str:
        try:
            async with service.db.acquire() as conn:
                config = await conn.fetchval("SELECT config FROM acd_agents WHERE id = $1", agent_id)
        except Exception:  # noqa: BLE001
            raise Refused(503, "unavailable", "database unavailable; nothing was dialled") from None
        if isinstance(config, str):
            config = json.loads(config)
        if not config or not config.get("endpoint"):
            raise Refused(404, "agent-unknown", f"agent {agent_id!r} has no endpoint")
        return str(config["endpoint"])


def public_view(view: dict[str, Any]) -> dict[str, Any]:
    """What a visitor may see: no agent ids, times as ISO strings."""
    history = [{"status": h["status"], "reason": h.get("reason"),
                "at": h["at"] if isinstance(h["at"], str) else utc(h["at"]).isoformat()}
               for h in view.get("history", [])]
    return {"id": view["id"], "order": view.get("order"), "status": view.get("status"),
            "reason": view.get("reason"), "done": bool(view.get("done")), "history": history}


async def first_of(event: asyncio.Event, other: asyncio.Event, *, timeout: float) -> bool:
    """Wait for either event; False on timeout."""
    tasks = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(other.wait())]
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    finally:
        for task in tasks:
            task.cancel()
