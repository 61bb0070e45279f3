"""The process between the gateway and each command of a run: every descendant of the command ends with it.

    python -I -S supervisor.py [--user UID:GID] [--memory BYTES] [--network] CONTROL_FD GRACE -- COMMAND [ARG...]
    python -I -S supervisor.py --user UID:GID --exec -- COMMAND [ARG...]

With --user (a sandbox the gateway started as root) it first becomes UID:GID
for good: no supplementary groups, an empty capability bounding set, no
capability in any set, no_new_privs; it checks /proc/self/status says so and
refuses to go on otherwise.  With --exec it then only execs COMMAND (the builds
of a run's dependencies).  With --memory (where no cgroup bounds the run) it
adds up the resident memory of every descendant every POLL seconds (in a thread
of its own, so the relay of output never waits for it) and, past BYTES, KILLs
them all and says so to the gateway with a frame of its own
(stream 3).  With --network it waits, before COMMAND starts, for the isolated
network the gateway brings up meanwhile (its default route through tap0).

It makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so whatever
the command leaves behind (a background process, one in a session of its own,
one that forked twice) is adopted by it rather than by init, then starts
COMMAND and waits.  It ends every descendant, TERM first and KILL after GRACE
seconds:

* when COMMAND exits: what it left behind;
* when CONTROL_FD turns readable (the gateway writes to it or closes it to stop
  the run, and the kernel closes it when the gateway dies), or it gets TERM, INT
  or HUP: everything, COMMAND first among them.

COMMAND's standard output and error are pipes of the supervisor's own, read as soon
as they have data and relayed, in the order read, to the supervisor's standard
output as frames: a stream byte (1 stdout, 2 stderr), the length of the data
(4 bytes, big-endian), the data.  So the gateway gets the command's output in the
order the command wrote it whenever it reads it (one pipe keeps the order; two
pipes read by a busy reader do not).  What the supervisor says itself (and bwrap,
and the interpreter) goes to its standard error, never between the frames.  The
output of what is left behind is relayed until it ends; what is still in the
pipes once no descendant is left is relayed, then the frames end.

Then it exits as COMMAND did.  In the bwrap sandbox it runs inside the run's pid
namespace (bwrap's init is its parent), and bwrap ends the namespace besides.
Without a sandbox it is what keeps orphans from escaping: a script that kills
this process itself can still leave orphans behind there.

Standard library only and no site (-I -S): it starts in milliseconds.  The
gateway keeps the subreaper out of its own process: the flag would make every
orphan of the gateway's children its own.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# What the interpreter changes (SIGPIPE, SIGXFSZ ignored) and the handlers below: the command gets the defaults.
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, *STOP_SIGNALS)
STDOUT, STDERR, NOTICE = 1, 2, 3  # the stream byte of a frame; NOTICE: the supervisor's word to the gateway
MEMORY_EXCEEDED = b"memory"
POLL = 0.02
OVER = 255  # the byte watch_memory puts on the wakeup pipe (signal numbers are below 65)
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAP_VERSION_3 = 0x20080522
PAGE = os.sysconf("SC_PAGE_SIZE")
FRAME = struct.Struct(">BI")  # before the data of each frame: stream, length
READ_SIZE = 64 * 1024  # a pipe holds 64 KiB: one read takes what is there
HELD_LIMIT = 1024 * 1024  # frames the gateway has not taken yet: beyond, the command waits (its pipes fill)
OUT_PIPE_SIZE = 256 * 1024  # the pipe to the gateway: room for a few frames, so the gateway seldom waits for a hop
F_SETPIPE_SZ = 1031


def become_subreaper() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError, ImportError):  # no prctl: its direct children still end with the run
        pass


def drop_privileges(uid: int, gid: int) -> None:
    """Become uid:gid with no capability and no way to gain one; SystemExit (nothing runs) when that fails."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):  # while CAP_SETPCAP is still held
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root to another uid: the permitted, effective and ambient sets empty
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
    libc.capset(header, (ctypes.c_uint32 * 6)())  # the inheritable set too
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    with open("/proc/self/status") as handle:
        status = dict(line.split(":", 1) for line in handle.read().splitlines() if ":" in line)
    held = [key for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if int(status[key], 16)]
    if held or status["NoNewPrivs"].strip() != "1" or os.getresuid() != (uid,) * 3 or os.getresgid() != (gid,) * 3:
        raise SystemExit(f"gateway: cannot drop privileges ({', '.join(held) or 'uid, gid or no_new_privs'})")


