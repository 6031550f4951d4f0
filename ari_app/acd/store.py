"""ACD configuration and runtime state in PostgreSQL.

Configuration changes from the API are written synchronously (the caller gets an answer only once
the change is durable; if the database is down the change is refused with 503 and nothing changes).
The runtime state (one row per record in `acd_state_rows`, see `AcdAdapter.state_rows`) goes
through the batched writer instead, since it changes with every event.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import asyncpg

from ari_app.acd.core.model import AgentConfig, ConfigError, QueueConfig


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


async def load_configs(conn: asyncpg.Connection) -> tuple[list[QueueConfig], list[AgentConfig]]:
    queues = [QueueConfig.from_dict(_json(r["config"])) for r in
              await conn.fetch("SELECT config FROM acd_queues ORDER BY name")]
    agents = [AgentConfig.from_dict(_json(r["config"])) for r in
              await conn.fetch("SELECT config FROM acd_agents ORDER BY id")]
    return queues, agents


async def save_queue(conn: asyncpg.Connection, q: QueueConfig) -> None:
    await conn.execute("INSERT INTO acd_queues (name, config) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE "
                       "SET config = EXCLUDED.config, updated_at = now()", q.name, json.dumps(q.to_dict()))


async def delete_queue(conn: asyncpg.Connection, name: str) -> bool:
    return (await conn.execute("DELETE FROM acd_queues WHERE name = $1", name)) != "DELETE 0"


async def save_agent(conn: asyncpg.Connection, a: AgentConfig) -> None:
    await conn.execute("INSERT INTO acd_agents (id, config) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE "
                       "SET config = EXCLUDED.config, updated_at = now()", a.id, json.dumps(a.to_dict()))


async def delete_agent(conn: asyncpg.Connection, agent_id: str) -> bool:
    return (await conn.execute("DELETE FROM acd_agents WHERE id = $1", agent_id)) != "DELETE 0"


async def load_rows(conn: asyncpg.Connection, app: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The ACD state rows of app instance `app`: (kind, key, state)."""
    rows = await conn.fetch("SELECT kind, key, state FROM acd_state_rows WHERE app = $1", app)
    return [(r["kind"], r["key"], _json(r["state"])) for r in rows]


async def save_rows(conn: asyncpg.Connection, app: str, rows: dict[tuple[str, ...], dict[str, Any] | None]) -> None:
    """Write state rows directly (the one-time upgrade from a snapshot; at run time the writer does)."""
    await conn.executemany(
        "INSERT INTO acd_state_rows (app, kind, key, state) VALUES ($1, $2, $3, $4::jsonb) "
        "ON CONFLICT (app, kind, key) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
        [(app, kind, key, json.dumps(state)) for (kind, key), state in rows.items() if state is not None])


async def load_snapshot(conn: asyncpg.Connection, state_id: str) -> dict[str, Any] | None:
    """The whole-state snapshot versions before sql/007 kept in `acd_state` (read once, to upgrade)."""
    row = await conn.fetchrow("SELECT snapshot FROM acd_state WHERE id = $1", state_id)
    return _json(row["snapshot"]) if row else None


async def delete_snapshot(conn: asyncpg.Connection, state_id: str) -> None:
    await conn.execute("DELETE FROM acd_state WHERE id = $1", state_id)


def load_file(path: Path) -> tuple[list[QueueConfig], list[AgentConfig]]:
    """A TOML file with `[[queues]]` and `[[agents]]` tables (or `[queues.NAME]` / `[agents.ID]`)."""
    data = tomllib.loads(path.read_text())
    queues_raw = data.get("queues", [])
    agents_raw = data.get("agents", [])
    if isinstance(queues_raw, dict):
        queues_raw = [{"name": k, **v} for k, v in queues_raw.items()]
    if isinstance(agents_raw, dict):
        agents_raw = [{"id": k, **v} for k, v in agents_raw.items()]
    try:
        return ([QueueConfig.from_dict(q) for q in queues_raw], [AgentConfig.from_dict(a) for a in agents_raw])
    except ConfigError as exc:
        raise ValueError(f"{path}: {exc}") from exc
