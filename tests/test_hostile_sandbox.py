"""A run holds no power, for real and as root: no capability (no mount, no device node, no raw socket, no way to
the host disk and the secrets key), an unprivileged uid, no way to the loopback services of the machine it runs
on (etcd, the gateway's own gRPC port) while the network it automates stays reachable, and a memory bound.
In local mode, through a real server and through a real runner on a real etcd."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from gateway_daemon.execution.sandbox import Sandbox

from cli_helpers import gateway_env, gw, ok
from cluster import new_site, start_all, wait_for
from gateway_server import ADMIN_PASSWORD, Client
from gitutil import new_repo
from test_hostile_runs import pids_with_argument

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the attacks of a run on a root gateway need root"),
    pytest.mark.skipif(bool(Sandbox("auto").problem()), reason="bubblewrap cannot make namespaces here"),
]

POWER = '''\
import ctypes, errno, json, os, socket, stat, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
for key in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs"):
    print(key, status[key].strip())
print("IDS", os.getresuid(), os.getresgid(), os.getgroups())
libc = ctypes.CDLL(None, use_errno=True)
def verdict(ok):
    return "ok" if ok else errno.errorcode.get(ctypes.get_errno(), "?")
print("MOUNT", verdict(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0))
try:
    os.mknod("/tmp/disk", 0o600 | stat.S_IFBLK, os.makedev(8, 0))
    print("MKNOD ok")
except OSError as exc:
    print("MKNOD", errno.errorcode[exc.errno])
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    print("RAW ok")
except OSError as exc:
    print("RAW", errno.errorcode[exc.errno])
for path in ["/etc/shadow", *json.loads(args.get("paths", "[]"))]:
    try:
        with open(path, "rb") as handle:
            print("READ", path, handle.read(40).hex())
    except OSError as exc:
        print("DENIED", path, errno.errorcode[exc.errno])
for name in ("tree-file", "/tmp/tmp-file", os.environ["HOME"] + "/home-file"):
    with open(name, "w") as handle:
        handle.write("x")
    print("WROTE", name)
os.mkdir("made-here")
sys.stdout.flush()
'''

REACH = '''\
import json, socket, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
for target in json.loads(args["targets"]):
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"hello from the run")
        print("REACHED", target)
    except OSError as exc:
        print("UNREACHABLE", target, type(exc).__name__)
'''

HOG = '''\
import sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
blocks = []
for _ in range(int(args["mib"]) // 16):
    blocks.append(bytearray(16 * 1024 * 1024))  # zero-filled: every page touched
print("allocated", args["mib"], "MiB", flush=True)
'''


def _repo(root: Path) -> Path:
    repo = root / f"power-{secrets.token_hex(3)}"
    new_repo(repo, {"power.py": POWER, "reach.py": REACH, "hog.py": HOG})
    return repo


def _lines(text: str, word: str) -> dict[str, str]:
    return {parts[1]: parts[2] if len(parts) > 2 else "" for line in text.splitlines()
            if (parts := line.split(" ", 2))[0] == word and len(parts) > 1}


def _assert_powerless(stdout: str, secret_paths: list[str]) -> None:
    for key in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
        found = re.search(rf"^{key} (\S+)$", stdout, re.M)
        assert found and int(found.group(1), 16) == 0, f"{key}: {stdout}"
    assert re.search(r"^NoNewPrivs 1$", stdout, re.M), stdout
    ids = re.search(r"^IDS (.*)$", stdout, re.M).group(1)
    assert ids == "(65534, 65534, 65534) (65534, 65534, 65534) []", ids
    assert re.search(r"^MOUNT (EPERM|EACCES)$", stdout, re.M), stdout
    assert re.search(r"^MKNOD (EPERM|EACCES)$", stdout, re.M), stdout
    assert re.search(r"^RAW (EPERM|EACCES)$", stdout, re.M), stdout
    denied = _lines(stdout, "DENIED")
    for path in ["/etc/shadow", *secret_paths]:
        assert path in denied, f"{path} was readable: {stdout}"
    assert _lines(stdout, "WROTE").keys() >= {"tree-file", "/tmp/tmp-file"}, stdout  # its own files: its user's


def _no_run_folder_left(data: Path) -> None:
    runs = data / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")], list(runs.iterdir())


# ---------------------------------------------------------------- capabilities and uid
def test_a_local_run_as_root_holds_no_capability_runs_as_nobody_and_still_uses_its_files(tmp_path):
    env = gateway_env(tmp_path / "gw")
    ok(gw(env, "create", "secret", "token", "--value", "s3cr3t-value"))
    data = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    key = data / "secrets.key"
    assert key.is_file()
    ok(gw(env, "create", "repository", "power", "--url", str(_repo(tmp_path))))
    ok(gw(env, "create", "service", "python-script", "power", "--repository", "power", "--filename", "power.py"))
    result = ok(gw(env, "run", "service", "power", "--set", f"paths={json.dumps([str(key)])}"))
    _assert_powerless(result.stdout, [str(key)])
    assert "s3cr3t-value" not in result.stdout + result.stderr
    _no_run_folder_left(data)  # the gateway still removes what the unprivileged run made
    shown = ok(gw(env, "config")).stdout
    assert re.search(r"^# sandbox: bwrap .*uid 65534", shown, re.M), shown


def test_run_as_user_takes_a_uid_and_gid_and_a_bad_one_is_one_line(tmp_path):
    env = gateway_env(tmp_path / "gw", "[execution]\nrun_as_user = 4321:4322\n")
    ok(gw(env, "create", "repository", "power", "--url", str(_repo(tmp_path))))
    ok(gw(env, "create", "service", "python-script", "power", "--repository", "power", "--filename", "power.py"))
    result = ok(gw(env, "run", "service", "power"))
    assert "IDS (4321, 4321, 4321) (4322, 4322, 4322) []" in result.stdout, result.stdout
    bad = gw(gateway_env(tmp_path / "bad", "[execution]\nrun_as_user = not a user!\n"), "config")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "[execution] run_as_user" in lines[0], bad.stderr
    unknown = gateway_env(tmp_path / "unknown", "[execution]\nrun_as_user = no-such-user-here\n")
    ok(gw(unknown, "create", "repository", "power", "--url", str(_repo(tmp_path))))
    ok(gw(unknown, "create", "service", "python-script", "power", "--repository", "power", "--filename", "power.py"))
    refused = gw(unknown, "run", "service", "power")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and "IDS" not in refused.stdout
    assert "no-such-user-here" in refused.stderr.strip().splitlines()[-1], refused.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A server that sends runs to a runner, on etcd, with an admin client and the services `power` and `reach`
    (their repository made for the module)."""
    root = tmp_path_factory.mktemp("cluster")
    site = new_site(root, "power")
    server, runner = site.node("server", "server"), site.node("runner", "runner")
    try:
        server.start()
        start_all([runner])
        client = Client(root / "client", server.port, site.certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
        wait_for("the runner", lambda: client.ok("get", "runners", "-o", "json").json())
        client.ok("create", "repository", "power", "--url", str(_repo(root)))
        for name in ("power", "reach"):
            client.ok("create", "service", "python-script", name, "--repository", "power", "--filename", f"{name}.py")
        yield site, server, runner, client
    finally:
        for node in (server, runner):
            if node.process is not None:
                node.kill()
        site.etcd.kill()


def test_through_a_server_and_a_runner_a_run_holds_no_capability_and_cannot_read_either_key(cluster):
    site, server, runner, client = cluster
    secret_paths = [str(site.key_file), str(site.certs["key"]), str(runner.folder / "data" / "secrets.key"),
                    str(server.folder / "data" / "secrets.key")]
    result = client.ok("run", "service", "power", "--set", f"paths={json.dumps(secret_paths)}")
    assert json.loads(client.ok("get", "runs", "-o", "json").stdout)[0]["runner"] == runner.id
    _assert_powerless(result.stdout, secret_paths)
    _no_run_folder_left(runner.folder / "data")


def test_on_a_server_that_runs_its_own_work_a_run_holds_no_capability(daemon, admin, tmp_path):
    admin.ok("create", "repository", "power", "--url", str(_repo(tmp_path)))
    admin.ok("create", "service", "python-script", "power", "--repository", "power", "--filename", "power.py")
    key = daemon.folder / "data" / "secrets.key"
    result = admin.ok("run", "service", "power", "--set", f"paths={json.dumps([str(key)])}")
    _assert_powerless(result.stdout, [str(key)])
    assert "uid 65534" in daemon.log.read_text()


# ---------------------------------------------------------------- the network
class Listener:
    """A TCP listener the test owns on `address`; records what connects."""

    def __init__(self, address: str):
        self.sock = socket.create_server((address, 0))
        self.sock.settimeout(0.2)
        self.target = f"{address}:{self.sock.getsockname()[1]}"
        self.received: list[bytes] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    self.received.append(conn.recv(100))
                except OSError:
                    pass

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def outside(outside_address):
    if outside_address is None:
        pytest.skip("cannot make a network interface here")
    return outside_address


def _reach_service(env: dict[str, str], root: Path) -> None:
    ok(gw(env, "create", "repository", "power", "--url", str(_repo(root))))
    ok(gw(env, "create", "service", "python-script", "reach", "--repository", "power", "--filename", "reach.py"))


@pytest.mark.skipif(not shutil.which("slirp4netns"), reason="needs slirp4netns")
def test_an_isolated_run_reaches_the_network_but_not_the_loopback_services_of_its_machine(tmp_path, outside):
    env = gateway_env(tmp_path / "gw")
    _reach_service(env, tmp_path)
    local, outside = Listener("127.0.0.1"), Listener(outside)
    try:
        result = ok(gw(env, "run", "service", "reach", "--set",
                       f"targets={json.dumps([local.target, outside.target])}"))
        time.sleep(0.3)
    finally:
        local.close()
        outside.close()
    assert _lines(result.stdout, "UNREACHABLE").keys() == {local.target}, result.stdout
    assert _lines(result.stdout, "REACHED").keys() == {outside.target}, result.stdout
    assert local.received == [] and outside.received == [b"hello from the run"]
    wait_for("slirp4netns to end with the run", lambda: pids_with_argument("--disable-host-loopback") == [], 10)
    shown = ok(gw(env, "config")).stdout
    assert re.search(r"^# network: isolated \(slirp4netns", shown, re.M), shown


def test_network_host_is_said_as_the_weaker_choice_and_reaches_loopback(tmp_path):
    env = gateway_env(tmp_path / "gw", "[execution]\nnetwork = host\n")
    _reach_service(env, tmp_path)
    local = Listener("127.0.0.1")
    try:
        result = ok(gw(env, "run", "service", "reach", "--set", f"targets={json.dumps([local.target])}"))
    finally:
        local.close()
    assert _lines(result.stdout, "REACHED").keys() == {local.target}, result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("[gateway] network:")]
    assert len(warnings) == 1 and "loopback" in warnings[0], result.stderr
    shown = ok(gw(env, "config")).stdout
    assert re.search(r"^# network: host .*loopback", shown, re.M), shown
    bad = gw(gateway_env(tmp_path / "bad", "[execution]\nnetwork = open\n"), "config")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "[execution] network" in lines[0], bad.stderr


