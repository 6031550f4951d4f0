"""`ari-app` command line: serve, migrate, sandbox, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from ari_app.logs import setup_logging


def _load_settings(overrides: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    from ari_app.settings import Settings
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        print("invalid settings (env ARI_APP_* or the TOML file in ARI_APP_CONFIG):\n" + "\n".join(lines),
              file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from ari_app.service import run_service
    settings = _load_settings()
    setup_logging(settings.log_level)
    return asyncio.run(run_service(settings))


def cmd_migrate(args: argparse.Namespace) -> int:
    from ari_app.store.migrate import apply_migrations_sync
    settings = _load_settings()
    setup_logging(settings.log_level)
    try:
        applied = apply_migrations_sync(settings.database_url.get_secret_value())
    except OSError as exc:
        print(f"cannot reach the database: {exc}", file=sys.stderr)
        return 2
    print(f"applied migrations: {applied}" if applied else "database schema is up to date")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ari_app.sandbox.__main__ import main as sandbox_main
    return sandbox_main(args.sandbox_args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ari_app.demo import main as demo_main
    return demo_main(args.demo_args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ari-app", description="Contact-center engine for Asterisk over ARI")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the app (settings from ARI_APP_* env or ARI_APP_CONFIG TOML)").set_defaults(fn=cmd_serve)
    sub.add_parser("migrate", help="apply pending SQL migrations").set_defaults(fn=cmd_migrate)
    p = sub.add_parser("sandbox", help="local Asterisk 22 + PostgreSQL: up | down | status", add_help=False)
    p.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_sandbox)
    p = sub.add_parser("demo", help="run a simulated contact center on the sandbox", add_help=False)
    p.add_argument("demo_args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_demo)
    argv = list(sys.argv[1:] if argv is None else argv)
    # sandbox and demo own their arguments (argparse's REMAINDER would swallow none of `--help`).
    if argv and argv[0] == "sandbox":
        return cmd_sandbox(argparse.Namespace(sandbox_args=argv[1:]))
    if argv and argv[0] == "demo":
        return cmd_demo(argparse.Namespace(demo_args=argv[1:]))
    args = parser.parse_args(argv)
    logging.captureWarnings(True)
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
