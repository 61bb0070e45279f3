"""Hostile repositories and scripts, for real: symlinks out of the repository, scripts that go looking for the
secrets key and the database (local mode, a real server, a real runner on a real etcd), background processes
that try to outlive their run, and the Python 3.11 releases without tar extraction filters."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Repository, Service
from gateway_daemon.execution import archive
from gateway_daemon.execution.sandbox import Sandbox

from cli_helpers import BIN, gateway_env, gw, ok
from cluster import new_site, start_all, wait_for
from gateway_server import ADMIN_PASSWORD, Client, Daemon
from gitutil import commit_files, git, new_repo

PEEK = '''\
import json, os, socket, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
for path in json.loads(args.get("paths", "[]")):
    try:
        if os.path.isdir(path):
            print("LISTED", path, sorted(os.listdir(path)))
        else:
            with open(path, "rb") as handle:
                print("READ", path, len(handle.read()))
    except OSError as exc:
        print("DENIED", path, type(exc).__name__)
for path in json.loads(args.get("writes", "[]")):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        print("WROTE", path)
    except OSError as exc:
        print("UNWRITABLE", path, type(exc).__name__)
if args.get("port"):
    try:
        with socket.create_connection(("127.0.0.1", int(args["port"])), timeout=10) as conn:
            conn.sendall(b"hello from the run")
        print("CONNECTED")
    except OSError as exc:
        print("UNREACHABLE", type(exc).__name__)
print("PREFIX", sys.prefix)
print("HOME", os.environ.get("HOME"), "TMPDIR", os.environ.get("TMPDIR"))
'''

FORK = '''\
import os, subprocess, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
# the child ignores TERM, so only a KILL ends it
sleeper = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
           "time.sleep(600)", args["marker"]]
if args["kind"] == "session":
    subprocess.Popen(["setsid", "-f", *sleeper])  # its own session, and orphaned at once
else:
    subprocess.Popen(sleeper)  # same process group
print("started", os.getcwd(), flush=True)
while not os.path.exists("go"):
    time.sleep(0.05)
if args["end"] == "success":
    sys.exit(0)
time.sleep(600)
'''


def _bwrap_usable() -> bool:
    return not Sandbox("auto").problem()


needs_bwrap = pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap (Debian package bubblewrap)")


def _verdicts(text: str) -> dict[str, str]:
    """PEEK's verdict per path: {path: 'READ' | 'LISTED' | 'DENIED' | 'WROTE' | 'UNWRITABLE'}."""
    verdicts = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if parts[0] in ("READ", "LISTED", "DENIED", "WROTE", "UNWRITABLE") and len(parts) >= 2:
            verdicts[parts[1]] = parts[0]
    return verdicts


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def pids_with_argument(argument: str) -> list[int]:
    """Host pids of the processes that have `argument` as one whole element of their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argument.encode() in argv and _alive(int(entry)):
            found.append(int(entry))
    return found


# ---------------------------------------------------------------- symlinks leading out of the repository
def _repo_with_links(root: Path, links: dict[str, str], files: dict[str, str] | None = None) -> Path:
    repo = root / f"links-{secrets.token_hex(3)}"
    repo.mkdir(parents=True)
    for name, text in {"main.py": 'print("main ran")\n', **(files or {})}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for name, target in links.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "links")
    return repo


@pytest.fixture
def local(tmp_path):
    env = gateway_env(tmp_path / "gw")
    ok(gw(env, "create", "secret", "token", "--value", "s3cr3t-value"))  # makes the secrets key
    return env


def _data_dir(env) -> Path:
    return Path(env["GATEWAY_APPLICATION_DATA_DIR"])


@pytest.mark.parametrize("case", ["passwd", "key", "root-dir", "relative-escape", "chain", "nested"])
def test_a_link_leading_out_of_the_repository_refuses_the_run_naming_the_link(local, tmp_path, case):
    key = _data_dir(local) / "secrets.key"
    links = {
        "passwd": {"peek": "/etc/passwd"},
        "key": {"conf/key": str(key)},
        "root-dir": {"everything": "/"},
        "relative-escape": {"up": "../../../../../../../.."},
        "chain": {"a": "b", "b": "/etc"},
        "nested": {"lib/inner/out": "../../../outside.txt"},
    }[case]
    (tmp_path / "outside.txt").write_text("outside\n")
    repo = _repo_with_links(tmp_path, links)
    ok(gw(local, "create", "repository", "hostile", "--url", str(repo)))
    ok(gw(local, "create", "service", "python-script", "victim", "--repository", "hostile", "--filename", "main.py"))
    result = gw(local, "run", "service", "victim")
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and "main ran" not in result.stdout
    named = sorted(links)[0]
    last = result.stderr.strip().splitlines()[-1]
    assert f"link {named} " in last and "leads outside the repository" in last, last
    run = json.loads(ok(gw(local, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "failed" and f"link {named} " in run["reason"]
    assert "\n" not in run["reason"]


def test_an_executable_that_links_out_is_never_chmodded_and_never_runs(local, tmp_path):
    outside = tmp_path / "precious.sh"
    outside.write_text("#!/bin/sh\necho precious ran\n")
    outside.chmod(0o644)
    repo = _repo_with_links(tmp_path, {"tools/run.sh": str(outside)})
    ok(gw(local, "create", "repository", "hostile", "--url", str(repo)))
    ok(gw(local, "create", "service", "executable", "victim", "--repository", "hostile", "--working-dir", "tools",
          "--filename", "run.sh"))
    result = gw(local, "run", "service", "victim")
    assert result.returncode == 1 and "precious ran" not in result.stdout
    assert "link tools/run.sh " in result.stderr.strip().splitlines()[-1]
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644, "the target outside the repository was chmodded"


def test_links_that_stay_inside_the_tree_keep_working(local, tmp_path):
    repo = _repo_with_links(
        tmp_path,
        {"bin/run.sh": "../real/run.sh", "data": "real/data", "self": ".", "real/data/again.txt": "value.txt"},
        {"real/run.sh": "#!/bin/sh\necho run via link; cat ../data/again.txt\n", "real/data/value.txt": "inside\n"},
    )
    assert not os.access(repo / "real" / "run.sh", os.X_OK)  # not executable in the repository: the gateway sets it
    ok(gw(local, "create", "repository", "inside", "--url", str(repo)))
    ok(gw(local, "create", "service", "executable", "linked", "--repository", "inside", "--working-dir", "bin",
          "--filename", "run.sh"))
    result = ok(gw(local, "run", "service", "linked"))
    assert result.stdout.splitlines() == ["run via link", "inside"]


# ---------------------------------------------------------------- the sandbox
def _peek_repo(root: Path, tinydep: Path | None = None) -> Path:
    files = {"peek.py": PEEK, "fork.py": FORK}
    if tinydep is not None:
        files["venv/peek.py"] = PEEK
        files["venv/requirements.txt"] = f"./{tinydep.name}\n"  # in the tree: the sandboxed build sees that only
    repo = root / "peek-origin"
    new_repo(repo, files)
    if tinydep is not None:
        shutil.copy(tinydep, repo / "venv" / tinydep.name)
        commit_files(repo, {}, "the wheel")
    return repo


class Listener:
    """A TCP listener on 127.0.0.1: a run that reaches it shows the network is there."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(120)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            self.received = conn.recv(100)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.skipif(not _bwrap_usable(), reason="bubblewrap is not installed or cannot make namespaces here")
