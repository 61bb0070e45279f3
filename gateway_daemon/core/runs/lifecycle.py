"""The life of a run: queue, workspace, process, output, record.

Records live in the store: ``runs/<id>`` holds the run, ``run-output/<id>/<seq>``
hold its output in chunks (written a few times a second, so a follower in
another process sees it live), capped at ``output_limit`` bytes with the tail
kept.  A cancel from anywhere is a ``run-cancel/<id>`` key.

A run goes on when the store cannot be reached for a while (etcd restarting):
its followers in this process hear everything at once, and the record and
output are written as soon as the store answers again.  A record names the
process that keeps it (core.owners); records left unfinished by a process that
died are ended as interrupted by whoever finds them (`RunLifecycle.recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from ...store import RevisionMismatch, Store, StoreError
from . import keepers
from ..errors import FailedPrecondition, GatewayError, InvalidArgument, NotFound
from ..resources.features import check_enabled
from .jobs import Executor, Job, JobResult
from .outputs import STORE_RETRY_SECONDS, OutputSink, output_prefix
from .active import ActiveRun
from .records import (CANCELLED, FAILED, INTERRUPTED, QUEUED, RUNNING, Masker, OutputLine, Run, RunEvent, cancel_key,
                      check_run_id, check_run_timeout, new_run_id, prepare_inputs, run_key, secret_fields)
from ..resources.decorators import Decorator
from ..resources.executables import ExecutableObject
from ..resources.repositories import Repository
from ..resources.secret_providers import SecretProvider, substitute
from ..resources.services import SecretRef
from .installs import access_for as registry_access
from .playbook_variables import check_playbook_inputs
from .options import check_run_options
from .tofu_state import action_of, check_state_text

if TYPE_CHECKING:
    from ..access.audit import AuditTrail
    from ..resources.catalog import Catalog
    from ..resources.secret_providers import ProviderSecrets
    from .tofu_state import ServiceStates

# Opens a secret by name: its value, for the job (never stored in the run's record).
SecretOpener = Callable[[str], Awaitable[str]]

log = logging.getLogger("gateway.runs")
SUBSCRIBER_QUEUE = 2000


@dataclass
class Limits:
    max_concurrent_runs: int = 4
    default_timeout: int = 3600
    output_limit: int = 1024 * 1024
    kill_grace_period: float = 5.0
    registry_overridable: bool = True  # [registry] default_overridable: a service may name its registry
    # [runs]: what the store keeps of finished runs (core.retention); 0 turns a limit off
    retention_count: int = 1000  # runs per service, the newest
    retention_age: float = 90 * 86400.0  # seconds
    output_budget: int = 256 * 1024 * 1024  # bytes of stored output, all runs together


class _Reporter:
    """What the executor tells of a job, into the run's record, output and followers (masked here)."""

    def __init__(self, lifecycle: "RunLifecycle", active: ActiveRun, sink: OutputSink, masker: Masker):
        self.lifecycle = lifecycle
        self.active = active
        self.sink = sink
        self.masker = masker

    async def waiting(self, reason: str) -> None:
        if self.active.run.reason != reason:
            await self.lifecycle._set(self.active, reason=reason)

    async def started(self, runner: str = "") -> None:
        await self.lifecycle._set(self.active, status=RUNNING, reason="", started_at=time.time(), runner=runner)

    def checked_out(self, commit: str) -> None:
        self.active.run.commit = commit

    async def output(self, stream: str, text: str) -> None:
        await self.sink.lines(stream, [text])

    async def output_lines(self, stream: str, texts: list[str]) -> None:
        await self.sink.lines(stream, texts)

    def progress(self, text: str) -> None:
        self.active.publish(RunEvent("output", lines=(OutputLine("gateway", self.masker(text)),)))


