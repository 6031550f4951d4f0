"""Numbered SQL migrations from `sql/`, applied once each, each in its own transaction.

Why hand-rolled: the whole mechanism is a table of applied versions and a loop; a migration
framework would add more configuration than it removes. An advisory lock makes concurrent
`migrate` runs (two app instances starting at once) safe.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ari_app import PROJECT_ROOT

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql"
_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x4A41_5050  # arbitrary, constant: serialises migrate runs


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(sql_dir.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {sql_dir}")
    return found


async def apply_migrations(conn: asyncpg.Connection, sql_dir: Path = SQL_DIR) -> list[int]:
    """Apply pending migrations; return the versions applied now."""
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for mig in discover(sql_dir):
            if mig.version in done:
                continue
            async with conn.transaction():
                await conn.execute(mig.path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", mig.version, mig.name
                )
            log.info("migration applied", extra={"version": mig.version, "migration": mig.name})
            applied_now.append(mig.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def migrate_dsn(dsn: str, sql_dir: Path = SQL_DIR) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn, sql_dir)
    finally:
        await conn.close()


def apply_migrations_sync(dsn: str, sql_dir: Path = SQL_DIR) -> list[int]:
    """For the sandbox and the CLI, which are synchronous."""
    return asyncio.run(migrate_dsn(dsn, sql_dir))