def test_a_local_run_sees_its_tree_its_venv_a_private_tmp_and_the_system_but_never_the_gateways_files(
        tmp_path, tinydep):
    home = tmp_path / "home"
    home.mkdir()
    env = gateway_env(tmp_path / "gw", home=home)
    del env["GATEWAY_APPLICATION_DATA_DIR"]  # the default: ~/.gateway
    data = home / ".gateway"
    ok(gw(env, "create", "secret", "token", "--value", "s3cr3t-value"))
    repo = _peek_repo(tmp_path, tinydep)
    ok(gw(env, "create", "repository", "peek", "--url", str(repo)))
    ok(gw(env, "create", "service", "python-script", "peek", "--repository", "peek", "--filename", "peek.py"))
    ok(gw(env, "create", "service", "python-script", "peek-venv", "--repository", "peek", "--working-dir", "venv",
          "--filename", "peek.py"))
    ok(gw(env, "run", "service", "peek"))  # leaves a run folder name in the history, a snapshot, a clone
    assert (data / "secrets.key").is_file() and (data / "gateway.db").is_file()
    marker = f"hostile-{secrets.token_hex(4)}"
    listener = Listener()
    try:
        targets = [str(data / "secrets.key"), str(data / "gateway.db"), str(data / "snapshots"), str(data / "repos"),
                   str(tmp_path / "gw" / "gateway.conf"), str(home / ".bashrc")]
        (home / ".bashrc").write_text("export SECRET=1\n")
        writes = [f"/tmp/{marker}", "/usr/gateway-probe", "tree-file"]
        result = ok(gw(env, "run", "service", "peek-venv", "--set", f"paths={json.dumps(targets)}",
                       "--set", f"writes={json.dumps(writes)}", "--set", f"port={listener.port}"))
        listener.thread.join(1)
    finally:
        listener.close()
    verdicts = _verdicts(result.stdout)
    for target in targets:
        assert verdicts.get(target) == "DENIED", result.stdout
    # Of the data dir only the way to the run's own folders is there (its tree, HOME and /tmp; its venv).
    skeleton = ok(gw(env, "run", "service", "peek", "--set",
                     f"paths={json.dumps([str(data), str(data / 'runs'), str(home)])}")).stdout
    listed = {line.split(" ", 2)[1]: line.split(" ", 2)[2] for line in skeleton.splitlines() if line.startswith("LISTED")}
    assert listed[str(data)] in ("['runs']", "['runs', 'venvs']"), skeleton
    assert listed[str(home)] == "['.gateway']", skeleton
    own = re.search(r"HOME (\S+)/home ", skeleton).group(1)
    assert listed[str(data / "runs")] == str([Path(own).name]), skeleton
    assert verdicts["tree-file"] == "WROTE"  # its own tree: read-write
    assert verdicts[f"/tmp/{marker}"] == "WROTE" and not Path(f"/tmp/{marker}").exists()  # a private /tmp
    assert verdicts["/usr/gateway-probe"] == "UNWRITABLE" and not Path("/usr/gateway-probe").exists()
    # the network is there (test_hostile_sandbox.py), but not the machine's own loopback services
    assert "CONNECTED" not in result.stdout and listener.received == b""
    assert "s3cr3t-value" not in result.stdout + result.stderr
    # its venv is there, read-only
    prefix = next(line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("PREFIX "))
    assert prefix.startswith(str(data / "venvs"))
    venv_write = ok(gw(env, "run", "service", "peek-venv", "--set",
                       f"writes={json.dumps([prefix + '/probe', prefix + '/pyvenv.cfg'])}"))
    assert set(_verdicts(venv_write.stdout).values()) == {"UNWRITABLE"}, venv_write.stdout
    assert not Path(prefix, "probe").exists()


