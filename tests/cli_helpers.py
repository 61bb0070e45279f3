"""Running the real `gateway` and `gateway-daemon` commands in an isolated home: the one harness the tests use.

Two ways in, one underneath (run_command, Result):

* Sandbox: a home, a working directory and a gateway.conf of one's own (the CLI, config and resource tests);
* gateway_env + gw: an environment dict for a data dir in a temporary folder, passed to each command (the
  run, workspace, transfer and server tests, which also hand that environment to processes they start).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import locale
import os
import selectors
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
GATEWAY = str(BIN / "gateway")
DAEMON = str(BIN / "gateway-daemon")
IAGCTL = str(BIN / "iagctl")  # the same program under IAG 5's name, as operators' scripts and units call it
KINDS = ("repositories", "decorators", "services", "secrets")
PYCACHE = os.path.join(tempfile.gettempdir(), f"gateway-tests-pycache-{os.getuid()}")


@dataclass
class Result:
    args: Sequence[str]
    code: int
    out: str
    err: str

    # The names of subprocess.CompletedProcess, for tests written against it.
    @property
    def returncode(self) -> int:
        return self.code

    @property
    def stdout(self) -> str:
        return self.out

    @property
    def stderr(self) -> str:
        return self.err

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}\nexit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"

    def json(self) -> Any:
        assert self.code == 0, str(self)
        return json.loads(self.out)

    def ok(self) -> "Result":
        assert self.code == 0, str(self)
        assert "Traceback" not in self.err, str(self)
        return self

    def fails(self, code: int, *fragments: str, prefix: str = "gateway: ") -> str:
        """Assert the exit code and ONE line on stderr, starting with `prefix` and holding every fragment."""
        assert self.code == code, str(self)
        assert "Traceback" not in self.err, str(self)
        lines = self.err.splitlines()
        assert len(lines) == 1, f"expected one line on stderr\n{self}"
        line = lines[0]
        assert line.startswith(prefix), str(self)
        for fragment in fragments:
            assert fragment in line, f"{fragment!r} missing from the message\n{self}"
        return line


def run_command(program: str, args: Sequence[str], env: dict[str, str], stdin: str | None = None,
                cwd: Path | None = None, timeout: float = 60) -> Result:
    """Run one command to its end; what every helper here comes down to. The project's own commands are forked
    from a process that has imported them once (cli_forkserver.py; GATEWAY_TEST_EXEC=1: each its own program)."""
    name = Path(program).name
    if Path(program).parent == BIN and name in FORKED and _forkable(env):
        code, out, err = _forked(program, list(args), env, stdin or "", cwd, timeout)
        return Result([name, *args], code, out, err)
    proc = subprocess.run([program, *args], input=stdin if stdin is not None else "", capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)
    return Result([name, *args], proc.returncode, proc.stdout, proc.stderr)


# ---------------------------------------------------------------- the fork server (cli_forkserver.py)
FORKED = ("gateway", "iagctl", "gateway-daemon")
# What Python reads as it starts, before any command runs (PYTHON*, the locale): a command whose environment sets
# these otherwise than the server's starts as its own program (as every command does with GATEWAY_TEST_EXEC=1).
# keyring reads its variable when a command asks it.
_INTERPRETER_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE")
_READ_BY_THE_COMMAND = ("PYTHON_KEYRING_BACKEND",)
_server: tuple[int, subprocess.Popen, str] | None = None  # (the test worker's pid, the server, its socket)
_server_lock = threading.Lock()  # commands run from threads too (Sandbox.many, the flood tests)


def _forkable(env: dict[str, str]) -> bool:
    if os.environ.get("GATEWAY_TEST_EXEC"):
        return False
    base = clean_environ(None)  # the server's
    keys = {k for k in (*env, *base) if (k.startswith("PYTHON") or k in _INTERPRETER_VARIABLES)
            and k not in _READ_BY_THE_COMMAND}
    return all(env.get(k) == base.get(k) for k in keys)


def _fork_server() -> str:
    """The socket of this process's fork server, started on first use and stopped when this process ends."""
    global _server
    with _server_lock:
        if _server is not None and _server[0] == os.getpid() and _server[1].poll() is None:
            return _server[2]
        return _start_fork_server()


def _start_fork_server() -> str:
    global _server
    folder = tempfile.mkdtemp(prefix="gateway-forkserver-")
    path = os.path.join(folder, "socket")
    log = open(os.path.join(folder, "log"), "wb")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cli_forkserver.py")), path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=clean_environ(None),
                            start_new_session=True)
    log.close()
    if proc.stdout is None or proc.stdout.readline() != b"ready\n":
        proc.kill()
        message = Path(folder, "log").read_text(errors="replace")
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"the fork server did not start:\n{message}")
    _server = (os.getpid(), proc, path)

    def stop() -> None:
        if _server is not None and _server[0] == os.getpid():
            proc.stdin.close()  # type: ignore[union-attr]  (EOF: the server ends)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    return path


