"""The start of one sandboxed process: what joins it between bwrap's start and its command's.

bwrap gets --info-fd (it writes there the pid of the sandbox's first process) and --block-fd (that process
waits there for a byte before its command runs).  Meanwhile the gateway puts that process in a memory cgroup
of its own (memory.py), and connects its network namespace (bwrap --unshare-net: only a loopback of its own) to
the outside with slirp4netns: a user-mode NAT whose guest reaches what the machine reaches, except the
machine's own loopback services (--disable-host-loopback); slirp4netns runs in a mount namespace of its own
without capabilities (--enable-sandbox) and under seccomp.  It ends when the gateway closes its exit pipe: after
the process, and when the gateway dies, since the kernel closes the pipe then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal

from ..core.errors import FailedPrecondition
from .memory import Cgroup, MemoryLimit

START_TIMEOUT = 15.0  # for bwrap to say its pid, and for slirp4netns to bring the network up
SLIRP_EXIT_TIMEOUT = 5.0
TAP = "tap0"
_ENDING: set[asyncio.Task] = set()  # slirp4netns processes told to end, waited for aside


async def ended() -> None:
    """Wait for the slirp4netns processes told to end: what closes (a `gateway` command's engine as the command
    ends) waits for them, or asyncio leaves them unreaped and says so on stderr."""
    if _ENDING:
        await asyncio.gather(*list(_ENDING), return_exceptions=True)


async def _read(fd: int, enough, timeout: float) -> bytes:
    """What `fd` gives until `enough(data)` or its end of file, within `timeout` (TimeoutError past it)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    data = b""
    async with asyncio.timeout(timeout):
        while not enough(data):
            ready = loop.create_future()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                break
            data += chunk
    return data


def _child_pid(data: bytes) -> int | None:
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class Launch:
    """`slirp`: the slirp4netns program (None: the host's network); `memory`: the bound (None: none)."""

    def __init__(self, slirp: str | None, memory: MemoryLimit | None, command_waits: bool = False):
        """`command_waits`: the command waits for the network itself (the supervisor, --network): it may start
        while slirp4netns brings the network up, which saves the run that time."""
        self.slirp = slirp
        self.command_waits = command_waits
        self.memory = memory
        self.cgroup: Cgroup | None = None
        self.exceeded = False  # the memory bound ended a process
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        # The gateway's pipe ends, and bwrap's until it has them: each closed once, by name.
        self._fds = {"info_read": info_read, "info_write": info_write, "block_read": block_read,
                     "block_write": block_write}
        self._slirp: asyncio.subprocess.Process | None = None

    def bwrap_args(self) -> list[str]:
        network = ["--unshare-net"] if self.slirp else []
        return [*network, "--info-fd", str(self._fds["info_write"]), "--block-fd", str(self._fds["block_read"])]

    @property
    def pass_fds(self) -> tuple[int, int]:
        return self._fds["info_write"], self._fds["block_read"]

    def _shut(self, name: str) -> None:
        _close(self._fds.pop(name, None))

    async def attach(self) -> None:
        """Once bwrap is started: the cgroup, the network, then the command may run.  FailedPrecondition when
        the network cannot be brought up (the caller ends the process)."""
        self._shut("info_write")
        self._shut("block_read")
        try:
            data = await _read(self._fds["info_read"], lambda got: _child_pid(got) is not None, START_TIMEOUT)
        except TimeoutError:
            raise FailedPrecondition("the sandbox did not start in time") from None
        finally:
            self._shut("info_read")
        pid = _child_pid(data)
        if pid is None:  # bwrap ended first; what it said comes as the run's output
            return
        if self.memory is not None and self.memory.limit:
            try:
                self.cgroup = self.memory.cgroup()
                if self.cgroup is not None:
                    self.cgroup.add(pid)
            except OSError as exc:
                raise FailedPrecondition(f"cannot bound the run's memory: {exc.strerror or exc}") from None
        if self.slirp:
            await self._connect(pid)
        else:
            self._unblock()

    def _unblock(self) -> None:
        """Let the sandbox's command start."""
        if "block_write" in self._fds:
            with contextlib.suppress(BrokenPipeError):  # bwrap ended meanwhile: what it said comes as output
                os.write(self._fds["block_write"], b"1")
            self._shut("block_write")

    async def _loopback_up(self, pid: int) -> None:
        """Wait until bwrap has set up the namespace's loopback (its local route is there): slirp4netns
        configuring its device meanwhile makes bwrap's netlink exchange fail now and then."""
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            try:
                with open(f"/proc/{pid}/net/fib_trie", "rb") as handle:
                    if b"127.0.0.1" in handle.read():
                        return
            except OSError:  # bwrap ended: what it said comes as the run's output
                return
            await asyncio.sleep(0.001)

    async def _connect(self, pid: int) -> None:
        await self._loopback_up(pid)
        ready_read, ready_write = os.pipe()
        exit_read, self._fds["exit_write"] = os.pipe()
        # Not root: the network namespace belongs to bwrap's user namespace, which slirp4netns joins first.
        userns = [] if os.geteuid() == 0 else [f"--userns-path=/proc/{pid}/ns/user"]
        try:
            self._slirp = await asyncio.create_subprocess_exec(
                self.slirp, "--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
                "--enable-seccomp", *userns, "--ready-fd", str(ready_write), "--exit-fd", str(exit_read), str(pid),
                TAP,
                pass_fds=(ready_write, exit_read), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            _close(ready_read)
            raise FailedPrecondition(f"isolated network: cannot start {self.slirp}: {exc.strerror or exc}") from None
        finally:
            _close(ready_write)
            _close(exit_read)
        if self.command_waits:
            self._unblock()
        try:
            ready = await _read(ready_read, lambda got: b"1" in got, START_TIMEOUT)
        except TimeoutError:
            ready = b""
        finally:
            _close(ready_read)
        if b"1" not in ready:
            said = await self._stop_slirp()
            raise FailedPrecondition(f"isolated network: slirp4netns failed ({said or 'no network'}); "
                                     f"or set [execution] network = host")
        self._unblock()

    async def _stop_slirp(self) -> str:
        """End slirp4netns (its exit pipe closes) and wait for it; the last line it said."""
        self._shut("exit_write")
        slirp, self._slirp = self._slirp, None
        if slirp is None:
            return ""
        try:
            await asyncio.wait_for(slirp.wait(), SLIRP_EXIT_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(slirp.pid, signal.SIGKILL)
            await slirp.wait()
        said = (await slirp.stderr.read()).decode("utf-8", "replace") if slirp.stderr else ""
        lines = [line.strip() for line in said.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    async def close(self) -> None:
        """After the process: the network goes (slirp4netns is told to end at once and waited for aside: the
        run need not wait for it), the cgroup says whether its bound ended it and goes."""
        for name in list(self._fds):
            if name != "exit_write":
                self._shut(name)
        self._shut("exit_write")  # slirp4netns ends now
        if self._slirp is not None:
            task = asyncio.get_running_loop().create_task(self._stop_slirp())
            _ENDING.add(task)
            task.add_done_callback(_ENDING.discard)
        if self.cgroup is not None:
            self.exceeded = self.cgroup.exceeded()
            await asyncio.to_thread(self.cgroup.remove)
            self.cgroup = None