@pytest.mark.skipif(not shutil.which("slirp4netns"), reason="needs slirp4netns")
def test_on_a_runner_an_isolated_run_cannot_reach_etcd_or_the_servers_port(cluster, outside):
    site, server, runner, client = cluster
    outside = Listener(outside)
    try:
        targets = [site.etcd.hosts.split(",")[0].split("//")[-1], f"127.0.0.1:{server.port}", outside.target]
        result = client.ok("run", "service", "reach", "--set", f"targets={json.dumps(targets)}")
    finally:
        outside.close()
    assert _lines(result.stdout, "UNREACHABLE").keys() == set(targets[:2]), result.stdout
    assert _lines(result.stdout, "REACHED").keys() == {outside.target}, result.stdout
    assert json.loads(client.ok("get", "runs", "-o", "json").stdout)[0]["runner"] == runner.id


# ---------------------------------------------------------------- memory
@pytest.mark.parametrize("sandbox, how", [("auto", "cgroup v"), ("none", "supervisor")])
def test_a_run_past_its_memory_limit_fails_saying_so_and_one_within_it_succeeds(tmp_path, sandbox, how):
    """In the sandbox the kernel keeps the bound (a memory cgroup); without one the supervisor counts."""
    env = gateway_env(tmp_path / "gw", f"[execution]\nmemory_limit = 256M\nsandbox = {sandbox}\n")
    ok(gw(env, "create", "repository", "power", "--url", str(_repo(tmp_path))))
    ok(gw(env, "create", "service", "python-script", "hog", "--repository", "power", "--filename", "hog.py"))
    started = time.monotonic()
    over = gw(env, "run", "service", "hog", "--set", "mib=1024")
    assert time.monotonic() - started < 60
    assert over.returncode == 1 and "allocated" not in over.stdout and "Traceback" not in over.stderr, over
    run = json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "failed" and run["reason"] == "memory limit 256 MiB exceeded", run
    assert "memory limit 256 MiB exceeded" in over.stderr.strip().splitlines()[-1]
    within = ok(gw(env, "run", "service", "hog", "--set", "mib=64"))
    assert "allocated 64 MiB" in within.stdout
    _no_run_folder_left(Path(env["GATEWAY_APPLICATION_DATA_DIR"]))
    shown = ok(gw(env, "config")).stdout
    assert re.search(rf"^# memory: 256 MiB a run \(.*{how}", shown, re.M), shown


