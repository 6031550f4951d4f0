"""A stock Asterisk 22 from a cached Debian sid root, several instances side by side.

The root is built once with debootstrap (no mirror argument: debootstrap's own default) and
cached outside the repo. Each instance lives in ROOT/srv/ari-app/<instance>/ with its own
etc/lib/db/run/log/spool/cache dirs; the read-only parts of the install (binaries, modules,
sounds, music on hold) are shared. An instance runs as
``chroot ROOT /usr/sbin/asterisk -f -U asterisk -G asterisk -C /srv/ari-app/<instance>/etc/asterisk.conf``.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from string import Template

from ari_app import PROJECT_ROOT
from ari_app.sandbox._proc import (
    SandboxError,
    ensure_apt_packages,
    pid_alive,
    pid_cmdline,
    run,
    tail_file,
    terminate,
    wait_pid_exit,
    wait_port_free,
)

log = logging.getLogger("ari_app.sandbox")

DEFAULT_ROOT = Path("/var/cache/ari-app/rootfs")
ROOT_ENV = "ARI_APP_SANDBOX_CACHE"
DIALPLAN_ENV = "ARI_APP_SANDBOX_DIALPLAN"
ROOT_PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en-wav", "asterisk-moh-opsound-wav")
READY_MARK = ".ari-app-root"
INSTANCES_DIR = "srv/ari-app"
INSTANCE_SUBDIRS = ("etc", "lib", "db", "run", "log", "spool", "cache")
ASTERISK_USER = "asterisk"

# The placeholders dialplan/etc/*.conf may use. docker/asterisk/entrypoint.sh substitutes the
# same list (tests/unit/test_sandbox_templates.py keeps the two in step).
TEMPLATE_VARS = (
    "ARI_BINDADDR",
    "ARI_PORT",
    "ARI_USER",
    "ARI_PASSWORD",
    "APP_NAME",
    "AST_ETC_DIR",
    "AST_MOD_DIR",
    "AST_VARLIB_DIR",
    "AST_DB_DIR",
    "AST_SPOOL_DIR",
    "AST_RUN_DIR",
    "AST_LOG_DIR",
    "AST_CACHE_DIR",
)


def default_root() -> Path:
    value = os.environ.get(ROOT_ENV)
    return Path(value) if value else DEFAULT_ROOT


def dialplan_dir() -> Path:
    """The repo's dialplan/ folder (templates in dialplan/etc/, the dialplan in dialplan/*.conf)."""
    value = os.environ.get(DIALPLAN_ENV)
    path = Path(value) if value else PROJECT_ROOT / "dialplan"
    if not (path / "extensions.conf").is_file():
        raise SandboxError(f"no dialplan at {path} (set {DIALPLAN_ENV} to the repo's dialplan/ folder)")
    return path


# --------------------------------------------------------------------------------------------
# The cached root
# --------------------------------------------------------------------------------------------


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def root_ready(root: Path) -> bool:
    return (root / READY_MARK).is_file() and (root / "usr/sbin/asterisk").is_file()


def ensure_root(root: Path | None = None) -> Path:
    """Build the Debian sid root with Asterisk unless it is cached already. Returns its path.

    The build goes into a temp dir beside the root and is renamed into place only once complete,
    so an interrupted build never leaves a half root. A root made by hand (asterisk installed,
    no marker) is adopted as it is.
    """
    root = (root or default_root()).absolute()
    if root_ready(root):
        return root
    with _locked(root.parent / f".{root.name}.lock"):
        if root_ready(root):
            return root
        if (root / "usr/sbin/asterisk").is_file():
            log.info("adopting the existing root %s", root)
            _prepare_root(root)
            return root
        if root.exists():
            raise SandboxError(f"{root} exists but holds no Asterisk; remove it or choose another root")
        for stale in root.parent.glob(f".{root.name}.build-*"):
            log.info("removing an interrupted build %s", stale)
            _remove_build_dir(stale)
        ensure_apt_packages(["debootstrap"], commands=["debootstrap"])
        tmp = root.parent / f".{root.name}.build-{os.getpid()}"
        log.info("building the Asterisk root in %s (debootstrap sid, about a minute)", root)
        started = time.monotonic()
        try:
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(ROOT_PACKAGES),
                    "sid",
                    tmp,
                ],
                timeout=1800,
            )
            run(["chroot", tmp, "apt-get", "clean"], timeout=120)
            _prepare_root(tmp)
            os.rename(tmp, root)
        except BaseException:
            _remove_build_dir(tmp)
            raise
        log.info("root ready in %.0fs", time.monotonic() - started)
        return root


def _remove_build_dir(path: Path) -> None:
    """Delete a failed build, unmounting first whatever debootstrap left mounted in it (/proc...)."""
    prefix = os.fspath(path.absolute()) + "/"
    with open("/proc/mounts") as fh:
        mounts = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for mnt in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", mnt], check=False, timeout=30)
    with open("/proc/mounts") as fh:
        if any(line.split()[1].startswith(prefix) for line in fh):
            raise SandboxError(f"{path} still has mounts inside; not deleting it")
    shutil.rmtree(path, ignore_errors=True)


