"""The argument grammar of `gateway`: the same words as the gateway it re-imagines."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from gateway_daemon.core.services import SERVICE_TYPES

from gateway_daemon.console import FORMATS

KIND_WORDS = {
    "repository": "repository", "repositories": "repository", "repo": "repository", "repos": "repository",
    "decorator": "decorator", "decorators": "decorator",
    "service": "service", "services": "service", "svc": "service",
    "secret": "secret", "secrets": "secret",
    "run": "run", "runs": "run",
    "user": "user", "users": "user",
    "runner": "runner", "runners": "runner",
}


class UsageError(Exception):
    """Bad usage: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def common(parser: argparse.ArgumentParser, output: bool = False) -> None:
    """Options every command accepts. SUPPRESS keeps a subcommand from resetting a global value."""
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="gateway.conf to use (else $GATEWAY_CONFIG, ./gateway.conf, ~/.gateway/, /etc/gateway/)")
    parser.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS,
                        help="a [client:NAME] section of the config to connect with")
    if output:
        parser.add_argument("-o", "--output", choices=FORMATS, default="table", help="output format")


def _sub(subparsers, name: str, help_text: str, output: bool = False, **kwargs) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text, **kwargs)
    common(parser, output)
    return parser


def _repository_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--url", required=create, help="https://..., ssh://... or user@host:path, or a local path")
    parser.add_argument("--reference", help="branch, tag or commit (default: the remote's HEAD)")
    parser.add_argument("--private-key-name", metavar="SECRET", help="secret holding the ssh private key")
    parser.add_argument("--description")
    parser.add_argument("--tag", action="append", metavar="TAG", help="repeatable")


def _service_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--repository", required=create, metavar="REPO")
    parser.add_argument("--working-dir", metavar="DIR", help="directory inside the repository (default: its root)")
    parser.add_argument("--filename", metavar="FILE", help="script, playbook or executable to run")
    parser.add_argument("--decorator", metavar="NAME", help="JSON Schema the inputs must satisfy")
    parser.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment variable; repeatable")
    parser.add_argument("--secret", action="append", metavar="name=SECRET,type=env,target=ENV_VAR",
                        help="secret put into the environment; repeatable")
    parser.add_argument("--runtime-arg", action="append", metavar="ARG",
                        help="extra argument for the runtime (for example an inventory); repeatable")
    parser.add_argument("--requirements-file", metavar="FILE",
                        help="requirements file (default: requirements.txt / requirements.yml when present)")
    parser.add_argument("--tag", action="append", metavar="TAG", help="repeatable")
    parser.add_argument("--runner-tag", action="append", metavar="TAG",
                        help="with runners: run only on a runner that has this tag; repeatable")
    parser.add_argument("--arg-format", metavar="FORMAT", help="how an executable gets inputs (default '--{key}={value}')")
    parser.add_argument("--timeout", type=int, metavar="SECONDS", help="run time limit")
    parser.add_argument("--description")


def _user_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--admin", action="store_true", help="the user may manage users")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")


def _decorator_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--schema", required=create, metavar="FILE", help="JSON or YAML file with the schema; - for stdin")
    parser.add_argument("--description")


def _secret_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--value", help="the value (visible in shell history and ps; prefer --value-file or stdin)")
    source.add_argument("--value-file", metavar="FILE", help="read the value from FILE (- for stdin)")
    parser.add_argument("--description")


_FLAGS = {"repository": _repository_flags, "service": _service_flags, "decorator": _decorator_flags,
          "secret": _secret_flags}