@pytest.mark.parametrize("raw, said", [("0", "no limit"), ("none", "no limit"), ("2G", "2 GiB a run"),
                                       ("512m", "512 MiB a run"), ("1536M", "1.5 GiB a run")])
def test_memory_limit_sizes(tmp_path, raw, said):
    env = gateway_env(tmp_path / "gw", f"[execution]\nmemory_limit = {raw}\n")
    shown = ok(gw(env, "config")).stdout
    assert re.search(rf"^# memory: {re.escape(said)}", shown, re.M), shown


@pytest.mark.parametrize("raw", ["lots", "-1G", "2X", "1.5.5G"])
def test_a_bad_memory_limit_is_one_line_naming_the_key(tmp_path, raw):
    result = gw(gateway_env(tmp_path / "gw", f"[execution]\nmemory_limit = {raw}\n"), "config")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "[execution] memory_limit" in lines[0], result.stderr


def test_the_memory_cgroup_of_a_run_a_kill_cut_short_goes_at_the_next_start_and_a_new_one_stays(tmp_path):
    from gateway_daemon.execution.memory import FOLDER_PREFIX, MemoryLimit

    where = MemoryLimit(256 << 20).cgroup_parent()
    if where is None:
        pytest.skip("no memory cgroup can be made here")
    left = where[0] / f"{FOLDER_PREFIX}left{secrets.token_hex(3)}"
    fresh = where[0] / f"{FOLDER_PREFIX}new{secrets.token_hex(3)}"
    left.mkdir()
    fresh.mkdir()
    try:
        os.utime(left, (time.time() - 3600, time.time() - 3600))  # a gateway killed an hour ago left it
        env = gateway_env(tmp_path / "gw", "[execution]\nmemory_limit = 256M\n")
        ok(gw(env, "create", "repository", "power", "--url", str(_repo(tmp_path))))
        ok(gw(env, "create", "service", "python-script", "hog", "--repository", "power", "--filename", "hog.py"))
        ok(gw(env, "run", "service", "hog", "--set", "mib=16"))
        assert not left.exists()
        assert fresh.exists()  # maybe another gateway's, about to take a run's process
    finally:
        for folder in (left, fresh):
            if folder.exists():
                folder.rmdir()
