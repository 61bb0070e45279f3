"""gateway inspect cluster [health|activity]: IAG 5.4's view of a cluster, from what the gateway exposes: the
store behind it, the gateway answering (the controller), the runners announced and their load, and the runs in
flight or ended in the last 15 minutes."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from typing import Any

from gateway_daemon.console import Table, emit
from gateway_daemon.core import Gateway, GatewayError

from .runs import seconds, when

RECENT_SECONDS = 15 * 60  # as IAG 5: ended work stays in the activity this long
HEALTH_COLUMNS = ["component", "type", "address", "status", "load"]
ACTIVITY_COLUMNS = ["name", "service", "type", "node", "status", "started", "completed", "duration"]


async def _health(gateway: Gateway) -> dict[str, Any]:
    info = await gateway.info()
    store_status, store_problem = "healthy", ""
    try:
        await gateway.list_runs(limit=1)  # a read of the store through the gateway
    except GatewayError as exc:
        store_status, store_problem = "unhealthy", str(exc)
    runners = await gateway.list_runners()
    now = time.time()
    components: list[dict[str, Any]] = [
        {"component": "store", "type": info.store, "address": info.data_dir if info.mode == "local" else "-",
         "status": store_status, "load": "-", "problem": store_problem},
        {"component": "controller", "type": info.mode,
         "address": socket.gethostname() if info.mode == "local" else info.data_dir, "status": "active",
         "load": "-", "problem": ""},
    ]
    reachable = 0
    for runner in runners:
        state = ("draining" if runner.draining else "unreachable" if runner.problem else "reachable")
        reachable += state != "unreachable"
        components.append({"component": "runner", "type": "remote", "address": runner.target, "status": state,
                           "load": f"{runner.load}/{runner.capacity}", "problem": runner.problem,
                           "last_seen_seconds_ago": round(max(0.0, now - runner.last_seen), 1),
                           "tags": runner.tags})
    if not runners and not info.distributed:  # the gateway runs its jobs itself
        components.append({"component": "runner", "type": "embedded", "address": components[1]["address"],
                           "status": "reachable", "load": "-", "problem": ""})
        reachable = 1
    elif not runners:
        components.append({"component": "runner", "type": "remote", "address": "-", "status": "unreachable",
                           "load": "-", "problem": "no runner is announced; runs wait for one"})
    healthy = store_status == "healthy" and reachable > 0
    return {"cluster": info.cluster_id or "-", "healthy": healthy,
            "store": {"backend": info.store, "status": store_status},
            "runners": {"registered": len(runners), "reachable": reachable if runners else 0,
                        "embedded": not runners and not info.distributed},
            "components": components}


async def _activity(gateway: Gateway) -> list[dict[str, Any]]:
    now = time.time()
    runs = {}
    for status in ("running", "queued"):
        for run in await gateway.list_runs(status=status, limit=0):
            runs[run.id] = run
    for run in await gateway.list_runs(limit=200):
        if run.ended_at is not None and now - run.ended_at <= RECENT_SECONDS:
            runs.setdefault(run.id, run)
    entries = []
    for run in sorted(runs.values(), key=lambda r: r.created_at, reverse=True):
        started = run.started_at
        took = None if started is None else (run.ended_at or now) - started
        entries.append({"name": run.id, "service": run.service, "type": run.service_type or "-",
                        "node": run.runner or "controller", "status": run.status, "started": started,
                        "completed": run.ended_at, "duration": took})
    return entries


def _print_health(health: dict[str, Any]) -> None:
    runners = health["runners"]
    print(f"Cluster: {health['cluster']}")
    print(f"Store: {health['store']['backend']} ({health['store']['status']})")
    print(f"Runners: {runners['registered']} registered, {runners['reachable']} reachable"
          + (" (none announced: this gateway runs the jobs itself)" if runners["embedded"] else ""))
    print(f"Health: {'healthy' if health['healthy'] else 'unhealthy'}")
    print()
    table = Table(HEALTH_COLUMNS, width=None)
    for c in health["components"]:
        table.add(c["component"], c["type"], c["address"], c["status"] + (f": {c['problem']}" if c["problem"] else ""),
                  c["load"])
    sys.stdout.write(table.render())


def _print_activity(entries: list[dict[str, Any]], args: argparse.Namespace) -> None:
    zone = getattr(args, "time_zone", None)
    table = Table(ACTIVITY_COLUMNS, width=None)
    for e in entries:
        table.add(e["name"], e["service"], e["type"], e["node"], e["status"], when(e["started"], zone),
                  when(e["completed"], zone), seconds(e["duration"]))
    if not entries:  # the columns still say what would be there
        print("  ".join(c.upper() for c in ACTIVITY_COLUMNS))
        print("(no run in flight, none ended in the last 15 minutes)")
        return
    sys.stdout.write(table.render())


async def inspect(gateway: Gateway, args: argparse.Namespace) -> int:
    """Exit 0 when the cluster is healthy, 1 when not (IAG 5: no parsing needed)."""
    want_health = args.part in (None, "health")
    want_activity = args.part in (None, "activity")
    health = await _health(gateway) if want_health else None
    activity = await _activity(gateway) if want_activity else None
    if args.output != "table":
        data: Any = health if args.part == "health" else activity if args.part == "activity" else \
            {"health": health, "activity": activity}
        emit(data, args.output)
    else:
        if health is not None:
            _print_health(health)
        if health is not None and activity is not None:
            print()
        if activity is not None:
            _print_activity(activity, args)
    return 0 if health is None or health["healthy"] else 1
