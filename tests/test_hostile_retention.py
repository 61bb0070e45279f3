"""Run output that would fill the store, tried as an unlucky operator would: a real `gateway-daemon` on a real etcd
with a small --quota-backend-bytes, many runs with big output, a store filled by a raw write; run retention by count
and age, the output budget, and `gateway delete run` / `gateway prune runs` (admins only, audited), on a server and in
local mode (SQLite)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cli_helpers import GATEWAY, gateway_env, gw, ok, one_error_line
from gateway_server import ADMIN_PASSWORD, Client, Daemon
from etcd_server import fill_etcd
from gitutil import new_repo

MIB = 1024 * 1024
QUOTA = 12 * MIB
LINE = 100  # bytes a line of BIG takes

BIG = '''\
import sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
time.sleep(float(args.get("sleep", "0")))
lines = int(float(args.get("kb", "800")) * 1024) // 100
out = sys.stdout.buffer
for start in range(0, lines, 1000):
    out.write(b"".join(b"%07d " % n + b"z" * 91 + b"\\n" for n in range(start, min(lines, start + 1000))))
out.write(b"the end\\n")
'''


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("origin")
    new_repo(repo, {"big.py": BIG})
    return repo


def _server(folder: Path, certs, etcd=None, runs: str = "") -> Daemon:
    """A gateway-daemon on `etcd` (told its quota) or on its own SQLite store, with [runs] `runs`."""
    store = (f"[store]\nbackend = etcd\netcd_hosts = {etcd.hosts}\netcd_quota_bytes = {etcd.quota_backend_bytes}\n"
             if etcd is not None else "")
    daemon = Daemon(folder, certs, extra=store + (f"[runs]\n{runs}" if runs else ""))
    daemon.start()
    return daemon


def _admin(daemon: Daemon, folder: Path, certs) -> Client:
    admin = Client(folder, daemon.port, certs["ca"])
    admin.ok("login", "--username", "admin", "--password-stdin", "--change-password",
             stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    return admin


def _service(client, origin: Path, name: str = "big") -> None:
    if client("describe", "repository", "tools").returncode != 0:
        client.ok("create", "repository", "tools", "--url", str(origin), "--reference", "main")
    client.ok("create", "service", "python-script", name, "--repository", "tools", "--filename", "big.py")


def _etcd_client(etcd):
    import pyetcd

    return pyetcd.client("127.0.0.1", etcd.client_port, timeout=10)


def _alarms(client) -> list:
    return list(client.list_alarms())


def _runs(client, *args: str) -> list[dict]:
    return json.loads(client.ok("get", "runs", "--limit", "0", *args, "-o", "json").stdout)


def _lines(kb: float) -> int:
    return int(kb * 1024) // LINE


def _no_traceback(daemon: Daemon) -> str:
    text = daemon.log.read_text()
    assert "Traceback" not in text, text[-5000:]
    return text


# ---------------------------------------------------------------- etcd never fills with run output
@pytest.mark.etcd
def test_runs_with_big_output_never_fill_etcd_and_the_newest_stay_whole(tmp_path, certs, origin, make_etcd_server):
    etcd = make_etcd_server(quota_backend_bytes=QUOTA)
    daemon = _server(tmp_path / "server", certs, etcd)  # [runs] as shipped: its output budget is past this quota
    watcher = _etcd_client(etcd)
    try:
        admin = _admin(daemon, tmp_path / "admin", certs)
        _service(admin, origin)
        alarms: list = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                alarms.extend(_alarms(watcher))
                time.sleep(0.1)

        looking = threading.Thread(target=watch)
        looking.start()
        results = []
        began = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=3) as pool:  # about 19 MiB of output through a 12 MiB etcd
                for _ in range(8):
                    results += list(pool.map(lambda _: admin("run", "service", "big", "--set", "kb=800", "-o",
                                                             "json", timeout=120), range(3)))
        finally:
            done.set()
            looking.join()
        took = time.monotonic() - began
        assert not alarms, f"etcd raised NOSPACE: {alarms}"
        for result in results:
            assert result.returncode == 0 and "Traceback" not in result.stderr, result
            assert result.json()["status"] == "succeeded"
        # still usable: a write, a run
        admin.ok("create", "secret", "after", "--value", "still-writable")
        last = admin.ok("run", "service", "big", "--set", "kb=800")
        assert last.stdout.splitlines()[-1] == "the end"
        runs = _runs(admin)
        assert len(runs) == 25 and {r["status"] for r in runs} == {"succeeded"}
        # the newest runs' output whole, the oldest runs' gone with a note that says so
        for run in runs[:3]:
            logs = admin.ok("logs", run["id"])
            assert logs.stdout.splitlines() == [f"{n:07d} " + "z" * 91 for n in range(_lines(800))] + ["the end"]
            assert not run["output_pruned"]
        oldest = runs[-1]
        assert oldest["output_pruned"] and "quota" in oldest["output_pruned"], oldest
        assert oldest["output_lines"] == _lines(800) + 1  # the record keeps what it was
        logs = admin.ok("logs", oldest["id"])
        assert logs.stdout == "" and "[gateway] output pruned: " in logs.stderr, logs
        pruned = sum(1 for r in runs if r["output_pruned"])
        assert 5 <= pruned < len(runs) - 3
        events = json.loads(admin.ok("get", "audit", "--action", "prune", "-o", "json").stdout)
        assert events and events[0]["user"] == "gateway" and events[0]["target"] == "run-output"
        text = _no_traceback(daemon)
        assert "is full" not in text
        print(f"25 runs of 800 KiB through a {QUOTA // MIB} MiB etcd in {took:.1f} s; {pruned} runs' output pruned")
    finally:
        watcher.close()
        daemon.stop()


@pytest.mark.etcd
def test_a_full_etcd_is_one_line_with_the_fix_and_the_server_recovers_once_it_is_freed(tmp_path, certs, origin,
                                                                                       make_etcd_server):
    etcd = make_etcd_server(quota_backend_bytes=QUOTA)
    daemon = _server(tmp_path / "server", certs, etcd)
    raw = _etcd_client(etcd)
    try:
        admin = _admin(daemon, tmp_path / "admin", certs)
        _service(admin, origin)
        admin.ok("run", "service", "big", "--set", "kb=100")
        fill_etcd(raw)  # live data the gateway may not touch
        for args in (("create", "secret", "late", "--value", "nowhere-to-go"),
                     ("run", "service", "big", "--set", "kb=10"),
                     ("edit", "service", "big", "--description", "x")):
            line = one_error_line(admin(*args), code=1, prefix="gateway: ")
            assert "full" in line and "etcdctl defrag" in line and "quota-backend-bytes" in line, line
        assert admin.ok("get", "runs").stdout  # reading goes on
        deadline = time.monotonic() + 60
        while "the store is full" not in daemon.log.read_text():
            assert time.monotonic() < deadline, daemon.log.read_text()[-3000:]
            time.sleep(0.2)
        text = _no_traceback(daemon)
        said = [line for line in text.splitlines() if "the store is full" in line]
        assert len(said) == 1 and "etcdctl" in said[0] and "etcd_quota_bytes" in said[0], said
        # what filled it goes (as the line says): the gateway compacts, defragments and lifts the alarm itself
        raw.delete_prefix("/junk/")
        deadline = time.monotonic() + 90  # it looks again within 30 s
        while admin("create", "secret", "late", "--value", "somewhere-now").returncode != 0:
            assert time.monotonic() < deadline, daemon.log.read_text()[-3000:]
            time.sleep(1)
        assert not _alarms(raw)
        assert admin.ok("run", "service", "big", "--set", "kb=10").stdout.splitlines()[-1] == "the end"
        _no_traceback(daemon)
    finally:
        raw.close()
        daemon.stop()


# ---------------------------------------------------------------- retention, delete and prune on a server
@pytest.fixture(scope="module")
def kept(tmp_path_factory, certs, origin):
    """A server keeping 3 runs per service, with an admin and a user of each other role."""
    folder = tmp_path_factory.mktemp("kept")
    daemon = _server(folder / "server", certs, runs="retention_count = 3\n")
    admin = _admin(daemon, folder / "admin", certs)
    _service(admin, origin, "a")
    _service(admin, origin, "b")
    users = {"admin": admin}
    for role in ("editor", "operator", "viewer"):
        admin.ok("create", "user", f"{role}1", "--role", role, "--password-stdin", stdin=f"{role}-password-1\n")
        users[role] = Client(folder / role, daemon.port, certs["ca"])
        users[role].login(f"{role}1", f"{role}-password-1")
    yield daemon, users
    daemon.stop()


def test_a_server_keeps_the_newest_runs_of_each_service(kept):
    daemon, users = kept
    admin = users["admin"]
    admin.ok("run", "service", "b", "--set", "kb=1")
    ids = [json.loads(admin.ok("run", "service", "a", "--set", "kb=1", "-o", "json").stdout)["id"]
           for _ in range(5)]
    deadline = time.monotonic() + 30
    while len(_runs(admin, "--service", "a")) > 3:
        assert time.monotonic() < deadline, _runs(admin)
        time.sleep(0.3)
    assert [r["id"] for r in _runs(admin, "--service", "a")] == ids[:-4:-1]
    assert len(_runs(admin, "--service", "b")) == 1  # counted per service
    one_error_line(admin("logs", ids[0]), code=1, prefix="gateway: ")  # gone with its output
    events = json.loads(admin.ok("get", "audit", "--action", "prune", "-o", "json").stdout)
    assert any("retention" in e["detail"] and e["user"] == "gateway" for e in events), events
    _no_traceback(daemon)


def test_only_an_admin_deletes_and_prunes_runs_and_each_is_audited(kept):
    daemon, users = kept
    admin = users["admin"]
    run_id = json.loads(admin.ok("run", "service", "b", "--set", "kb=1", "-o", "json").stdout)["id"]
    for role in ("editor", "operator", "viewer"):
        for args in (("delete", "run", run_id), ("prune", "runs", "--before", "0s")):
            line = one_error_line(users[role](*args), code=1, prefix="gateway: ")
            assert f"{role}1 is not an admin: deleting runs needs an admin" in line, line
    assert run_id in [r["id"] for r in _runs(admin)]
    assert admin.ok("delete", "run", run_id).stdout.strip() == f"run {run_id} deleted with its output"
    assert run_id not in [r["id"] for r in _runs(admin)]
    one_error_line(admin("logs", run_id), code=1, prefix="gateway: ")
    one_error_line(admin("delete", "run", run_id), code=1, prefix="gateway: ")  # not found now
    line = one_error_line(admin("prune", "runs", "--before", "yesterday"), code=1, prefix="gateway: ")
    assert "--before 'yesterday' is not a time" in line, line
    admin.ok("run", "service", "b", "--set", "kb=1")
    left = len(_runs(admin))
    assert left >= 1
    out = admin.ok("prune", "runs", "--before", "0s").stdout.strip()
    runs_word = "run" if left == 1 else "runs"
    assert out == f"{left} finished {runs_word} created before 0s deleted with their output", out
    assert _runs(admin) == []
    events = json.loads(admin.ok("get", "audit", "-o", "json").stdout)
    seen = {(e["user"], e["action"], e["target"], e["outcome"]) for e in events}
    assert ("admin", "delete", f"run/{run_id}", "ok") in seen, seen
    assert ("admin", "prune", "runs", "ok") in seen, seen
    refused = {(e["user"], e["action"]) for e in events if e["outcome"] == "refused" and e["target"].startswith("run")}
    for role in ("editor", "operator", "viewer"):
        assert {(f"{role}1", "delete"), (f"{role}1", "prune")} <= refused, events
    prune = next(e for e in events if e["action"] == "prune" and e["user"] == "admin")
    assert prune["detail"].startswith(f"{left} finished {runs_word} created before 0s"), prune
    _no_traceback(daemon)


# ---------------------------------------------------------------- local mode (SQLite)
def _local(tmp_path: Path, runs: str) -> dict[str, str]:
    return gateway_env(tmp_path, f"[application]\nmode = local\n[runs]\n{runs}")


def _local_runs(env, *args: str) -> list[dict]:
    return ok(gw(env, "get", "runs", "--limit", "0", *args, "-o", "json")).json()


def test_local_mode_keeps_runs_by_count_and_age(tmp_path, origin):
    env = _local(tmp_path, "retention_count = 2\nretention_age = 4s\n")
    ok(gw(env, "create", "repository", "tools", "--url", str(origin), "--reference", "main"))
    ok(gw(env, "create", "service", "python-script", "big", "--repository", "tools", "--filename", "big.py"))
    ids = [ok(gw(env, "run", "service", "big", "--set", "kb=1", "-o", "json")).json()["id"] for _ in range(3)]
    assert [r["id"] for r in _local_runs(env)] == ids[:0:-1]  # the newest two
    time.sleep(4.5)
    newest = ok(gw(env, "run", "service", "big", "--set", "kb=1", "-o", "json")).json()["id"]
    assert [r["id"] for r in _local_runs(env)] == [newest]  # the others were older than 4 s
    assert "Traceback" not in gw(env, "logs", ids[0]).err


def test_local_mode_keeps_the_output_budget_and_deletes_and_prunes_runs(tmp_path, origin):
    env = _local(tmp_path, "output_budget = 1MiB\n")
    ok(gw(env, "create", "repository", "tools", "--url", str(origin), "--reference", "main"))
    ok(gw(env, "create", "service", "python-script", "big", "--repository", "tools", "--filename", "big.py"))
    ids = [ok(gw(env, "run", "service", "big", "--set", "kb=300", "-o", "json")).json()["id"] for _ in range(5)]
    runs = {r["id"]: r for r in _local_runs(env)}
    assert len(runs) == 5
    # 300 KiB of output stores as about 345 KiB: the newest two fit in 1 MiB, not three
    assert [bool(runs[i]["output_pruned"]) for i in ids] == [True, True, True, False, False], runs
    assert "output_budget" in runs[ids[0]]["output_pruned"]
    logs = ok(gw(env, "logs", ids[0]))
    assert logs.out == "" and "[gateway] output pruned: " in logs.err
    assert ok(gw(env, "logs", ids[-1])).out.splitlines()[-1] == "the end"
    assert sum(r["output_bytes"] for r in runs.values() if not r["output_pruned"]) <= MIB
    # by hand: one run, then every run before a time (a date, an ISO time, an age)
    assert ok(gw(env, "delete", "run", ids[2])).out.strip() == f"run {ids[2]} deleted with its output"
    one_error_line(gw(env, "delete", "run", "20990101-000000-abcdef"), code=1, prefix="gateway: ")
    one_error_line(gw(env, "delete", "run", "x"), code=1, prefix="gateway: ")
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    assert ok(gw(env, "prune", "runs", "--before", yesterday)).out.startswith("0 finished runs")
    future = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = one_error_line(gw(env, "prune", "runs", "--before", future), code=1, prefix="gateway: ")
    assert "in the future" in line
    one_error_line(gw(env, "prune", "runs"), code=2, prefix="gateway: ")
    assert ok(gw(env, "prune", "runs", "--before", "0s", "--service", "other")).out.startswith("0 finished runs")
    # a run in flight is never deleted
    slow = subprocess.Popen([GATEWAY, "run", "service", "big", "--set", "kb=1", "--set", "sleep=6"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not [r for r in _local_runs(env) if r["status"] == "running"]:
            assert time.monotonic() < deadline and slow.poll() is None
            time.sleep(0.2)
        running = next(r["id"] for r in _local_runs(env) if r["status"] == "running")
        line = one_error_line(gw(env, "delete", "run", running), code=1, prefix="gateway: ")
        assert f"run {running} is running: cancel it first" in line, line
        assert ok(gw(env, "prune", "runs", "--before", "0s")).out.startswith("4 finished runs")
        assert [r["id"] for r in _local_runs(env)] == [running]
    finally:
        out, err = slow.communicate(timeout=120)
    assert slow.returncode == 0 and out.splitlines()[-1] == "the end", err
    assert ok(gw(env, "prune", "runs", "--before", "0s")).out.startswith("1 finished run ")
    assert _local_runs(env) == []
