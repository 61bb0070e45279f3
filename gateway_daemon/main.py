"""`gateway-daemon`: the headless server and runner."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import NoReturn

from .config import ConfigError, load_config, show


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"gateway-daemon: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gateway-daemon", description="Automation gateway server and runner. "
                     "With no verb it serves in the mode the configuration names.")
    parser.add_argument("--config", metavar="PATH", help="gateway.conf to use")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    config = verbs.add_parser("config", help="print the effective configuration and where each value comes from")
    config.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="gateway.conf to use")
    config.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    user = verbs.add_parser("user", help="recover access on the server host")
    user.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="gateway.conf to use")
    user_verbs = user.add_subparsers(dest="user_verb", metavar="reset-password", required=True, parser_class=_Parser)
    reset = user_verbs.add_parser("reset-password", help="give a user a new password (random unless on stdin)")
    reset.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="gateway.conf to use")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")
    return parser


def setup_logging(config) -> None:
    """[log]: the console, gateway.log under server_dir when file_enabled, text or JSON, the timestamps' zone."""
    from .log_setup import setup_daemon_logging

    setup_daemon_logging(config)
    log = logging.getLogger(f"gateway.{config.mode}")
    log.debug("using configuration file %s (mode %s, data_dir %s)", config.file or "(none: defaults)", config.mode,
              config.data_dir)
    for warning in config.warnings:  # IAG 5 settings accepted here and not used
        log.warning("%s", warning)
    if config.get("connect", "enabled"):
        log.warning("[connect] enabled = true: this gateway does not connect to Itential Platform or Gateway "
                    "Manager; the [connect] settings are accepted and not used")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway-daemon: {exc}", file=sys.stderr)
        return 2
    if args.verb == "config":
        from .bootstrap import sandbox_note

        print(show(config, args.output, sandbox_note(config)), end="")
        return 0
    from .core.errors import GatewayError

    try:
        if args.verb == "user":
            return asyncio.run(_reset_password(config, args))
        if config.mode in ("server", "runner"):
            from .bootstrap import serve_daemon

            setup_logging(config)
            asyncio.run(serve_daemon(config))
            return 0
    except ConfigError as exc:  # gateway.log cannot be written
        print(f"gateway-daemon: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"gateway-daemon: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(
        f"gateway-daemon: mode {config.mode}: "
        + "gateway-daemon serves in server (or runner) mode; local and client modes are for `gateway`",
        file=sys.stderr,
    )
    return 1


async def _reset_password(config, args) -> int:
    from .bootstrap import reset_password

    password = None
    if args.password_stdin:
        lines = sys.stdin.read().splitlines()
        password = lines[0] if lines else ""
    logging.getLogger("gateway").addHandler(logging.NullHandler())  # what matters is printed below
    signed, chosen = await reset_password(config, args.name, password)
    if signed:
        print(f"this store was made before its records carried MACs: signed {len(signed)} of them once "
              f"({', '.join(signed)})")
    if password is None:
        print(f"new temporary password for {args.name}: {chosen}")
        print("it must be changed at the next login (gateway login --change-password); their API keys are revoked")
    else:
        print(f"password of {args.name} set; their API keys are revoked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
