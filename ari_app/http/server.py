"""The aiohttp application: health, readiness, OpenAPI, bearer auth, and each capability's routes."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ari_app import __version__
from ari_app.http.api import Api, json_response
from ari_app.http.errors import ApiError, error_middleware

if TYPE_CHECKING:
    from ari_app.service import Service

SERVICE_KEY: web.AppKey[Service] = web.AppKey("service")


def _auth_middleware(api: Api, tokens: list[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    encoded = [t.encode() for t in tokens]

    @web.middleware
    async def auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.method == "OPTIONS" or not request.path.startswith(api.prefix + "/"):
            return await handler(request)
        if request.path == api.prefix + "/openapi.json" or api.is_public(request.method, request.path, request.app):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)", field="Authorization",
                           headers={"WWW-Authenticate": "Bearer"})
        if not any(hmac.compare_digest(token.encode(), t) for t in encoded):
            raise ApiError(401, "bearer token not accepted", field="Authorization",
                           headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return auth


def build_http_app(service: Service) -> web.Application:
    api: Api = service.api
    tokens = [t.get_secret_value() for t in service.settings.api_tokens]
    app = web.Application(middlewares=[error_middleware, _auth_middleware(api, tokens)])
    app[SERVICE_KEY] = service

    async def healthz(_: web.Request) -> web.Response:
        return json_response({"status": "ok", "version": __version__})

    async def readyz(_: web.Request) -> web.Response:
        checks = await service.readiness()
        ok = all(checks.values())
        return json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def openapi(_: web.Request) -> web.Response:
        return json_response(api.openapi("ari_app", __version__))

    for prefix in ("", api.prefix):
        app.router.add_get(prefix + "/healthz", healthz)
        app.router.add_get(prefix + "/readyz", readyz)
    app.router.add_get(api.prefix + "/openapi.json", openapi)
    api.add_to(app)
    for method, path, handler in service.web_routes:
        app.router.add_route(method, path, handler)

    async def not_found_json(request: web.Request) -> web.Response:
        raise ApiError(404, f"no route for {request.method} {request.path}")

    app.router.add_route("*", "/{tail:.*}", not_found_json)
    return app
