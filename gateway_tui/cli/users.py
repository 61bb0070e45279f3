"""gateway create|get|describe|edit|delete user: user management, against a server only."""

from __future__ import annotations

import argparse
import sys

from gateway_daemon.console import Table, emit
from gateway_daemon.core import Gateway
from gateway_daemon.core.api import UserInfo

from .parser import UsageError


def _password(args: argparse.Namespace, required: bool) -> str | None:
    if not args.password_stdin:
        if required:
            raise UsageError("give the password with --password-stdin (or make a temporary one: --temp-password)")
        return None
    lines = sys.stdin.read().splitlines()
    if not lines or not lines[0]:
        raise UsageError("--password-stdin: stdin is empty")
    return lines[0]


def _view(user: UserInfo) -> dict:
    return {"name": user.name, "admin": user.admin, "created_at": user.created_at,
            "last_login_at": user.last_login_at or None, "must_change_password": user.must_change_password}


async def run(gateway: Gateway, args: argparse.Namespace) -> int:
    """In local mode every call refuses with one line: users live on a server."""
    verb = args.verb
    if verb == "create" and args.temp_password:
        from gateway_daemon.core.auth import new_password

        password = new_password()
        user = await gateway.create_user(args.name, password, args.admin, temporary=True)
        if args.output != "table":
            emit({**_view(user), "temporary_password": password}, args.output)
        else:
            print(f"user {user.name} created with the temporary password {password} (shown once); it must be "
                  f"changed at the first login: gateway login {user.name} --change-password")
    elif verb == "create":
        user = await gateway.create_user(args.name, _password(args, True), args.admin)
        emit(_view(user), args.output) if args.output != "table" else print(f"user {user.name} created")
    elif verb == "get":
        users = await gateway.list_users()
        table = Table(["name", "admin", "created", "last login"])
        for user in users:
            table.add(user.name, user.admin, user.created_at, user.last_login_at or "never")
        emit([_view(u) for u in users], args.output, table)
    elif verb == "describe":
        users = {u.name: u for u in await gateway.list_users()}
        if args.name not in users:
            from gateway_daemon.core import NotFound

            raise NotFound(f"user {args.name!r} not found")
        emit(_view(users[args.name]), args.output)
    elif verb == "edit":
        password = _password(args, False)
        if args.admin is None and password is None:
            raise UsageError("nothing to change: give --admin, --no-admin or --password-stdin")
        user = await gateway.update_user(args.name, args.admin, password)
        print(f"user {user.name} updated" + ("; their API keys are revoked" if password else ""))
    elif verb == "delete":
        await gateway.delete_user(args.name)
        print(f"user {args.name} deleted")
    return 0