@pytest.mark.skipif(not _bwrap_usable(), reason="bubblewrap is not installed or cannot make namespaces here")
def test_a_data_dir_inside_a_folder_the_sandbox_shows_is_hidden_all_the_same(tmp_path):
    # The gateway's own environment is shown to runs (read-only: Ansible runs from it); a data dir in it is not.
    data = Path(sys.prefix) / "var" / f"gateway-hostile-{secrets.token_hex(4)}"
    try:
        data.mkdir(parents=True)
    except OSError:
        pytest.skip(f"cannot make a folder in {sys.prefix}")
    try:
        env = dict(gateway_env(tmp_path / "gw"), GATEWAY_APPLICATION_DATA_DIR=str(data))
        ok(gw(env, "create", "secret", "token", "--value", "s3cr3t-value"))
        ok(gw(env, "create", "repository", "peek", "--url", str(_peek_repo(tmp_path))))
        ok(gw(env, "create", "service", "python-script", "peek", "--repository", "peek", "--filename", "peek.py"))
        targets = [str(data / "secrets.key"), str(data / "gateway.db"), str(data / "snapshots"),
                   str(Path(sys.prefix) / "pyvenv.cfg")]
        result = ok(gw(env, "run", "service", "peek", "--set", f"paths={json.dumps(targets)}"))
        verdicts = _verdicts(result.stdout)
        assert verdicts[targets[0]] == verdicts[targets[1]] == "DENIED", result.stdout
        assert verdicts[targets[2]] == "DENIED", result.stdout
        assert verdicts[targets[3]] == "READ"  # the rest of the gateway's environment is there
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _path_without_bwrap(tmp_path: Path, stand_in: str | None = None) -> str:
    """A PATH with git (and the gateway's own commands) but no working bwrap: absent, or a stand-in that fails
    the way bwrap fails in a container that allows no namespaces."""
    folder = tmp_path / "path-without-bwrap"
    folder.mkdir(exist_ok=True)
    for tool in ("git", "setsid"):
        found = shutil.which(tool)
        if found and not (folder / tool).exists():
            os.symlink(found, folder / tool)
    if stand_in is not None:
        (folder / "bwrap").write_text(f"#!/bin/sh\necho '{stand_in}' >&2\nexit 1\n")
        (folder / "bwrap").chmod(0o755)
    return f"{BIN}{os.pathsep}{folder}"


