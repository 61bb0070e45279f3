"""Starts the tests' `gateway`, `iagctl` and `gateway-daemon` commands without starting Python for each one.

The suite runs a few thousand commands, and most of each one's CPU went to starting the interpreter and
importing the same modules again. This server does that once per test worker: it imports what the commands
import, then forks one child per command. A child takes the command's stdin, stdout and stderr (passed over
the socket), its environment, working directory and arguments, and runs the installed entry point's `main`
(the function the console script calls) as its own process, with its own pid and exit code.

The server imports only: nothing runs before a fork (no event loop, no gRPC channel, no keyring backend, no
configuration read), and the project reads its environment when a command runs, not at import. The one
import-time effect, `GRPC_VERBOSITY` set by `gateway_tui.cli`, is set again in every child.
`GATEWAY_TEST_EXEC=1` runs every command as its own program instead (cli_helpers.run_command).

Protocol, one connection per command: the client sends a 4-byte length with the three file descriptors, then
that many bytes of JSON ({program, args, env, cwd}); the server answers the child's pid (4 bytes) and, once the
child has exited, its exit code (4 bytes, negative for a signal, as subprocess says it).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import os
import selectors
import socket
import struct
import sys
import threading

# What the commands import (the CLI, the engine, the client, the daemon), imported once here.
PRELOAD = (
    "gateway_tui.cli", "gateway_tui.cli.parser", "gateway_tui.cli.local_read", "gateway_tui.cli.resources",
    "gateway_tui.cli.runs", "gateway_tui.cli.session", "gateway_tui.cli.database", "gateway_tui.credentials",
    "gateway_daemon.bootstrap", "gateway_daemon.core.engine", "gateway_daemon.rpc.client", "gateway_daemon.main",
    "keyring", "keyring.backends.fail", "asyncio", "sqlite3", "json", "argparse",
)
MAINS = {"gateway": "gateway_tui.cli", "iagctl": "gateway_tui.cli", "gateway-daemon": "gateway_daemon.main"}


def preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a module renamed since: the child imports what it needs


def recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve(path: str) -> tuple[dict, list[int]] | None:
    """Forks a child per request; returns (request, fds) in the child, None in the server when its parent is gone."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(0, selectors.EVENT_READ, "parent")  # the test worker holds the other end: EOF when it ends
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    waiting: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    while True:
        for key, _ in selector.select():
            if key.data == "parent":
                return None
            if key.data == "accept":
                conn, _ = listener.accept()
                fds: list[int] = []
                try:
                    header, fds, _flags, _addr = socket.recv_fds(conn, 4, 3)
                    if len(header) < 4:
                        header += recv_exact(conn, 4 - len(header))
                    request = json.loads(recv_exact(conn, struct.unpack("!I", header)[0]))
                    if len(fds) != 3:
                        raise ValueError(f"{len(fds)} file descriptors, not 3")
                except (EOFError, OSError, ValueError) as exc:
                    print(f"forkserver: a bad request: {exc}", file=sys.stderr)
                    for fd in fds:
                        os.close(fd)
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    for other_pidfd, (_pid, other) in waiting.items():
                        os.close(other_pidfd)
                        other.close()
                    selector.close()
                    listener.close()
                    conn.close()
                    return request, fds
                for fd in fds:
                    os.close(fd)
                try:
                    conn.sendall(struct.pack("!i", pid))
                except OSError:
                    pass  # the client is gone: the child is still waited for below
                pidfd = os.pidfd_open(pid)
                waiting[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ, "child")
            else:
                pidfd = key.fd
                pid, conn = waiting.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                try:
                    conn.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
                except OSError:
                    pass  # the client gave up on it (a timeout)
                conn.close()


def child(request: dict, fds: list[int]) -> None:
    """Become the command: its stdin, stdout and stderr, environment, folder and arguments, then its main."""
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # as gateway_tui/cli/__init__.py does at import
    sys.argv = [request["program"], *request["args"]]
    main = importlib.import_module(MAINS[os.path.basename(request["program"])]).main
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    finish(code or 0)


def finish(code: int) -> None:
    """Python's exit, but for tearing down the modules the server imported (each object it touches is a page the
    kernel copies: ~60 ms a command): threads joined, atexit run, what the command left collected, streams flushed."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    gc.collect()  # the garbage of the command (the server's objects are frozen: gc.freeze)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = 120  # as Python exits when it cannot flush stdout
    os._exit(code)


if __name__ == "__main__":
    sys.path[0] = os.path.dirname(sys.executable)  # as the console scripts in the venv's bin folder have it
    preload()
    gc.freeze()  # what the server imported stays out of every child's collections (and its pages shared)
    job = serve(sys.argv[1])
    if job is not None:
        child(*job)