class RunLifecycle:
    """Starts runs, keeps their records, and hands the prepared jobs to the executor it was built with."""

    def __init__(self, catalog: "Catalog", open_secret: SecretOpener, states: "ServiceStates", limits: Limits,
                 executor: Executor, owner: str, recover_first: bool = False,
                 disabled_types: frozenset[str] = frozenset(), audit: "AuditTrail | None" = None,
                 provider_secrets: "ProviderSecrets | None" = None):
        """`catalog`: the resources a run needs; `open_secret`: a secret's value by name; `states`: opentofu-plan
        services' states; `owner`: this process as the keeper of its runs (core.runs.keepers); `disabled_types`:
        service types whose runs are refused ([features], see core.resources.features); `audit`: a server's
        audit trail, where each run's end is recorded; `provider_secrets`: keeps the credential files of secret
        providers from the runs.  `ended_hooks` are called after each run's record is
        stored (the retention looks again)."""
        self.catalog = catalog
        self.open_secret = open_secret
        self.states = states
        self.disabled_types = disabled_types
        self.store: Store = catalog.store
        self.limits = limits
        self.executor = executor
        self.audit = audit
        self.provider_secrets = provider_secrets
        self.ended_hooks: list[Callable[[], None]] = []
        self._active: dict[str, ActiveRun] = {}
        self._cancel_watch: asyncio.Task | None = None
        self.owner = owner
        self.recover_first = recover_first  # True: recover() before the first reading of runs (local mode)

    # ------------------------------------------------------------ records
    async def _save(self, active: ActiveRun) -> bool:
        """Write the record as it is now; False when the store cannot take it."""
        async with active.writing:
            try:
                active.revision = await self.store.put(run_key(active.run.id), active.run.encode())
            except StoreError as exc:
                if not active.unsaved:
                    log.warning("run %s: cannot write its record now (will keep trying): %s", active.run.id, exc)
                active.unsaved = True
                active.store_error = str(exc)
                return False
            active.unsaved = False
            active.store_error = ""
            return True

    async def _set(self, active: ActiveRun, **changes: Any) -> None:
        """Change the record: followers hear it now, the store as soon as it can take it."""
        for key, value in changes.items():
            setattr(active.run, key, value)
        active.publish(RunEvent("status", run=replace(active.run)))
        if active.saver is not None and not active.saver.done():
            return  # the store is away: the saver writes the newest record once it is back
        if not await self._save(active):
            active.saver = asyncio.get_running_loop().create_task(self._save_later(active))

    async def _save_later(self, active: ActiveRun) -> None:
        while active.unsaved:
            await asyncio.sleep(STORE_RETRY_SECONDS)
            await self._save(active)

    async def _store_last(self, active: ActiveRun, sink: OutputSink) -> None:
        """The rest of the output, then the final record, written as soon as the store takes them."""
        while not (await sink.finish() and await self._save(active)):
            await asyncio.sleep(STORE_RETRY_SECONDS)
        log.info("run %s: its record and output are stored now", active.run.id)

    async def _wait_stored(self, active: ActiveRun, sink: OutputSink) -> bool:
        """The run is over but the store did not take its record: its followers hear why and wait while it
        is tried again, until it is stored (True) or they stop waiting (a cancel: False)."""
        error = active.store_error or sink.error or "the store does not answer"
        note = (f"run {active.run.id} ended {active.run.status}, but the store does not take its record yet: {error}; "
                f"trying again every {STORE_RETRY_SECONDS:g} s (cancel the run to stop waiting)")
        active.publish(RunEvent("output", lines=(OutputLine("gateway", note),)))
        while not active.stop_waiting.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(active.stop_waiting.wait(), STORE_RETRY_SECONDS)
            if await sink.finish() and await self._save(active):
                return True
        return False

    # ------------------------------------------------------------ starting
    async def prepare(self, run_id: str, name: str, inputs: dict[str, Any], run_secrets: list[SecretRef],
                      timeout: int | None, options: dict[str, Any] | None = None, action: str = "",
                      state: str | None = None) -> tuple[Job, dict[str, Any] | None]:
        """Load the service and what it needs, check the inputs, open the secrets: the job, and the
        decorator's schema (None without one).  `action`, `state`: an opentofu-plan run's action and the state
        it starts from instead of the stored one (core.tofu_state)."""
        service = await self.catalog.service_with_id(name)
        check_enabled(service.type, self.disabled_types)
        schema = None
        if service.decorator:
            schema = (await self.catalog.load(Decorator, service.decorator)).schema
        # Off the loop: checking inputs against a schema is bounded (core.decorators) but may take seconds.
        values = await asyncio.to_thread(prepare_inputs, schema, inputs)
        if service.type == "ansible-playbook" and values:  # off the loop too: Ansible's names are slow to import
            await asyncio.to_thread(check_playbook_inputs, service.name, values, schema)
        check_run_timeout(timeout)
        run_options = check_run_options(service, options)
        refs = {ref.target: ref for ref in service.secrets}
        for ref in run_secrets:  # a secret given to a run is one its caller may see (core.policy)
            await self.catalog.read_visible("secret", ref.name)
        refs.update({ref.target: ref for ref in run_secrets})
        env = {}
        for ref in refs.values():
            env[ref.target] = await self.open_secret(ref.name)
        repository = await self.catalog.load(Repository, service.repository)
        key = ""
        if repository.private_key_name:
            key = await self.open_secret(repository.private_key_name)
        password = ""
        if repository.credential_name:
            password = await self.open_secret(repository.credential_name)
        action = action_of(service, action)
        if state is not None and service.type != "opentofu-plan":
            raise InvalidArgument(f"service {service.name} is a {service.type}: a state is for opentofu-plan "
                                  "services", {"state": "only for opentofu-plan services"})
        check_state_text(state, "the state given")
        booleans = frozenset(k for k, p in (schema or {}).get("properties", {}).items()
                             if isinstance(p, dict) and p.get("type") == "boolean")
        registries = await registry_access(self.catalog, self.open_secret, service, self.limits.registry_overridable)
        executable = None
        if service.executable:
            executable = await self.catalog.load(ExecutableObject, service.executable)
        service, values, referenced = await self._resolve_references(service, values, inputs)
        if self.provider_secrets is not None:
            self.provider_secrets.guard(await self.catalog.load_all(SecretProvider))
        job = Job(run_id=run_id, service=service, repository=repository, inputs=values,
                  timeout=timeout or service.timeout or self.limits.default_timeout, booleans=booleans, env=env,
                  repository_key=key, options=run_options, registries=registries,
                  executable=executable, repository_password=password, action=action,
                  state=state, referenced=referenced)  # type: ignore[arg-type]
        return job, schema

    async def _resolve_references(self, service, values: dict[str, Any],
                                  given: dict[str, Any]) -> tuple[Any, dict[str, Any], list[str]]:
        """`$gateway_secret_(name)` in the service's env values, runtime args, extra vars and -var values, and in
        the inputs its decorator's defaults filled in (never in what the caller typed: a caller names only the
        secrets they may see, with --set-secret), replaced by the secrets' values: the service for the job, the
        inputs, and the values opened (masked like any secret)."""
        opened: dict[str, str] = {}
        reveal = self.open_secret
        changes = {}
        for field in ("env", "runtime_args", "extra_vars", "tofu_vars"):
            current = getattr(service, field)
            resolved = await substitute(current, reveal, opened)
            if resolved != current:
                changes[field] = resolved
        defaults = {k: v for k, v in values.items() if k not in given}
        resolved_defaults = await substitute(defaults, reveal, opened)
        if resolved_defaults != defaults:
            values = {**values, **resolved_defaults}
        if changes:
            service = replace(service, **changes)
        return service, values, list(opened.values())

    async def start(self, name: str, inputs: dict[str, Any], run_secrets: list[SecretRef], timeout: int | None,
                    started_by: str | None = None, options: dict[str, Any] | None = None, action: str = "",
                    state: str | None = None, state_out: bool = False) -> tuple[Run, asyncio.Queue]:
        """Check everything, record the run as queued, and start it. Returns the run and its event queue.
        `state_out`: the final event carries the state the run ended with (opentofu-plan)."""
        await self._recover_first()
        job, schema = await self.prepare(new_run_id(), name, inputs, run_secrets, timeout, options, action, state)
        masker = Masker(job.secret_values())
        service = job.service
        run = Run(
            id=job.run_id, service=service.name, service_id=service.id, service_type=service.type,
            inputs=masker.inputs(job.inputs, secret_fields(schema)),
            started_by=started_by or _who(), status=QUEUED, owner=self.owner,
        )
        active = ActiveRun(run, 0)
        active.state_out = state_out
        queue: asyncio.Queue = asyncio.Queue(SUBSCRIBER_QUEUE)
        active.subscribers.append(queue)
        self._active[run.id] = active
        try:  # a store that cannot be reached now: nothing starts, and the caller is told
            active.revision = await self.store.put(run_key(run.id), run.encode())
        except Exception:
            del self._active[run.id]
            raise
        self._ensure_cancel_watch()
        active.task = asyncio.get_running_loop().create_task(self._execute(active, job, masker))
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

    # ------------------------------------------------------------ running
    async def _execute(self, active: ActiveRun, job: Job, masker: Masker) -> None:
        sink = OutputSink(self.store, active, masker, self.limits.output_limit)
        stopping = False
        final: dict[str, Any] = {}
        try:
            reporter = _Reporter(self, active, sink, masker)
            given_state = job.state is not None  # the caller's own: what the run ends with is stored in any case
            async with self.states.held(job, reporter.waiting, active.cancel) as holding:
                if not holding:
                    result = JobResult(CANCELLED, f"cancelled while waiting for the state of service {job.service.name}")
                else:
                    result = await self.executor.execute(job, reporter, active.cancel)
                    active.final_state = result.state
                    problem = await self.states.keep(job, result, given_state)
                    if problem:
                        await sink.line("gateway", problem)
                        result = JobResult(FAILED, problem, result.exit_code)
            final = dict(status=result.status, reason=result.reason, exit_code=result.exit_code)
        except GatewayError as exc:
            await sink.lines("gateway", [str(exc)])
            final = dict(status=FAILED, reason=str(exc))
        except asyncio.CancelledError:
            final = dict(status=INTERRUPTED, reason="the gateway stopped while the run was in flight")
            stopping = True
            raise
        except Exception as exc:  # a bug must end the run, not leave it "running"
            final = dict(status=FAILED, reason=f"internal error: {type(exc).__name__}: {exc}")
        finally:
            for key, value in dict(final, ended_at=time.time()).items():
                setattr(active.run, key, value)
            active.ended = True
            audit = self.audit  # the run's end, in the audit trail (a server's)
            if audit is not None:
                with contextlib.suppress(Exception):
                    await audit.record("run.end", f"service/{active.run.service}", str(active.run.status),
                                       f"run {active.run.id}" + (f": {active.run.reason}" if active.run.reason else ""))

            def tell_ended() -> None:  # the retention looks again at what the store keeps
                if not stopping:
                    for hook in self.ended_hooks:
                        hook()

            try:
                stored = await sink.finish() and await self._save(active)
                if not stored and not stopping:  # a result is reported only once the store holds it
                    stored = await self._wait_stored(active, sink)
                if stored:  # told before its followers hear the end: a `gateway run` ends right after
                    tell_ended()
                    active.publish(RunEvent("status", run=replace(active.run),
                                            state=active.final_state if active.state_out else None))
                active.publish_lines()
                for queue in active.subscribers:
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(None)
                if not stored and not stopping:  # nobody waits now: written once the store is back
                    await self._store_last(active, sink)
                with contextlib.suppress(Exception):
                    await self.store.delete(cancel_key(active.run.id))
                if not stored:  # stored only now, with nobody waiting
                    tell_ended()
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
            run.reason = f"gateway lost: {keepers.describe(run.owner)} ended before the run did"
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
        if active.ended:  # over, its record waiting for the store: its followers stop waiting
            active.stop_waiting.set()
        active.cancel.set()
        return replace(active.run)

    async def _recover_first(self) -> None:
        if self.recover_first:
            self.recover_first = False
            self.executor.reap()
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
        run = await self.get(run_id)
        lines = [pruned_note(run)] if run.output_pruned else []
        for entry in await self.store.list(output_prefix(run_id)):
            lines.extend(OutputLine(s, t) for s, t in json.loads(entry.value))
        return lines

    # ------------------------------------------------------------ removing runs and their output
    async def delete(self, run: Run) -> None:
        """Remove a finished run: its output, then its record.  A run in flight is cancelled first."""
        if not run.finished or run.id in self._active:
            raise FailedPrecondition(f"run {run.id} is {run.status}: cancel it first (gateway cancel run {run.id}), "
                                     "then delete it")
        await self.store.delete_prefix(output_prefix(run.id))
        await self.store.delete(run_key(run.id))
        with contextlib.suppress(StoreError):
            await self.store.delete(cancel_key(run.id))

    async def mark_pruned(self, run: Run, revision: int, note: str) -> bool:
        """Write in a finished run's record that its output is gone and why; False when the record changed
        meanwhile (or is gone).  Raises StoreError when the store cannot take it now."""
        pruned = replace(run, output_pruned=note)
        try:
            await self.store.update(run_key(run.id), pruned.encode(), revision)
        except RevisionMismatch:
            return False
        return True

    async def drop_output(self, run_id: str) -> None:
        await self.store.delete_prefix(output_prefix(run_id))

    async def follow(self, run_id: str) -> AsyncIterator[RunEvent]:
        """Stored output, then live output until the run ends; works for a run in any process."""
        check_run_id(run_id)
        watch = self.store.watch("run")  # runs/<id> and run-output/<id>/ both start with "run"
        try:
            run = await self.get(run_id)
            yield RunEvent("status", run=run)
            if run.output_pruned:
                yield RunEvent("output", lines=(pruned_note(run),))
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


def pruned_note(run: Run) -> OutputLine:
    """What is shown in the place of output that retention removed (the record keeps why)."""
    return OutputLine("gateway", f"output pruned: {run.output_pruned}")


async def _process_gone(owner: str) -> bool:
    return keepers.process_gone(owner)


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
