"""gateway create|get|describe|edit|delete user: user management, against a server only."""

from __future__ import annotations

import argparse
import sys

from gateway_daemon.console import Table, emit
from gateway_daemon.core import Gateway
from gateway_daemon.core.api import UserInfo
from gateway_daemon.core.access.auth import MIN_PASSWORD

from .parser import UsageError


def _password(args: argparse.Namespace, required: bool) -> str | None:
    if not args.password_stdin:
        if required and sys.stdin.isatty():  # as IAG 5 (and passwd): asked twice, never echoed
            import getpass

            first = getpass.getpass("Enter the password: ")
            if not first:
                raise UsageError("the password is empty")
            if len(first) < MIN_PASSWORD:  # said now, not after it is typed a second time
                raise UsageError(f"a password needs at least {MIN_PASSWORD} characters; nothing was changed")
            if first != getpass.getpass("Enter it again: "):
                raise UsageError("the two passwords differ; nothing was created")
            return first
        if required:
            raise UsageError("give the password with --password-stdin (or make a temporary one: --temp-password)")
        return None
    lines = sys.stdin.read().splitlines()
    if not lines or not lines[0]:
        raise UsageError("--password-stdin: stdin is empty")
    return lines[0]


def _view(user: UserInfo) -> dict:
    return {"name": user.name, "role": user.role, "scope": [f"tag={t}" for t in user.scope], "admin": user.admin,
            "created_at": user.created_at, "last_login_at": user.last_login_at or None,
            "must_change_password": user.must_change_password, "locked_until": user.locked_until or None}


def _role(args: argparse.Namespace) -> str:
    """--role, or --admin as --role admin."""
    if args.admin and args.role and args.role != "admin":
        raise UsageError(f"--admin is --role admin: it cannot go with --role {args.role}")
    return args.role or ("admin" if args.admin else "")


def _scope(args: argparse.Namespace) -> tuple[str, ...]:
    from gateway_daemon.core.access.roles import parse_scope

    return parse_scope(args.scope or [])


async def run(gateway: Gateway, args: argparse.Namespace) -> int:
    """In local mode every call refuses with one line: users live on a server."""
    verb = args.verb
    if verb == "create" and args.temp_password:
        from gateway_daemon.core.access.auth import new_password

        password = new_password()
        user = await gateway.create_user(args.name, password, temporary=True, role=_role(args), scope=_scope(args))
        if args.output != "table":
            emit({**_view(user), "temporary_password": password}, args.output)
        else:
            print(f"user {user.name} created with the temporary password {password} (shown once); it must be "
                  f"changed at the first login: gateway login {user.name} --change-password")
    elif verb == "create":
        user = await gateway.create_user(args.name, _password(args, True), role=_role(args), scope=_scope(args))
        emit(_view(user), args.output) if args.output != "table" else print(f"created user {user.name} (role {user.role})")
    elif verb == "get":
        users = await gateway.list_users()
        table = Table(["name", "role", "scope", "created", "last login", "locked until"])
        for user in users:
            table.add(user.name, user.role, ",".join(f"tag={t}" for t in user.scope), user.created_at,
                      user.last_login_at or "never", user.locked_until)
        emit([_view(u) for u in users], args.output, table)
    elif verb == "describe":
        users = {u.name: u for u in await gateway.list_users()}
        if args.name not in users:
            from gateway_daemon.core import NotFound

            raise NotFound(f"user {args.name!r} not found")
        emit(_view(users[args.name]), args.output)
    elif verb == "edit":
        password = _password(args, False)
        if args.scope and args.no_scope:
            raise UsageError("give --scope or --no-scope, not both")
        if args.admin is not None and args.role and (args.role == "admin") != args.admin:
            raise UsageError(f"--{'' if args.admin else 'no-'}admin cannot go with --role {args.role}")
        scope = () if args.no_scope else (_scope(args) if args.scope else None)
        if args.admin is None and args.role is None and scope is None and password is None and not args.unlock:
            raise UsageError("nothing to change: give --role, --scope, --no-scope, --unlock, --admin, --no-admin "
                             "or --password-stdin")
        user = await gateway.update_user(args.name, args.admin if args.role is None else None, password,
                                         role=args.role, scope=scope, unlock=args.unlock)
        print(f"user {user.name} updated (role {user.role}"
              + (f", scope {','.join('tag=' + t for t in user.scope)}" if user.scope else "") + ")"
              + ("; unlocked" if args.unlock else "") + ("; their API keys are revoked" if password else ""))
    elif verb == "delete":
        await gateway.delete_user(args.name)
        print(f"user {args.name} deleted")
    return 0
