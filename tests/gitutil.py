"""Shared by the tests that drive the real `gateway` command against real git repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True).stdout.strip()


def new_repo(repo: Path, files: dict[str, str], message: str = "first") -> str:
    """A git repository at `repo` (made if missing) on branch main, with `files` committed; the commit id."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    return commit_files(repo, files, message)


def commit_files(repo: Path, files: dict[str, str], message: str = "change") -> str:
    """Write `files` (path -> text) into the work tree of `repo`, commit them, return the commit id."""
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def gateway_env(tmp_path: Path) -> dict[str, str]:
    """Environment for the real `gateway` command against a fresh data dir in tmp_path."""
    config = tmp_path / "gateway.conf"
    config.write_text("[application]\nmode = local\n")
    values = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    values.update(GATEWAY_CONFIG=str(config), GATEWAY_APPLICATION_DATA_DIR=str(tmp_path / "data"),
                  PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return values


def gw(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "gateway"), *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]
