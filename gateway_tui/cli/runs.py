"""gateway run service / get runs / describe run / logs / cancel run."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import itertools
import json
import os
import signal
import sys
import time
from datetime import datetime, tzinfo
from operator import itemgetter
from typing import Any, AsyncIterator, Iterator

from gateway_daemon.console import Table, emit
from gateway_daemon.core import Gateway, GatewayError, InvalidArgument, SecretRef, Service, Unavailable
from gateway_daemon.core.runs.keepers import describe as describe_owner
from gateway_daemon.core.runs.outputs import LINE_OVERHEAD
from gateway_daemon.core.runs.records import OutputLine, Run, RunEvent, parse_set
from gateway_daemon.inputfiles import InputFileError, read_text

from .parser import UsageError


def when(timestamp: float | None, zone: tzinfo | None = None) -> str:
    """A moment in `zone` ([terminal] timestamp_timezone; None: this machine's zone)."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M:%S")


def _zone(args: argparse.Namespace) -> tzinfo | None:
    """The zone the command shows times in (set from [terminal] timestamp_timezone by the dispatcher)."""
    return getattr(args, "time_zone", None)


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def run_view(run: Run, output: list[OutputLine] | None = None) -> dict[str, Any]:
    data = run.to_dict()
    if output is not None:
        data["output"] = [{"stream": line.stream, "text": line.text} for line in output]
    return data


_STREAM, _TEXT = itemgetter(0), itemgetter(1)  # an OutputLine's stream and text
STREAMING_GC_THRESHOLD = 70_000  # new objects between two runs of the cycle collector while output streams
KEEP_BYTES = 64 * 1024 * 1024  # run service -o json keeps the newest lines streamed within this (as the store counts)


class _Printer:
    """Writes output lines as they come: stdout to stdout, stderr and the gateway's notes to stderr.
    `raw`: the script's own lines only (no notes, no status)."""

    def __init__(self, quiet: bool, raw: bool = False, keep: bool = False):
        self.quiet = quiet
        self.raw = raw
        self.final_state: str | None = None  # opentofu-plan, with --state-out
        # `keep` (run service -o json): the newest lines streamed, within KEEP_BYTES, to print as the run's
        # output when they are what the store kept (stored_output), rather than fetch them again.
        self.kept: collections.deque[OutputLine] | None = collections.deque() if keep else None
        self.kept_bytes = 0

    def lines(self, lines: tuple[OutputLine, ...] | list[OutputLine]) -> None:
        kept = self.kept
        if kept is not None:
            kept.extend(lines)
            self.kept_bytes += sum(map(len, map(_TEXT, lines))) + LINE_OVERHEAD * len(lines)
            while self.kept_bytes > KEEP_BYTES and len(kept) > 1:
                self.kept_bytes -= len(kept.popleft().text) + LINE_OVERHEAD
        if self.quiet:
            return
        if lines and set(map(_STREAM, lines)) == {"stdout"}:  # the usual batch: one write, no loop a line
            sys.stdout.write("\n".join(map(_TEXT, lines)) + "\n")
            sys.stdout.flush()
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
            if line.stream == "stderr":
                sys.stderr.write(line.text + "\n")
            elif not self.raw:
                sys.stderr.write(f"[gateway] {line.text}\n")
        if out:
            sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()

    def stored_output(self, run: Run) -> list[OutputLine] | None:
        """The run's stored output from the lines streamed: the newest output_lines - output_dropped of them,
        when what they take is what the record says the stored output takes (a line the follower missed, or a
        note shown and not stored, makes them differ); None when the output must be fetched."""
        kept = self.kept
        count = run.output_lines - run.output_dropped
        if kept is None or run.output_pruned or count < 0 or count > len(kept):
            return None
        tail = list(itertools.islice(kept, len(kept) - count, None))
        if sum(map(len, map(_TEXT, tail))) + LINE_OVERHEAD * count != run.output_bytes:
            return None
        return tail

    def status(self, run: Run) -> None:
        if self.quiet or self.raw:
            return
        if run.status == "queued" and run.reason:
            sys.stderr.write(f"[gateway] run {run.id} {run.reason}\n")
        elif run.status == "running":
            sys.stderr.write(f"[gateway] run {run.id} running\n")


@contextlib.contextmanager
def _streaming() -> Iterator[None]:
    """While a run's output streams (in local mode it is also read and stored in this process): a line is a
    short-lived tuple, a million of them for 100 MB, and none is in a cycle, so the cycle collector, which runs
    every 700 new objects, runs a hundred times less often meanwhile."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], STREAMING_GC_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _summary(run: Run) -> str:
    code = "-" if run.exit_code is None else str(run.exit_code)
    # The reason adds to the status, never repeats it: "cancelled", not "cancelled (cancelled)".
    shown = run.reason and run.status != "succeeded" and run.reason != run.status \
        and not run.reason.startswith("exited with")
    reason = f" ({run.reason})" if shown else ""
    return f"run {run.id} {run.status}{reason}: exit code {code}, duration {seconds(run.duration)}"


async def _consume(events: AsyncIterator[RunEvent], printer: _Printer) -> Run | None:
    final = None
    async for event in events:
        if event.kind == "output":
            printer.lines(event.lines)
        elif event.run is not None:
            final = event.run
            printer.status(event.run)
            if event.state is not None:
                printer.final_state = event.state
    return final


STATE_FILE_LIMIT = 16 * 1024 * 1024


def _read_state(given: str) -> str:
    """--state: the state a run starts from, read on this machine: FILE, @FILE (IAG 5) or the JSON itself."""
    if given.lstrip().startswith("{"):  # inline, as IAG 5 takes it
        if len(given.encode()) > STATE_FILE_LIMIT:
            raise InvalidArgument(f"the --state value is larger than {STATE_FILE_LIMIT // 1048576} MiB")
        try:
            json.loads(given)
        except ValueError as exc:
            raise InvalidArgument(f"the --state value is not JSON: {exc}") from None
        return given
    path = _state_path(given)
    try:
        return read_text(path, STATE_FILE_LIMIT, "state file")
    except InputFileError as exc:
        raise InvalidArgument(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read state file {path}: {exc.strerror or exc}") from None


def _state_path(given: str) -> str:
    return given[1:] if given.startswith("@") and len(given) > 1 else given


def _write_state(path: str, state: str | None, raw: bool) -> None:
    """--state-out FILE: the state the run ended with, on this machine, readable by its owner only."""
    if state is None:
        sys.stderr.write(f"[gateway] the run left no state (its backend keeps it elsewhere, or it failed before "
                         f"tofu ran): {path} not written\n")
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(state)
    except OSError as exc:
        sys.stderr.write(f"[gateway] cannot write the state to {path}: {exc.strerror or exc}\n")
        return
    if not raw:
        sys.stderr.write(f"[gateway] state written to {path}\n")


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return {k: v for k, v in properties.items() if isinstance(v, dict)} if isinstance(properties, dict) else {}


def _is_boolean(field: dict[str, Any]) -> bool:
    kinds = field.get("type")
    return kinds == "boolean" or (isinstance(kinds, list) and "boolean" in kinds)


async def _decorator_schema(gateway: Gateway, service: Service) -> dict[str, Any] | None:
    if not service.decorator:
        return None
    return (await gateway.get("decorator", service.decorator)).schema


async def _service(gateway: Gateway, args: argparse.Namespace) -> Service:
    service = await gateway.get("service", args.name)
    if args.service_type and service.type != args.service_type:
        an = "an" if args.service_type[0] in "aeiou" else "a"
        raise InvalidArgument(f"service {args.name!r} is a {service.type}, not {an} {args.service_type}")
    return service


def _inputs(items: list[str], schema: dict[str, Any] | None, service: str) -> dict[str, str]:
    """--set KEY=VALUE, and a bare --set KEY for a boolean the decorator declares (as iagctl 5.4 does)."""
    pairs: list[str] = []
    booleans = {name for name, field in _properties(schema or {}).items() if _is_boolean(field)}
    for item in items:
        key, sep, _value = item.partition("=")
        if not key.strip():
            raise UsageError(f"--set {item!r} is not KEY=VALUE")
        if sep:
            pairs.append(item)
        elif item.strip() in booleans:
            pairs.append(f"{item.strip()}=true")
        elif schema is None:  # as IAG 5: with no decorator a bare KEY is KEY=true
            pairs.append(f"{item.strip()}=true")
        else:
            raise UsageError(f"--set {item!r} is not KEY=VALUE (a bare KEY is for a boolean input, and the "
                             f"decorator of {service} does not declare {item!r} a boolean)")
    return parse_set(pairs)


def _use(service: Service, schema: dict[str, Any] | None, output: str) -> int:
    """What `run service NAME --use` prints: the inputs the decorator declares."""
    if schema is None:
        if output == "table":
            print(f"service {service.name} has no decorator: it accepts any --set KEY=VALUE, and the inputs "
                  f"reach it as {service.arg_format if service.type == 'executable' else '--KEY=value'}")
        else:
            emit([], output)
        return 0
    required = set(schema.get("required") or [])
    rows = []
    fields = sorted(_properties(schema).items(), key=lambda item: item[0] not in required)  # required first
    for name, field in fields:
        kind = field.get("type", "any")
        rows.append({"name": name, "type": "|".join(kind) if isinstance(kind, list) else str(kind),
                     "required": name in required, "default": field.get("default"),
                     "description": field.get("description") or field.get("title") or ""})
    table = Table(["name", "type", "required", "default", "description"])
    for row in rows:
        table.add(row["name"], row["type"], "yes" if row["required"] else "no",
                  "-" if row["default"] is None else json.dumps(row["default"]), row["description"])
    emit(rows, output, table)
    if output == "table":
        example = " ".join(f"--set {r['name']}" if r["type"] == "boolean" else f"--set {r['name']}=VALUE"
                           for r in rows if r["required"]) or "(no input is required)"
        print(f"usage: gateway run service {service.type} {service.name} {example}")
    return 0


async def _cancel_quietly(gateway: Gateway, run_id: str) -> None:
    try:
        await gateway.cancel_run(run_id)
    except GatewayError:  # it has just ended: what it ended with is told in a moment
        pass


async def run_service(gateway: Gateway, args: argparse.Namespace) -> int:
    items = args.set or []
    schema = None
    if args.use or args.service_type or any("=" not in item for item in items):
        service = await _service(gateway, args)
        schema = await _decorator_schema(gateway, service)
        if args.use:
            return _use(service, schema, args.output)
    inputs = _inputs(items, schema, args.name)
    secrets = [SecretRef.parse(text) for text in args.set_secret or []]
    as_json = args.output == "json"
    raw = getattr(args, "raw", False)
    verbose = getattr(args, "verbose", False) and not raw
    printer = _Printer(quiet=as_json, raw=raw, keep=as_json)
    options = {name: value for name, value in (("limit", args.limit), ("tags", args.tags),
                                               ("check", True if args.check else None)) if value}
    state = _read_state(args.state) if getattr(args, "state", None) else None
    state_out = getattr(args, "state_out", None)
    if state and not state_out and args.state.startswith("@"):
        state_out = _state_path(args.state)  # IAG 5: the state the run ends with goes back to that file
    events = gateway.run_service(args.name, inputs, secrets, args.timeout, options=options or None,
                                 action=getattr(args, "action", ""), state=state, state_out=bool(state_out))
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
        with _streaming():
            final = await _consume(events, printer) or first.run
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    if state_out:
        _write_state(state_out, printer.final_state, raw)
    if not final.finished:
        final = await gateway.get_run(run_id)
    if not final.finished:  # it ended, but the store never took its final record
        raise Unavailable(f"run {run_id} ended, but its result is not stored: the store did not take its final "
                          f"record (see above), so it shows as {final.status}")
    if as_json:
        output = printer.stored_output(final)
        emit(run_view(final, output if output is not None else await gateway.run_output(run_id)), "json")
    elif not raw:
        if verbose:
            sys.stderr.write(_details(final))
        sys.stderr.write(_summary(final) + "\n")
    return 0 if final.status == "succeeded" else 1


def _details(run: Run) -> str:
    """--verbose: what a run was, beyond its summary."""
    rows = [("run", run.id), ("service", f"{run.service} ({run.service_type or '-'})"),
            ("commit", run.commit or "-"), ("runner", run.runner or "this gateway"), ("started by", run.started_by),
            ("created", when(run.created_at)), ("started", when(run.started_at)), ("ended", when(run.ended_at)),
            ("queued for", seconds(None if run.started_at is None else run.started_at - run.created_at)),
            ("duration", seconds(run.duration)), ("output lines", str(run.output_lines))]
    return "".join(f"[gateway] {name + ':':<13} {value}\n" for name, value in rows)


async def get_runs(gateway: Gateway, args: argparse.Namespace) -> int:
    runs = await gateway.list_runs(args.service, args.status, args.limit, args.runner)
    if not runs and args.service:
        await gateway.get("service", args.service)  # no such service: say so (not found), not "(none)"
    table = Table(["id", "service", "status", "exit", "started", "duration", "by", "runner", "reason"])
    for run in runs:
        table.add(run.id, run.service, run.status, run.exit_code, when(run.started_at, _zone(args)),
                  seconds(run.duration), run.started_by, run.runner or "-", run.reason)
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
        data[key] = when(data[key], _zone(args))
    data["duration"] = seconds(run.duration)
    data.pop("owner")
    data["kept_by"] = describe_owner(run.owner) if run.owner else "-"
    emit(data, "table")
    return 0


async def logs(gateway: Gateway, args: argparse.Namespace) -> int:
    printer = _Printer(quiet=False)
    if not args.follow:
        run = await gateway.get_run(args.run_id)
        if run.output_dropped and not run.output_pruned:
            sys.stderr.write(f"[gateway] {run.output_dropped} earlier lines were cut (output limit)\n")
        printer.lines(await gateway.run_output(args.run_id))
        return 0
    cut_said = False
    final = None
    with _streaming():
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


async def delete_run(gateway: Gateway, args: argparse.Namespace) -> int:
    await gateway.delete_run(args.name)
    print(f"run {args.name} deleted with its output")
    return 0


async def prune_runs(gateway: Gateway, args: argparse.Namespace) -> int:
    deleted = await gateway.prune_runs(args.before, args.service or "")
    whose = f" of service {args.service}" if args.service else ""
    print(f"{deleted} finished run{'' if deleted == 1 else 's'}{whose} created before {args.before} deleted with "
          "their output")
    return 0


async def cancel_run(gateway: Gateway, args: argparse.Namespace) -> int:
    run = await gateway.cancel_run(args.run_id)
    deadline = time.monotonic() + 30
    while not run.finished and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        run = await gateway.get_run(args.run_id)
    print(_summary(run) if run.finished else f"run {run.id}: cancel requested")
    return 0
