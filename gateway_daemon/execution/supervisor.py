"""The process between the gateway and each command of a run: every descendant of the command ends with it.

    python -I -S supervisor.py CONTROL_FD GRACE -- COMMAND [ARG...]

It makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so whatever
the command leaves behind (a background process, one in a session of its own,
one that forked twice) is adopted by it rather than by init, then starts
COMMAND and waits.  It ends every descendant, TERM first and KILL after GRACE
seconds:

* when COMMAND exits: what it left behind;
* when CONTROL_FD turns readable (the gateway writes to it or closes it to stop
  the run, and the kernel closes it when the gateway dies), or it gets TERM, INT
  or HUP: everything, COMMAND first among them.

Then it exits as COMMAND did.  In the bwrap sandbox it runs inside the run's pid
namespace (bwrap's init is its parent), and bwrap ends the namespace besides.
Without a sandbox it is what keeps orphans from escaping: a script that kills
this process itself can still leave orphans behind there.

Standard library only and no site (-I -S): it starts in milliseconds.  The
gateway keeps the subreaper out of its own process: the flag would make every
orphan of the gateway's children its own.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# What the interpreter changes (SIGPIPE, SIGXFSZ ignored) and the handlers below: the command gets the defaults.
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, *STOP_SIGNALS)


def become_subreaper() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError, ImportError):  # no prctl: its direct children still end with the run
        pass


def descendants(root: int) -> tuple[list[int], bool]:
    """Every process below `root` (from /proc), and whether any of them still runs (not a zombie)."""
    children: dict[int, list[tuple[int, bool]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append((int(entry), fields[0] != b"Z"))
    found: list[int] = []
    running = False
    todo = [root]
    while todo:
        for pid, alive in children.get(todo.pop(), ()):
            found.append(pid)
            running = running or alive
            todo.append(pid)
    return found, running


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class Supervisor:
    def __init__(self, command: list[str], control_fd: int, grace: float):
        self.command = command
        self.control_fd = control_fd
        self.grace = grace
        self.child = 0
        self.status: int | None = None  # the wait status of the command once it ended

    def reap(self) -> None:
        """Collect every child that ended (the command, and the orphans adopted)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.status = status

    def end_all(self) -> None:
        """TERM every descendant, KILL what is left after the grace period, until none is left."""
        pids, running = descendants(os.getpid())
        signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while running and time.monotonic() < deadline:
            time.sleep(0.02)
            self.reap()
            pids, running = descendants(os.getpid())
        while running:  # a process forking meanwhile is found in the next round
            signal_all(pids, signal.SIGKILL)
            time.sleep(0.01)
            self.reap()
            pids, running = descendants(os.getpid())
        self.reap()

    def run(self) -> int:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        for sig in (signal.SIGCHLD, *STOP_SIGNALS):
            signal.signal(sig, lambda *_: None)  # each wakes the select below through the pipe
        os.set_inheritable(self.control_fd, False)
        become_subreaper()
        try:
            self.child = os.posix_spawnp(self.command[0], self.command, os.environ, setsigdef=DEFAULT_SIGNALS)
        except OSError as exc:
            print(f"gateway: cannot start {self.command[0]}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            return 127
        stop = False
        while self.status is None and not stop:
            ready, _, _ = select.select([wake_read, self.control_fd], [], [])
            if wake_read in ready:
                data = os.read(wake_read, 512)
                stop = any(byte in data for byte in STOP_SIGNALS)
            stop = stop or self.control_fd in ready
            self.reap()
        self.end_all()
        while self.status is None:  # the command ended in end_all; its status is collected by now
            self.reap()
            time.sleep(0.01)
        if os.WIFSIGNALED(self.status):
            return -os.WTERMSIG(self.status)
        return os.waitstatus_to_exitcode(self.status)


def exit_like(code: int) -> None:
    """Exit with `code`, or end by the same signal the command ended by (code -N)."""
    if code >= 0:
        os._exit(code)
    sig = -code
    for step in (lambda: signal.signal(sig, signal.SIG_DFL), lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig]),
                 lambda: os.kill(os.getpid(), sig)):
        try:
            step()
        except (OSError, ValueError):  # SIGKILL has no handler to reset
            pass
    os._exit(128 + sig)


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: supervisor.py CONTROL_FD GRACE -- COMMAND [ARG...]", file=sys.stderr)
        os._exit(2)
    control_fd, grace = argv[0], argv[1]
    exit_like(Supervisor(argv[3:], int(control_fd), float(grace)).run())


if __name__ == "__main__":
    main(sys.argv[1:])
