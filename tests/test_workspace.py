"""Repositories on disk: cached clones, branches and pinned commits, one tree per run, SSH with strict host keys."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Repository, Service
from gateway_daemon.execution.hostkeys import ssh_host
from gateway_daemon.execution.workspace import Workspace

from cli_helpers import gateway_env, gw, ok, one_error_line
from gitutil import commit_files, git, new_repo

TREE_CHECK = '''\
import os, sys, time
assert not os.path.exists("mine"), "another run's file is in my tree"
open("mine", "w").write(sys.argv[1] if len(sys.argv) > 1 else "")
time.sleep(1.0)
print("version", open("VERSION").read().strip(), "tree", os.getcwd())
'''


@pytest.fixture
def origin(tmp_path) -> Path:
    repo = tmp_path / "origin"
    new_repo(repo, {"app/check.py": TREE_CHECK, "app/VERSION": "1\n"})
    return repo


def _run_lines(engine, name: str) -> "asyncio.Future":
    async def collect():
        lines, last = [], None
        async for event in engine.run_service(name):
            lines.extend(line.text for line in event.lines if line.stream == "stdout")
            last = event.run
        return lines, last
    return asyncio.ensure_future(collect())


@pytest.fixture
async def engine(tmp_path, origin):
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")})
    engine = open_engine(config, announce=lambda text: None)
    await engine.create(Repository(name="apps", url=str(origin), reference="main"))
    await engine.create(Service(name="check", type="python-script", repository="apps", working_dir="app",
                                filename="check.py"))
    yield engine
    await engine.close()


async def test_concurrent_runs_of_one_service_get_their_own_trees(engine):
    first, second = _run_lines(engine, "check"), _run_lines(engine, "check")
    (lines1, run1), (lines2, run2) = await asyncio.gather(first, second)
    assert run1.status == run2.status == "succeeded", (lines1, lines2, run1.reason, run2.reason)
    tree1, tree2 = lines1[-1].split("tree ")[1], lines2[-1].split("tree ")[1]
    assert tree1 != tree2
    assert not Path(tree1).exists() and not Path(tree2).exists()  # removed when each run ended


async def test_a_branch_is_fetched_before_each_run(engine, origin):
    lines, run = await _run_lines(engine, "check")
    assert "version 1" in lines[-1]
    newer = commit_files(origin, {"app/VERSION": "2\n"}, "second")
    lines, run = await _run_lines(engine, "check")
    assert "version 2" in lines[-1] and run.commit == newer


async def test_a_pinned_commit_is_not_fetched_again(engine, origin, tmp_path):
    pinned = git(origin, "rev-parse", "HEAD")
    await engine.update("repository", "apps", {"reference": pinned})
    lines, run = await _run_lines(engine, "check")
    assert run.status == "succeeded" and run.commit == pinned
    # With the origin gone, only a run that needs no fetch can still work.
    origin.rename(tmp_path / "origin-gone")
    lines, run = await _run_lines(engine, "check")
    assert run.status == "succeeded", run.reason
    assert "version 1" in lines[-1]


async def test_tags_and_the_remote_head(engine, origin):
    git(origin, "tag", "v1")
    commit_files(origin, {"app/VERSION": "2\n"}, "second")
    await engine.update("repository", "apps", {"reference": "v1"})
    lines, _ = await _run_lines(engine, "check")
    assert "version 1" in lines[-1]
    await engine.update("repository", "apps", {"reference": ""})
    lines, _ = await _run_lines(engine, "check")
    assert "version 2" in lines[-1]


async def test_an_unknown_reference_says_so(engine, origin):
    await engine.update("repository", "apps", {"reference": "no-such-branch"})
    lines, run = await _run_lines(engine, "check")
    assert run.status == "failed"
    assert run.reason == f"repository apps: reference 'no-such-branch' not found in {origin}"


async def test_concurrent_first_runs_share_one_clone_and_snapshot(tmp_path, origin):
    workspace = Workspace(tmp_path / "data")
    repository = Repository(name="apps", url=str(origin), reference="main")
    trees = [tmp_path / f"tree{i}" for i in range(4)]
    commits = await asyncio.gather(*(workspace.prepare(repository, tree, lambda text: None) for tree in trees))
    assert len(set(commits)) == 1
    assert all((tree / "app" / "check.py").read_text() == TREE_CHECK for tree in trees)
    assert len(list(workspace.clones.glob("*.git"))) == 1
    assert [p.name for p in workspace.snapshots.iterdir() if not p.name.endswith(".lock")] == [commits[0]]


def test_command_transports_are_refused(tmp_path):
    env = gateway_env(tmp_path)
    for url in ("ext::sh -c touch% /tmp/pwned", "fd::3"):
        result = gw(env, "create", "repository", "evil", "--url", url)
        assert result.returncode == 1
        assert "uses a git transport that runs commands" in one_error_line(result)
    assert ok(gw(env, "get", "repositories", "-o", "json")).stdout.strip() == "[]"


def test_ssh_host_parsing():
    assert ssh_host("ssh://git@example.com:2222/x.git") == ("example.com", 2222)
    assert ssh_host("git@example.com:team/x.git") == ("example.com", 22)
    assert ssh_host("https://example.com/x.git") is None
    assert ssh_host("/srv/git/x") is None


# ------------------------------------------------------------------ a real sshd on loopback
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A real OpenSSH server on 127.0.0.1, key login only, serving the origin over git-upload-pack."""
    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if binary is None:
        pytest.skip("no sshd: apt-get install openssh-server (scripts/test does)")
    if os.geteuid() != 0:
        pytest.skip("sshd on loopback needs root here (it switches to the logged-in user)")
    home = tmp_path / "sshd"
    home.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "client_key")], check=True)
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    os.chmod(home / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(exist_ok=True)
    port = _free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {home / 'sshd.pid'}\n")
    process = subprocess.Popen([binary, "-D", "-e", "-f", str(home / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=open(home / "sshd.log", "w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None:
            pytest.fail("sshd did not start: " + (home / "sshd.log").read_text()[-500:])
        time.sleep(0.05)
    yield {"port": port, "key": (home / "client_key").read_text(), "host_key": (home / "host_key.pub").read_text()}
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def test_git_over_ssh_with_a_private_key_secret_and_strict_host_keys(tmp_path, origin, sshd):
    env = gateway_env(tmp_path)
    port = sshd["port"]
    ok(gw(env, "create", "secret", "deploy-key", "--value-file", "-", stdin=sshd["key"]))
    ok(gw(env, "create", "repository", "apps", "--url", f"ssh://root@127.0.0.1:{port}{origin}",
          "--private-key-name", "deploy-key"))
    ok(gw(env, "create", "service", "python-script", "check", "--repository", "apps", "--working-dir", "app",
          "--filename", "check.py"))

    # Unknown host key: the fetch fails, and says how to trust it.
    result = gw(env, "run", "service", "check")
    assert result.returncode == 1
    assert (f"repository apps: the ssh host key of 127.0.0.1 is not trusted yet; check its fingerprint, "
            f"then run: gateway hostkeys add 127.0.0.1 --port {port}") in result.stdout + result.stderr

    added = ok(gw(env, "hostkeys", "add", "127.0.0.1", "--port", str(port)))
    expected = subprocess.run(["ssh-keygen", "-lf", "-"], input=sshd["host_key"], capture_output=True,
                              text=True, check=True).stdout.split()[1]
    assert f"trusted [127.0.0.1]:{port} ssh-ed25519 {expected}" in added.stdout
    listed = ok(gw(env, "hostkeys", "get"))
    assert expected in listed.stdout

    result = ok(gw(env, "run", "service", "check"))
    assert "version 1" in result.stdout
    # The private key was in a 0600 file only while git ran.
    key_dir = tmp_path / "data" / "tmp"
    assert not key_dir.exists() or list(key_dir.iterdir()) == []
    assert sshd["key"].strip().splitlines()[1] not in result.stdout

    ok(gw(env, "hostkeys", "delete", "127.0.0.1", "--port", str(port)))
    assert ok(gw(env, "hostkeys", "get", "-o", "json")).stdout.strip() == "[]"
    missing = gw(env, "hostkeys", "delete", "127.0.0.1", "--port", str(port))
    assert missing.returncode == 1
    assert one_error_line(missing) == f"gateway: no trusted host keys for [127.0.0.1]:{port}"
