"""Cached environments: Python venvs per requirements.txt, Ansible collections per requirements.yml.

Each is keyed by the hash of the requirements file and the Python version, so
the first run builds it (with its progress streamed to the run) and every
later run with the same file reuses it.  An environment is usable only once
its ``.complete`` marker is written; a half-built one (the gateway killed
mid-build) is removed and built again.

Each use touches the environment's ``.last-used`` file (when a run takes it and
when that run ends); one unused for longer than ``[application]
venv_retention_period`` is removed by `prune`, which the local executor runs
when it starts and then every ``venv_sweep_interval``.  An environment a run
of this process holds is never removed.

A build runs code of the repository (pip runs a package's build code: the setup.py of an sdist, a local
path), so where runs are sandboxed its steps are too (sandbox.py): each sees the run's tree (read-write:
pip builds a local package in place), the gateway's Python read-only, the environment it installs into
read-write, a private /tmp and HOME (``<env>.scratch``, gone with the build) and the network; never the
data dir or the key files.  A registry's credentials reach pip and ansible-galaxy only through the
step's environment, never its argv.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.errors import FailedPrecondition
from ..inputfiles import MIB, InputFileError, digest_file
from .launch import Launch
from .process import SUPERVISOR
from .sandbox import Sandbox, gateway_environment
from .workspace import file_lock

Progress = Callable[[str], None]
MARKER = ".complete"
LAST_USED = ".last-used"
BUILD_TIMEOUT = 1800.0
RETENTION = 30 * 86400.0  # seconds: [application] venv_retention_period
SWEEP_INTERVAL = 86400.0  # seconds: [application] venv_sweep_interval
# The most the gateway reads of a file a repository names for a build: a requirements file (pip's or Galaxy's),
# a pyproject.toml.  Read in small pieces; a bigger file fails the run in one line.
MAX_REQUIREMENTS = 4 * MIB
log = logging.getLogger("gateway.venvs")


def base_python() -> str:
    """The interpreter under the gateway's own venv: scripts never see the gateway's packages."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _python_tag() -> str:
    return f"py{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


@dataclass(frozen=True)
class Recipe:
    """What a venv holds: a requirements file, more requirement specifiers (a pyproject's dependencies, the
    ansible-core an Ansible service runs with), and where they come from (`index`: the registry's URL,
    never its credentials).  An empty recipe is an empty venv: an interpreter that sees neither the
    gateway's packages nor the system's."""

    requirements: Path | None = None
    packages: tuple[str, ...] = ()
    index: str = ""
    pip_env: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def empty(self) -> bool:
        return self.requirements is None and not self.packages

    def key(self) -> str:
        if self.empty:
            return f"{_python_tag()}-empty"
        digest = hashlib.sha256()
        if self.requirements is not None:
            hash_requirements(self.requirements, digest)
        if self.packages or self.index:  # a requirements file alone keeps the key it always had
            digest.update(b"\0packages\0" + "\n".join(self.packages).encode())
            digest.update(b"\0index\0" + self.index.encode())
        return f"{_python_tag()}-{digest.hexdigest()[:20]}"

    def describe(self) -> str:
        named = [self.requirements.name] if self.requirements is not None else []
        if self.packages:
            named.append(", ".join(self.packages))
        return " + ".join(named) or "no packages (an isolated interpreter)"


def hash_requirements(path: Path, digest) -> None:
    """Feed a requirements file of a repository to `digest`, bounded (MAX_REQUIREMENTS); a bigger one, or one
    that cannot be read, fails the run in one line."""
    try:
        digest_file(path, MAX_REQUIREMENTS, "requirements file", digest, path.name)
    except InputFileError as exc:
        raise FailedPrecondition(str(exc)) from None
    except OSError as exc:
        raise FailedPrecondition(f"requirements file {path.name} cannot be read: {exc.strerror or exc}") from None


def read_requirements(path: Path, what: str = "requirements file") -> str:
    """The text of a file a repository names for a build, bounded like hash_requirements."""
    digest = _Collected()
    try:
        digest_file(path, MAX_REQUIREMENTS, what, digest, path.name)
    except InputFileError as exc:
        raise FailedPrecondition(str(exc)) from None
    except OSError as exc:
        raise FailedPrecondition(f"{what} {path.name} cannot be read: {exc.strerror or exc}") from None
    return b"".join(digest.parts).decode("utf-8", errors="replace")


