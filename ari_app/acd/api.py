"""Queues and agents over HTTP: `/api/v1/queues/{name}`, `/api/v1/agents/{id}`, agent state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from ari_app.acd import store, transfer
from ari_app.acd.core import events as ce
from ari_app.acd.core.model import AgentConfig, ConfigError, QueueConfig
from ari_app.http.api import Api, json_response, read_body, read_json_object
from ari_app.http.errors import ApiError, not_found
from ari_app.store.db import is_transient

if TYPE_CHECKING:
    from ari_app.acd.adapter import AcdAdapter
    from ari_app.service import Service


class AgentStateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["available", "logged_out", "paused"]
    reason: str = ""


class MoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: str
    to_head: bool = False



def _config_error(exc: ConfigError) -> ApiError:
    return ApiError(422, str(exc), field=exc.field)


async def _durably(service: Service, fn: Any, *args: Any) -> Any:
    try:
        async with service.db.acquire() as conn:
            return await fn(conn, *args)
    except Exception as exc:
        if is_transient(exc):
            raise ApiError(503, "database unavailable; nothing was changed") from None
        raise


def register(api: Api, service: Service, acd: AcdAdapter) -> None:
    @api.route("GET", "/queues", summary="Queues with live waiting counts", tag="queues")
    async def list_queues(_: web.Request) -> web.Response:
        return json_response({"queues": [acd.queue_view(name) for name in acd.engine.queues()]})

    @api.route("GET", "/queues/{name}", summary="A queue: config, waiting items, members", tag="queues")
    async def get_queue(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in acd.engine.queues():
            raise not_found("queue", name)
        return json_response(acd.queue_view(name, detail=True))

    @api.route("PUT", "/queues/{name}", summary="Create or replace a queue", tag="queues",
               extra_responses={503: "database unavailable"})
    async def put_queue(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        data = await read_json_object(request)
        if "name" in data and data["name"] != name:
            raise ApiError(422, "name in the body differs from the URL", field="name")
        try:
            cfg = QueueConfig.from_dict({**data, "name": name})
        except ConfigError as exc:
            raise _config_error(exc) from None
        existed = name in acd.engine.queues()
        await _durably(service, store.save_queue, cfg)
        acd.handle(ce.UpsertQueue(cfg))
        return json_response(cfg.to_dict(), status=200 if existed else 201)

    @api.route("DELETE", "/queues/{name}", summary="Remove a queue (waiting callers leave it)", tag="queues")
    async def delete_queue(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in acd.engine.queues():
            raise not_found("queue", name)
        await _durably(service, store.delete_queue, name)
        acd.handle(ce.RemoveQueue(name))
        return web.Response(status=204)

    @api.route("GET", "/agents", summary="Agents with their live state", tag="agents")
    async def list_agents(_: web.Request) -> web.Response:
        return json_response({"agents": [acd.agent_view(a) for a in acd.agent_ids()]})

    @api.route("GET", "/agents/{agent_id}", summary="An agent: config and live state", tag="agents")
    async def get_agent(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        if agent_id not in acd.agent_ids():
            raise not_found("agent", agent_id)
        return json_response(acd.agent_view(agent_id))

    @api.route("PUT", "/agents/{agent_id}", summary="Create or replace an agent", tag="agents",
               extra_responses={503: "database unavailable"})
    async def put_agent(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        data = await read_json_object(request)
        if "id" in data and data["id"] != agent_id:
            raise ApiError(422, "id in the body differs from the URL", field="id")
        try:
            cfg = AgentConfig.from_dict({**data, "id": agent_id})
        except ConfigError as exc:
            raise _config_error(exc) from None
        unknown = sorted(set(cfg.memberships) - set(acd.engine.queues()))
        if unknown:
            raise ApiError(422, f"unknown queue(s) in memberships: {', '.join(unknown)}", field="memberships")
        existed = agent_id in acd.agent_ids()
        await _durably(service, store.save_agent, cfg)
        acd.handle(ce.UpsertAgent(cfg))
        await acd.devices.sync()  # follow the agent's device, its state read before we answer
        return json_response(cfg.to_dict(), status=200 if existed else 201)

    @api.route("DELETE", "/agents/{agent_id}", summary="Remove an agent", tag="agents")
    async def delete_agent(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        if agent_id not in acd.agent_ids():
            raise not_found("agent", agent_id)
        await _durably(service, store.delete_agent, agent_id)
        acd.handle(ce.RemoveAgent(agent_id))
        await acd.devices.sync()
        return web.Response(status=204)

    @api.route("POST", "/agents/{agent_id}/state", summary="Log in, log out, pause or unpause an agent",
               tag="agents", body=AgentStateBody)
    async def set_agent_state(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        body = await read_body(request, AgentStateBody)
        if agent_id not in acd.agent_ids():
            raise not_found("agent", agent_id)
        info = acd.engine.agent(agent_id)
        status = info.status if info else "logged_out"
        event: ce.Event
        if body.state == "available":
            event = ce.AgentUnpause(agent_id) if status == "paused" else ce.AgentLogin(agent_id)
        elif body.state == "paused":
            if status == "logged_out":
                raise ApiError(409, "agent is logged out; log in first", field="state")
            event = ce.AgentPause(agent_id, body.reason)
        else:
            event = ce.AgentLogout(agent_id, body.reason)
        acd.handle(event)
        return json_response(acd.agent_view(agent_id))

    @api.route("POST", "/queues/{name}/items/{item_id}/move", summary="Supervisor: move a waiting caller",
               tag="queues", body=MoveBody)
    async def move_item(request: web.Request) -> web.Response:
        item_id = request.match_info["item_id"]
        body = await read_body(request, MoveBody)
        if body.queue not in acd.engine.queues():
            raise ApiError(422, f"unknown queue {body.queue!r}", field="queue")
        if acd.engine.position(item_id) is None:
            raise not_found("waiting item", item_id)
        acd.handle(ce.MoveItem(item_id, body.queue, body.to_head))
        return json_response({"item_id": item_id, "queue": body.queue,
                              "position": acd.engine.position(item_id)})

    transfer.register(api, service, acd)
