"""`gateway`: the terminal UI with no arguments, scriptable verbs with some.

Exit codes: 0 success, 1 the operation failed (not found, in use, invalid),
2 bad usage or a bad configuration. Errors are one line on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# gRPC's C core logs connection trouble to stderr; the error the user sees is ours, in one line.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from gateway_daemon.config import ConfigError, load_config, show, time_zone



def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        from .local_read import answer  # `gateway get KIND` in local mode: a plain read of the store

        quick = answer(argv)
    except KeyboardInterrupt:
        print("gateway: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError:  # the full command meets it too, and says what it is in one line
        quick = None
    if quick is not None:
        return quick
    return _command(argv)


def _command(argv: list[str]) -> int:
    """Every other command line: the grammar, the configuration, the engine or the server."""
    from gateway_daemon.core import GatewayError

    from .parser import UsageError

    try:
        daemon = _daemon_command(argv)
        if daemon is not None:
            return _exec_daemon(*daemon)
        return _main(argv)
    except UsageError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gateway: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the data directory, or a file in it, cannot be used
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"gateway: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


DAEMON_MODES = ("server", "runner")


def _daemon_command(argv: list[str]) -> tuple[str, list[str]] | None:
    """`iagctl server`, `iagctl runner` and `iagctl server --recover-admin-user` (IAG 5's lines, also as
    `gateway server` ...): (the mode, gateway-daemon's arguments); None for every other command."""
    words = list(argv)
    config: list[str] = []
    while words and (words[0] == "--config" or words[0].startswith("--config=")):
        config += words[:2] if words[0] == "--config" else ["--config", words[0].split("=", 1)[1]]
        words = words[2:] if words[0] == "--config" else words[1:]
    if not words or words[0] not in DAEMON_MODES:
        return None
    from .parser import UsageError

    mode, rest, recover = words[0], words[1:], False
    while rest:
        if rest[0] in ("-h", "--help"):
            print(f"usage: {Path(sys.argv[0]).name} {mode} [--config PATH]"
                  + (" [--recover-admin-user]" if mode == "server" else "")
                  + f"\n\nStart gateway-daemon in {mode} mode (as IAG 5's `iagctl {mode}`), whatever mode the "
                  "configuration names." + ("\n--recover-admin-user: give the admin user a new temporary password on "
                                            "this host (gateway-daemon user reset-password admin)." if mode == "server"
                                            else ""))
            raise SystemExit(0)
        if rest[0] == "--recover-admin-user" and mode == "server":
            recover, rest = True, rest[1:]
        elif rest[0] == "--config" and len(rest) > 1:
            config, rest = ["--config", rest[1]], rest[2:]
        elif rest[0].startswith("--config="):
            config, rest = ["--config", rest[0].split("=", 1)[1]], rest[1:]
        else:
            flags = "--config PATH" + (" and --recover-admin-user" if mode == "server" else "")
            raise UsageError(f"{mode} takes {flags}, not {rest[0]!r}")
    return mode, [*config, *(["user", "reset-password", "admin"] if recover else [])]


def _exec_daemon(mode: str, args: list[str]) -> int:
    """Become gateway-daemon in `mode` (the same process: systemd units keep their main PID); with
    `user reset-password admin` the admin user is recovered on this host, as gateway-daemon does it."""
    env = {**os.environ, "GATEWAY_APPLICATION_MODE": mode}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "gateway_daemon.main", *args], env)
    return 1  # not reached


def _main(argv: list[str]) -> int:
    from .parser import parse

    args = parse(argv)
    if args.verb == "completion":  # from the grammar alone: no configuration needed
        from .completion import completion_script

        sys.stdout.write(completion_script(args.shell))
        return 0
    encryption_file = getattr(args, "encryption_file", None)
    if encryption_file:
        _use_encryption_file(encryption_file)
    config = load_config(getattr(args, "config", None))
    if encryption_file and config.mode == "client":
        print("gateway: note: --encryption-file is not used in client mode: the server seals and opens secrets "
              "with its own key ([secrets] encrypt_key_file there)", file=sys.stderr)
    if args.verb != "config":
        _start_logging(config, args.verb)
    if args.verb is None:
        from ..app import run_app

        return run_app(config, getattr(args, "profile", None))
    if args.verb == "config":
        from gateway_daemon.bootstrap import sandbox_note

        print(show(config, args.output, sandbox_note(config)), end="")
        if args.output == "table":
            print(_cache_line(config))
        return 0
    if args.verb == "version":
        from .completion import version_line

        print(version_line())
        if args.show_config:
            print(show(config, "table"), end="")
        return 0
    import asyncio  # not for --help, usage errors or config

    return asyncio.run(_dispatch(config, args))