def wait_for_network(timeout: float = 15.0) -> None:
    """Until the namespace has its default route through the gateway's device (or `timeout`: the gateway ends
    the run when the network does not come up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/net/route") as handle:
                if any(line.split()[:2] == ["tap0", "00000000"] for line in handle.read().splitlines()[1:]):
                    return
        except OSError:
            return
        time.sleep(0.001)


def watch_memory(bound: int, wake: int) -> None:
    """Every POLL seconds, the resident memory of every descendant; past `bound`, OVER on the wakeup pipe."""
    root = os.getpid()
    while resident(children_tree(root)) <= bound:
        time.sleep(POLL)
    while True:
        try:
            os.write(wake, bytes([OVER]))
            return
        except BlockingIOError:  # the pipe is full of signal numbers: once the loop took them
            time.sleep(POLL)
        except OSError:
            return


def children_tree(root: int) -> list[int]:
    """Every process below `root`, from the kernel's lists of children (the run's processes only, however many
    the machine runs); the whole of /proc where the kernel keeps no such list."""
    if not os.path.exists(f"/proc/{root}/task/{root}/children"):
        return descendants(root)[0]
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                    kids = [int(kid) for kid in handle.read().split()]
            except (OSError, ValueError):
                continue
            found += kids
            todo += kids
    return found


def resident(pids: list[int]) -> int:
    """The resident memory of `pids`, in bytes (from /proc/PID/statm)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * PAGE


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


class Relay:
    """The command's output pipes, read as they have data, to frames on `out` in the order read."""

    def __init__(self, sources: dict[int, int], out: int):
        self.sources = sources  # read end -> stream byte; a source leaves at its end of file
        self.out = out
        self.held = bytearray()  # frames `out` did not take yet
        self.gone = False  # the gateway's end is closed: output is read and dropped
        os.set_blocking(out, False)
        try:
            fcntl.fcntl(out, F_SETPIPE_SZ, OUT_PIPE_SIZE)
        except OSError:  # not a pipe, or the user's pipe quota is used up: the default size
            pass
        for fd in sources:
            os.set_blocking(fd, False)

    def readers(self) -> list[int]:
        return list(self.sources) if len(self.held) < HELD_LIMIT else []

    def writers(self) -> list[int]:
        return [self.out] if self.held else []

    def read(self, fd: int) -> bool:
        """One read of `fd` framed; False when it had nothing (yet)."""
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            del self.sources[fd]
            os.close(fd)
            return False
        if not self.gone:
            self.held += FRAME.pack(self.sources[fd], len(data))
            self.held += data
        return True

    def write(self) -> None:
        """As much of the held frames as `out` takes now."""
        if not self.held:
            return
        try:
            written = os.write(self.out, self.held)
        except BlockingIOError:
            return
        except OSError:  # the gateway is gone (its control pipe closed too: everything ends)
            self.gone = True
            self.held.clear()
            return
        del self.held[:written]

    def finish(self) -> None:
        """Once no descendant is left: what is in the pipes still, then every frame out, then the end."""
        for fd in list(self.sources):
            while fd in self.sources and self.read(fd):
                self.write_down_to(HELD_LIMIT)
            if fd in self.sources:  # no end of file: the pipe is held outside (passed away); not waited for
                del self.sources[fd]
                os.close(fd)
        self.write_down_to(0)
        os.close(self.out)

    def write_down_to(self, limit: int) -> None:
        """Write, waiting for the gateway to read, until at most `limit` bytes are held."""
        self.write()
        while len(self.held) > limit:
            select.select([], [self.out], [])
            self.write()


