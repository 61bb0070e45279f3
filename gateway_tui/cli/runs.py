"""gateway run service / get runs / describe run / logs / cancel run."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from datetime import datetime
from typing import Any, AsyncIterator

from gateway_daemon.console import Table, emit
from gateway_daemon.core import Gateway, GatewayError, SecretRef, Unavailable
from gateway_daemon.core.owners import describe as describe_owner
from gateway_daemon.core.runs import OutputLine, Run, RunEvent, parse_set


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def run_view(run: Run, output: list[OutputLine] | None = None) -> dict[str, Any]:
    data = run.to_dict()
    if output is not None:
        data["output"] = [{"stream": line.stream, "text": line.text} for line in output]
    return data


class _Printer:
    """Writes output lines as they come: stdout to stdout, stderr and the gateway's notes to stderr."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def lines(self, lines: tuple[OutputLine, ...] | list[OutputLine]) -> None:
        if self.quiet:
            return
        out: list[str] = []  # consecutive stdout lines in one write
        for line in lines:
            if line.stream == "stdout":
                out.append(line.text)
                continue
            if out:
                sys.stdout.write("\n".join(out) + "\n")
                out.clear()
            sys.stdout.flush()
            sys.stderr.write(line.text + "\n" if line.stream == "stderr" else f"[gateway] {line.text}\n")
        if out:
            sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()

    def status(self, run: Run) -> None:
        if self.quiet:
            return
        if run.status == "queued" and run.reason:
            sys.stderr.write(f"[gateway] run {run.id} {run.reason}\n")
        elif run.status == "running":
            sys.stderr.write(f"[gateway] run {run.id} running\n")


def _summary(run: Run) -> str:
    code = "-" if run.exit_code is None else str(run.exit_code)
    reason = f" ({run.reason})" if run.reason and run.status != "succeeded" and not run.reason.startswith("exited with") else ""
    return f"run {run.id} {run.status}{reason}: exit code {code}, duration {seconds(run.duration)}"


async def _consume(events: AsyncIterator[RunEvent], printer: _Printer) -> Run | None:
    final = None
    async for event in events:
        if event.kind == "output":
            printer.lines(event.lines)
        elif event.run is not None:
            final = event.run
            printer.status(event.run)
    return final


async def _cancel_quietly(gateway: Gateway, run_id: str) -> None:
    try:
        await gateway.cancel_run(run_id)
    except GatewayError:  # it has just ended: what it ended with is told in a moment
        pass


async def run_service(gateway: Gateway, args: argparse.Namespace) -> int:
    inputs = parse_set(args.set or [])
    secrets = [SecretRef.parse(text) for text in args.set_secret or []]
    as_json = args.output == "json"
    printer = _Printer(quiet=as_json)
    events = gateway.run_service(args.name, inputs, secrets, args.timeout)
    first = await events.__anext__()  # the run exists from here on: Ctrl-C cancels it
    run_id = first.run.id
    printer.status(first.run)
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            sys.stderr.write(f"\n[gateway] cancelling run {run_id}...\n")
        # again too: a run that is over but whose record waits for the store stops being waited for
        loop.create_task(_cancel_quietly(gateway, run_id))

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        final = await _consume(events, printer) or first.run
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    if not final.finished:
        final = await gateway.get_run(run_id)
    if not final.finished:  # it ended, but the store never took its final record
        raise Unavailable(f"run {run_id} ended, but its result is not stored: the store did not take its final "
                          f"record (see above), so it shows as {final.status}")
    if as_json:
        emit(run_view(final, await gateway.run_output(run_id)), "json")
    else:
        sys.stderr.write(_summary(final) + "\n")
    return 0 if final.status == "succeeded" else 1


async def get_runs(gateway: Gateway, args: argparse.Namespace) -> int:
    runs = await gateway.list_runs(args.service, args.status, args.limit, args.runner)
    table = Table(["id", "service", "status", "exit", "started", "duration", "by", "runner", "reason"])
    for run in runs:
        table.add(run.id, run.service, run.status, run.exit_code, when(run.started_at), seconds(run.duration),
                  run.started_by, run.runner or "-", run.reason)
    emit([run_view(r) for r in runs], args.output, table)
    return 0


async def get_runners(gateway: Gateway, args: argparse.Namespace) -> int:
    runners = await gateway.list_runners()
    table = Table(["id", "address", "tags", "load", "last seen", "state"])
    for r in runners:
        state = "draining" if r.draining else (f"refuses work: {r.problem}" if r.problem else "ready")
        table.add(r.id, r.target, r.tags, f"{r.load}/{r.capacity}", f"{max(0.0, time.time() - r.last_seen):.0f} s ago",
                  state)
    emit([r.to_dict() for r in runners], args.output, table)
    return 0


async def describe_run(gateway: Gateway, args: argparse.Namespace) -> int:
    run = await gateway.get_run(args.name)
    if args.output != "table":
        emit(run_view(run), args.output)
        return 0
    data = run_view(run)
    for key in ("created_at", "started_at", "ended_at"):
        data[key] = when(data[key])
    data["duration"] = seconds(run.duration)
    data.pop("owner")
    data["kept_by"] = describe_owner(run.owner) if run.owner else "-"
    emit(data, "table")
    return 0


async def logs(gateway: Gateway, args: argparse.Namespace) -> int:
    printer = _Printer(quiet=False)
    if not args.follow:
        run = await gateway.get_run(args.run_id)
        if run.output_dropped:
            sys.stderr.write(f"[gateway] {run.output_dropped} earlier lines were cut (output limit)\n")
        printer.lines(await gateway.run_output(args.run_id))
        return 0
    cut_said = False
    final = None
    async for event in gateway.follow_run(args.run_id):
        if event.kind == "output":
            printer.lines(event.lines)
        elif event.run is not None:
            final = event.run
            if event.run.output_dropped and not cut_said:
                cut_said = True
                sys.stderr.write(f"[gateway] {event.run.output_dropped} earlier lines were cut (output limit)\n")
    if final is not None and final.finished:
        sys.stderr.write(_summary(final) + "\n")
    return 0


async def cancel_run(gateway: Gateway, args: argparse.Namespace) -> int:
    run = await gateway.cancel_run(args.run_id)
    deadline = time.monotonic() + 30
    while not run.finished and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        run = await gateway.get_run(args.run_id)
    print(_summary(run) if run.finished else f"run {run.id}: cancel requested")
    return 0