def _prepare_root(root: Path) -> None:
    (root / INSTANCES_DIR).mkdir(parents=True, exist_ok=True)
    version = run(["chroot", root, "/usr/sbin/asterisk", "-V"], timeout=60).stdout.strip()
    (root / READY_MARK).write_text(f"{version}\npackages: {' '.join(ROOT_PACKAGES)}\n")


def asterisk_ids(root: Path) -> tuple[int, int]:
    """uid/gid of the asterisk user *inside* the root (read from its own passwd/group)."""
    uid = gid = None
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == ASTERISK_USER:
            uid, gid = int(parts[2]), int(parts[3])
    if uid is None or gid is None:
        raise SandboxError(f"no user {ASTERISK_USER!r} in {root}/etc/passwd")
    return uid, gid


def modules_dir(root: Path) -> str:
    """The modules folder as seen inside the root, e.g. /usr/lib/x86_64-linux-gnu/asterisk/modules."""
    found = sorted(root.glob("usr/lib/*/asterisk/modules"))
    if not found:
        raise SandboxError(f"no asterisk modules folder under {root}/usr/lib")
    return "/" + str(found[0].relative_to(root))


def render_templates(src: Path, values: Mapping[str, str]) -> dict[str, str]:
    """Render dialplan/etc/*.conf with string.Template; an unknown placeholder is an error."""
    out: dict[str, str] = {}
    for path in sorted(src.glob("*.conf")):
        try:
            out[path.name] = Template(path.read_text()).substitute(values)
        except (KeyError, ValueError) as exc:
            raise SandboxError(f"{path}: bad placeholder {exc}") from None
    return out


# --------------------------------------------------------------------------------------------
# One instance
# --------------------------------------------------------------------------------------------


