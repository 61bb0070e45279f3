"""gateway get apikeys (yours; an admin: everyone's) and gateway delete apikey ID (revokes it)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from gateway_daemon.console import Table, emit
from gateway_daemon.core import Gateway
from gateway_daemon.core.api import ApiKeyInfo

from .parser import UsageError


def _time(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


def _view(key: ApiKeyInfo) -> dict:
    return {"id": key.id, "user": key.user, "created_at": key.created_at, "last_used_at": key.last_used_at or None,
            "expires_at": _time(key.expires_at), "current": key.current}


async def run(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.verb == "get":
        keys = await gateway.list_apikeys()
        table = Table(["id", "user", "created", "last used", "expires", "this one"])
        for key in keys:
            table.add(key.id, key.user, key.created_at, key.last_used_at, _time(key.expires_at), key.current)
        emit([_view(k) for k in keys], args.output, table)
        return 0
    if args.verb == "delete":
        await gateway.delete_apikey(args.name)
        print(f"API key {args.name} revoked")
        return 0
    raise UsageError("API keys come from gateway login: list them with gateway get apikeys, revoke one with "
                     "gateway delete apikey ID")
