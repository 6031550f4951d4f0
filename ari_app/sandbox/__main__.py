"""python -m ari_app.sandbox up|down|status|build|restart|reload|cli|env|sounds [--instance NAME] ...

`up` prints the settings the app needs as shell `export ARI_APP_...=...` lines on stdout (the
password included: it is your own local sandbox), progress on stderr. Use it as
    eval "$(python -m ari_app.sandbox up)"
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ari_app.sandbox._proc import SandboxError
from ari_app.sandbox.sandbox import Sandbox
from ari_app.sandbox.sounds import write_sounds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ari_app.sandbox", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["up", "down", "status", "build", "restart", "reload", "cli", "env", "sounds"],
                   help="up: start (idempotent) and print exports; down: stop; status: JSON; "
                        "build: only build the cached root; restart: restart Asterisk; "
                        "reload: reload the dialplan; cli: run an Asterisk CLI command; "
                        "env: print the exports of a running sandbox; "
                        "sounds DIR: write the simulated customers' sounds into DIR (docker build)")
    p.add_argument("args", nargs="*", help="for cli: the Asterisk CLI command; for sounds: the dir")
    p.add_argument("--instance", default="dev", help="instance name (default: dev)")
    p.add_argument("--ari-port", type=int, help="ARI/HTTP port on 127.0.0.1 (default 18088, or the instance's last)")
    p.add_argument("--pg-port", type=int, help="PostgreSQL port on 127.0.0.1 (default 15433, or the instance's last)")
    p.add_argument("--app-name", help="Stasis application name (default ari-app)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")
    return p


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exports(sb: Sandbox) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sb.info.env().items())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    # A plain `kill` cleans up like Ctrl-C does (e.g. an interrupted root build is removed).
    signal.signal(signal.SIGTERM, _terminated)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s sandbox: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    sb = Sandbox.for_instance(args.instance, ari_port=args.ari_port, pg_port=args.pg_port,
                              app_name=args.app_name)
    try:
        if args.command == "up":
            sb.up()
            print(exports(sb))
        elif args.command == "env":
            print(exports(sb))
        elif args.command == "down":
            sb.down()
        elif args.command == "status":
            status = sb.status()
            print(json.dumps(status, indent=2))
            return 0 if status["ari_ok"] and status["postgres_running"] else 3
        elif args.command == "build":
            print(sb.build())
        elif args.command == "restart":
            sb.restart_asterisk()
        elif args.command == "reload":
            sb.reload_dialplan()
        elif args.command == "sounds":
            if len(args.args) != 1:
                print("sounds needs one argument: the target dir", file=sys.stderr)
                return 2
            write_sounds(Path(args.args[0]))
        elif args.command == "cli":
            if not args.args:
                print("cli needs a command, e.g.: cli core show channels", file=sys.stderr)
                return 2
            print(sb.asterisk_cli(" ".join(args.args)), end="")
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
