"""The execution port: a prepared job, what an executor tells about it, and the Executor itself.

The core prepares a job once (service, repository, inputs checked against the
decorator, secrets opened) and hands it to an Executor: the local one
(execution/) runs it on this machine, the cluster's dispatcher (cluster/)
sends it to a runner, which runs it with its own local executor and never
prepares it again.  Executors report raw output; the core masks it, once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..resources.executables import ExecutableObject
from .installs import RegistryAccess
from ..resources.repositories import Repository
from ..resources.services import Service


@dataclass
class Job:
    """A run ready to execute: everything is checked and every secret it needs is open."""

    run_id: str
    service: Service
    repository: Repository
    inputs: dict[str, Any]
    timeout: int  # seconds
    booleans: frozenset[str] = frozenset()  # inputs the decorator declares boolean (a bare --flag)
    env: dict[str, str] = field(default_factory=dict, repr=False)  # secret values by environment variable
    repository_key: str = field(default="", repr=False)  # the ssh private key of the repository, if it has one
    options: dict[str, str] = field(default_factory=dict)  # run options (core.run_options): --limit, --tags, ...
    registries: list[RegistryAccess] = field(default_factory=list, repr=False)  # where installs come from, opened
    executable: ExecutableObject | None = None  # the executable object the service names
    # https repositories with credentials: the password or token git answers with (the user is the repository's)
    repository_password: str = field(default="", repr=False)
    # opentofu-plan: the action of this run (plan, apply, destroy), and the state it starts from (the service's
    # stored state, or one the caller gave; None: none)
    action: str = ""
    state: str | None = field(default=None, repr=False)
    # the values `$gateway_secret_(name)` references in the service's text and defaults were replaced by
    referenced: list[str] = field(default_factory=list, repr=False)

    def secret_values(self) -> list[str]:
        """Every secret value this job holds: what the output must never show."""
        return [*self.env.values(), *(v for v in (self.repository_key, self.repository_password) if v),
                *self.referenced,
                *(value for access in self.registries for value in access.secret_values())]

    def registry(self, kind: str) -> RegistryAccess | None:
        """The registry of this type the job installs from (None: tell the tool nothing)."""
        return next((access for access in self.registries if access.type == kind), None)


@dataclass(frozen=True)
class JobResult:
    """How a job ended: the final status of its run, why, and the exit code of the last process."""

    status: str
    reason: str = ""
    exit_code: int | None = None
    state: str | None = field(default=None, repr=False)  # opentofu-plan: the state the run's tree ended with


class JobEvents(Protocol):
    """What an executor reports while a job goes; the core records it (and masks every line)."""

    async def waiting(self, reason: str) -> None:
        """The job waits: `reason` says for what (a queue position, no runner with its tags, ...)."""

    async def started(self, runner: str = "") -> None:
        """The job runs now (on `runner`, when a runner took it)."""

    def checked_out(self, commit: str) -> None:
        """The job's tree is at this commit."""

    async def output(self, stream: str, text: str) -> None:
        """One line of the job's output: stream is stdout, stderr or gateway (stored with the run)."""

    async def output_lines(self, stream: str, texts: list[str]) -> None:
        """Lines of the job's output, in order, all of one stream (what a process printed in one read)."""

    def progress(self, text: str) -> None:
        """A note on the way (cloning, installing): shown to followers, not stored."""


class Executor(Protocol):
    """Runs prepared jobs.  Implemented by execution.local.LocalExecutor and cluster.dispatch.Dispatcher."""

    async def execute(self, job: Job, events: JobEvents, cancel: asyncio.Event) -> JobResult:
        """Run `job` to its end.  Setting `cancel` stops it (the result says cancelled).  A GatewayError
        (the repository cannot be fetched, ...) propagates, and so does asyncio.CancelledError (this
        process stops: whatever runs for the job is stopped first)."""
        ...

    async def start(self) -> None:
        """Begin what the executor keeps up in the background (a dispatcher's view of the runners)."""
        ...

    def reap(self) -> int:
        """End what a process of this machine that died left running for its jobs; how many runs it had."""
        ...

    async def close(self) -> None:
        """Release what the executor holds (channels, watches)."""
        ...
