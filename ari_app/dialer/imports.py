"""Lead and DNC imports in the background, with progress in `dialer_imports`.

The request reads and splits the file (a file that can't be read is a 4xx at once) and gets an
import id; normalising runs in chunks on a process pool (libphonenumber is pure Python), and the
clean records land in one COPY + INSERT ... SELECT (see `store.import_leads`). Progress and the bad
rows (row, reason) are readable at `GET /campaigns/{id}/imports/{import_id}` from any instance.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ari_app.dialer import store
from ari_app.dialer.campaigns import CampaignSpec
from ari_app.dialer.dnc import dnc_chunk
from ari_app.dialer.leads import LeadRecord, Row, RowError, merge_duplicates, normalise_chunk

if TYPE_CHECKING:
    from ari_app.dialer.dialer import Dialer

log = logging.getLogger(__name__)

CHUNK = 4000
#: Below this many rows the pool's start-up costs more than it saves.
INLINE_ROWS = 3000
T = TypeVar("T")


class Importer:
    def __init__(self, dialer: Dialer) -> None:
        self.d = dialer
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            workers = max(1, min(8, os.cpu_count() or 1))
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def _map(self, fn: Callable[[Any], T], args: list[Any], progress: Callable[[int], Any]) -> list[T]:
        """fn over chunks, on the pool when it's worth it; `progress(done_rows)` after each chunk."""
        loop = asyncio.get_running_loop()
        total = sum(len(a[1]) for a in args)
        if total <= INLINE_ROWS:
            return [await asyncio.to_thread(fn, a) for a in args]
        futures = [loop.run_in_executor(self._executor(), fn, a) for a in args]
        done_rows = 0
        for fut, a in zip(futures, args, strict=True):
            await asyncio.wait([fut])
            done_rows += len(a[1])
            await progress(done_rows)
        return [f.result() for f in futures]

    async def start_leads(self, spec: CampaignSpec, rows: list[Row]) -> str:
        import_id = self.d.s.ari.new_id("import")
        async with self.d.s.db.acquire() as conn:
            await store.create_import(conn, import_id, spec.id, kind="leads", total=len(rows))
        self.d.s.spawn(self._run_leads(spec, import_id, rows), name=f"import-{import_id}")
        return import_id

    async def _progress(self, import_id: str, **fields: Any) -> None:
        try:
            async with self.d.s.db.acquire() as conn:
                await store.update_import(conn, import_id, **fields)
        except Exception:  # noqa: BLE001 - progress is best effort; the final update says how it ended
            log.warning("could not record import progress", extra={"import_id": import_id})

    async def _run_leads(self, spec: CampaignSpec, import_id: str, rows: list[Row]) -> None:
        t0 = time.monotonic()
        try:
            chunks = [(spec.numbers, rows[i:i + CHUNK]) for i in range(0, len(rows), CHUNK)]

            async def progress(done: int) -> None:
                await self._progress(import_id, processed=done)
            parts = await self._map(normalise_chunk, chunks, progress)
            t1 = time.monotonic()
            records: list[LeadRecord] = [r for recs, _ in parts for r in recs]
            errors: list[RowError] = [e for _, errs in parts for e in errs]
            unique, merged_in_file = merge_duplicates(records)
            await self._progress(import_id, processed=len(rows), phase="writing")
            async with self.d.s.db.acquire() as conn:
                inserted, merged, scrubbed = await store.import_leads(conn, spec.id, import_id, unique)
            errors = sorted(errors + scrubbed, key=lambda e: e.row)
            await self._progress(import_id, status="done", phase="done", imported=inserted,
                                 merged=merged + merged_in_file, rejected=len(errors),
                                 errors=[e.to_dict() for e in errors],
                                 message=f"normalised in {t1 - t0:.2f} s, written in {time.monotonic() - t1:.2f} s",
                                 finished_at=_now())
            log.info("leads imported", extra={"campaign": spec.id, "import_id": import_id, "inserted": inserted,
                                              "rejected": len(errors), "seconds": round(time.monotonic() - t0, 2)})
        except Exception as exc:
            log.exception("lead import failed", extra={"import_id": import_id})
            await self._progress(import_id, status="failed", phase="failed", message=f"{type(exc).__name__}: {exc}",
                                 finished_at=_now())
        runner = self.d.runners.get(spec.id)
        if runner is not None:
            runner.invalidate()

    async def dnc_numbers(self, region: str, rows: Sequence[tuple[int, str]]) -> tuple[list[str], list[RowError]]:
        chunks = [(region, list(rows[i:i + CHUNK])) for i in range(0, len(rows), CHUNK)]

        async def nothing(_: int) -> None:
            return None
        parts = await self._map(dnc_chunk, chunks, nothing)
        return [n for ns, _ in parts for n in ns], sorted((e for _, es in parts for e in es), key=lambda e: e.row)


def _now() -> Any:
    from datetime import UTC, datetime
    return datetime.now(UTC)
