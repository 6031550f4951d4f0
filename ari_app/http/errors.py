"""API errors: every bad input becomes a 4xx JSON body naming the field; never a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, field: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                             405: "method_not_allowed", 409: "conflict", 422: "invalid",
                             429: "rate_limited", 503: "unavailable"}.get(status, "error")
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        if self.details:
            err["details"] = self.details
        return {"error": err}


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"{what} {ident!r} not found", code="not_found")


def from_validation_error(exc: ValidationError, *, prefix: str = "") -> ApiError:
    details = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        details.append({"field": f"{prefix}{loc}" if loc else prefix.rstrip(".") or None, "message": e["msg"]})
    first = details[0] if details else {"field": None, "message": "invalid input"}
    field = first["field"]
    msg = f"{field}: {first['message']}" if field else first["message"]
    return ApiError(422, msg, field=field, details=details)


def error_response(err: ApiError) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers=err.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err)
    except ValidationError as exc:
        return error_response(from_validation_error(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.reason or "error"
        return error_response(ApiError(exc.status, reason))
    except json.JSONDecodeError as exc:
        return error_response(ApiError(400, f"request body is not valid JSON: {exc.msg}", field="body"))
    except Exception:
        log.exception("unhandled error in HTTP handler", extra={"path": request.path})
        return error_response(ApiError(500, "internal error", code="internal"))
