"""Check our models and REST calls against Asterisk's own ARI spec (swagger 1.1 JSON).

Why: our models and parameter names are hand-written; Asterisk renames things between releases.
This check runs in the unit tests against the shipped rest-api/*.json and in the integration
tests against the running Asterisk, so a rename fails loudly instead of silently dropping a
parameter. REST methods are checked by *calling* each one against a recording fake transport, so
what is checked is what is sent.
"""

from __future__ import annotations

import builtins
import collections.abc
import inspect
import json
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from .events import ARI_EVENT_TYPES, Event
from .models import SPEC_MODELS, AriModel
from .rest import NAMESPACES, AriRest

Spec = dict[str, dict[str, Any]]  # api-doc name (e.g. "channels") -> its JSON

SPEC_SUBPATH = "usr/share/asterisk/rest-api"
DEFAULT_ROOTS = ("/var/cache/ari-app/rootfs", "/var/cache/ari-app/rootfs-manual")


def find_spec_dir() -> Path:
    """``$ARI_APP_SPEC_DIR``, else the sandbox root's spec, else the manual root's.

    Raises ``FileNotFoundError`` naming every place looked at.
    """
    env = os.environ.get("ARI_APP_SPEC_DIR")
    candidates = [Path(env)] if env else [Path(r) / SPEC_SUBPATH for r in DEFAULT_ROOTS]
    for path in candidates:
        if (path / "resources.json").is_file():
            return path
    raise FileNotFoundError(
        "ARI spec not found (no resources.json) in: "
        + ", ".join(str(p) for p in candidates)
        + "; build the sandbox root or set ARI_APP_SPEC_DIR to a rest-api directory"
    )


def _doc_names(resources: Mapping[str, Any]) -> list[str]:
    # "/api-docs/channels.{format}" -> "channels"
    return [api["path"].rsplit("/", 1)[-1].split(".", 1)[0] for api in resources["apis"]]


def load_spec_dir(path: Path) -> Spec:
    resources = json.loads((path / "resources.json").read_text())
    return {n: json.loads((path / f"{n}.json").read_text()) for n in _doc_names(resources)}


async def fetch_spec(rest: AriRest) -> Spec:
    """The spec as served by a running Asterisk (``/ari/api-docs/...``)."""
    resources = await rest.request("GET", "/api-docs/resources.json")
    return {n: await rest.request("GET", f"/api-docs/{n}.json") for n in _doc_names(resources)}


# --- models -----------------------------------------------------------------------------------


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _check_fields(
    where: str, cls: type[BaseModel], props: Mapping[str, Any], skip: frozenset[str] = frozenset()
) -> list[str]:
    problems: list[str] = []
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        prop = props.get(name)
        if prop is None:
            problems.append(f"{where}: field {name!r} is not in the spec (has {sorted(props)})")
            continue
        if field.is_required() and not prop.get("required"):
            problems.append(f"{where}: field {name!r} is required by us but optional in the spec")
        nested = _strip_optional(field.annotation)
        if isinstance(nested, type) and issubclass(nested, AriModel):
            if prop.get("type") != nested.__name__:
                problems.append(
                    f"{where}: field {name!r} is {nested.__name__} here, {prop.get('type')} in the spec"
                )
    return problems


def check_models(spec: Spec) -> list[str]:
    """Every data model and typed event: names, field names, required-ness, nested types."""
    problems: list[str] = []
    data_models: dict[str, Any] = {}
    for name, doc in spec.items():
        if name != "events":
            data_models.update(doc.get("models", {}))
    for model_name, cls in SPEC_MODELS.items():
        spec_model = data_models.get(model_name)
        if spec_model is None:
            problems.append(f"model {model_name}: not in the spec")
            continue
        problems += _check_fields(f"model {model_name}", cls, spec_model.get("properties", {}))

    events = spec.get("events", {}).get("models", {})
    if not events:
        return [*problems, "events: events.json has no models"]
    base_props = {**events["Message"]["properties"], **events["Event"]["properties"]}
    subtypes = set(events["Event"].get("subTypes", []))
    for type_name, ev_cls in ARI_EVENT_TYPES.items():
        spec_ev = events.get(type_name)
        if spec_ev is None or type_name not in subtypes:
            problems.append(f"event {type_name}: not an Event subtype in events.json")
            continue
        props = {**base_props, **spec_ev.get("properties", {})}
        problems += _check_fields(f"event {type_name}", ev_cls, props)
    problems += _check_fields("event base", Event, base_props)
    return problems


# --- REST -------------------------------------------------------------------------------------


class _Sent(Exception):
    """Raised by the recording transport once a request is captured."""


