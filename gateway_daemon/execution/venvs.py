"""Cached environments: Python venvs per requirements.txt, Ansible collections per requirements.yml.

Each is keyed by the hash of the requirements file and the Python version, so
the first run builds it (with its progress streamed to the run) and every
later run with the same file reuses it.  An environment is usable only once
its ``.complete`` marker is written; a half-built one (the gateway killed
mid-build) is removed and built again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
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
BUILD_TIMEOUT = 1800.0


def base_python() -> str:
    """The interpreter under the gateway's own venv: scripts never see the gateway's packages."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _python_tag() -> str:
    return f"py{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


class Venvs:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "venvs"
        self.collections_root = Path(data_dir) / "collections"
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self, requirements: Path) -> str:
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
        return f"{_python_tag()}-{digest[:20]}"

    async def python_for(self, requirements: Path | None, progress: Progress) -> Path:
        """The python that runs a script: a cached venv for `requirements`, else the base interpreter."""
        if requirements is None:
            return Path(base_python())
        target = self.root / self.key(requirements)
        python = target / "bin" / "python"
        if (target / MARKER).is_file():
            return python
        await self._build(target, requirements, progress, self._build_venv)
        return python

    async def collections_for(self, requirements: Path, progress: Progress) -> Path:
        """A directory holding the collections `requirements.yml` names, for ANSIBLE_COLLECTIONS_PATH."""
        target = self.collections_root / self.key(requirements)
        if not (target / MARKER).is_file():
            await self._build(target, requirements, progress, self._install_collections)
        return target

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