@pytest.mark.parametrize("stand_in", [None, "bwrap: Creating new namespace failed: Operation not permitted"])
def test_without_a_working_bwrap_auto_warns_and_runs_bwrap_refuses_and_none_is_quiet(tmp_path, stand_in):
    env = dict(gateway_env(tmp_path / "gw"), PATH=_path_without_bwrap(tmp_path, stand_in))
    ok(gw(env, "create", "repository", "peek", "--url", str(_peek_repo(tmp_path))))
    ok(gw(env, "create", "service", "python-script", "peek", "--repository", "peek", "--filename", "peek.py"))
    why = "not found on PATH" if stand_in is None else "Operation not permitted"

    auto = ok(gw(env, "run", "service", "peek"))
    warnings = [line for line in auto.stderr.splitlines() if "sandbox" in line]
    assert len(warnings) == 1 and why in warnings[0] and "not sandboxed" in warnings[0], auto.stderr
    shown = ok(gw(env, "config"))
    assert any(line.startswith("# sandbox: none") and why in line for line in shown.stdout.splitlines()), shown.out
    as_json = json.loads(ok(gw(env, "config", "-o", "json")).stdout)
    assert as_json["sandbox"].startswith("none") and why in as_json["sandbox"]

    required = gw(dict(env, GATEWAY_EXECUTION_SANDBOX="bwrap"), "run", "service", "peek")
    assert required.returncode == 1 and "Traceback" not in required.stderr and "PREFIX" not in required.stdout
    last = required.stderr.strip().splitlines()[-1]
    assert "sandbox = bwrap" in last and why in last, required.stderr
    assert json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout)[0]["status"] == "failed"

    quiet = ok(gw(dict(env, GATEWAY_EXECUTION_SANDBOX="none"), "run", "service", "peek"))
    assert "sandbox" not in quiet.stderr
    shown = ok(gw(dict(env, GATEWAY_EXECUTION_SANDBOX="none"), "config")).stdout
    assert "# sandbox: none (sandbox = none)" in shown


def test_a_bad_sandbox_value_is_one_line_naming_the_key(tmp_path):
    env = gateway_env(tmp_path / "gw", "[execution]\nsandbox = maybe\n")
    result = gw(env, "config")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "[execution] sandbox" in lines[0] and "'maybe'" in lines[0], result.stderr
    assert "auto" in lines[0] and "bwrap" in lines[0] and "none" in lines[0]


