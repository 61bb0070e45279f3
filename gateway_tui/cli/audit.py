"""gateway get audit: who did what, from where, to what, and how it ended (admins; a server keeps it)."""

from __future__ import annotations

import argparse

from gateway_daemon.console import Table, emit
from gateway_daemon.core import Gateway

from .parser import UsageError


async def get(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise UsageError("--limit must be 0 or more")
    events = await gateway.list_audit(user=args.user or "", action=args.action or "", since=args.since or "",
                                      limit=args.limit if args.limit else 100000)
    table = Table(["time", "user", "source", "action", "target", "outcome", "detail"])
    for event in events:
        detail = f"{event.count} times: {event.detail}" if event.count > 1 else event.detail  # seen if cut
        table.add(event.time, event.user, event.source, event.action, event.target, event.outcome, detail)
    emit([event.public() for event in events], args.output, table)
    return 0


async def run(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.verb != "get":
        raise UsageError("the audit trail is read only: gateway get audit [--user U] [--action A] [--since T]")
    return await get(gateway, args)
