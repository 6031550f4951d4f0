"""A small route registry: each capability declares its routes once, and the same declaration
drives aiohttp's router, request validation and the OpenAPI document (so the document can't drift
from what is served)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ari_app.http.errors import ApiError, from_validation_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    public: bool = False  # no bearer token needed
    status: int = 200
    extra_responses: dict[int, str] = field(default_factory=dict)


class Api:
    def __init__(self, prefix: str = "/api/v1") -> None:
        self.prefix = prefix
        self.routes: list[Route] = []

    def route(self, method: str, path: str, *, summary: str, tag: str, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
              public: bool = False, status: int = 200,
              extra_responses: dict[int, str] | None = None) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes.append(Route(method.upper(), path, fn, summary, tag, body, query, response, public,
                                     status, extra_responses or {}))
            return fn
        return deco

    def add_to(self, app: web.Application) -> None:
        for r in self.routes:
            app.router.add_route(r.method, self.prefix + r.path, r.handler)

    def is_public(self, method: str, path: str, app: web.Application) -> bool:
        return any(r.public and r.method == method and self._matches(r, path) for r in self.routes)

    def _matches(self, r: Route, path: str) -> bool:
        pattern = (self.prefix + r.path).split("/")
        parts = path.split("/")
        return len(pattern) == len(parts) and all(
            p.startswith("{") or p == q for p, q in zip(pattern, parts, strict=True))

    # ------------------------------------------------------------------------------ OpenAPI
    def openapi(self, title: str, version: str) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        schemas: dict[str, Any] = {}

        def ref(model: type[BaseModel]) -> dict[str, str]:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas[name] = sub
            schemas[model.__name__] = schema
            return {"$ref": f"#/components/schemas/{model.__name__}"}

        for r in self.routes:
            op: dict[str, Any] = {"summary": r.summary, "tags": [r.tag], "responses": {}}
            params = [{"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                      for seg in r.path.split("/") if seg.startswith("{")]
            if r.query is not None:
                for name, f in r.query.model_fields.items():
                    params.append({"name": f.alias or name, "in": "query", "required": f.is_required(),
                                   "description": f.description or "", "schema": {}})
            if params:
                op["parameters"] = params
            if r.body is not None:
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(r.body)}}}
            ok: dict[str, Any] = {"description": "OK"}
            if r.response is not None:
                ok["content"] = {"application/json": {"schema": ref(r.response)}}
            op["responses"][str(r.status)] = ok
            if not r.public:
                op["security"] = [{"bearer": []}]
                op["responses"]["401"] = {"description": "missing or wrong bearer token",
                                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            if r.body is not None or r.query is not None:
                op["responses"]["422"] = {"description": "invalid input; `error.field` names the field",
                                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for code, desc in r.extra_responses.items():
                op["responses"][str(code)] = {"description": desc,
                                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            paths.setdefault(self.prefix + r.path, {})[r.method.lower()] = op
        schemas["Error"] = {
            "type": "object",
            "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}}}, "required": ["code", "message"]}},
            "required": ["error"],
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "paths": paths,
            "components": {"schemas": schemas,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        }


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (an empty body is not one)."""
    try:
        data = json.loads(raw or b"null")
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc.msg}", field="body") from None
    if not isinstance(data, dict):
        raise ApiError(422, "request body must be a JSON object", field="body")
    return data


async def read_json_object(request: web.Request) -> dict[str, Any]:
    return parse_json_object(await request.read())


async def read_body(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body; errors name the field."""
    raw = await request.read()
    if not raw:
        raise ApiError(400, "request body is required (JSON)", field="body")
    data = parse_json_object(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def read_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def json_response(data: Any, status: int = 200, **kw: Any) -> web.Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return web.json_response(data, status=status, dumps=_dumps, **kw)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default)


def _default(o: Any) -> Any:
    import datetime
    import decimal
    if isinstance(o, datetime.datetime | datetime.date):
        return o.isoformat()
    if isinstance(o, decimal.Decimal):
        return float(o)
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    raise TypeError(type(o).__name__)
