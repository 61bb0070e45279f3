"""The memory bound of a run ([execution] memory_limit): a memory cgroup of its own per sandboxed process.

The kernel holds the bound: past it, the cgroup's OOM killer ends a process of the run, which then fails with
"memory limit 512 MiB exceeded".  A cgroup is made below the gateway's own (so any bound the gateway has holds
too), with the cgroup v1 memory controller (memory.limit_in_bytes, and memory.memsw.limit_in_bytes so swap is
no way around it) or cgroup v2 (memory.max, memory.swap.max) where the gateway's cgroup gives its children the
memory controller.  Where neither can be written (a gateway that is not root, a container without a writable
cgroup), the run's supervisor bounds it instead: it adds up the resident memory of the run's processes every
few hundredths of a second and ends them all past the bound (supervisor.py).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from pathlib import Path

FOLDER_PREFIX = "automation-gateway-"
CGROUP_ROOT = Path("/sys/fs/cgroup")
START_GRACE = 120.0  # seconds: a cgroup older than this with no process in it is a leftover


def size_text(size: int) -> str:
    """512 MiB, 2 GiB, 1.5 GiB."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}" if size % scale else f"{size // scale} {unit}"
    return f"{size} bytes"


def exceeded_reason(limit: int) -> str:
    return f"memory limit {size_text(limit)} exceeded"


def _own_cgroup(version: str) -> tuple[Path, str] | None:
    """(the folder of the gateway's own cgroup, 'v1' | 'v2'), where it can be seen; None otherwise."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if version == "v1" and "memory" in controllers.split(","):
            mount = CGROUP_ROOT / "memory"
        elif version == "v2" and number == "0" and controllers == "":
            mount = CGROUP_ROOT
        else:
            continue
        own = mount / path.lstrip("/")
        if own.is_dir():
            return own, version
        if mount.is_dir():  # a container shows its own cgroup as the root
            return mount, version
    return None


class Cgroup:
    """One process's memory cgroup, made for it and removed after it."""

    def __init__(self, folder: Path, version: str, limit: int):
        self.folder, self.version, self.limit = folder, version, limit

    @classmethod
    def make(cls, parent: Path, version: str, limit: int) -> "Cgroup":
        folder = parent / f"{FOLDER_PREFIX}{secrets.token_hex(6)}"
        folder.mkdir()
        group = cls(folder, version, limit)
        try:
            if version == "v1":
                (folder / "memory.limit_in_bytes").write_text(str(limit))
                with contextlib.suppress(OSError):  # without swap accounting there is no memsw file
                    (folder / "memory.memsw.limit_in_bytes").write_text(str(limit))
            else:
                (folder / "memory.max").write_text(str(limit))
                with contextlib.suppress(OSError):
                    (folder / "memory.swap.max").write_text("0")
        except OSError:
            group.remove()
            raise
        return group

    def add(self, pid: int) -> None:
        (self.folder / "cgroup.procs").write_text(str(pid))

    def exceeded(self) -> bool:
        """Whether the kernel ended a process of it for its bound."""
        name = "memory.oom_control" if self.version == "v1" else "memory.events"
        try:
            text = (self.folder / name).read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        if counts.get("oom_kill", "0") != "0":
            return True
        if self.version == "v1" and "oom_kill" not in counts:  # kernels before 4.13 count failures only
            with contextlib.suppress(OSError, ValueError):
                return int((self.folder / "memory.failcnt").read_text()) > 0 and \
                    int((self.folder / "memory.max_usage_in_bytes").read_text()) >= self.limit
        return False

    def remove(self) -> None:
        """rmdir once its processes are gone (a moment after they end)."""
        for _ in range(50):
            try:
                self.folder.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)


class MemoryLimit:
    """How runs of this gateway are bounded: `limit` bytes (0: no bound), by a cgroup or by the supervisor."""

    def __init__(self, limit: int):
        self.limit = limit
        self._where: tuple[Path, str] | None | bool = False  # False: not looked for yet

    def cgroup_parent(self) -> tuple[Path, str] | None:
        """Where this gateway can make memory cgroups (looked for once): (folder, 'v1' | 'v2') or None."""
        if self._where is False:
            self._where = self._find()
        return self._where  # type: ignore[return-value]

    def _find(self) -> tuple[Path, str] | None:
        if not self.limit:
            return None
        for version in ("v1", "v2"):
            found = _own_cgroup(version)
            if found is None:
                continue
            try:
                probe = Cgroup.make(found[0], version, self.limit)
            except OSError:
                continue
            usable = (probe.folder / ("memory.limit_in_bytes" if version == "v1" else "memory.max")).exists()
            probe.remove()
            if usable:
                return found
        return None

    def cgroup(self) -> Cgroup | None:
        """A new cgroup for one process; None when the supervisor bounds it (or there is no bound)."""
        where = self.cgroup_parent()
        if where is None:
            return None
        return Cgroup.make(where[0], where[1], self.limit)

    def supervisor_bound(self) -> int:
        """The bound the supervisor keeps (bytes), when no cgroup does; 0 otherwise."""
        return self.limit if self.limit and self.cgroup_parent() is None else 0

    def status(self, cgroups: bool = True) -> str:
        """One line for `gateway config` and the daemon's log; `cgroups`: whether runs get cgroups (sandboxed
        runs do)."""
        if not self.limit:
            return "no limit (memory_limit = none): a run may use all the memory of this machine"
        where = self.cgroup_parent() if cgroups else None
        how = (f"cgroup {where[1]} memory controller" if where is not None
               else "the run's supervisor adds up its processes' resident memory")
        return f"{size_text(self.limit)} a run ({how})"

    def sweep(self) -> None:
        """Remove the cgroups of runs that are over (left by a gateway that was killed mid-run): empty, and
        made longer ago than any run takes to start (a gateway fills its own within START_GRACE)."""
        where = self.cgroup_parent()
        if where is None:
            return
        for folder in where[0].glob(f"{FOLDER_PREFIX}*"):
            with contextlib.suppress(OSError):
                if time.time() - folder.stat().st_mtime > START_GRACE:
                    folder.rmdir()  # refused while processes are in it