def _use_encryption_file(path: str) -> None:
    """IAG 5's --encryption-file: the key file of this command, as [secrets] encrypt_key_file would name it."""
    from .parser import UsageError

    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise UsageError(f"--encryption-file {path}: not a file this user can read")
    os.environ["GATEWAY_SECRETS_ENCRYPT_KEY_FILE"] = os.path.abspath(path)


def _cache_line(config) -> str:
    """What the cached environments of this machine take (local data dir): venvs and Galaxy folders."""
    from gateway_daemon.bootstrap import cached_environments

    venvs = cached_environments(config)
    count, size = venvs.size()
    retention = config.get("application", "venv_retention_period")
    days = f"{retention / 86400:g} days" if retention >= 86400 else f"{retention / 3600:g} hours"
    return (f"cached environments: {count} in {venvs.root.parent} (venvs/, collections/), "
            f"{size / 1048576:.1f} MiB; each is removed after {days} unused")


def _start_logging(config, verb: str | None) -> None:
    """Local mode with [log] file_enabled: this command's log lines go to data_dir/gateway.log."""
    import logging

    from gateway_daemon.log_setup import setup_local_logging

    setup_local_logging(config)
    logging.getLogger("gateway.cli").info("gateway %s (configuration file %s, mode %s)", verb or "(terminal UI)",
                                          config.file or "(none: defaults)", config.mode)


async def _dispatch(config, args) -> int:
    from gateway_daemon.bootstrap import open_gateway

    from . import resources, runs
    from .parser import UsageError, kind_word

    if args.verb == "hostkeys":
        from . import hostkeys

        return await hostkeys.run(config, args)
    if args.verb in ("login", "logout", "whoami"):
        from . import session

        return await getattr(session, args.verb)(config, args)
    if args.verb == "cert-gen":
        from .certs import cert_gen

        return cert_gen(args)
    args.time_zone = time_zone(config.get("terminal", "timestamp_timezone"))  # how runs' times show
    handlers = {
        "create": resources.create, "get": resources.get, "describe": resources.describe,
        "edit": resources.edit, "delete": resources.delete,
        "run": runs.run_service, "logs": runs.logs, "cancel": runs.cancel_run, "prune": runs.prune_runs,
    }
    if args.verb == "inspect":
        from .cluster import inspect

        handlers["inspect"] = inspect
    handler = handlers.get(args.verb)
    if args.verb in ("get", "describe", "delete") and kind_word(args.kind) == "run":
        handler = {"get": runs.get_runs, "describe": runs.describe_run, "delete": runs.delete_run}[args.verb]
    if args.verb == "get" and kind_word(args.kind) == "runner":
        handler = runs.get_runners
    elif args.verb in ("describe", "delete", "create", "edit") and kind_word(args.kind) == "runner":
        raise UsageError("runners announce themselves; list them with: gateway get runners")
    if getattr(args, "kind", None) and kind_word(args.kind) == "user":
        from . import users

        handler = users.run
    elif getattr(args, "kind", None) and kind_word(args.kind) in ("audit", "apikey"):  # issue 14
        from . import apikeys, audit

        handler = audit.run if kind_word(args.kind) == "audit" else apikeys.run
    api_key = None
    if config.mode == "client":
        from .session import stored_key

        api_key = stored_key(config, args)
    gateway = await open_gateway(config, profile=getattr(args, "profile", None), api_key=api_key,
                                 key_given=bool(getattr(args, "encryption_file", None)))
    try:
        if args.verb == "db":
            from . import database  # yaml, only for export and import

            return await (database.export if args.db_verb == "export" else database.import_)(gateway, args)
        return await handler(gateway, args)
    finally:
        await gateway.close()
