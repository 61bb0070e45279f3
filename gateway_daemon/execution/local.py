"""The local Executor: a prepared job becomes a workspace, a venv and processes on this machine.

Local mode and servers that run work themselves use it with an Admission (at
most `max_concurrent_runs` at once, the rest queued); a runner uses it without
one, since it refuses work when full instead of queueing it.

Each command runs under the supervisor (nothing it starts outlives the run) and,
where bwrap works, in the sandbox (sandbox.py says what a run sees).  The run
folder holds the tree, the private /tmp and the private HOME; it goes with the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..core.runs.admission import Admission
from ..core.errors import FailedPrecondition
from ..core.runs.jobs import Job, JobEvents, JobResult
from ..core.runs.records import CANCELLED, FAILED, SUCCEEDED, TIMED_OUT, Masker
from . import ansible, leftovers, python_scripts, tofu
from .command_lines import build, child_environment
from .launch import ended
from .memory import exceeded_reason
from .process import SUPERVISOR, Outcome, Process
from .sandbox import Sandbox, gateway_environment
from .venvs import Venvs, base_python
from .workspace import Workspace


class LocalExecutor:
    def __init__(self, data_dir: Path, workspace: Workspace, venvs: Venvs, kill_grace: float,
                 admission: Admission | None = None, requirements_file: str = "requirements.txt",
                 sandbox: Sandbox | None = None, warn_each_run: bool = False):
        """`requirements_file`: what a python-script service that names none installs, when its working dir
        has it ([python-script] requirements_file); `sandbox`: where runs execute (default: none);
        `warn_each_run`: say at the start of every run when `auto` found no working bwrap (local mode: nobody
        reads a daemon log there)."""
        self.runs_dir = Path(data_dir) / "runs"
        self.workspace = workspace
        self.venvs = venvs
        self.kill_grace = kill_grace
        self.admission = admission
        self.requirements_file = requirements_file
        self._sweeper: asyncio.Task | None = None
        self._swept = False
        self.sandbox = sandbox or Sandbox("none")
        self.warn_each_run = warn_each_run

    async def execute(self, job: Job, events: JobEvents, cancel: asyncio.Event) -> JobResult:
        if self.admission is not None:
            if not await self.admission.acquire(job.run_id, cancel, events.waiting):
                return JobResult(CANCELLED, "cancelled while queued")
        try:
            await events.started()
            return await self._perform(job, events, cancel)
        finally:
            if self.admission is not None:
                self.admission.release()

    async def _perform(self, job: Job, events: JobEvents, cancel: asyncio.Event) -> JobResult:
        """Workspace, venv, process(es); the run folder goes in every case."""
        service = job.service
        if self.sandbox.mode != "none":
            await asyncio.to_thread(self.sandbox.problem)  # probed once, off the loop
        if not self._swept:  # the memory cgroups of runs a kill cut short, once
            self._swept = True
            await asyncio.to_thread(self.sandbox.memory.sweep)
        if self.sandbox.refusal():
            raise FailedPrecondition(self.sandbox.refusal())
        if self.warn_each_run and self.sandbox.warning():
            events.progress(self.sandbox.warning())
        if self.warn_each_run and self.sandbox.network_warning():
            events.progress(self.sandbox.network_warning())
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{job.run_id}-", dir=self.runs_dir))
        held: list[str] = []  # the cached environments this run uses
        state: str | None = None  # opentofu-plan: the state the tree ends with
        try:
            leftovers.claim(run_dir)
            tree = run_dir / "tree"
            events.checked_out(await self.workspace.prepare(job.repository, tree, events.progress,
                                                            job.repository_key, job.repository_password))
            await asyncio.to_thread(self.sandbox.give, tree)  # the run's user's (a build writes there too)
            workdir = tree / (service.working_dir or ".")
            if not workdir.is_dir():
                raise FailedPrecondition(f"service {service.name}: working dir {service.working_dir} "
                                         f"not found in repository {job.repository.name}")
            python = sys.executable  # other types: the gateway's own bin directory leads PATH
            extra_env = dict(service.env)
            playbook_program = None
            # ---- dependencies by service type (execution/python_scripts.py, execution/ansible.py); the builds
            # run in the venvs' sandbox (the same as the runs'), seeing this run's tree
            if service.type == "python-script":
                python = str(await python_scripts.python_for(job, workdir, self.requirements_file, self.venvs,
                                                             events.progress, tree))
                held.append(python)
            elif service.type == "ansible-playbook":
                setup = await ansible.prepare(job, workdir, self.venvs, events.progress, tree)
                held.extend(setup.held)
                python, playbook_program = setup.python, setup.playbook
                extra_env = {**setup.env, **extra_env}  # the service's own env wins
            tmp, home = run_dir / "tmp", run_dir / "home"
            tmp.mkdir()
            home.mkdir()
            inputs_file = None  # a playbook's inputs: a file in the run's private /tmp (never templated)
            if service.type == "ansible-playbook" and job.inputs:
                written = ansible.write_inputs(job.inputs, tmp)
                inputs_file = str(Path("/tmp") / written.name if self.sandbox.active else written)
            steps = build(service, workdir, job.inputs, set(job.booleans), python, job.options, playbook_program,
                          job.executable, tree=tree, action=job.action, inputs_file=inputs_file)
            if service.type == "opentofu-plan":
                tofu.place_state(workdir, job.state)
                if (workdir / tofu.STATE_FILE).exists():
                    self.sandbox.give(workdir / tofu.STATE_FILE)
            # ---- end of dependencies
            # The sandbox shows the cached venvs and collections the run holds, read-only.
            readable = [*gateway_environment(), SUPERVISOR, *(self._cached_folder(Path(path)) for path in held)]
            self.sandbox.give(tmp, home)  # with the inputs file in it: the run's user reads it
            if self.sandbox.active:
                env = child_environment({**extra_env, **job.env}, Path("/tmp"), python, home=home)
            else:
                env = child_environment({**extra_env, **job.env}, tmp, python)
            commands = [(argv, self.sandbox.command(tree=tree, tmp=tmp, home=home, cwd=str(workdir),
                                                    readable=[*readable, argv[0]])) for argv in steps]
            outcome = await self._processes(commands, str(workdir), env, run_dir, job.timeout, events, cancel,
                                            Masker(job.secret_values()))
            if service.type == "opentofu-plan":
                state = tofu.read_state(workdir)
        finally:
            self.venvs.release(*held)
            shutil.rmtree(run_dir, ignore_errors=True)
        if outcome.stopped == "memory":
            return JobResult(FAILED, exceeded_reason(self.sandbox.memory.limit), outcome.exit_code, state)
        if outcome.stopped == "timeout":
            return JobResult(TIMED_OUT, f"stopped after the {job.timeout} s time limit", outcome.exit_code, state)
        if outcome.stopped == "cancel" or cancel.is_set():
            return JobResult(CANCELLED, "cancelled", outcome.exit_code, state)
        if outcome.exit_code == 0:
            return JobResult(SUCCEEDED, "", 0, state)
        return JobResult(FAILED, f"exited with code {outcome.exit_code}", outcome.exit_code, state)

    def _cached_folder(self, path: Path) -> Path:
        """The venv a held interpreter lives in (its bin/python), or the held folder itself."""
        return path.parent.parent if path.parent.name == "bin" else path

    async def _processes(self, steps: list[tuple[list[str], list[str]]], cwd: str, env: dict[str, str],
                         run_dir: Path, timeout: int, events: JobEvents, cancel: asyncio.Event,
                         mask: Masker | None = None) -> Outcome:
        """Each command line (with its sandbox) in turn until one fails or is stopped; the outcome of the last.
        `mask`: the job's secrets, masked in a line before a long one is cut."""
        outcome = Outcome(None)
        deadline = time.monotonic() + timeout
        for argv, sandbox in steps:
            launch = self.sandbox.launch(command_waits=True) if sandbox else None
            # The memory bound: the launch's cgroup, else the supervisor's own count.
            memory = self.sandbox.memory.limit if launch is None or launch.memory is None else 0
            process = Process(argv, cwd, env, base_python(), self.kill_grace, sandbox, self.sandbox.user(), launch,
                              memory, mask)
            await process.start()
            leftovers.note_group(run_dir, process.pid)
            stopper = asyncio.ensure_future(self._stop_on(cancel, process))
            try:
                outcome = await process.run(events.output_lines, max(0.0, deadline - time.monotonic()),
                                            self.kill_grace)
            finally:
                stopper.cancel()
            if outcome.stopped or outcome.exit_code != 0 or cancel.is_set():
                break
        return outcome

    async def _stop_on(self, cancel: asyncio.Event, process: Process) -> None:
        await cancel.wait()
        process.stop("cancel", self.kill_grace)

    async def start(self) -> None:
        """Remove the cached environments unused for too long, now and then daily (Venvs.sweeping).
        (bootstrap says at a daemon's start which sandbox runs get.)"""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self.venvs.sweeping())

    def reap(self) -> int:
        return leftovers.reap(self.runs_dir)

    async def close(self) -> None:
        """Stop pruning; every run's processes and folder end with the run."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await ended()  # the runs' networks
