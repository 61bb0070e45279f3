"""`gateway-daemon`: the headless server and runner."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .config import ConfigError, load_config, show


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"gateway-daemon: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gateway-daemon", description="Automation gateway server and runner.")
    parser.add_argument("--config", metavar="PATH", help="gateway.conf to use")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    config = verbs.add_parser("config", help="print the effective configuration and where each value comes from")
    config.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="gateway.conf to use")
    config.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway-daemon: {exc}", file=sys.stderr)
        return 2
    if args.verb == "config":
        print(show(config, args.output), end="")
        return 0
    print(
        f"gateway-daemon: mode {config.mode}: serving is not available in this version yet; "
        "`gateway-daemon config` shows the configuration",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
