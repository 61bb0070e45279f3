"""Who keeps a run's record, and whether that keeper still lives.

Every run is kept by one gateway process (a local `gateway`, or a server): it
writes the record from queued to final.  The record names its keeper
(``host:pid:start``, the start being the process's start time, so a reused pid
is not taken for the same process).  A keeper that dies without finishing (kill -9,
power loss) leaves records that would say "running" forever; whoever finds
one whose keeper is gone ends it as interrupted.

A keeper is alive when its process is, which only its own machine can tell.  A
server on etcd, where keepers live on several machines, holds ``owners/<name>``
under a lease (cluster.owners) and is gone when that key is; its name starts
with LEASED so that every server knows which way to tell.
"""

from __future__ import annotations

import os
import socket

OWNERS_PREFIX = "owners/"
LEASED = "leased@"


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux); "" where it cannot be read or the
    process has ended (a zombie waiting for its parent counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return "" if fields[0] == b"Z" else fields[19].decode()  # state, and field 22 of the whole line
    except (OSError, IndexError):
        return ""


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{start_time(os.getpid())}"


def _parts(owner: str) -> tuple[str, str, str]:
    """(host, pid, start) of a keeper's name; ValueError when it is not one."""
    host, pid, start = owner.removeprefix(LEASED).rsplit(":", 2)
    return host, pid, start


def describe(owner: str) -> str:
    """'pid 1234 on host' for a keeper's name."""
    try:
        host, pid, _ = _parts(owner)
    except ValueError:
        return owner
    return f"pid {pid} on {host}"


def process_gone(owner: str) -> bool:
    """True when `owner` names a process of this machine that no longer runs; False when it runs
    or cannot be told (another machine's process)."""
    try:
        host, pid_text, start = _parts(owner)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname() or pid <= 0:
        return False
    if start and os.path.isdir("/proc/self"):
        return start_time(pid) != start  # gone, or the pid now belongs to another process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, as another user's process
        return False
    return False
