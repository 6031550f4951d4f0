"""Session fixtures shared by the whole suite.

`sandbox`: a real Asterisk 22 + PostgreSQL (ari_app.sandbox), instance "test" on its own ports
(ARI 28088, PostgreSQL 25433; env ARI_APP_TEST_ARI_PORT / ARI_APP_TEST_PG_PORT /
ARI_APP_TEST_INSTANCE override), with a fresh PostgreSQL cluster every session so migrations
run from scratch. Tests that use it are marked `integration` automatically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from ari_app.sandbox import Sandbox

log = logging.getLogger("tests.sandbox")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(
        os.environ.get("ARI_APP_TEST_INSTANCE", "test"),
        ari_port=int(os.environ.get("ARI_APP_TEST_ARI_PORT", "28088")),
        pg_port=int(os.environ.get("ARI_APP_TEST_PG_PORT", "25433")),
    )
    # A cluster left by an interrupted session is stopped and dropped: start from nothing.
    sb.destroy_postgres()
    sb.up()
    try:
        yield sb
    finally:
        sb.down()
        sb.destroy_postgres()


# --- db: function-scoped asyncpg connection to sandbox.info.database_url (the store's fixture) ---
