"""A throwaway PostgreSQL cluster from the machine's own binaries (/usr/lib/postgresql/*/bin).

initdb refuses to run as root, so every server command runs as the `postgres` OS user
(runuser). The cluster listens on 127.0.0.1:<port> only, keeps its unix socket in its data dir,
trusts local connections (a dev/test cluster holds nothing worth a password) and runs with
fsync off: fast, and nothing in it has to survive a machine crash.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
from pathlib import Path

from ari_app.sandbox._proc import SandboxError, ensure_apt_packages, port_in_use, run, tail_file

log = logging.getLogger("ari_app.sandbox")

DEFAULT_PG_BASE = Path("/var/cache/ari-app/pg")
PG_OS_USER = "postgres"
PREFERRED_MAJOR = 15
ROLE = DATABASE = "ari_app"
CONF_NAME = "ari_app_sandbox.conf"


def pg_bindir() -> Path:
    """The PostgreSQL bin dir: version 15 if present, else the newest; installs postgresql if none."""
    for attempt in range(2):
        found = sorted(
            (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        )
        if found:
            for p in found:
                if p.parent.name == str(PREFERRED_MAJOR):
                    return p
            return found[-1]
        if attempt == 0:
            ensure_apt_packages(["postgresql"])
    raise SandboxError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")


def ensure_os_user() -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        log.info("creating the system user %s", PG_OS_USER)
        run(["useradd", "--system", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/bash",
             "--user-group", PG_OS_USER])
        pw = pwd.getpwnam(PG_OS_USER)
    return pw.pw_uid, pw.pw_gid


class PgCluster:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.absolute()
        self.port = port

    @property
    def database_url(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _as_postgres(self, tool: str, *args: str | os.PathLike[str], timeout: float = 120, check: bool = True):  # type: ignore[no-untyped-def]
        return run(["runuser", "-u", PG_OS_USER, "--", pg_bindir() / tool, *args], timeout=timeout, check=check)

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """initdb (once), then (every time) write our settings include for the chosen port."""
        uid, gid = ensure_os_user()
        if not self.initialized():
            if self.data_dir.exists() and any(self.data_dir.iterdir()):
                raise SandboxError(f"{self.data_dir} is not empty and holds no cluster; remove it first")
            log.info("initdb %s", self.data_dir)
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.data_dir, uid, gid)
            self._as_postgres("initdb", "-D", self.data_dir, "--auth=trust", f"--username={PG_OS_USER}",
                              "--encoding=UTF8", "--no-locale", "--no-instructions")
            with open(self.data_dir / "postgresql.conf", "a") as fh:
                fh.write(f"\ninclude_if_exists = '{CONF_NAME}'\n")
        conf = self.data_dir / CONF_NAME
        conf.write_text(
            "# Written by ari_app.sandbox on every start: a throwaway dev/test cluster.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.data_dir}'\n"
            "max_connections = 200\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
        )
        os.chown(conf, uid, gid)

    def is_running(self) -> bool:
        if not self.initialized():
            return False
        proc = self._as_postgres("pg_ctl", "-D", self.data_dir, "status", check=False, timeout=30)
        return proc.returncode == 0

    def start(self, *, timeout: float = 60) -> None:
        self.init()
        if self.is_running():
            return
        if port_in_use(self.port):
            raise SandboxError(
                f"port {self.port} on 127.0.0.1 is taken by another process; choose another PostgreSQL port (--pg-port)"
            )
        proc = self._as_postgres(
            "pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-w", "-t", str(int(timeout)), "start",
            check=False, timeout=timeout + 10,
        )
        if proc.returncode != 0:
            raise SandboxError(f"PostgreSQL in {self.data_dir} did not start.\n{tail_file(self.log_file)}")
        log.info("postgres started on 127.0.0.1:%d (%s)", self.port, self.data_dir)

    def stop(self, *, timeout: float = 60) -> None:
        if not self.is_running():
            return
        self._as_postgres("pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", str(int(timeout)), "stop",
                          timeout=timeout + 10)
        log.info("postgres stopped (%s)", self.data_dir)

    def destroy(self) -> None:
        """Stop the cluster and delete its data dir."""
        self.stop()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        proc = self._as_postgres("psql", "-h", self.data_dir, "-p", str(self.port), "-U", PG_OS_USER,
                                 "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql, timeout=60)
        return proc.stdout.strip()

    def ensure_database(self) -> None:
        """Create the role and database ari_app (owner ari_app) if missing."""
        if not re.fullmatch(r"[a-z_]+", ROLE):
            raise SandboxError("bad role name")
        if self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'") != "1":
            self.psql(f"CREATE ROLE {ROLE} LOGIN")
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") != "1":
            self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
