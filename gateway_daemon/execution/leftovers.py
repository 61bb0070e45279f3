"""What a gateway process that died (kill -9, a power cut) leaves on its machine, and clearing it.

Each run executes in a folder of its own under ``data_dir/runs``, and the process
of each step leads a process group of its own.  The folder names the gateway
process that made it (``owner``, as core.owners names processes) and the
group's leader (``group``: pid and start time).  A gateway, server or runner
starting on the machine ends the groups of the folders whose gateway is gone
(a script must not go on changing things for a run recorded as ended) and
removes those folders (checked-out trees, temporary files).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

from ..core.runs import keepers

OWNER_FILE, GROUP_FILE = "owner", "group"


def claim(run_dir: Path) -> None:
    (run_dir / OWNER_FILE).write_text(keepers.this_process())


def note_group(run_dir: Path, pid: int | None) -> None:
    if pid is not None:
        (run_dir / GROUP_FILE).write_text(f"{pid}:{keepers.start_time(pid)}")


def reap(runs_dir: Path) -> int:
    """End what gateways that died left in `runs_dir`; how many run folders were cleared."""
    try:
        run_dirs = sorted(runs_dir.iterdir())
    except OSError:  # none yet (or unreadable: the run that needs it says so)
        return 0
    cleared = 0
    for run_dir in run_dirs:
        try:
            owner = (run_dir / OWNER_FILE).read_text()
        except OSError:  # not a run folder, or one being made
            continue
        if not keepers.process_gone(owner):
            continue
        _end_group(run_dir / GROUP_FILE)
        shutil.rmtree(run_dir, ignore_errors=True)
        cleared += 1
    return cleared


def _end_group(path: Path) -> None:
    try:
        pid_text, started = path.read_text().split(":")
        pid = int(pid_text)
    except (OSError, ValueError):
        return
    now = keepers.start_time(pid)
    if pid <= 1 or (now and now != started):
        return  # that pid is another process now
    # With its leader gone, what is left of the group still has its id: Linux gives no new
    # process a pid that a live group uses.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
