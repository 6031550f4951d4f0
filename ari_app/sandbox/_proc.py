"""Small subprocess/process helpers shared by the sandbox modules (sync, Linux only)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("ari_app.sandbox")


class SandboxError(RuntimeError):
    """A sandbox step failed; the message says which and shows the relevant log tail."""


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    timeout: float | None = 120,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; on failure raise SandboxError with the output tail."""
    args = [os.fspath(c) for c in cmd]
    try:
        # Own session: a Ctrl-C in the terminal must not reach a server started through this
        # (pg_ctl's postmaster); on our own failure or interrupt the whole group is killed.
        child = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise SandboxError(f"command not found: {args[0]}") from exc
    try:
        out, err = child.communicate(input_text, timeout=timeout)
    except BaseException as exc:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise SandboxError(f"{args[0]}: timed out after {timeout}s: {' '.join(args[:4])} ...") from None
        raise
    proc = subprocess.CompletedProcess(args, child.returncode, out, err)
    if check and proc.returncode != 0:
        raise SandboxError(
            f"{' '.join(args[:6])} exited {proc.returncode}:\n{tail_text(proc.stdout + proc.stderr)}"
        )
    return proc


def tail_text(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def tail_file(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return f"(no {path})"
    return tail_text(data, lines) or f"({path} is empty)"


_apt_updated = False


def ensure_apt_packages(packages: Sequence[str], *, commands: Sequence[str] = ()) -> None:
    """apt-get install the packages unless every command in `commands` is already on PATH."""
    global _apt_updated
    if commands and all(shutil.which(c) for c in commands):
        return
    log.info("installing host packages: %s", " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    proc = run(cmd, check=False, timeout=900, env=env)
    if proc.returncode != 0 and not _apt_updated:
        run(["apt-get", "update", "-q"], timeout=600, env=env)
        _apt_updated = True
        proc = run(cmd, check=False, timeout=900, env=env)
    if proc.returncode != 0:
        raise SandboxError(f"apt-get install {' '.join(packages)} failed:\n{tail_text(proc.stdout + proc.stderr)}")


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (reaps it if it is our own child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def pid_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode("utf-8", "replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def wait_pid_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def terminate(pid: int, *, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds. Only ever called on a pid we recorded."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not pid_alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_pid_exit(pid, wait):
            return
    raise SandboxError(f"process {pid} did not exit after SIGKILL")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_port_free(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    """True once nothing listens on the port (within `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while port_in_use(port, host):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def listeners_of(pid: int) -> list[str]:
    """Local addresses ('addr:port/proto') of the sockets process `pid` listens on (via ss)."""
    out = run(["ss", "-lntupH"], timeout=10).stdout
    found: list[str] = []
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        parts = line.split()
        found.append(f"{parts[4]}/{parts[0]}")
    return found
