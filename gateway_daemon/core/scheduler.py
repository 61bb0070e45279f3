"""The life of a run: queue, workspace, process, output, record.

Records live in the store: ``runs/<id>`` holds the run, ``run-output/<id>/<seq>``
hold its output in chunks (written a few times a second, so a follower in
another process sees it live), capped at ``output_limit`` bytes with the tail
kept.  A cancel from anywhere is a ``run-cancel/<id>`` key.

A run goes on when the store cannot be reached for a while (etcd restarting):
its followers in this process hear everything at once, and the record and
output are written as soon as the store answers again.  A record names the
process that keeps it (core.owners); records left unfinished by a process that
died are ended as interrupted by whoever finds them (`Scheduler.recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from ..store import RevisionMismatch, Store, StoreError
from . import owners
from .errors import FailedPrecondition, GatewayError, InvalidArgument, NotFound
from .runs import (CANCELLED, FAILED, INTERRUPTED, QUEUED, RUNNING, SUCCEEDED, TIMED_OUT, Masker, OutputLine, Run, RunEvent,
                   check_run_id, new_run_id, prepare_inputs, secret_fields)
from .services import SecretRef, Service

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("gateway.runs")
FLUSH_SECONDS = 0.25
STORE_RETRY_SECONDS = 1.0  # a record or output the store could not take is written again this often
FLUSH_LINES = 500
SUBSCRIBER_QUEUE = 2000


@dataclass
class Limits:
    max_concurrent_runs: int = 4
    default_timeout: int = 3600
    output_limit: int = 1024 * 1024
    kill_grace_period: float = 5.0


def run_key(run_id: str) -> str:
    return f"runs/{run_id}"


def output_prefix(run_id: str) -> str:
    return f"run-output/{run_id}/"


def cancel_key(run_id: str) -> str:
    return f"run-cancel/{run_id}"


class _Active:
    """A run this process is executing: its record, followers and stop switch."""

    def __init__(self, run: Run, revision: int):
        self.run = run
        self.revision = revision
        self.subscribers: list[asyncio.Queue] = []
        self.task: asyncio.Task | None = None
        self.cancel_requested = False
        self.process = None
        self.remote_cancel: Callable[[], None] | None = None  # set while a runner executes it
        self.unsaved = False  # the record changed since the store last took it
        self.writing = asyncio.Lock()
        self.saver: asyncio.Task | None = None

    def publish(self, event: RunEvent) -> None:
        for queue in list(self.subscribers):
            if queue.full():  # a slow follower loses lines, never the gateway
                continue
            queue.put_nowait(event)


class _OutputSink:
    """Buffers lines, writes chunks to the store, keeps only the tail within the limit."""

    def __init__(self, store: Store, active: _Active, masker: Masker, limit: int):
        self.store = store
        self.active = active
        self.masker = masker
        self.limit = limit
        self.buffer: list[OutputLine] = []
        self.seq = 0
        self.chunks: list[tuple[int, int, int]] = []  # (seq, bytes, lines) stored, oldest first
        self.stored_bytes = 0
        self.last_flush = time.monotonic()
        self._lock = asyncio.Lock()
        self._later: asyncio.Task | None = None
        self.failing = False  # the store did not take the last chunk: the lines wait in the buffer

    async def line(self, stream: str, text: str) -> None:
        line = OutputLine(stream, self.masker(text))
        self.buffer.append(line)
        self.active.run.output_lines += 1
        self.active.publish(RunEvent("output", lines=(line,)))
        if not self.failing and (len(self.buffer) >= FLUSH_LINES or
                                 time.monotonic() - self.last_flush >= FLUSH_SECONDS):
            await self.flush()
        elif self._later is None:  # a quiet process (or a store away): stored soon all the same
            self._later = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(STORE_RETRY_SECONDS if self.failing else FLUSH_SECONDS)
        self._later = None
        with contextlib.suppress(Exception):
            await self.flush()

    async def finish(self) -> bool:
        """The last flush; True when everything is stored."""
        if self._later is not None:
            self._later.cancel()
            self._later = None
        return await self.flush()

    async def flush(self) -> bool:
        """Store the buffered lines; False (the lines kept for the next try) when the store cannot."""
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> bool:
        self.last_flush = time.monotonic()
        if not self.buffer:
            return True
        lines, self.buffer = self.buffer, []
        data = json.dumps([[l.stream, l.text] for l in lines], separators=(",", ":")).encode()
        try:
            await self.store.put(f"{output_prefix(self.active.run.id)}{self.seq:08d}", data)
        except StoreError as exc:
            self.buffer = lines + self.buffer
            self._keep_tail()
            if not self.failing:
                log.warning("run %s: cannot store its output now (will keep trying): %s", self.active.run.id, exc)
                self.failing = True
            return False
        self.failing = False
        self.chunks.append((self.seq, len(data), len(lines)))
        self.seq += 1
        self.stored_bytes += len(data)
        while self.stored_bytes > self.limit and len(self.chunks) > 1:
            old_seq, size, count = self.chunks[0]
            try:
                await self.store.delete(f"{output_prefix(self.active.run.id)}{old_seq:08d}")
            except StoreError:
                break  # trimmed at the next flush
            self.chunks.pop(0)
            self.stored_bytes -= size
            self.active.run.output_dropped += count
        return True

    def _keep_tail(self) -> None:
        """While the store is away the buffer keeps the newest lines within the output limit."""
        size, start = 0, len(self.buffer)
        while start > 0:
            cost = len(self.buffer[start - 1].text) + 16
            if size + cost > self.limit and start < len(self.buffer):  # the newest line is always kept
                break
            size += cost
            start -= 1
        if start:
            self.active.run.output_dropped += start
            del self.buffer[:start]


@dataclass
class Job:
    """A run ready to execute: the service, its repository, checked inputs and opened secrets."""

    service: Service
    repository: Any
    inputs: dict[str, Any]
    booleans: set[str]
    secret_values: dict[str, str]
    masker: Masker
    timeout: int
    schema: dict[str, Any] | None = None
    run_secrets: list[SecretRef] = field(default_factory=list)


async def perform(active: Any, job: Job, data_dir: Path, workspace: Any, venvs: Any, kill_grace: float,
                  line: Callable[[str, str], Awaitable[None]], progress: Callable[[str], None]) -> dict[str, Any]:
    """Workspace, venv, process(es): one job to the fields of its final record (status, reason, exit_code).

    `active` carries the stop switch (cancel_requested, process) and receives run.commit.  Used by the
    scheduler for local runs and by a runner for the runs servers send it.  A GatewayError (the
    repository cannot be fetched, ...) propagates; so does cancellation.
    """
    from ..execution import leftovers
    from ..execution.commands import build, child_environment
    from ..execution.process import Process

    service = job.service
    run_dir: Path | None = None
    try:
        runs_dir = data_dir / "runs"
        runs_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{active.run.id}-", dir=runs_dir))
        leftovers.claim(run_dir)
        tree = run_dir / "tree"
        active.run.commit = await workspace.prepare(job.repository, tree, progress)
        workdir = tree / (service.working_dir or ".")
        if not workdir.is_dir():
            raise FailedPrecondition(f"service {service.name}: working dir {service.working_dir} "
                                     f"not found in repository {job.repository.name}")
        python = sys.executable  # other types: the gateway's own bin directory leads PATH
        if service.type == "python-script":
            requirements = workdir / (service.requirements_file or "requirements.txt")
            python = str(await venvs.python_for(requirements if requirements.is_file() else None, progress))
        extra_env = dict(service.env)
        if service.type == "ansible-playbook":
            collections = (workdir / service.requirements_file if service.requirements_file
                           else (workdir / service.script).parent / "requirements.yml")
            if collections.is_file():
                path = await venvs.collections_for(collections, progress)
                extra_env["ANSIBLE_COLLECTIONS_PATH"] = str(path)
        steps = build(service, workdir, job.inputs, job.booleans, python)
        tmp = run_dir / "tmp"
        tmp.mkdir()
        env = child_environment({**extra_env, **job.secret_values}, tmp, python)
        outcome = None
        deadline = time.monotonic() + job.timeout
        for argv in steps:
            process = Process(argv, str(workdir), env)
            active.process = process
            await process.start()
            leftovers.note_group(run_dir, process.pid)
            if active.cancel_requested:
                process.stop("cancel", kill_grace)
            outcome = await process.run(line, max(0.0, deadline - time.monotonic()), kill_grace)
            if outcome.stopped or outcome.exit_code != 0:
                break
        assert outcome is not None
        if outcome.stopped == "timeout":
            return dict(status=TIMED_OUT, reason=f"stopped after the {job.timeout} s time limit",
                        exit_code=outcome.exit_code)
        if outcome.stopped == "cancel" or active.cancel_requested:
            return dict(status=CANCELLED, reason="cancelled", exit_code=outcome.exit_code)
        return dict(status=SUCCEEDED if outcome.exit_code == 0 else FAILED, exit_code=outcome.exit_code,
                    reason="" if outcome.exit_code == 0 else f"exited with code {outcome.exit_code}")
    finally:
        active.process = None
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)


class Scheduler:
    def __init__(self, engine: "Engine", limits: Limits, data_dir: Path, workspace: Any, venvs: Any):
        self.engine = engine
        self.store: Store = engine.store
        self.limits = limits
        self.data_dir = data_dir
        self.workspace = workspace
        self.venvs = venvs
        self._active: dict[str, _Active] = {}
        self._waiting: list[str] = []  # run ids in queue order
        self._running = 0
        self._slot_freed = asyncio.Condition()
        self._cancel_watch: asyncio.Task | None = None
        # Distributed execution: an object whose execute(active, job, sink, set_record) -> final fields
        # hands the run to a runner (cluster.dispatch.Dispatcher); None: runs are executed here.
        self.dispatcher: Any = None
        self.owner = owners.this_process()
        self.recover_first = False  # True: recover() before the first reading of runs (local mode)

    # ------------------------------------------------------------ records
    async def _save(self, active: _Active) -> bool:
        """Write the record as it is now; False when the store cannot take it."""
        async with active.writing:
            try:
                active.revision = await self.store.put(run_key(active.run.id), active.run.encode())
            except StoreError as exc:
                if not active.unsaved:
                    log.warning("run %s: cannot write its record now (will keep trying): %s", active.run.id, exc)
                active.unsaved = True
                return False
            active.unsaved = False
            return True

    async def _set(self, active: _Active, **changes: Any) -> None:
        """Change the record: followers hear it now, the store as soon as it can take it."""
        for key, value in changes.items():
            setattr(active.run, key, value)
        active.publish(RunEvent("status", run=replace(active.run)))
        if active.saver is not None and not active.saver.done():
            return  # the store is away: the saver writes the newest record once it is back
        if not await self._save(active):
            active.saver = asyncio.get_running_loop().create_task(self._save_later(active))

    async def _save_later(self, active: _Active) -> None:
        while active.unsaved:
            await asyncio.sleep(STORE_RETRY_SECONDS)
            await self._save(active)

    async def _store_last(self, active: _Active, sink: _OutputSink) -> None:
        """The rest of the output, then the final record, written as soon as the store takes them."""
        while not (await sink.finish() and await self._save(active)):
            await asyncio.sleep(STORE_RETRY_SECONDS)
        log.info("run %s: its record and output are stored now", active.run.id)

    # ------------------------------------------------------------ starting
    async def prepare(self, name: str, inputs: dict[str, Any], run_secrets: list[SecretRef],
                      timeout: int | None) -> "Job":
        """Load the service and what it needs, check the inputs, open the secrets: everything a run needs."""
        service, _ = await self.engine._load("service", name)
        assert isinstance(service, Service)
        schema = None
        if service.decorator:
            decorator, _ = await self.engine._load("decorator", service.decorator)
            schema = decorator.schema  # type: ignore[attr-defined]
        values = prepare_inputs(schema, inputs)
        if timeout is not None and not 1 <= timeout <= 7 * 86400:
            raise InvalidArgument(f"timeout {timeout} is not valid: 1 to 604800 seconds")
        refs = {ref.target: ref for ref in service.secrets}
        refs.update({ref.target: ref for ref in run_secrets})
        secret_values = {}
        for ref in refs.values():
            secret_values[ref.target] = await self.engine.reveal_secret(ref.name)
        repository, _ = await self.engine._load("repository", service.repository)
        booleans = {k for k, p in (schema or {}).get("properties", {}).items()
                    if isinstance(p, dict) and p.get("type") == "boolean"}
        return Job(service=service, repository=repository, inputs=values, booleans=booleans,
                   secret_values=secret_values, masker=Masker(list(secret_values.values())),
                   timeout=timeout or service.timeout or self.limits.default_timeout, schema=schema,
                   run_secrets=list(run_secrets))

    async def start(self, name: str, inputs: dict[str, Any], run_secrets: list[SecretRef], timeout: int | None,
                    started_by: str | None = None) -> tuple[Run, asyncio.Queue]:
        """Check everything, record the run as queued, and start it. Returns the run and its event queue."""
        await self._recover_first()
        job = await self.prepare(name, inputs, run_secrets, timeout)
        service = job.service
        run = Run(
            id=new_run_id(), service=service.name, service_type=service.type,
            inputs=job.masker.inputs(job.inputs, secret_fields(job.schema)),
            started_by=started_by or _who(), status=QUEUED, owner=self.owner,
        )
        active = _Active(run, 0)
        queue: asyncio.Queue = asyncio.Queue(SUBSCRIBER_QUEUE)
        active.subscribers.append(queue)
        self._active[run.id] = active
        try:  # a store that cannot be reached now: nothing starts, and the caller is told
            active.revision = await self.store.put(run_key(run.id), run.encode())
        except Exception:
            del self._active[run.id]
            raise
        self._ensure_cancel_watch()
        active.task = asyncio.get_running_loop().create_task(self._execute(active, job))
        return replace(run), queue

    def _ensure_cancel_watch(self) -> None:
        if self._cancel_watch is None or self._cancel_watch.done():
            self._cancel_watch = asyncio.get_running_loop().create_task(self._watch_cancels())

    async def _watch_cancels(self) -> None:
        while True:
            watch = None
            try:
                watch = self.store.watch("run-cancel/")
                asked = [e.key for e in await self.store.list("run-cancel/")]  # asked while no watch was up
                async for key in _chain(asked, (e.key async for e in watch if e.kind == "put")):
                    run_id = key.split("/", 1)[1]
                    if run_id in self._active:
                        await self.cancel(run_id)
            except Exception:  # the store went away: watch again once it is back
                pass
            finally:
                if watch is not None:
                    with contextlib.suppress(Exception):
                        await watch.aclose()  # type: ignore[attr-defined]
            await asyncio.sleep(STORE_RETRY_SECONDS)

    # ------------------------------------------------------------ queue
    async def _acquire(self, active: _Active) -> bool:
        """Wait for a free slot in queue order; False when the run was cancelled while waiting."""
        self._waiting.append(active.run.id)
        try:
            async with self._slot_freed:
                while True:
                    if active.cancel_requested:
                        return False
                    position = self._waiting.index(active.run.id)
                    if self._running < self.limits.max_concurrent_runs and position == 0:
                        break
                    reason = (f"waiting: position {position + 1} in the queue, "
                              f"{self._running} of {self.limits.max_concurrent_runs} runs at once already running")
                    if active.run.reason != reason:
                        await self._set(active, reason=reason)
                    await self._slot_freed.wait()
            self._running += 1
            return True
        finally:
            self._waiting.remove(active.run.id)
            async with self._slot_freed:
                self._slot_freed.notify_all()

    async def _release(self) -> None:
        self._running -= 1
        async with self._slot_freed:
            self._slot_freed.notify_all()

    # ------------------------------------------------------------ running
    async def _execute(self, active: _Active, job: "Job") -> None:
        sink = _OutputSink(self.store, active, job.masker, self.limits.output_limit)
        acquired = stopping = False
        final: dict[str, Any] = {}
        try:
            if self.dispatcher is not None:  # distributed: a runner does the work
                final = await self.dispatcher.execute(active, job, sink, self._set)
                return
            acquired = await self._acquire(active)
            if not acquired:
                final = dict(status=CANCELLED, reason="cancelled while queued")
                return
            await self._set(active, status=RUNNING, reason="", started_at=time.time())

            def progress(text: str) -> None:
                active.publish(RunEvent("output", lines=(OutputLine("gateway", job.masker(text)),)))

            final = await perform(active, job, self.data_dir, self.workspace, self.venvs,
                                  self.limits.kill_grace_period, sink.line, progress)
        except GatewayError as exc:
            await sink.line("gateway", str(exc))
            final = dict(status=FAILED, reason=str(exc))
        except asyncio.CancelledError:
            final = dict(status=INTERRUPTED, reason="the gateway stopped while the run was in flight")
            stopping = True
            raise
        except Exception as exc:  # a bug must end the run, not leave it "running"
            final = dict(status=FAILED, reason=f"internal error: {type(exc).__name__}: {exc}")
        finally:
            active.process = None
            if acquired:
                await self._release()
            for key, value in dict(final, ended_at=time.time()).items():
                setattr(active.run, key, value)
            try:
                stored = await sink.finish() and await self._save(active)
                active.publish(RunEvent("status", run=replace(active.run)))
                for queue in active.subscribers:
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(None)
                if not stored and not stopping:  # the store is away: the record is written when it is back
                    await self._store_last(active, sink)
                with contextlib.suppress(Exception):
                    await self.store.delete(cancel_key(active.run.id))
            finally:
                if active.saver is not None:
                    active.saver.cancel()
                self._active.pop(active.run.id, None)

    # ------------------------------------------------------------ records left behind
    async def recover(self, gone: Callable[[str], Awaitable[bool]] | None = None, only: str | None = None) -> int:
        """End as interrupted the unfinished runs whose keeper is gone (`gone(owner)`; by default: a
        process of this machine that no longer runs).  `only`: look at that keeper's runs alone.
        Returns how many were ended.  A record changed meanwhile by someone else is left to them."""
        gone = gone or _process_gone
        ended = 0
        for entry in await self.store.list("runs/"):
            run = Run.decode(entry.value)
            if run.finished or not run.owner or run.owner == self.owner or (only and run.owner != only):
                continue
            if not await gone(run.owner):
                continue
            run.status, run.ended_at = INTERRUPTED, time.time()
            run.reason = f"gateway lost: {owners.describe(run.owner)} ended before the run did"
            stored = await self.store.list(output_prefix(run.id))  # the count in the record lags behind
            run.output_lines = max(run.output_lines, sum(len(json.loads(e.value)) for e in stored) + run.output_dropped)
            try:
                await self.store.update(entry.key, run.encode(), entry.revision)
            except RevisionMismatch:
                continue
            with contextlib.suppress(Exception):
                await self.store.delete(cancel_key(run.id))
            ended += 1
        return ended

    # ------------------------------------------------------------ control and reading
    async def cancel(self, run_id: str) -> Run:
        check_run_id(run_id)
        active = self._active.get(run_id)
        if active is None:
            run = await self.get(run_id)
            if run.finished:
                raise FailedPrecondition(f"run {run_id} has already ended ({run.status})")
            await self.store.put(cancel_key(run_id), b"1")  # the process running it stops it
            return run
        active.cancel_requested = True
        if active.process is not None:
            active.process.stop("cancel", self.limits.kill_grace_period)
        elif active.remote_cancel is not None:
            active.remote_cancel()
        else:
            async with self._slot_freed:
                self._slot_freed.notify_all()
        return replace(active.run)

    def reap(self) -> int:
        """End the processes and remove the run folders that gateways which died left on this machine."""
        from ..execution import leftovers

        return leftovers.reap(self.data_dir / "runs")

    async def _recover_first(self) -> None:
        if self.recover_first:
            self.recover_first = False
            self.reap()
            with contextlib.suppress(StoreError):  # an unreadable store is told by the reading itself
                await self.recover()

    async def get(self, run_id: str) -> Run:
        check_run_id(run_id)
        await self._recover_first()
        entry = await self.store.get(run_key(run_id))
        if entry is None:
            raise NotFound(f"run {run_id!r} not found")
        return Run.decode(entry.value)

    async def list(self, service: str | None = None, status: str | None = None, limit: int = 100,
                   runner: str | None = None) -> list[Run]:
        await self._recover_first()
        runs = [Run.decode(e.value) for e in await self.store.list("runs/")]
        runs = [r for r in runs if (not service or r.service == service) and (not status or r.status == status)
                and (not runner or r.runner == runner)]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)  # newest first, also within one second
        return runs[:limit] if limit else runs

    async def output(self, run_id: str) -> list[OutputLine]:
        await self.get(run_id)
        lines = []
        for entry in await self.store.list(output_prefix(run_id)):
            lines.extend(OutputLine(s, t) for s, t in json.loads(entry.value))
        return lines

    async def follow(self, run_id: str) -> AsyncIterator[RunEvent]:
        """Stored output, then live output until the run ends; works for a run in any process."""
        check_run_id(run_id)
        watch = self.store.watch("run")  # runs/<id> and run-output/<id>/ both start with "run"
        try:
            run = await self.get(run_id)
            yield RunEvent("status", run=run)
            seen: set[str] = set()
            entries = await self.store.list(output_prefix(run_id))
            for entry in entries:
                seen.add(entry.key)
                yield RunEvent("output", lines=tuple(OutputLine(s, t) for s, t in json.loads(entry.value)))
            if run.finished:
                return
            async for event in watch:
                if event.kind != "put":
                    continue
                if event.key == run_key(run_id):
                    run = Run.decode(event.value)
                    yield RunEvent("status", run=run)
                    if run.finished:
                        return
                elif event.key.startswith(output_prefix(run_id)) and event.key not in seen:
                    seen.add(event.key)
                    yield RunEvent("output", lines=tuple(OutputLine(s, t) for s, t in json.loads(event.value)))
        finally:
            await watch.aclose()  # type: ignore[attr-defined]

    async def drain(self, grace: float) -> None:
        """Let the runs in flight finish, for at most `grace` seconds (a server's graceful stop)."""
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    async def shutdown(self) -> None:
        """Stop: a run still in flight ends as interrupted, its process group killed."""
        for active in list(self._active.values()):
            if active.task is not None:
                active.task.cancel()
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._cancel_watch is not None:
            self._cancel_watch.cancel()


async def _process_gone(owner: str) -> bool:
    return owners.process_gone(owner)


async def _chain(first: list[str], then: AsyncIterator[str]) -> AsyncIterator[str]:
    for item in first:
        yield item
    async for item in then:
        yield item


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