def build_parser() -> Parser:
    parser = Parser(
        prog="gateway",
        description="Automation gateway: run with no arguments for the terminal UI, or use a verb below.",
    )
    common(parser)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)

    create = _sub(verbs, "create", "create a repository, decorator, service or secret")
    create_kinds = create.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    for kind in ("repository", "decorator", "secret"):
        sub = _sub(create_kinds, kind, f"create a {kind}", output=True)
        sub.add_argument("name")
        _FLAGS[kind](sub, create=True)
    user = _sub(create_kinds, "user", "create a user (client mode, admins only)", output=True)
    user.add_argument("name")
    _user_flags(user)
    service = _sub(create_kinds, "service", "create a service", output=True)
    service.add_argument("type", choices=SERVICE_TYPES, metavar="TYPE", help=" | ".join(SERVICE_TYPES))
    service.add_argument("name")
    _service_flags(service, create=True)

    get = _sub(verbs, "get", "list resources or runs", output=True)
    get.add_argument("kind", metavar="KIND", help="repositories | decorators | services | secrets | runs | users | runners")
    get.add_argument("--service", metavar="NAME", help="runs: only of this service")
    get.add_argument("--status", metavar="STATUS", help="runs: only with this status")
    get.add_argument("--runner", metavar="ID", help="runs: only those this runner executed")
    get.add_argument("--limit", type=int, default=50, metavar="N", help="runs: at most N, newest first (0: all)")

    run = _sub(verbs, "run", "run a service and stream its output")
    run_kinds = run.add_subparsers(dest="kind", metavar="service", required=True, parser_class=Parser)
    run_service = _sub(run_kinds, "service", "run a service", output=True)
    run_service.add_argument("name")
    run_service.add_argument("--set", action="append", metavar="KEY=VALUE", help="an input; repeatable")
    run_service.add_argument("--set-secret", action="append", metavar="name=SECRET,type=env,target=ENV_VAR",
                             help="a secret for this run, over the service's; repeatable")
    run_service.add_argument("--timeout", type=int, metavar="SECONDS", help="time limit for this run")

    logs = _sub(verbs, "logs", "print a run's output")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")

    cancel = _sub(verbs, "cancel", "cancel a queued or running run")
    cancel_kinds = cancel.add_subparsers(dest="kind", metavar="run", required=True, parser_class=Parser)
    cancel_run = _sub(cancel_kinds, "run", "cancel a run")
    cancel_run.add_argument("run_id", metavar="RUN_ID")

    hostkeys = _sub(verbs, "hostkeys", "SSH host keys the gateway trusts for git over ssh")
    hostkey_verbs = hostkeys.add_subparsers(dest="hostkeys_verb", metavar="add|get|delete", required=True,
                                            parser_class=Parser)
    add = _sub(hostkey_verbs, "add", "fetch a host's keys (ssh-keyscan) and trust them")
    add.add_argument("host")
    add.add_argument("--port", type=int, default=22)
    _sub(hostkey_verbs, "get", "list the trusted host keys", output=True)
    remove = _sub(hostkey_verbs, "delete", "stop trusting a host's keys")
    remove.add_argument("host")
    remove.add_argument("--port", type=int, default=22)

    describe = _sub(verbs, "describe", "show one resource", output=True)
    describe.add_argument("kind", metavar="KIND")
    describe.add_argument("name")
    describe.add_argument("--reveal", action="store_true", help="secrets only: show the value")

    edit = _sub(verbs, "edit", "change a resource (flags as for create; list flags replace the list)")
    edit_kinds = edit.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    for kind in ("repository", "decorator", "service", "secret"):
        sub = _sub(edit_kinds, kind, f"change a {kind}", output=True)
        sub.add_argument("name")
        _FLAGS[kind](sub, create=False)
        if kind in ("repository", "service"):
            sub.add_argument("--clear", action="append", metavar="FIELD", default=[],
                             help="empty a field (for example tag, env, secret, decorator); repeatable")

    edit_user = _sub(edit_kinds, "user", "change a user (client mode, admins only)", output=True)
    edit_user.add_argument("name")
    edit_user.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None,
                           help="grant (--admin) or take away (--no-admin) admin rights")
    edit_user.add_argument("--password-stdin", action="store_true", help="set a new password read from stdin")

    login = _sub(verbs, "login", "log in to the server (client mode); the API key goes to the OS keyring")
    login.add_argument("--username", metavar="NAME")
    login.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin (with --change-password: the old, then the new, one per line)")
    login.add_argument("--change-password", action="store_true", help="set a new password (revokes every API key)")
    _sub(verbs, "logout", "log out: revoke the API key and forget it")
    _sub(verbs, "whoami", "who is logged in, to which server, until when", output=True)

    certs = _sub(verbs, "cert-gen", "make a CA, a server certificate and a client certificate for TLS")
    certs.add_argument("--dir", default="./gateway-certs", metavar="DIR", help="where to write them (default: ./gateway-certs)")
    certs.add_argument("--host", action="append", metavar="NAME",
                       help="a name or address the server is reached by; repeatable (default: localhost, 127.0.0.1)")
    certs.add_argument("--force", action="store_true", help="overwrite certificates already in DIR")

    delete = _sub(verbs, "delete", "delete a resource (refused while something uses it)")
    delete.add_argument("kind", metavar="KIND")
    delete.add_argument("name")

    db = _sub(verbs, "db", "export or import every resource (YAML)")
    db_verbs = db.add_subparsers(dest="db_verb", metavar="export|import", required=True, parser_class=Parser)
    export = _sub(db_verbs, "export", "write every resource as YAML (secrets stay encrypted)")
    export.add_argument("-o", "--output", metavar="FILE", default="-", help="file to write (default: stdout)")
    imp = _sub(db_verbs, "import", "read a YAML export (ours or the IAG 5 format); all or nothing")
    imp.add_argument("file", metavar="FILE", help="file to read (- for stdin)")
    imp.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    imp.add_argument("--strict", action="store_true", help="refuse unknown keys instead of reporting them")

    _sub(verbs, "config", "print the effective configuration and where each value comes from", output=True)
    return parser


def kind_word(word: str) -> str:
    try:
        return KIND_WORDS[word.lower()]
    except KeyError:
        raise UsageError(
            f"unknown kind {word!r}; use repositories, decorators, services, secrets, runs, users or runners"
        ) from None


# Options whose values usually start with '-' (`--runtime-arg -i`, `--arg-format '--{key}={value}'`):
# argparse would take such a value for an option, so the pair is joined as `--option=value` first.
DASH_VALUED = ("--runtime-arg", "--arg-format")


def join_dash_values(argv: list[str]) -> list[str]:
    joined: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            joined.extend(argv[index:])
            break
        if word in DASH_VALUED and index + 1 < len(argv):
            joined.append(f"{word}={argv[index + 1]}")
            index += 2
            continue
        joined.append(word)
        index += 1
    return joined


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(join_dash_values(argv))


def print_usage_error(error: UsageError) -> None:
    print(f"gateway: {error}", file=sys.stderr)