def _forked(program: str, args: list[str], env: dict[str, str], stdin: str, cwd: Path | None,
            timeout: float) -> tuple[int, str, str]:
    """Run one command in a child of the fork server: (exit code, stdout, stderr), as subprocess.run gives them."""
    deadline = time.monotonic() + timeout
    pipes = [os.pipe() for _ in range(3)]
    try:
        conn = _fork(program, args, env, cwd, (pipes[0][0], pipes[1][1], pipes[2][1]))
    finally:
        for fd in (pipes[0][0], pipes[1][1], pipes[2][1]):
            os.close(fd)
    writer, readers = pipes[0][1], {pipes[1][0]: bytearray(), pipes[2][0]: bytearray()}
    pid = struct.unpack("!i", _receive(conn, 4, deadline, None, program, args))[0]
    data = stdin.encode()
    try:
        with selectors.DefaultSelector() as selector:
            if data:
                os.set_blocking(writer, False)
                selector.register(writer, selectors.EVENT_WRITE)
            else:
                os.close(writer)
                writer = -1
            for fd in readers:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _timed_out(pid, program, args, timeout, readers)
                for key, _ in selector.select(remaining):
                    if key.fd == writer:
                        try:
                            data = data[os.write(writer, data[:65536]):]
                        except BrokenPipeError:
                            data = b""
                        if not data:
                            selector.unregister(writer)
                            os.close(writer)
                            writer = -1
                        continue
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        readers[key.fd] += chunk
                    else:
                        selector.unregister(key.fd)
        code = struct.unpack("!i", _receive(conn, 4, deadline, pid, program, args, readers, timeout=timeout))[0]
    finally:
        conn.close()
        for fd in (*readers, writer):
            if fd >= 0:
                os.close(fd)
    out, err = (_text(bytes(buffer)) for buffer in readers.values())
    return code, out, err


def _fork(program: str, args: list[str], env: dict[str, str], cwd: Path | None,
          fds: tuple[int, int, int]) -> socket.socket:
    """Ask the fork server for a child running `program args` with `fds` as its stdin, stdout and stderr."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(_fork_server())
        body = json.dumps({"program": program, "args": args, "env": env,
                           "cwd": str(cwd) if cwd is not None else os.getcwd()}).encode()
        socket.send_fds(conn, [struct.pack("!I", len(body))], list(fds))
        conn.sendall(body)
    except BaseException:
        conn.close()
        raise
    return conn


class Forked:
    """A daemon started by the fork server: what the tests use of subprocess.Popen (pid, poll, wait, signals)."""

    def __init__(self, program: str, args: list[str], env: dict[str, str], output: Any):
        with open(os.devnull, "rb") as devnull:
            self._conn = _fork(program, args, env, None, (devnull.fileno(), output.fileno(), output.fileno()))
        self.args = [program, *args]
        self.pid = struct.unpack("!i", _receive(self._conn, 4, time.monotonic() + 30, None, program, args))[0]
        self.returncode: int | None = None
        self._ended = threading.Event()
        threading.Thread(target=self._wait_for_the_end, daemon=True).start()

    def _wait_for_the_end(self) -> None:
        try:
            code = struct.unpack("!i", _receive(self._conn, 4, float("inf"), None, self.args[0], self.args[1:],
                                                patient=True))[0]
        except (OSError, RuntimeError):
            code = -signal.SIGKILL  # the fork server itself is gone
        finally:
            self._conn.close()
        self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_daemon(args: Sequence[str], output: Any, env: dict[str, str] | None = None) -> "Forked | subprocess.Popen":
    """`gateway-daemon ARGS` in the background, its stdout and stderr to the file `output`: forked as the commands
    are (run_command), else its own program."""
    env = clean_environ(None) if env is None else env
    if _forkable(env):
        return Forked(DAEMON, list(args), env, output)
    return subprocess.Popen([DAEMON, *args], stdout=output, stderr=output, env=env)


def _receive(conn: socket.socket, size: int, deadline: float, pid: int | None, program: str, args: list[str],
             readers: dict[int, bytearray] | None = None, patient: bool = False, timeout: float = 0) -> bytes:
    """`size` bytes from the fork server. With the command's `pid`, past `deadline` the command is killed (as
    subprocess.run does at its timeout); without, the server answers at once or something is wrong with it."""
    data = b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0 and pid is not None:
            _timed_out(pid, program, args, timeout, readers or {})
        conn.settimeout(None if patient else max(remaining, 0.001) if pid is not None else 30)
        try:
            chunk = conn.recv(size - len(data))
        except socket.timeout:
            if pid is None:
                raise RuntimeError(f"the fork server did not answer for {Path(program).name} {' '.join(args)}") \
                    from None
            continue
        if not chunk:
            raise RuntimeError(f"the fork server ended during {Path(program).name} {' '.join(args)}")
        data += chunk
    return data


def _timed_out(pid: int, program: str, args: list[str], timeout: float, readers: dict[int, bytearray]) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    out, err = (bytes(buffer) for buffer in readers.values()) if readers else (b"", b"")
    raise subprocess.TimeoutExpired([program, *args], timeout, output=out, stderr=err)


def _text(data: bytes) -> str:
    """Bytes as subprocess's text mode gives them: the locale's encoding, universal newlines."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def clean_environ(home: Path | None, **extra: str) -> dict[str, str]:
    """os.environ without any GATEWAY_* variable, HOME moved to `home` (kept when None), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    if home is not None:
        env["HOME"] = str(home)
        env.pop("XDG_CONFIG_HOME", None)
    # Hundreds of short-lived processes: let them share compiled bytecode, kept out of the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    env.update(extra)
    return env


class Sandbox:
    """A home, a working directory and a gateway.conf of one's own; commands run with nothing else."""

    def __init__(self, root: Path, write_config: bool = True):
        self.root = root
        self.data_dir = root / "data"
        self.config = root / "gateway.conf"
        self.env: dict[str, str] = {}
        if write_config:
            self.config.write_text(f"[application]\ndata_dir = {self.data_dir}\n")

    @property
    def db(self) -> Path:
        return self.data_dir / "gateway.db"

    def _run(self, program: str, args: Sequence[str], stdin: str | None = None, env: dict[str, str] | None = None,
             cwd: Path | None = None, timeout: float = 60) -> Result:
        return run_command(program, args, clean_environ(self.root, **{**self.env, **(env or {})}), stdin=stdin,
                           cwd=cwd or self.root, timeout=timeout)

    def gateway(self, *args: str, **kwargs: Any) -> Result:
        return self._run(GATEWAY, args, **kwargs)

    def daemon(self, *args: str, **kwargs: Any) -> Result:
        return self._run(DAEMON, args, **kwargs)

    def python(self, *args: str, **kwargs: Any) -> Result:
        """The interpreter the commands run on, in the same environment (for `-c` probes of the CLI)."""
        return self._run(sys.executable, args, **kwargs)

    def many(self, calls: Iterable[tuple[str, ...]], program: str = GATEWAY, **kwargs: Any) -> list[Result]:
        """Independent commands at once (they only read the store, or each has its own config)."""
        calls = list(calls)
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda argv: self._run(program, argv, **kwargs), calls))

    # ------------------------------------------------------------ what is stored
    def listing(self, kind: str) -> list[dict[str, Any]]:
        return self.gateway("get", kind, "-o", "json").json()

    def stored(self) -> list[tuple[str, bytes, int]]:
        """Every row of the embedded store, revisions included: any write shows here."""
        if not self.db.exists():
            return []
        conn = sqlite3.connect(self.db)
        try:
            rows = conn.execute("SELECT key, value, revision FROM kv ORDER BY key").fetchall()
            revision = conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchall()
        finally:
            conn.close()
        return [(k, bytes(v), r) for k, v, r in rows] + [("(revision)", b"", revision[0][0] if revision else 0)]

    def snapshot(self, kinds: Sequence[str] = KINDS) -> tuple[Any, ...]:
        """What `gateway get KIND -o json` shows for `kinds`, and the raw store."""
        listings = self.many([("get", kind, "-o", "json") for kind in kinds])
        return tuple(r.json() for r in listings) + (self.stored(),)


