"""Which app instance paces a campaign: exactly one at a time, so the abandon guarantee holds.

The guarantee (core `ledger`) needs one ledger per campaign that sees every abandon and every call at
risk. Two instances pacing the same campaign would each keep their own and together could exceed the
cap. So an instance paces a campaign only while it holds a PostgreSQL session-level advisory lock for
it, on one connection of its own (not the pool's: a session lock belongs to its connection):

- a running campaign's runner tries the lock about once a second while it does not hold it; on taking
  it, the runner rebuilds its ledger and estimators from `dial_attempts` (the previous owner's abandons
  included), then paces;
- it gives the lock back when the campaign is paused or stopped and none of its calls is still in
  flight (those may yet abandon), and when the app stops, after its records are flushed;
- if the app dies, PostgreSQL ends its session and frees its locks; if this connection breaks, the
  locks are gone with it: every runner stops pacing at once and tries again (the keep-alive finds a
  broken connection within a second).

Lead claiming needs none of this (`FOR UPDATE SKIP LOCKED`). Agents work the campaign on the instance
that paces it: sessions on another instance stay ready and idle until it takes over.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)

#: First key of the two-int advisory locks (the second is hashtext(campaign id)); "DIAL".
LOCK_NAMESPACE = 0x4449414C


class PacingLocks:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._mutex = asyncio.Lock()
        self.held: set[str] = set()
        #: Bumped when the connection (and so every lock) was lost: runners compare it to notice.
        self.epoch = 0

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._lost()
            self._conn = await asyncpg.connect(self._dsn)
        return self._conn

    def _lost(self) -> None:
        if self.held:
            log.warning("pacing locks lost with their connection", extra={"campaigns": sorted(self.held)})
        self.held.clear()
        self.epoch += 1
        if self._conn is not None and not self._conn.is_closed():
            self._conn.terminate()
        self._conn = None

    async def _run(self, sql: str, campaign_id: str) -> bool | None:
        async with self._mutex:
            try:
                conn = await self._connection()
                return bool(await conn.fetchval(sql, LOCK_NAMESPACE, campaign_id))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("pacing lock query failed", extra={"campaign": campaign_id, "error": type(exc).__name__})
                self._lost()
                return None

    async def take(self, campaign_id: str) -> bool:
        """True if this instance now holds the campaign's lock (non-blocking)."""
        if campaign_id in self.held:
            return True
        got = await self._run("SELECT pg_try_advisory_lock($1::int, hashtext($2))", campaign_id)
        if got:
            self.held.add(campaign_id)
        return bool(got)

    async def give_back(self, campaign_id: str) -> None:
        if campaign_id in self.held:
            self.held.discard(campaign_id)
            await self._run("SELECT pg_advisory_unlock($1::int, hashtext($2))", campaign_id)

    async def keep_alive(self) -> None:
        """A broken connection means the locks are gone: find out now, not at the next take."""
        if not self.held:
            return
        async with self._mutex:
            try:
                await (await self._connection()).fetchval("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._lost()

    async def close(self) -> None:
        """Closing the session frees every lock it holds."""
        async with self._mutex:
            self.held.clear()
            if self._conn is not None:
                try:
                    await self._conn.close(timeout=2)
                except Exception:  # noqa: BLE001 - terminated instead; the server frees the locks either way
                    self._conn.terminate()
                self._conn = None
