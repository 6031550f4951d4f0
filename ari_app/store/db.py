"""The PostgreSQL connection pool, created lazily so a database that is down at start-up (or
blinks later) delays work instead of failing the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

log = logging.getLogger(__name__)

#: SQLSTATE classes that mean "try again later": connection exceptions, insufficient resources,
#: operator intervention (server shutting down / starting up).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")


def is_transient(exc: BaseException) -> bool:
    """True when a database error is an outage, not a bad statement."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES


class Database:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float = 10.0):
        self._dsn = dsn
        self._min = min_size
        self._max = max_size
        self._timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=self._min,
                        max_size=self._max,
                        command_timeout=self._timeout,
                        timeout=5.0,
                    )
        return self._pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        pool = await self.pool()
        async with pool.acquire(timeout=5.0) as conn:
            yield conn

    async def ping(self) -> bool:
        try:
            async with self.acquire() as conn:
                await conn.fetchval("SELECT 1")
            return True
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            log.debug("db ping failed", extra={"error": type(exc).__name__})
            return False

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