@pytest.mark.skipif(not _bwrap_usable(), reason="bubblewrap is not installed or cannot make namespaces here")
def test_on_a_server_a_run_cannot_open_the_key_or_the_database(daemon, certs, tmp_path):
    client = Client(tmp_path / "client", daemon.port, certs["ca"])
    login = client("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    if login.returncode != 0:  # the first test of this module to log in changes the temporary password
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    client.ok("create", "secret", "token", "--value-file", "-", stdin="t0ken-value")
    client.ok("create", "repository", "peek", "--url", str(_peek_repo(tmp_path)))
    client.ok("create", "service", "python-script", "peek", "--repository", "peek", "--filename", "peek.py")
    data = daemon.folder / "data"
    assert (data / "secrets.key").is_file() and (data / "gateway.db").is_file()
    targets = [str(data / "secrets.key"), str(data / "gateway.db"), str(data / "snapshots"), str(data / "repos"),
               str(daemon.config)]
    result = client.ok("run", "service", "peek", "--set", f"paths={json.dumps([*targets, str(data)])}")
    verdicts = _verdicts(result.stdout)
    assert [verdicts.get(t) for t in targets] == ["DENIED"] * len(targets), result.stdout
    assert f"LISTED {data} ['runs', 'venvs']" in result.stdout  # only the way to its own run folder and venv
    assert "runs are sandboxed with bwrap" in daemon.log.read_text()


def test_a_server_without_bwrap_says_so_in_its_log_at_start(tmp_path, certs, monkeypatch):
    monkeypatch.setenv("PATH", _path_without_bwrap(tmp_path))
    server = Daemon(tmp_path / "server", certs)
    server.start()
    try:
        log = server.log.read_text()
    finally:
        server.stop()
    warnings = [line for line in log.splitlines() if "sandbox" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and "not found on PATH" in warnings[0], log


@pytest.mark.skipif(not _bwrap_usable(), reason="bubblewrap is not installed or cannot make namespaces here")
def test_on_a_runner_a_run_cannot_open_the_key_the_data_dir_or_the_servers_files(tmp_path):
    site = new_site(tmp_path, "hostile")
    server, runner = site.node("server", "server"), site.node("runner", "runner")
    try:
        server.start()
        start_all([runner])
        client = Client(tmp_path / "client", server.port, site.certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
        wait_for("the runner", lambda: client.ok("get", "runners", "-o", "json").json())
        client.ok("create", "repository", "peek", "--url", str(_peek_repo(tmp_path)))
        client.ok("create", "service", "python-script", "peek", "--repository", "peek", "--filename", "peek.py")
        runner_data, server_data = runner.folder / "data", server.folder / "data"
        targets = [str(site.key_file), str(runner_data / "snapshots"), str(runner_data / "repos"), str(runner.config),
                   str(server_data), str(site.certs["key"])]
        result = client.ok("run", "service", "peek", "--set", f"paths={json.dumps([*targets, str(runner_data)])}")
        assert f"LISTED {runner_data} ['runs', 'venvs']" in result.stdout  # only the way to its own run and venv
        run = json.loads(client.ok("get", "runs", "-o", "json").stdout)[0]
        assert run["runner"] == runner.id
        verdicts = _verdicts(result.stdout)
        assert [verdicts.get(t) for t in targets] == ["DENIED"] * len(targets), result.stdout
        assert "runs are sandboxed with bwrap" in runner.log.read_text()
    finally:
        for node in (server, runner):
            if node.process is not None:
                node.kill()
        site.etcd.kill()


# ---------------------------------------------------------------- builds of a run's dependencies
# A build backend of the package's own (no download needed): importing it is running the repository's code.
PROBE_BACKEND = """\
import base64, hashlib, io, json, os, sys, zipfile
lines = []
for path in json.loads({paths!r}):
    try:
        with open(path, "rb") as handle:
            lines.append("BUILD READ " + path + " " + handle.read(64).hex())
    except OSError as exc:
        lines.append("BUILD DENIED " + path + " " + type(exc).__name__)
for line in lines:
    print(line, file=sys.stderr, flush=True)
try:
    with open("probe-report.txt", "w") as handle:  # a local path package builds in place: in the run's tree
        handle.write("\\n".join(lines) + "\\n")
except OSError:
    pass
if {fail!r}:
    raise SystemExit("the probe build stops here on purpose")

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "probe-1.0-py3-none-any.whl"
    files = {{"probe.py": b"DONE = True\\n",
              "probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: probe\\nVersion: 1.0\\n",
              "probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\n"
                                           b"Tag: py3-none-any\\n"}}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append("probe-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
        wheel.writestr("probe-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
"""

PROBE_PYPROJECT = ('[build-system]\nrequires = []\nbuild-backend = "probe_backend"\nbackend-path = ["."]\n'
                   '[project]\nname = "probe"\nversion = "1.0"\n')

SHOW_REPORT = """\
import os
import probe
print("probe installed:", probe.DONE)
report = os.path.join("probe", "probe-report.txt")
print(open(report).read() if os.path.exists(report) else "NO REPORT")
"""


def _probe_sdist(folder: Path, paths: list[str]) -> Path:
    """probe-1.0.tar.gz: an sdist whose build code looks for `paths`, says what it found, and fails."""
    data = {"probe-1.0/pyproject.toml": PROBE_PYPROJECT.encode(),
            "probe-1.0/probe_backend.py": PROBE_BACKEND.format(paths=json.dumps(paths), fail=True).encode(),
            "probe-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: probe\nVersion: 1.0\n"}
    sdist = folder / "probe-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive_file:
        for name, content in data.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive_file.addfile(info, io.BytesIO(content))
    return sdist


def _build_probe_repo(root: Path, paths: list[str], tinydep: Path) -> Path:
    repo = root / "build-probe-origin"
    new_repo(repo, {
        "sdist/requirements.txt": "./probe-1.0.tar.gz\n",
        "sdist/main.py": 'print("main ran")\n',
        "local/requirements.txt": f"./probe\n./{tinydep.name}\n",
        "local/main.py": SHOW_REPORT,
        "local/probe/pyproject.toml": PROBE_PYPROJECT,
        "local/probe/probe_backend.py": PROBE_BACKEND.format(paths=json.dumps(paths), fail=False),
    })
    _probe_sdist(repo / "sdist", paths)
    shutil.copy(tinydep, repo / "local" / tinydep.name)
    commit_files(repo, {}, "the sdist and the wheel")
    return repo


def _first_bytes(path: Path) -> str:
    return path.read_bytes()[:64].hex()


@pytest.mark.skipif(not _bwrap_usable(), reason="bubblewrap is not installed or cannot make namespaces here")
def test_a_packages_build_code_cannot_open_the_key_or_the_database(local, tmp_path, tinydep):
    data = _data_dir(local)
    key, database = data / "secrets.key", data / "gateway.db"
    assert key.is_file() and database.is_file()
    repo = _build_probe_repo(tmp_path, [str(key), str(database)], tinydep)
    ok(gw(local, "create", "repository", "probe", "--url", str(repo)))
    ok(gw(local, "create", "service", "python-script", "sdist", "--repository", "probe", "--working-dir", "sdist",
          "--filename", "main.py"))
    ok(gw(local, "create", "service", "python-script", "local", "--repository", "probe", "--working-dir", "local",
          "--filename", "main.py"))
    contents = (_first_bytes(key), _first_bytes(database))

    # An sdist named by requirements.txt: its build code runs, finds nothing, and the run fails with one line.
    failed = gw(local, "run", "service", "sdist")
    everything = failed.stdout + failed.stderr
    assert failed.returncode == 1 and "Traceback" not in failed.stderr and "main ran" not in failed.stdout
    assert f"BUILD DENIED {key} " in everything and f"BUILD DENIED {database} " in everything, everything
    assert "BUILD READ" not in everything and not any(text in everything for text in contents)
    assert "pip failed:" in failed.stderr.strip().splitlines()[-1], failed.stderr
    run = json.loads(ok(gw(local, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "failed" and "pip failed" in run["reason"] and "\n" not in run["reason"]
    assert not list((data / "venvs").glob("*.scratch")), "a build's private /tmp and HOME outlived it"

    # A local path package builds in place in the run's tree: the build works, the run succeeds, and what
    # its build code could read (its report, left in the tree) is nothing.
    done = ok(gw(local, "run", "service", "local"))
    assert "probe installed: True" in done.stdout, done.stdout
    assert f"BUILD DENIED {key} " in done.stdout and f"BUILD DENIED {database} " in done.stdout, done.stdout
    assert "BUILD READ" not in done.stdout + done.stderr
    assert not any(text in done.stdout + done.stderr for text in contents)

    # The same sdist without the sandbox reads the key: what the probe reports is real.
    bare = gw(dict(local, GATEWAY_EXECUTION_SANDBOX="none"), "run", "service", "sdist")
    assert f"BUILD READ {key} {contents[0]}" in bare.stdout + bare.stderr, bare.stderr


@pytest.mark.skipif(not _bwrap_usable(), reason="bubblewrap is not installed or cannot make namespaces here")
def test_a_sandboxed_build_installs_wheels_from_find_links_and_a_local_collection(local, tmp_path, tinydep):
    galaxy = Path(sys.executable).parent / "ansible-galaxy"
    if not galaxy.is_file():
        pytest.skip("Ansible is not installed in the gateway's environment")
    source = tmp_path / "collection"
    subprocess.run([str(galaxy), "collection", "init", "gwtest.boxed", "--init-path", str(source)], check=True,
                   capture_output=True)
    tasks = source / "gwtest" / "boxed" / "roles" / "hello" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text('- ansible.builtin.debug:\n    msg: "hello from the boxed collection"\n')
    repo = tmp_path / "boxed-origin"
    new_repo(repo, {
        "py/requirements.txt": "--find-links ./wheels\ntinydep==1.0\n",
        "py/main.py": "import tinydep\nprint('tinydep says', tinydep.VALUE)\n",
        "play/site.yml": "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
                         "  roles:\n    - gwtest.boxed.hello\n",
        "play/requirements.yml": "collections:\n  - name: ./gwtest-boxed-1.0.0.tar.gz\n    type: file\n",
    })
    (repo / "py" / "wheels").mkdir()
    shutil.copy(tinydep, repo / "py" / "wheels" / tinydep.name)
    subprocess.run([str(galaxy), "collection", "build", "--output-path", str(repo / "play"),
                    str(source / "gwtest" / "boxed")], check=True, capture_output=True)
    commit_files(repo, {}, "a wheel and a collection")
    ok(gw(local, "create", "repository", "boxed", "--url", str(repo)))
    ok(gw(local, "create", "service", "python-script", "py", "--repository", "boxed", "--working-dir", "py",
          "--filename", "main.py"))
    ok(gw(local, "create", "service", "ansible-playbook", "play", "--repository", "boxed", "--working-dir", "play",
          "--playbook", "site.yml"))
    wheels = ok(gw(local, "run", "service", "py"))
    assert "tinydep says 42" in wheels.stdout and "pip:" in wheels.stderr
    played = ok(gw(local, "run", "service", "play"))
    assert "hello from the boxed collection" in played.stdout, played.stdout + played.stderr
    assert "ansible-galaxy:" in played.stderr
    data = _data_dir(local)
    assert [p for p in (data / "collections").iterdir() if p.is_dir()]
    assert not list((data / "collections").glob("*.scratch"))


# ---------------------------------------------------------------- nothing outlives its run
SANDBOXES = ["bwrap", "none"]


@pytest.fixture
async def fork_engine(tmp_path, request):
    sandbox = request.param
    if sandbox == "bwrap" and not _bwrap_usable():
        pytest.skip("bubblewrap is not installed or cannot make namespaces here")
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data"),
                                        "GATEWAY_EXECUTION_KILL_GRACE_PERIOD": "1",
                                        "GATEWAY_EXECUTION_SANDBOX": sandbox})
    engine = open_engine(config, announce=lambda text: None)
    await engine.create(Repository(name="peek", url=str(_peek_repo(tmp_path)), reference="main"))
    await engine.create(Service(name="fork", type="python-script", repository="peek", filename="fork.py"))
    yield engine
    await engine.close()


@pytest.mark.parametrize("fork_engine", SANDBOXES, indirect=True)
@pytest.mark.parametrize("kind", ["group", "session"])
@pytest.mark.parametrize("end", ["success", "timeout", "cancel"])
async def test_a_background_child_ends_with_its_run(fork_engine, kind, end):
    engine = fork_engine
    marker = f"child-{secrets.token_hex(6)}"
    events = engine.run_service("fork", {"kind": kind, "end": end, "marker": marker},
                                timeout=3 if end == "timeout" else 120)
    run = (await events.__anext__()).run
    children: list[int] = []
    final = None
    async for event in events:
        for line in event.lines:
            if line.stream == "stdout" and line.text.startswith("started "):
                deadline = time.monotonic() + 15
                while not children and time.monotonic() < deadline:
                    children = pids_with_argument(marker)
                    await asyncio.sleep(0.05)
                assert children, "the script's child never showed up"
                Path(line.text.split(" ", 1)[1], "go").touch()
                if end == "cancel":
                    await engine.cancel_run(run.id)
        if event.kind == "status":
            final = event.run
    assert final is not None and final.finished
    assert final.status == {"success": "succeeded", "timeout": "timed-out", "cancel": "cancelled"}[end], final
    assert children and not [pid for pid in children if _alive(pid)], "a child outlived its run"
    assert not pids_with_argument(marker)


# ---------------------------------------------------------------- Python 3.11.0-3.11.3: no extraction filters
def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in entries:
            body = (data or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buffer.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info


GOOD = ([_entry("dir", tarfile.DIRTYPE, 0o775), _entry("dir/run.sh", mode=0o775), _entry("dir/data.txt"),
         _entry("dir/alias", tarfile.SYMTYPE, link="data.txt"), _entry("top", tarfile.SYMTYPE, link="dir")],
        {"dir/run.sh": b"#!/bin/sh\necho hi\n", "dir/data.txt": b"data\n"})
BAD = {
    "absolute": ([_entry("/etc/evil")], "absolute"),
    "dotdot": ([_entry("dir/../../evil")], ".."),
    "device": ([_entry("dev", tarfile.CHRTYPE)], "device"),
    "fifo": ([_entry("pipe", tarfile.FIFOTYPE)], "fifo"),
    "hardlink": ([_entry("hard", tarfile.LNKTYPE, link="/etc/passwd")], "hard link"),
    "through-a-link": ([_entry("out", tarfile.SYMTYPE, link="/tmp"), _entry("out/evil")], "through the link out"),
}


def _check_good(into: Path) -> None:
    assert (into / "dir" / "data.txt").read_text() == "data\n"
    assert os.readlink(into / "dir" / "alias") == "data.txt" and os.readlink(into / "top") == "dir"
    assert os.access(into / "dir" / "run.sh", os.X_OK)
    assert not stat.S_IMODE((into / "dir" / "run.sh").stat().st_mode) & 0o002


@pytest.mark.parametrize("with_filters", [True, False], ids=["filters", "no-filters"])
def test_archives_extract_safely_with_and_without_tar_filters(tmp_path, with_filters):
    if with_filters and not archive.HAS_FILTERS:
        pytest.skip("this Python has no tar extraction filters")
    good = tmp_path / "good.tar"
    good.write_bytes(_tar(*GOOD))
    archive.extract(good, tmp_path / "good", use_filters=with_filters)
    _check_good(tmp_path / "good")
    for name, (entries, words) in BAD.items():
        bad = tmp_path / f"{name}.tar"
        bad.write_bytes(_tar(entries))
        with pytest.raises(archive.UnsafeArchive) as caught:
            archive.extract(bad, tmp_path / name, use_filters=with_filters)
        assert words in str(caught.value) and "\n" not in str(caught.value), (name, str(caught.value))
    assert not Path("/etc/evil").exists() and not Path("/tmp/evil").exists()


def _old_python() -> str | None:
    """An interpreter of Python 3.11.0-3.11.3 on this machine (Debian 12's python3 is 3.11.2), if any."""
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3", shutil.which("python3.11") or ""):
        if not candidate or not os.path.exists(candidate):
            continue
        version = subprocess.run([candidate, "-c", "import sys; print(*sys.version_info[:3])"],
                                 capture_output=True, text=True).stdout.split()
        if version[:2] == ["3", "11"] and int(version[2]) <= 3:
            return candidate
    return None


OLD_PYTHON = _old_python()


@pytest.mark.skipif(OLD_PYTHON is None, reason="no Python 3.11.0-3.11.3 on this machine")
def test_a_whole_run_works_on_python_3_11_without_tar_filters(tmp_path):
    """The real `gateway`, run by that interpreter on the packages of the test environment (one ABI: cp311)."""
    site_packages = next(Path(sys.prefix, "lib").glob("python3.11/site-packages"))
    launcher = tmp_path / "gateway-3.11.py"
    launcher.write_text(f"import site, sys\nsite.addsitedir({str(site_packages)!r})\n"
                        "from gateway_tui.cli import main\nsys.exit(main())\n")
    env = gateway_env(tmp_path / "gw")
    repo = _repo_with_links(tmp_path, {"alias.py": "main.py"})

    def old(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([OLD_PYTHON, str(launcher), *args], env=env, capture_output=True, text=True, timeout=180)

    assert old("create", "repository", "old", "--url", str(repo)).returncode == 0
    assert old("create", "service", "python-script", "old", "--repository", "old", "--filename", "alias.py").returncode == 0
    result = old("run", "service", "old")
    assert result.returncode == 0, result.stderr
    assert "main ran" in result.stdout and "Traceback" not in result.stderr
