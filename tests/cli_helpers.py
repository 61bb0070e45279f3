"""Running the real `gateway` and `gateway-daemon` commands in an isolated home: the one harness the tests use.

Two ways in, one underneath (run_command, Result):

* Sandbox: a home, a working directory and a gateway.conf of one's own (the CLI, config and resource tests);
* gateway_env + gw: an environment dict for a data dir in a temporary folder, passed to each command (the
  run, workspace, transfer and server tests, which also hand that environment to processes they start).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
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
    """Run one command to its end; what every helper here comes down to."""
    proc = subprocess.run([program, *args], input=stdin if stdin is not None else "", capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)
    return Result([Path(program).name, *args], proc.returncode, proc.stdout, proc.stderr)


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