class Supervisor:
    def __init__(self, command: list[str], control_fd: int, grace: float, memory: int = 0):
        self.command = command
        self.memory = memory  # bytes the descendants may hold together (0: no bound kept here)
        self.control_fd = control_fd
        self.grace = grace
        self.child = 0
        self.status: int | None = None  # the wait status of the command once it ended
        self.wake = -1  # the read end of the signal wakeup pipe
        self.over = False  # past the memory bound
        self.relay: Relay | None = None
        self.ending = False  # ending everything: the control pipe is no longer watched

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

    def step(self, timeout: float | None) -> bool:
        """Wait up to `timeout` for a signal, the control pipe or output, and relay what output there is.
        True when a stop is asked."""
        relay = self.relay
        assert relay is not None
        watched = [self.wake, *relay.readers()]
        if not self.ending:
            watched.append(self.control_fd)
        ready, _, _ = select.select(watched, relay.writers(), [], timeout)
        stop = False
        for fd in ready:
            if fd == self.wake:
                data = os.read(self.wake, 512)
                self.over = self.over or OVER in data
                stop = stop or any(byte in data for byte in STOP_SIGNALS)
                if signal.SIGCHLD in data:
                    self.reap()
            elif fd == self.control_fd:
                stop = True
            elif fd in relay.sources:
                relay.read(fd)
        relay.write()
        return stop and not self.ending

    def idle(self, seconds: float) -> None:
        """`seconds` of relaying output."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.step(left)

    def end_all(self) -> None:
        """TERM every descendant, KILL what is left after the grace period, until none is left."""
        self.ending = True
        pids, running = descendants(os.getpid())
        signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while running and time.monotonic() < deadline:
            self.idle(0.02)
            self.reap()
            pids, running = descendants(os.getpid())
        while running:  # a process forking meanwhile is found in the next round
            signal_all(pids, signal.SIGKILL)
            self.idle(0.01)
            self.reap()
            pids, running = descendants(os.getpid())
        self.reap()

    def run(self) -> int:
        self.wake, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        for sig in (signal.SIGCHLD, *STOP_SIGNALS):
            signal.signal(sig, lambda *_: None)  # each wakes the select below through the pipe
        os.set_inheritable(self.control_fd, False)
        become_subreaper()
        out_read, out_write = os.pipe()  # all four close-on-exec: the command gets its write ends as 1 and 2 only
        err_read, err_write = os.pipe()
        try:
            self.child = os.posix_spawnp(self.command[0], self.command, os.environ, setsigdef=DEFAULT_SIGNALS,
                                         file_actions=[(os.POSIX_SPAWN_DUP2, out_write, 1),
                                                       (os.POSIX_SPAWN_DUP2, err_write, 2)])
        except OSError as exc:
            print(f"gateway: cannot start {self.command[0]}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            return 127
        finally:
            os.close(out_write)
            os.close(err_write)
        self.relay = Relay({out_read: STDOUT, err_read: STDERR}, sys.stdout.fileno())
        if self.memory:
            threading.Thread(target=watch_memory, args=(self.memory, wake_write), daemon=True).start()
        stop = False
        while self.status is None and not stop and not self.over:
            stop = self.step(None)
        if self.over:  # no grace: TERM would give it the time to take more
            self.grace = 0
            self.relay.held += FRAME.pack(NOTICE, len(MEMORY_EXCEEDED)) + MEMORY_EXCEEDED
        self.end_all()
        while self.status is None:  # the command ended in end_all; its status is collected by now
            self.reap()
            self.idle(0.01)
        self.relay.finish()
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
    options = {}
    while argv and argv[0] in ("--user", "--memory", "--exec", "--network"):
        if argv[0] in ("--exec", "--network"):
            options[argv[0][2:]], argv = "1", argv[1:]
        else:
            options[argv[0][2:]], argv = argv[1], argv[2:]
    if "user" in options:
        uid, gid = options["user"].split(":")
        drop_privileges(int(uid), int(gid))
    if "network" in options:
        wait_for_network()
    if "exec" in options and len(argv) > 1 and argv[0] == "--":
        try:
            os.execvp(argv[1], argv[1:])
        except OSError as exc:
            print(f"gateway: cannot start {argv[1]}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            os._exit(127)
    if len(argv) < 4 or argv[2] != "--":
        print("usage: supervisor.py [--user UID:GID] [--memory BYTES] CONTROL_FD GRACE -- COMMAND [ARG...]",
              file=sys.stderr)
        os._exit(2)
    control_fd, grace = argv[0], argv[1]
    exit_like(Supervisor(argv[3:], int(control_fd), float(grace), int(options.get("memory", 0))).run())


if __name__ == "__main__":
    main(sys.argv[1:])