class _Collected:
    """What digest_file reads, kept (it is bounded)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def update(self, data: bytes) -> None:
        self.parts.append(data)


class Confinement:
    """Where the steps of one build run: in the sandbox when runs have one, else as the gateway's user."""

    def __init__(self, sandbox: Sandbox, tree: Path, target: Path, scratch: Path, readable: tuple[str, ...] = ()):
        """`tree`: the run's tree; `target`: what the build installs into; `scratch`: holds the private /tmp
        and HOME; `readable`: more than the gateway's Python the steps need (another environment's program)."""
        self.sandbox, self.tree, self.target, self.scratch = sandbox, tree, target, scratch
        self.readable = readable

    def command(self, cwd: Path | None) -> list[str]:
        """The bwrap command line a step starts with ([] without a sandbox); where runs become another user,
        the supervisor making the step that user (the build's folders are that user's)."""
        if not self.sandbox.active:
            return []
        (self.scratch / "tmp").mkdir(parents=True, exist_ok=True)
        (self.scratch / "home").mkdir(parents=True, exist_ok=True)
        self.sandbox.give(self.target, self.scratch)
        args = self.sandbox.command(tree=self.tree, tmp=self.scratch / "tmp", home=self.scratch / "home",
                                    cwd=str(cwd or self.tree),
                                    readable=[*gateway_environment(), *self.readable, SUPERVISOR],
                                    writable=[self.target])
        user = self.sandbox.user()
        if user is not None:
            args += [base_python(), "-I", "-S", "-B", SUPERVISOR, "--user", f"{user[0]}:{user[1]}", "--exec", "--"]
        return args

    def launch(self) -> Launch | None:
        """The isolated network of a step (pip reaches registries through it); None: the host's."""
        return self.sandbox.launch(memory=False) if self.sandbox.active else None

    def environment(self) -> dict[str, str]:
        """What a sandboxed step's environment holds instead of the gateway's: the private HOME and /tmp."""
        if not self.sandbox.active:
            return {}
        return {"HOME": str(self.scratch / "home"), "TMPDIR": "/tmp"}


