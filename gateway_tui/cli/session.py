"""gateway login / logout / whoami, and the key that client mode sends with every call."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import datetime

from gateway_daemon.config import Config
from gateway_daemon.console import emit
from gateway_daemon.core import FailedPrecondition, GatewayError, Unauthenticated
from gateway_daemon.core.access.auth import MIN_PASSWORD

from ..credentials import Credential, Credentials
from .parser import UsageError


def _warn(text: str) -> None:
    print(f"gateway: {text}", file=sys.stderr)


def endpoint(config: Config, args: argparse.Namespace):
    """The server of the profile (its `.address` and `.use_tls`); the mode must be client."""
    from gateway_daemon.bootstrap import client_endpoint

    if config.mode != "client":
        raise FailedPrecondition(f"login is for client mode (this configuration is mode = {config.mode}); "
                                 "local mode needs no login")
    return client_endpoint(config, getattr(args, "profile", None))


def stored_key(config: Config, args: argparse.Namespace) -> str:
    """The API key for the configured server: [client] api_key (or the profile's) when set, else the one
    `gateway login` kept; a one-line error saying to log in when there is none."""
    where = endpoint(config, args).address
    configured = config.client(getattr(args, "profile", None)).api_key
    if configured:
        return configured
    credential = Credentials(_warn).load(where)
    if credential is None:
        raise Unauthenticated(f"not logged in to {where}: run gateway login")
    if credential.expired:
        raise Unauthenticated(f"the API key for {where} has expired: run gateway login")
    return credential.api_key


def _stdin_lines(count: int) -> list[str]:
    lines = [line.rstrip("\r\n") for line in sys.stdin.read().splitlines()]
    if len(lines) < count or not all(lines[:count]):
        raise UsageError(f"--password-stdin expects {count} non-empty line{'s' if count > 1 else ''} on stdin")
    return lines[:count]


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for a password: use --password-stdin")
    return getpass.getpass(prompt)


def _ask_new() -> str:
    first = _ask("New password: ")
    if len(first) < MIN_PASSWORD:  # said now, not after it is typed a second time
        raise UsageError(f"a password needs at least {MIN_PASSWORD} characters")
    if first != _ask("New password again: "):
        raise UsageError("the two new passwords differ")
    return first


async def login(config: Config, args: argparse.Namespace) -> int:
    from gateway_daemon.bootstrap import remote_gateway

    where = endpoint(config, args)
    username = args.username or (_ask_username() if sys.stdin.isatty() else None)
    if not username:
        raise UsageError("give --username NAME")
    new = ""
    if args.password_stdin:
        lines = _stdin_lines(2 if args.change_password else 1)
        password, new = lines[0], (lines[1] if args.change_password else "")
    else:
        password = _ask(f"Password for {username} at {where.address}: ")
        if args.change_password:
            new = _ask_new()
    gateway = remote_gateway(config, getattr(args, "profile", None))
    try:
        try:
            reply = await gateway.login(username, password, new)
        except FailedPrecondition as exc:
            if "temporary" not in str(exc) or args.password_stdin or not sys.stdin.isatty():
                raise
            print(f"{exc}")
            reply = await gateway.login(username, password, _ask_new())
    finally:
        await gateway.close()
    credentials = Credentials(_warn)
    credentials.save(where.address, Credential(reply.api_key, reply.username, reply.expires_at))
    if getattr(args, "raw", False):  # IAG 5's login --raw: the key alone, for scripts
        print(reply.api_key)
        return 0
    until = datetime.fromtimestamp(reply.expires_at).strftime("%Y-%m-%d %H:%M")
    changed = "password changed; " if new else ""
    print(f"{changed}logged in to {where.address} as {reply.username}{' (admin)' if reply.admin else ''}; "
          f"the API key is valid until {until} and kept in {credentials.where}")
    return 0


def _ask_username() -> str:
    return input("Username: ").strip()


async def logout(config: Config, args: argparse.Namespace) -> int:
    from gateway_daemon.bootstrap import open_gateway

    where = endpoint(config, args)
    credentials = Credentials(_warn)
    credential = credentials.load(where.address)
    if credential is None:
        print(f"not logged in to {where.address}")
        return 0
    gateway = await open_gateway(config, getattr(args, "profile", None), api_key=credential.api_key)
    try:
        await gateway.logout()
    except GatewayError as exc:  # an expired or revoked key: forgetting it is all that is left
        if not isinstance(exc, Unauthenticated):
            raise
    finally:
        await gateway.close()
    credentials.delete(where.address)
    print(f"logged out of {where.address}; the API key is revoked and forgotten")
    return 0


async def whoami(config: Config, args: argparse.Namespace) -> int:
    from gateway_daemon.bootstrap import open_gateway

    if config.mode == "local":
        emit({"mode": "local", "user": None, "server": None}, args.output)
        return 0
    where = endpoint(config, args)
    gateway = await open_gateway(config, getattr(args, "profile", None), api_key=stored_key(config, args))
    try:
        me = await gateway.whoami()
    finally:
        await gateway.close()
    emit({"server": where.address, "tls": where.use_tls, "user": me.username, "admin": me.admin,
          "role": me.role, "scope": [f"tag={t}" for t in me.scope] or None,
          "key_expires_at": datetime.fromtimestamp(me.expires_at).isoformat(timespec="seconds"),
          "key_expires_in_minutes": max(0, int((me.expires_at - time.time()) // 60))}, args.output)
    return 0
