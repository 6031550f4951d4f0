"""Session fixtures shared by the whole suite.

`sandbox`: a real Asterisk 22 + PostgreSQL (ari_app.sandbox), instance "test" on its own ports
(ARI 28088, PostgreSQL 25433; env ARI_APP_TEST_ARI_PORT / ARI_APP_TEST_PG_PORT /
ARI_APP_TEST_INSTANCE override; a second concurrent session gets "test-2" on the ports + 1),
with a fresh PostgreSQL cluster every session so migrations run from scratch. Tests that use it
are marked `integration` automatically.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from ari_app.sandbox import Sandbox


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


LOCK_DIR = Path("/var/cache/ari-app/locks")


def _claim_instance() -> tuple[str, int, int, IO[str]]:
    """The first free test instance: "test" on the base ports, else "test-2" on base+1, ...

    Two test sessions on one machine (two checkouts, two developers) never share an Asterisk or
    a PostgreSQL: each holds a lock on its instance for the whole session (released by the OS
    even if the session is killed)."""
    base = os.environ.get("ARI_APP_TEST_INSTANCE", "test")
    ari_port = int(os.environ.get("ARI_APP_TEST_ARI_PORT", "28088"))
    pg_port = int(os.environ.get("ARI_APP_TEST_PG_PORT", "25433"))
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    for i in range(10):
        name = base if i == 0 else f"{base}-{i + 1}"
        fh = open(LOCK_DIR / f"{name}.lock", "w")  # noqa: SIM115 - held for the session
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        return name, ari_port + i, pg_port + i, fh
    raise RuntimeError(f"ten test sessions already hold {LOCK_DIR}/{base}*.lock")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    name, ari_port, pg_port, lock = _claim_instance()
    sb = Sandbox(name, ari_port=ari_port, pg_port=pg_port)
    try:
        # A cluster left by an interrupted session is stopped and dropped: start from nothing.
        sb.destroy_postgres()
        sb.up()
        yield sb
    finally:
        try:
            sb.down()
            sb.destroy_postgres()
        finally:
            lock.close()


# --- db: function-scoped asyncpg connection to sandbox.info.database_url (the store's fixture) ---
