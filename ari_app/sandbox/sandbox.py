"""One command for a stock Asterisk 22 + a PostgreSQL cluster: the project's sandbox.

    sb = Sandbox("dev")           # ARI on 127.0.0.1:18088, PostgreSQL on 127.0.0.1:15433
    info = sb.up()                # idempotent; a second up() on a running sandbox takes a second
    settings = info.settings()    # ari_app.settings.Settings pointing at it
    sb.down()
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ari_app.sandbox._proc import SandboxError, listeners_of
from ari_app.sandbox.asterisk import INSTANCES_DIR, AsteriskInstance, default_root, ensure_root
from ari_app.sandbox.postgres import DEFAULT_PG_BASE, PgCluster
from ari_app.sandbox.sounds import ensure_sounds

log = logging.getLogger("ari_app.sandbox")

ARI_USER = "ari_app"
STATE_FILE = "sandbox.json"


@dataclass
class SandboxInfo:
    instance: str
    ari_url: str
    ari_user: str
    ari_password: str
    app_name: str
    database_url: str
    asterisk_root: Path
    http_port: int
    pg_port: int

    def __repr__(self) -> str:  # never show the password
        return (
            f"SandboxInfo(instance={self.instance!r}, ari_url={self.ari_url!r}, ari_user={self.ari_user!r}, "
            f"ari_password='***', app_name={self.app_name!r}, database_url={self.database_url!r}, "
            f"asterisk_root={str(self.asterisk_root)!r}, http_port={self.http_port}, pg_port={self.pg_port})"
        )

    def settings(self, **overrides: Any) -> Any:
        """ari_app.settings.Settings for this sandbox; keyword arguments override any field."""
        from ari_app.settings import Settings

        values: dict[str, Any] = {
            "ari_url": self.ari_url,
            "ari_user": self.ari_user,
            "ari_password": self.ari_password,
            "database_url": self.database_url,
            "app_name": self.app_name,
        }
        values.update(overrides)
        return Settings(**values)

    def env(self) -> dict[str, str]:
        """The ARI_APP_* environment variables that point the app at this sandbox."""
        return {
            "ARI_APP_ARI_URL": self.ari_url,
            "ARI_APP_ARI_USER": self.ari_user,
            "ARI_APP_ARI_PASSWORD": self.ari_password,
            "ARI_APP_APP_NAME": self.app_name,
            "ARI_APP_DATABASE_URL": self.database_url,
        }


class Sandbox:
    def __init__(
        self,
        instance: str = "dev",
        ari_port: int = 18088,
        pg_port: int = 15433,
        app_name: str = "ari-app",
        ari_password: str | None = None,
        *,
        pg_data_dir: Path | None = None,
        root: Path | None = None,
    ) -> None:
        self.instance = instance
        self.ari_port = ari_port
        self.pg_port = pg_port
        self.app_name = app_name
        self.root = (root or default_root()).absolute()
        self._password = ari_password
        self.pg = PgCluster(pg_data_dir or DEFAULT_PG_BASE / instance, pg_port)
        self._asterisk: AsteriskInstance | None = None

    @classmethod
    def for_instance(
        cls,
        instance: str = "dev",
        *,
        ari_port: int | None = None,
        pg_port: int | None = None,
        app_name: str | None = None,
        root: Path | None = None,
    ) -> Sandbox:
        """The sandbox as an earlier up() of that instance left it (its ports, app name, data
        dir), with the given values overriding; the defaults for an instance never started."""
        root = (root or default_root()).absolute()
        saved: dict[str, Any] = {}
        try:
            saved = json.loads((root / INSTANCES_DIR / instance / STATE_FILE).read_text())
        except (OSError, ValueError):
            pass
        kwargs: dict[str, Any] = {}
        for key, value in (("ari_port", ari_port), ("pg_port", pg_port), ("app_name", app_name)):
            if value is not None:
                kwargs[key] = value
            elif key in saved:
                kwargs[key] = saved[key]
        if "pg_data_dir" in saved:
            kwargs["pg_data_dir"] = Path(saved["pg_data_dir"])
        return cls(instance, root=root, **kwargs)

    # --- parts ---------------------------------------------------------------------------------

    @property
    def instance_dir(self) -> Path:
        return self.root / INSTANCES_DIR / self.instance

    def _password_file(self) -> Path:
        return self.instance_dir / "ari-password"

    def ari_password(self) -> str:
        """The ARI password: the one given, else the one stored by an earlier up(), else a new one."""
        if self._password is None:
            path = self._password_file()
            try:
                self._password = path.read_text().strip() or None
            except OSError:
                self._password = None
            if self._password is None:
                self._password = secrets.token_urlsafe(18)
        return self._password

    def _store_password(self) -> None:
        password = self.ari_password()  # before the file is opened (and truncated)
        path = self._password_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")

    @property
    def asterisk(self) -> AsteriskInstance:
        if self._asterisk is None:
            self._asterisk = AsteriskInstance(
                self.root,
                self.instance,
                ari_port=self.ari_port,
                ari_user=ARI_USER,
                ari_password=self.ari_password(),
                app_name=self.app_name,
            )
        return self._asterisk

    @property
    def info(self) -> SandboxInfo:
        return SandboxInfo(
            instance=self.instance,
            ari_url=f"http://127.0.0.1:{self.ari_port}",
            ari_user=ARI_USER,
            ari_password=self.ari_password(),
            app_name=self.app_name,
            database_url=self.pg.database_url,
            asterisk_root=self.root,
            http_port=self.ari_port,
            pg_port=self.pg_port,
        )

    # --- lifecycle -----------------------------------------------------------------------------

    def build(self) -> Path:
        """Build (or reuse) the cached root and the sounds in it."""
        ensure_root(self.root)
        ensure_sounds(self.root)
        return self.root

    def up(self, *, timeout: float = 60.0) -> SandboxInfo:
        """Start whatever is not running; idempotent. Returns how to reach the sandbox."""
        started = time.monotonic()
        self.build()
        self._store_password()
        (self.instance_dir / STATE_FILE).write_text(json.dumps({
            "ari_port": self.ari_port,
            "pg_port": self.pg_port,
            "app_name": self.app_name,
            "pg_data_dir": str(self.pg.data_dir),
        }, indent=2) + "\n")
        ast = self.asterisk
        changed = ast.render()
        if ast.is_running():
            if changed:
                log.info("asterisk %s: configuration changed, restarting", self.instance)
                ast.stop()
                ast.start(timeout=timeout)
            else:
                ast.wait_ready(timeout=timeout)
        else:
            ast.start(timeout=timeout)
        self._check_loopback_only()
        self.start_postgres()
        self.pg.ensure_database()
        self.migrate()
        log.info("sandbox %s up in %.1fs", self.instance, time.monotonic() - started)
        return self.info

    def down(self) -> None:
        self.asterisk.stop()
        self.pg.stop()

    def status(self) -> dict[str, Any]:
        ast = self.asterisk
        pid = ast.pid()
        return {
            "instance": self.instance,
            "asterisk_root": str(self.root),
            "root_ready": (self.root / ".ari-app-root").is_file(),
            "asterisk_pid": pid,
            "asterisk_running": pid is not None,
            "ari_url": self.info.ari_url,
            "ari_ok": pid is not None and ast.ari_status() == 200,
            "app_name": self.app_name,
            "postgres_running": self.pg.is_running(),
            "postgres_data_dir": str(self.pg.data_dir),
            "database_url": self.pg.database_url,
            "asterisk_log": str(ast.log_file),
        }

    # --- Asterisk ------------------------------------------------------------------------------

    def asterisk_cli(self, command: str) -> str:
        return self.asterisk.cli(command)

    def restart_asterisk(self, *, timeout: float = 60.0) -> None:
        """Stop Asterisk (all calls die) and start it again; returns once ARI answers."""
        self.asterisk.stop()
        self.asterisk.render()
        self.asterisk.start(timeout=timeout)

    def reload_dialplan(self) -> None:
        """Copy dialplan/ (and re-render the templates) into the instance, then `dialplan reload`."""
        self.asterisk.render()
        self.asterisk.cli("dialplan reload")

    def _check_loopback_only(self) -> None:
        pid = self.asterisk.pid()
        if pid is None:
            return
        exposed = [a for a in listeners_of(pid) if not a.startswith(("127.", "[::1]"))]
        if exposed:
            raise SandboxError(f"asterisk {self.instance} listens beyond loopback: {exposed}")

    # --- PostgreSQL ----------------------------------------------------------------------------

    def stop_postgres(self) -> None:
        self.pg.stop()

    def start_postgres(self) -> None:
        self.pg.start()

    def destroy_postgres(self) -> None:
        """Stop PostgreSQL and delete its data dir (the next up() starts from an empty cluster)."""
        self.pg.destroy()

    def migrate(self) -> None:
        """Apply the app's SQL migrations, if the store module that does it exists yet."""
        name = "ari_app.store.migrate"
        if importlib.util.find_spec(name) is None:
            log.info("no %s yet: skipping migrations", name)
            return
        module = importlib.import_module(name)
        apply = getattr(module, "apply_migrations_sync", None)
        if apply is None:
            log.info("%s has no apply_migrations_sync yet: skipping migrations", name)
            return
        applied = _outside_event_loop(lambda: apply(self.pg.database_url))
        log.info("migrations applied: %s", applied or "none new")


def _outside_event_loop(fn: Any) -> Any:
    """Run fn() here, or in a helper thread if this thread is running an event loop (fn may use
    asyncio.run, which refuses to nest)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    t = threading.Thread(target=target, name="sandbox-migrate")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


__all__ = ["Sandbox", "SandboxInfo", "SandboxError"]
