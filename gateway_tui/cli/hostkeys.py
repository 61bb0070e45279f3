"""gateway hostkeys add|scan|get|delete|clear: the SSH host keys trusted for git over ssh."""

from __future__ import annotations

import argparse
import asyncio

from gateway_daemon.config import Config
from gateway_daemon.console import Table, emit
from gateway_daemon.core import FailedPrecondition
from gateway_daemon.bootstrap import host_keys


async def run(config: Config, args: argparse.Namespace) -> int:
    if not config.get("features", "hostkeys_enabled"):
        raise FailedPrecondition("host keys are disabled: [features] hostkeys_enabled = false")
    if config.mode == "client":
        raise FailedPrecondition(
            "in client mode the server fetches repositories: run `gateway hostkeys` on the server, "
            "with the server's configuration"
        )
    keys = host_keys(config)
    verb = args.hostkeys_verb
    if verb == "add" and args.key:
        key, done = keys.add_key(args.host, args.key_type, args.key, args.port, args.replace)
        print(f"{done} {key.host} {key.key_type} {key.fingerprint}")
        print(f"in {keys.path}")
        return 0
    if verb == "clear":
        count = keys.clear()
        print(f"removed {count} key{'s' if count != 1 else ''}; no ssh host is trusted now")
        return 0
    if verb in ("add", "scan"):
        added = await asyncio.to_thread(keys.add, args.host, args.port)
        for key in added:
            print(f"trusted {key.host} {key.key_type} {key.fingerprint}")
        print(f"in {keys.path}")
        return 0
    if verb == "delete":
        count = keys.delete(args.host, args.port)
        print(f"removed {count} key{'s' if count != 1 else ''} of {args.host}")
        return 0
    listed = keys.list()
    table = Table(["host", "type", "fingerprint"])
    for key in listed:
        table.add(key.host, key.key_type, key.fingerprint)
    emit([key.as_dict() for key in listed], args.output, table)
    return 0