class AsteriskInstance:
    def __init__(
        self,
        root: Path,
        name: str,
        *,
        ari_port: int,
        ari_user: str,
        ari_password: str,
        app_name: str,
    ) -> None:
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise SandboxError(f"instance name must be letters, digits, - or _: {name!r}")
        self.root = root
        self.name = name
        self.ari_port = ari_port
        self.ari_user = ari_user
        self.ari_password = ari_password
        self.app_name = app_name
        self.chroot_dir = f"/{INSTANCES_DIR}/{name}"
        self.host_dir = root / INSTANCES_DIR / name
        self.conf = f"{self.chroot_dir}/etc/asterisk.conf"
        self.pid_file = self.host_dir / "asterisk.pid"
        self.log_file = self.host_dir / "log" / "messages.log"
        self.out_file = self.host_dir / "log" / "asterisk.out"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.ari_port}"

    # --- config --------------------------------------------------------------------------

    def template_values(self) -> dict[str, str]:
        d = self.chroot_dir
        return {
            "ARI_BINDADDR": "127.0.0.1",
            "ARI_PORT": str(self.ari_port),
            "ARI_USER": self.ari_user,
            "ARI_PASSWORD": self.ari_password,
            "APP_NAME": self.app_name,
            "AST_ETC_DIR": f"{d}/etc",
            "AST_MOD_DIR": modules_dir(self.root),
            "AST_VARLIB_DIR": f"{d}/lib",
            "AST_DB_DIR": f"{d}/db",
            "AST_SPOOL_DIR": f"{d}/spool",
            "AST_RUN_DIR": f"{d}/run",
            "AST_LOG_DIR": f"{d}/log",
            "AST_CACHE_DIR": f"{d}/cache",
        }

    def render(self) -> bool:
        """Write the instance's config (templates + dialplan). True if anything changed."""
        src = dialplan_dir()
        files = render_templates(src / "etc", self.template_values())
        for path in sorted(src.glob("*.conf")):
            if path.name in files:
                raise SandboxError(f"{path.name} is both a template and a dialplan file")
            files[path.name] = path.read_text()
        uid, gid = asterisk_ids(self.root)
        for sub in INSTANCE_SUBDIRS:
            p = self.host_dir / sub
            p.mkdir(parents=True, exist_ok=True)
        os.chmod(self.host_dir, 0o755)
        changed = False
        etc = self.host_dir / "etc"
        for name, text in files.items():
            target = etc / name
            if target.is_file() and target.read_text() == text:
                continue
            changed = True
            fd, tmp = tempfile.mkstemp(dir=etc, prefix=f".{name}.")
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.chmod(tmp, 0o640)
            os.chown(tmp, 0, gid)
            os.replace(tmp, target)
        for stale in etc.glob("*.conf"):
            if stale.name not in files:
                stale.unlink()
                changed = True
        for sub in INSTANCE_SUBDIRS:
            if sub == "etc":
                os.chown(self.host_dir / sub, 0, gid)
                os.chmod(self.host_dir / sub, 0o750)
                continue
            # Only the dir: what Asterisk writes inside is its own already (and a spool full
            # of recordings must not make every up() slow).
            os.chown(self.host_dir / sub, uid, gid)
        return changed

    def config_digest(self) -> str:
        h = hashlib.sha256()
        for p in sorted((self.host_dir / "etc").glob("*.conf")):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
        return h.hexdigest()

    # --- process ---------------------------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of this instance's Asterisk if it is running, else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid_alive(pid) and self.conf in pid_cmdline(pid):
            return pid
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, *, timeout: float = 60.0) -> int:
        """Start Asterisk detached from the caller and wait until ARI answers."""
        if self.is_running():
            raise SandboxError(f"asterisk instance {self.name} is already running")
        if not wait_port_free(self.ari_port, 5.0):
            raise SandboxError(
                f"port {self.ari_port} on 127.0.0.1 is taken by another process; "
                "choose another ARI port (--ari-port)"
            )
        # The previous run's control socket would make -rx talk to nobody; asterisk recreates it.
        for leftover in ("asterisk.ctl", "asterisk.pid"):
            (self.host_dir / "run" / leftover).unlink(missing_ok=True)
        self.out_file.parent.mkdir(parents=True, exist_ok=True)
        # One run per log file, so a failure shows this start's messages, not an older one's.
        for current in (self.log_file, self.out_file):
            if current.exists():
                os.replace(current, current.with_name(current.name + ".1"))
        with open(self.out_file, "ab") as out:
            proc = subprocess.Popen(
                [
                    "chroot",
                    os.fspath(self.root),
                    "/usr/sbin/asterisk",
                    "-f",
                    "-n",
                    "-U",
                    ASTERISK_USER,
                    "-G",
                    ASTERISK_USER,
                    "-C",
                    self.conf,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/"},
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self._proc = proc
        log.info("asterisk %s started (pid %d), waiting for ARI on %s", self.name, proc.pid, self.ari_url)
        self.wait_ready(timeout=timeout)
        return proc.pid

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        first_answer: float | None = None
        while time.monotonic() < deadline:
            # Right after start, our own child tells reliably whether it still runs (its
            # /proc cmdline is briefly unreadable while chroot execs asterisk).
            proc = self._proc
            alive = proc.poll() is None if proc is not None else self.pid() is not None
            if not alive:
                code = f" with status {proc.returncode}" if proc is not None else ""
                raise SandboxError(f"asterisk {self.name} exited during start-up{code}.\n{self.log_tail()}")
            status = self.ari_status()
            if status == 200:
                return
            if status == 401:
                raise SandboxError(
                    f"ARI at {self.ari_url} refused user {self.ari_user!r}: is another Asterisk with "
                    "another password on that port?"
                )
            if status is not None:
                # HTTP is up but ARI is not (yet): res_ari loads after the HTTP server. Give it
                # a few seconds, then say so rather than wait out the whole timeout.
                first_answer = first_answer or time.monotonic()
                if time.monotonic() - first_answer > 10:
                    raise SandboxError(
                        f"HTTP on {self.ari_url} answers {status} but ARI does not (module not "
                        f"loaded?).\n{self.log_tail()}"
                    )
            last = f"HTTP {status}" if status else "no answer"
            time.sleep(0.1)
        raise SandboxError(
            f"ARI at {self.ari_url} did not answer 200 within {timeout:.0f}s ({last}).\n{self.log_tail()}"
        )

    def ari_status(self) -> int | None:
        """HTTP status of GET /ari/asterisk/info, or None when nothing answers."""
        token = base64.b64encode(f"{self.ari_user}:{self.ari_password}".encode()).decode()
        req = urllib.request.Request(
            f"{self.ari_url}/ari/asterisk/info", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        return (
            f"--- {self.log_file} ---\n{tail_file(self.log_file, lines)}\n"
            f"--- {self.out_file} ---\n{tail_file(self.out_file, lines)}"
        )

    def cli(self, command: str, *, timeout: float = 30) -> str:
        """Run one Asterisk CLI command over the instance's control socket."""
        proc = run(
            ["chroot", self.root, "/usr/sbin/asterisk", "-C", self.conf, "-rx", command],
            timeout=timeout,
        )
        return proc.stdout

    def stop(self, *, timeout: float = 15.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        try:
            self.cli("core stop now", timeout=10)
        except SandboxError as exc:
            log.warning("asterisk %s: 'core stop now' failed (%s); terminating pid %d", self.name, exc, pid)
        if not wait_pid_exit(pid, timeout):
            log.warning("asterisk %s did not stop in %.0fs; terminating pid %d", self.name, timeout, pid)
            terminate(pid)
        if self._proc is not None:
            self._proc.poll()
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        # The pid can look gone while the exiting process still holds its sockets: a restart
        # right after would find the port taken.
        if not wait_port_free(self.ari_port, 10.0):
            log.warning("asterisk %s: port %d still taken after the process exited", self.name, self.ari_port)
        log.info("asterisk %s stopped", self.name)