# ---------------------------------------------------------------- an environment passed to each command
def gateway_env(root: Path, config: str = "[application]\nmode = local\n", home: Path | None = None,
                **extra: str) -> dict[str, str]:
    """Environment for the real commands: `config` written to root/gateway.conf and named by GATEWAY_CONFIG, the
    data dir root/data, the commands' folder first on PATH; HOME moved to `home` when given."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "gateway.conf"
    path.write_text(config)
    return clean_environ(home, GATEWAY_CONFIG=str(path), GATEWAY_APPLICATION_DATA_DIR=str(root / "data"),
                         PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra)


def gw(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 180) -> Result:
    """`gateway ARGS` in `env`."""
    return run_command(GATEWAY, args, env, stdin=stdin, timeout=timeout)


def iagctl(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 180) -> Result:
    """`iagctl ARGS` in `env`: the installed iagctl command, for the lines IAG 5's reference documents."""
    return run_command(IAGCTL, args, env, stdin=stdin, timeout=timeout)


def ok(result: Result) -> Result:
    assert result.code == 0, str(result)
    return result


def one_error_line(result: Result, code: int | None = None, prefix: str = "") -> str:
    """The one non-blank line on stderr (no traceback); with `code`, the exit code; with `prefix`, its start."""
    if code is not None:
        assert result.code == code, str(result)
    assert "Traceback" not in result.err, str(result)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, str(result)
    assert lines[0].startswith(prefix), str(result)
    return lines[0]


def run_all(thunks: Iterable[Callable[[], Result]]) -> list[Result]:
    """Call each thunk (a command with its own config or environment) at once; results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda thunk: thunk(), list(thunks)))


def check_all(checks: Iterable[Callable[[], Any]]) -> None:
    """Run every check (a thunk that asserts) and report every failure together, not just the first."""
    problems = []
    for check in checks:
        try:
            check()
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, f"{len(problems)} check(s) failed:\n\n" + "\n\n".join(problems)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
