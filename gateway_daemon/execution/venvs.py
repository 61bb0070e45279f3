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
from pathlib import Path
from typing import Callable

from ..core.errors import FailedPrecondition
from .workspace import file_lock

Progress = Callable[[str], None]
MARKER = ".complete"
LAST_USED = ".last-used"
BUILD_TIMEOUT = 1800.0
RETENTION = 30 * 86400.0  # seconds: [application] venv_retention_period
SWEEP_INTERVAL = 86400.0  # seconds: [application] venv_sweep_interval
log = logging.getLogger("gateway.venvs")


def base_python() -> str:
    """The interpreter under the gateway's own venv: scripts never see the gateway's packages."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _python_tag() -> str:
    return f"py{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


class Venvs:
    def __init__(self, data_dir: Path, retention: float = RETENTION, sweep_interval: float = SWEEP_INTERVAL):
        """`retention`: seconds an environment may stay unused before `prune` removes it; `sweep_interval`:
        seconds between two prunes while `sweeping()` runs."""
        self.root = Path(data_dir) / "venvs"
        self.collections_root = Path(data_dir) / "collections"
        self.retention = retention
        self.sweep_interval = sweep_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_use: dict[str, int] = {}  # environment folder -> runs of this process holding it

    def key(self, requirements: Path) -> str:
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
        return f"{_python_tag()}-{digest[:20]}"

    async def python_for(self, requirements: Path | None, progress: Progress) -> Path:
        """The python that runs a script: a cached venv for `requirements`, else the base interpreter."""
        if requirements is None:
            return Path(base_python())
        target = self.root / self.key(requirements)
        python = target / "bin" / "python"
        self._hold(target)
        try:
            if not (target / MARKER).is_file():
                await self._build(target, requirements, progress, self._build_venv)
        except BaseException:
            self._let_go(target)
            raise
        return python

    async def collections_for(self, requirements: Path, progress: Progress) -> Path:
        """A directory holding the collections `requirements.yml` names, for ANSIBLE_COLLECTIONS_PATH."""
        target = self.collections_root / self.key(requirements)
        self._hold(target)
        try:
            if not (target / MARKER).is_file():
                await self._build(target, requirements, progress, self._install_collections)
        except BaseException:
            self._let_go(target)
            raise
        return target

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
            started = time.monotonic()
            try:
                await how(target, requirements, progress)
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, target, True)
                raise
            (target / MARKER).write_text(f"{requirements.name}\n")
            progress(f"ready in {time.monotonic() - started:.1f} s, cached as {target.name}")

    async def _build_venv(self, target: Path, requirements: Path, progress: Progress) -> None:
        progress(f"building a virtual environment for {requirements.name} (first run with this file)")
        await _stream([base_python(), "-m", "venv", str(target)], progress, "venv")
        python = str(target / "bin" / "python")
        await _stream([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                       "--progress-bar", "off", "-r", str(requirements)], progress, "pip",
                      cwd=requirements.parent)

    async def _install_collections(self, target: Path, requirements: Path, progress: Progress) -> None:
        galaxy = Path(sys.executable).parent / "ansible-galaxy"
        program = str(galaxy) if galaxy.is_file() else shutil.which("ansible-galaxy")
        if not program:
            raise FailedPrecondition("Ansible is not installed: no 'ansible-galaxy'; "
                                     "install it with: pip install 'automation-gateway[ansible]'")
        progress(f"installing the Ansible collections of {requirements.name} (first run with this file)")
        target.mkdir(parents=True)
        await _stream([program, "collection", "install", "-r", str(requirements), "-p", str(target)],
                      progress, "ansible-galaxy", cwd=requirements.parent)


def _touch(target: Path) -> None:
    with contextlib.suppress(OSError):  # not built yet: the build's marker says when
        (target / LAST_USED).touch()


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds / 3600:g} hours"


async def _stream(argv: list[str], progress: Progress, label: str, cwd: Path | None = None) -> None:
    """Run a build step, passing each line of its output on as progress; fail with its last lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")}
    env["PYTHONUNBUFFERED"] = "1"
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
    tail: list[str] = []
    try:
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
    if process.returncode != 0:
        last = tail[-1] if tail else f"exit code {process.returncode}"
        raise FailedPrecondition(f"{label} failed: {last}")