class _RecordingRest(AriRest):
    def __init__(self) -> None:
        super().__init__("http://spec.invalid", "spec", "spec")
        self.sent: list[tuple[str, str, dict[str, str], Any]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None = None,
        json: Any = None,
    ) -> Any:
        kept = {k: str(v) for k, v in (params or {}).items() if v is not None}
        self.sent.append((method, path, kept, json))
        raise _Sent


def _sample(tp: Any, name: str) -> Any:
    """A value of type ``tp``; strings are ``v-<name>`` so path ids never look like literals."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in args if a is not type(None)), name)
    if origin is Literal:
        return args[0]
    if tp is str:
        return f"v-{name}"
    if tp is bool:
        return True
    if tp in (int, float):
        return 1
    if origin in (dict, collections.abc.Mapping):
        return {"K": "V"}
    if origin in (builtins.list, collections.abc.Sequence):
        return [_sample(args[0], name), _sample(args[0], name)]
    raise TypeError(f"no sample for {tp!r} ({name})")


def _operations(spec: Spec, doc: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (op["httpMethod"], api["path"], op)
        for api in spec.get(doc, {}).get("apis", [])
        for op in api["operations"]
    ]


def _match_op(
    ops: list[tuple[str, str, dict[str, Any]]], method: str, path: str
) -> tuple[str, dict[str, Any]] | None:
    found = []
    for http_method, template, op in ops:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if http_method == method and re.match(pattern, path):
            found.append((template.count("{"), template, op))
    if not found:
        return None
    _, template, op = min(found, key=lambda t: t[0])  # literal segments beat placeholders
    return template, op


def _response_name(tp: Any) -> str:
    if tp is None or tp is type(None):
        return "void"
    if get_origin(tp) in (builtins.list, collections.abc.Sequence):
        return f"List[{get_args(tp)[0].__name__}]"
    return str(getattr(tp, "__name__", tp))


_DOC_OF = {
    "channels": "channels",
    "bridges": "bridges",
    "playbacks": "playbacks",
    "recordings": "recordings",
    "applications": "applications",
    "asterisk": "asterisk",
    "endpoints": "endpoints",
    "device_states": "deviceStates",
}


async def check_rest(spec: Spec) -> list[str]:
    """Call every public REST method (all args, then required args only) and check what it sends."""
    problems: list[str] = []
    for attr, ns_cls in NAMESPACES.items():
        ops = _operations(spec, _DOC_OF[attr])
        if not ops:
            problems.append(f"rest.{attr}: no {_DOC_OF[attr]} api in the spec")
            continue
        for meth_name, func in inspect.getmembers(ns_cls, inspect.iscoroutinefunction):
            if meth_name.startswith("_"):
                continue
            where = f"rest.{attr}.{meth_name}"
            hints = get_type_hints(func)
            sig = inspect.signature(func)
            params = [p for p in sig.parameters.values() if p.name != "self"]
            full = {p.name: _sample(hints[p.name], p.name) for p in params}
            minimal = {p.name: full[p.name] for p in params if p.default is inspect.Parameter.empty}
            for label, kwargs in (("all args", full), ("required args", minimal)):
                rest = _RecordingRest()
                try:
                    await getattr(getattr(rest, attr), meth_name)(**kwargs)
                except _Sent:
                    pass
                if len(rest.sent) != 1:
                    problems.append(f"{where}: sent {len(rest.sent)} requests, expected 1")
                    continue
                method, path, sent_params, body = rest.sent[0]
                match = _match_op(ops, method, path)
                if match is None:
                    problems.append(f"{where}: {method} {path} is not an operation in the spec")
                    continue
                template, op = match
                spec_params = {p["name"]: p for p in op.get("parameters", [])}
                query = {n for n, p in spec_params.items() if p["paramType"] == "query"}
                for name in sorted(set(sent_params) - query):
                    problems.append(
                        f"{where}: query param {name!r} not in spec for {method} {template} "
                        f"(has {sorted(query)})"
                    )
                if label == "required args":
                    required = {n for n in query if spec_params[n].get("required")}
                    for name in sorted(required - set(sent_params)):
                        problems.append(f"{where}: required query param {name!r} not sent")
                if body is not None:
                    body_params = {n for n, p in spec_params.items() if p["paramType"] == "body"}
                    if not body_params:
                        problems.append(f"{where}: sends a JSON body; {template} takes none")
                    elif "variables" in body and "variables" not in body_params:
                        problems.append(f"{where}: 'variables' body not in spec for {template}")
                if label == "all args":
                    ours = _response_name(hints.get("return"))
                    theirs = op.get("responseClass", "void")
                    if ours != theirs:
                        problems.append(f"{where}: returns {ours}, spec says {theirs}")
    return problems


async def check_conformance(spec: Spec) -> list[str]:
    """All problems found; empty means our client matches this Asterisk's ARI."""
    return check_models(spec) + await check_rest(spec)