class Venvs:
    def __init__(self, data_dir: Path, retention: float = RETENTION, sweep_interval: float = SWEEP_INTERVAL,
                 sandbox: Sandbox | None = None):
        """`retention`: seconds an environment may stay unused before `prune` removes it; `sweep_interval`:
        seconds between two prunes while `sweeping()` runs; `sandbox`: where builds run (the runs' own;
        default: none)."""
        self.sandbox = sandbox or Sandbox("none")
        self.root = Path(data_dir) / "venvs"
        self.collections_root = Path(data_dir) / "collections"
        self.retention = retention
        self.sweep_interval = sweep_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_use: dict[str, int] = {}  # environment folder -> runs of this process holding it

    def key(self, requirements: Path) -> str:
        digest = hashlib.sha256()
        hash_requirements(requirements, digest)
        return f"{_python_tag()}-{digest.hexdigest()[:20]}"

    async def python_for(self, requirements: Path | None, progress: Progress) -> Path:
        """The python that runs a script: a cached venv for `requirements`, else an empty one."""
        return await self.venv_for(Recipe(requirements), progress)

    async def venv_for(self, recipe: Recipe, progress: Progress, tree: Path | None = None) -> Path:
        """The python of a cached venv built from `recipe` (the first use builds it, streaming progress).
        `tree`: the run's tree, which the build sees (default: the requirements file's folder)."""
        target = self.root / recipe.key()
        python = target / "bin" / "python"
        self._hold(target)
        try:
            if not (target / MARKER).is_file():
                async def build(target: Path, _: Path, progress: Progress) -> None:
                    seen = tree or (recipe.requirements.parent if recipe.requirements is not None else target)
                    await self._build_venv(target, recipe, progress, self._confinement(target, seen))
                await self._build(target, recipe.requirements or Path(recipe.describe()), progress, build)
        except BaseException:
            self._let_go(target)
            raise
        return python

    async def collections_for(self, requirements: Path, progress: Progress, galaxy: str | None = None,
                              index: str = "", env: dict[str, str] | None = None, tree: Path | None = None) -> Path:
        """A directory holding what `requirements.yml` names: its collections in collections/ (for
        ANSIBLE_COLLECTIONS_PATH) and its roles in roles/ (ANSIBLE_ROLES_PATH).  `galaxy`: the ansible-galaxy
        to install with (default: the gateway's); `index`: the Galaxy server's URL (part of the key); `env`:
        what the install's environment adds (the server's credentials); `tree`: the run's tree, which the
        install sees (default: the requirements file's folder)."""
        key = self.key(requirements) + "-" + hashlib.sha256(b"roles+collections\0" + index.encode()).hexdigest()[:8]
        target = self.collections_root / key
        self._hold(target)
        try:
            if not (target / MARKER).is_file():
                async def install(target: Path, requirements: Path, progress: Progress) -> None:
                    await self._install_collections(target, requirements, progress, galaxy, env or {},
                                                    tree or requirements.parent)
                await self._build(target, requirements, progress, install)
        except BaseException:
            self._let_go(target)
            raise
        return target

    def size(self) -> tuple[int, int]:
        """(environments, bytes) the cache holds now: venvs and collection folders."""
        count = total = 0
        for root in (self.root, self.collections_root):
            try:
                folders = [p for p in root.iterdir() if p.is_dir()]
            except OSError:
                continue
            count += len(folders)
            for folder in folders:
                for path in folder.rglob("*"):
                    with contextlib.suppress(OSError):
                        if path.is_file() and not path.is_symlink():
                            total += path.stat().st_size
        return count, total

    # ------------------------------------------------------------ use and pruning
    def _hold(self, target: Path) -> None:
        self._in_use[str(target)] = self._in_use.get(str(target), 0) + 1
        _touch(target)

    def _let_go(self, target: Path) -> None:
        count = self._in_use.get(str(target), 0) - 1
        if count > 0:
            self._in_use[str(target)] = count
        else:
            self._in_use.pop(str(target), None)
        _touch(target)

    def release(self, *paths: str | Path) -> None:
        """A run is done with what python_for / collections_for gave it (the base interpreter: nothing)."""
        for path in paths:
            path = Path(path)
            for target in (path.parent.parent, path):  # .../<env>/bin/python, or a collections folder
                if str(target) in self._in_use:
                    self._let_go(target)
                    break

    async def prune(self, now: float | None = None) -> list[str]:
        """Remove the environments unused for longer than the retention period; their names."""
        removed = []
        for root in (self.root, self.collections_root):
            try:
                candidates = sorted(p for p in root.iterdir() if p.is_dir())
            except OSError:
                continue
            for target in candidates:
                if not self._stale(target, now) or str(target) in self._in_use:
                    continue
                lock = self._locks.setdefault(str(target), asyncio.Lock())
                async with file_lock(target.with_name(target.name + ".lock"), lock):
                    if not self._stale(target, now) or str(target) in self._in_use:
                        continue  # taken by a run meanwhile
                    await asyncio.to_thread(shutil.rmtree, target, True)
                removed.append(target.name)
                log.info("removed %s/%s: unused for more than %s", root.name, target.name, _days(self.retention))
        return removed

    def _stale(self, target: Path, now: float | None) -> bool:
        if not (target / MARKER).is_file():
            return False  # being built, or half-built: the next build of it cleans up
        last = 0.0
        for name in (LAST_USED, MARKER):
            with contextlib.suppress(OSError):
                last = max(last, (target / name).stat().st_mtime)
        return (time.time() if now is None else now) - last > self.retention

    async def sweeping(self) -> None:
        """Prune now and then every sweep interval, until cancelled (the local executor's background task)."""
        while True:
            try:
                await self.prune()
            except Exception as exc:  # a folder that cannot be removed now: try again next time
                log.warning("pruning unused environments: %s", exc)
            await asyncio.sleep(self.sweep_interval)

    async def _build(self, target: Path, requirements: Path, progress: Progress, how) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = self._locks.setdefault(str(target), asyncio.Lock())
        async with file_lock(target.with_name(target.name + ".lock"), lock):
            if (target / MARKER).is_file():
                return  # another run built it while this one waited
            if target.exists():
                await asyncio.to_thread(shutil.rmtree, target, True)
            scratch = _scratch(target)
            await asyncio.to_thread(shutil.rmtree, scratch, True)  # left by a gateway killed mid-build
            target.mkdir()  # there before the build: the sandbox shows it read-write
            started = time.monotonic()
            try:
                await how(target, requirements, progress)
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, target, True)
                raise
            finally:
                await asyncio.to_thread(shutil.rmtree, scratch, True)
            (target / MARKER).write_text(f"{requirements.name}\n")
            progress(f"ready in {time.monotonic() - started:.1f} s, cached as {target.name}")

    def _confinement(self, target: Path, tree: Path, readable: tuple[str, ...] = ()) -> Confinement:
        return Confinement(self.sandbox, tree, target, _scratch(target), readable)

    async def _build_venv(self, target: Path, recipe: Recipe, progress: Progress,
                          confinement: Confinement | None = None) -> None:
        box = confinement or self._confinement(target, target)
        if recipe.empty:
            progress("building an isolated interpreter (an empty virtual environment, made once)")
            await _stream([base_python(), "-m", "venv", "--without-pip", str(target)], progress, "venv", box=box)
            return
        progress(f"building a virtual environment for {recipe.describe()} (first run with it)")
        await _stream([base_python(), "-m", "venv", str(target)], progress, "venv", box=box)
        python = str(target / "bin" / "python")
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
        if recipe.requirements is not None:
            await _stream([*pip, "-r", str(recipe.requirements)], progress, "pip", cwd=recipe.requirements.parent,
                          extra_env=recipe.pip_env, box=box)
        if recipe.packages:
            await _stream([*pip, *recipe.packages], progress, "pip", extra_env=recipe.pip_env, box=box)

    async def _install_collections(self, target: Path, requirements: Path, progress: Progress,
                                   galaxy: str | None = None, env: dict[str, str] | None = None,
                                   tree: Path | None = None) -> None:
        beside = Path(sys.executable).parent / "ansible-galaxy"
        program = galaxy or (str(beside) if beside.is_file() else shutil.which("ansible-galaxy"))
        if not program:
            raise FailedPrecondition("Ansible is not installed: no 'ansible-galaxy'; "
                                     f"install it with: {install_hint()}")
        progress(f"installing the Ansible collections and roles of {requirements.name} (first run with this file)")
        target.mkdir(parents=True, exist_ok=True)
        # Without -p (which would install roles only) both go to the first path configured for each.
        paths = {"ANSIBLE_COLLECTIONS_PATH": str(target / "collections"), "ANSIBLE_ROLES_PATH": str(target / "roles")}
        # The program's own environment (a service's venv, under the data dir) is shown to the install.
        box = self._confinement(target, tree or requirements.parent, (str(Path(program).parent.parent),))
        await _stream([program, "install", "-r", str(requirements)], progress, "ansible-galaxy",
                      cwd=requirements.parent, extra_env={**(env or {}), **paths}, box=box)


def _scratch(target: Path) -> Path:
    """The private /tmp and HOME of a sandboxed build of `target` (removed when the build ends)."""
    return target.with_name(target.name + ".scratch")


def _touch(target: Path) -> None:
    with contextlib.suppress(OSError):  # not built yet: the build's marker says when
        (target / LAST_USED).touch()


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds / 3600:g} hours"


async def _stream(argv: list[str], progress: Progress, label: str, cwd: Path | None = None,
                  extra_env: dict[str, str] | None = None, box: Confinement | None = None) -> None:
    """Run a build step, passing each line of its output on as progress; fail with its last lines.
    `extra_env`: what only this step's environment holds (a registry's credentials); `box`: where it runs."""
    sandbox = box.command(cwd) if box is not None else []
    launch = box.launch() if box is not None and sandbox else None
    fds: tuple[int, ...] = ()
    if launch is not None:
        sandbox, fds = [sandbox[0], *launch.bwrap_args(), *sandbox[1:]], launch.pass_fds
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
           and not (sandbox and k.startswith("XDG_"))}  # sandboxed: the gateway's folders are not there
    env["PYTHONUNBUFFERED"] = "1"
    if box is not None:
        env.update(box.environment())
    env.update(extra_env or {})
    try:
        process = await asyncio.create_subprocess_exec(
            *sandbox, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True, pass_fds=fds)
    except BaseException:
        if launch is not None:
            await launch.close()
        raise
    tail: list[str] = []
    try:
        if launch is not None:
            await launch.attach()
        assert process.stdout is not None
        async with asyncio.timeout(BUILD_TIMEOUT):
            async for raw in process.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    tail = (tail + [line])[-3:]
                    progress(f"{label}: {line}")
            await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        await process.wait()
        raise
    finally:
        if launch is not None:
            await launch.close()
    if process.returncode != 0:
        last = tail[-1] if tail else f"exit code {process.returncode}"
        raise FailedPrecondition(f"{label} failed: {last}")


def install_hint(extra: str = "ansible") -> str:
    """The command that adds the `extra` to this very install: this interpreter's pip, and for an install from a
    source tree (`pip install -e .`, as the README says) that tree, not a package index."""
    import json
    from importlib import metadata

    python = sys.executable
    direct: dict = {}
    for distribution in metadata.distributions(name="automation-gateway"):  # a source tree's egg-info has none
        try:
            direct = json.loads(distribution.read_text("direct_url.json") or "{}")
        except ValueError:
            continue
        if direct:
            break
    url = direct.get("url", "") if isinstance(direct, dict) else ""
    if url.startswith("file://"):
        editable = "-e " if (direct.get("dir_info") or {}).get("editable") else ""
        return f"{python} -m pip install {editable}'{url[len('file://'):]}[{extra}]'"
    return f"{python} -m pip install 'automation-gateway[{extra}]'"
