"""Storage tried the way an unlucky operator or another local user would: file modes, a lost key,
secrets printed as-is, output that fills the store.  Real SQLite files, a real etcd with a small
quota, real runs through the `gateway` command."""

from __future__ import annotations

import asyncio
import signal
import stat
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from cli_helpers import GATEWAY, gateway_env, gw, ok, one_error_line
from etcd_server import fill_etcd
from gitutil import new_repo

BIG = '''\
import argparse, sys, time
parser = argparse.ArgumentParser()
parser.add_argument("--mb", type=float, default=1)
parser.add_argument("--width", type=int, default=100)
parser.add_argument("--pace", type=float, default=0)  # seconds per MiB
args = parser.parse_args()
line = ("z" * (args.width - 8) + "\\n").encode()
total = int(args.mb * 1024 * 1024)
out = sys.stdout.buffer
written, number = 0, 0
while written < total:
    block = b"".join(b"%07d " % (number + i) + line for i in range(1024))
    number += 1024
    out.write(block)
    written += len(block)
    if args.pace:
        out.flush()
        time.sleep(args.pace * len(block) / (1024 * 1024))
out.write(b"the end\\n")
'''

SHOW = '''\
import os
print("key follows")
print(os.environ["KEY"])
print("tiny is " + os.environ["TINY"] + ", a word: banana cabana")
'''

SLOW = '''\
import sys, time
print("started", flush=True)
time.sleep(float(sys.argv[1].split("=", 1)[1]) if len(sys.argv) > 1 else 6)
print("done")
'''

SSH_KEY = textwrap.dedent('''\
    -----BEGIN OPENSSH PRIVATE KEY-----
    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
    QyNTUxOQAAACB0ZXN0a2V5dGVzdGtleXRlc3RrZXl0ZXN0a2V5dGVzdGtleQAAAJj2ZXN0
    a2V5dGVzdGtleXRlc3RrZXl0ZXN0a2V5dGVzdGtleXRlc3RrZXl0ZXN0a2V5dGVzdGtleQ
    -----END OPENSSH PRIVATE KEY-----
    ''')


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("origin")
    new_repo(repo, {"tools/big.py": BIG, "tools/show.py": SHOW, "tools/slow.py": SLOW})
    return repo


def _service(env, origin: Path, name: str, filename: str, *extra: str) -> None:
    if gw(env, "describe", "repository", "tools").code != 0:
        ok(gw(env, "create", "repository", "tools", "--url", str(origin), "--reference", "main"))
    ok(gw(env, "create", "service", "python-script", name, "--repository", "tools", "--working-dir", "tools",
          "--filename", filename, *extra))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _store_files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.iterdir() if p.name.startswith("gateway.db")]


# ---------------------------------------------------------------- file modes
def test_a_new_data_dir_and_database_are_for_their_owner_only(tmp_path, origin):
    env = gateway_env(tmp_path)
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    ok(gw(env, "create", "secret", "tok", "--value", "value-0123"))
    _service(env, origin, "slow", "slow.py")
    assert _mode(data_dir) == 0o700
    running = subprocess.Popen([GATEWAY, "run", "service", "slow", "--set", "wait=1"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert running.stdout.readline() == "started\n"
        files = _store_files(data_dir)  # the WAL files exist while a gateway has the database open
        assert {p.name for p in files} >= {"gateway.db", "gateway.db-wal", "gateway.db-shm"}
        for path in files:
            assert _mode(path) == 0o600, path
        assert _mode(data_dir / "secrets.key") == 0o600
    finally:
        running.communicate(timeout=60)
    assert running.returncode == 0


def test_an_existing_open_data_dir_is_tightened_once_and_said_so(tmp_path):
    env = gateway_env(tmp_path)
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    ok(gw(env, "create", "secret", "tok", "--value", "value-0123"))
    # as an older gateway left it
    data_dir.chmod(0o755)
    for path in _store_files(data_dir):
        path.chmod(0o644)
    first = ok(gw(env, "get", "secrets"))
    assert "Traceback" not in first.err
    notes = [line for line in first.err.splitlines() if line.strip()]
    assert len(notes) == 1 and str(data_dir) in notes[0] and "0700" in notes[0], first.err
    assert _mode(data_dir) == 0o700
    for path in _store_files(data_dir):
        assert _mode(path) == 0o600, path
    again = ok(gw(env, "get", "secrets"))
    assert again.err == "", "said once, not at every command"


# ---------------------------------------------------------------- a lost key
def test_a_lost_key_is_not_replaced_while_the_store_holds_secrets(tmp_path):
    env = gateway_env(tmp_path)
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    first = ok(gw(env, "create", "secret", "tok", "--value", "value-0123"))
    key_file = data_dir / "secrets.key"
    assert str(key_file) in first.err, "a brand-new store makes its key on first use, and says where"
    key_file.unlink()
    before = (data_dir / "gateway.db").read_bytes()
    refused = gw(env, "create", "secret", "other", "--value", "value-4567")
    line = one_error_line(refused, code=1, prefix="gateway: ")
    assert str(key_file) in line and "restore" in line and "encrypt_key_file" in line, line
    assert not key_file.exists(), "no new key was made"
    assert [s["name"] for s in ok(gw(env, "get", "secrets", "-o", "json")).json()] == ["tok"]
    edit = gw(env, "edit", "secret", "tok", "--value", "value-89ab")
    assert str(key_file) in one_error_line(edit, code=1)
    assert not key_file.exists()
    assert (data_dir / "gateway.db").read_bytes() == before, "nothing changed"


# ---------------------------------------------------------------- secrets in output
def test_multi_line_secrets_are_masked_line_by_line_and_tiny_values_not_at_all(tmp_path, origin):
    env = gateway_env(tmp_path)
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    key_path = tmp_path / "id_test"
    key_path.write_text(SSH_KEY)
    ok(gw(env, "create", "secret", "deploy-key", "--value-file", str(key_path)))
    short = ok(gw(env, "create", "secret", "tiny", "--value", "an"))
    assert "shorter than 4 characters" in short.err and "not masked" in short.err, short.err
    described = ok(gw(env, "describe", "secret", "tiny"))
    assert "shorter than 4 characters" in described.out, described.out
    _service(env, origin, "show", "show.py", "--secret", "name=deploy-key,type=env,target=KEY",
             "--secret", "name=tiny,type=env,target=TINY")
    result = ok(gw(env, "run", "service", "show", "-o", "json"))
    texts = [line["text"] for line in result.json()["output"]]
    body = SSH_KEY.strip().splitlines()
    for secret_line in body:
        assert secret_line not in result.out + result.err, secret_line
    assert texts[:6] == ["key follows"] + ["******"] * 5, texts
    assert texts[6] == "tiny is an, a word: banana cabana", "a value under 4 characters masks nothing"
    stored = b"".join(p.read_bytes() for p in _store_files(data_dir))
    for secret_line in body[1:-1]:
        assert secret_line.encode() not in stored
    logs = ok(gw(env, "logs", result.json()["id"]))
    assert body[1] not in logs.out and "******" in logs.out


# ---------------------------------------------------------------- bounded storage: SQLite
def test_sqlite_keeps_about_the_output_limit_of_a_big_run(tmp_path, origin):
    limit = 1024 * 1024
    env = gateway_env(tmp_path, f"[application]\nmode = local\n[execution]\noutput_limit = {limit}\n")
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    _service(env, origin, "big", "big.py")
    before = sum(p.stat().st_size for p in _store_files(data_dir))
    # slow enough that nearly all of it goes through the store, chunk by chunk
    result = gw(env, "run", "service", "big", "--set", "mb=12", "--set", "pace=0.3", "-o", "json", timeout=300)
    run = result.json()
    assert run["status"] == "succeeded"
    assert run["output"][-1]["text"] == "the end" and run["output_dropped"] > 0
    assert run["output_lines"] == len(run["output"]) + run["output_dropped"]
    kept = sum(len(line["text"]) for line in run["output"])
    assert limit // 2 < kept <= limit
    grown = sum(p.stat().st_size for p in _store_files(data_dir)) - before
    # the kept output, its copy in the change log that other processes' watchers read, room to reuse
    assert grown < 3 * limit, f"the store grew by {grown} bytes for {kept} bytes of kept output"

    # a fast one: what is over the limit is dropped before the store sees it
    fast = gw(env, "run", "service", "big", "--set", "mb=24", "-o", "json", timeout=300).json()
    assert fast["status"] == "succeeded" and fast["output"][-1]["text"] == "the end"
    assert fast["output_lines"] == len(fast["output"]) + fast["output_dropped"]
    assert sum(p.stat().st_size for p in _store_files(data_dir)) - before < 2 * 3 * limit


# ---------------------------------------------------------------- bounded storage: etcd with a small quota
QUOTA = 16 * 1024 * 1024


def _etcd_env(tmp_path: Path, server, limit: int = 1024 * 1024) -> dict[str, str]:
    config = (f"[application]\nmode = local\ncluster_id = hostile-{uuid.uuid4().hex[:8]}\n"
              f"[store]\nbackend = etcd\netcd_hosts = {server.hosts}\n"
              f"[execution]\noutput_limit = {limit}\n")
    return gateway_env(tmp_path, config)


def _etcd_client(server):
    import pyetcd

    return pyetcd.client("127.0.0.1", server.client_port, timeout=10)


def _free(client, prefix: str = "/junk/") -> None:
    """What the one-line error tells the operator to do: remove what filled it, compact, defragment, disarm."""
    from pyetcd import etcdrpc

    client.delete_prefix(prefix)
    revision = client.kvstub.Range(etcdrpc.RangeRequest(key=b"/", count_only=True), 10).header.revision
    try:
        client.compact(revision, physical=True)
    except Exception as exc:  # the gateway compacted to this revision already
        assert "compacted" in str(exc), exc
    client.defragment()
    for alarm in list(client.list_alarms()):
        client.disarm_alarm(alarm.member_id)
    assert not list(client.list_alarms())


@pytest.mark.etcd
def test_etcd_history_is_compacted_so_big_runs_do_not_fill_it(tmp_path, origin, make_etcd_server):
    server = make_etcd_server(quota_backend_bytes=QUOTA)
    env = _etcd_env(tmp_path, server)
    _service(env, origin, "big", "big.py")
    for _ in range(3):  # about 30 MiB through the store in all, twice its quota
        result = gw(env, "run", "service", "big", "--set", "mb=10", "--set", "pace=0.25", "-o", "json",
                    timeout=300)
        assert "Traceback" not in result.err, result.err
        run = result.json()
        assert run["status"] == "succeeded", result.err
        assert run["output"][-1]["text"] == "the end"
    runs = ok(gw(env, "get", "runs", "-o", "json")).json()
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    ok(gw(env, "create", "secret", "after", "--value", "still-writable"))
    client = _etcd_client(server)
    try:
        assert not client.list_alarms() or not list(client.list_alarms())
    finally:
        client.close()


@pytest.mark.etcd
def test_a_full_etcd_is_one_line_and_a_result_is_only_reported_once_stored(tmp_path, origin, make_etcd_server):
    server = make_etcd_server(quota_backend_bytes=QUOTA)
    env = _etcd_env(tmp_path, server)
    _service(env, origin, "slow", "slow.py")
    client = _etcd_client(server)
    try:
        # 1. the store fills while the run is in flight, and is freed again: the CLI waits, then reports it
        proc = subprocess.Popen([GATEWAY, "run", "service", "slow", "--set", "wait=4"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "started\n"
        fill_etcd(client)
        line = gw(env, "create", "repository", "late", "--url", str(origin))
        text = one_error_line(line, code=1, prefix="gateway: ")
        assert "space" in text and "quota-backend-bytes" in text and "defrag" in text, text
        time.sleep(6)  # the run has ended by now; its record waits for the store
        assert proc.poll() is None, "the CLI must not report a result the store does not hold"
        _free(client)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert "succeeded" in err.strip().splitlines()[-1]
        assert "space" in err, "the wait is explained"
        run = ok(gw(env, "get", "runs", "-o", "json")).json()[0]
        assert run["status"] == "succeeded"
        logs = ok(gw(env, "logs", run["id"]))
        assert logs.out.splitlines() == ["started", "done"]

        # 2. it stays full and the operator gives up waiting: told in one line that nothing was stored
        proc = subprocess.Popen([GATEWAY, "run", "service", "slow", "--set", "wait=2"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "started\n"
        fill_etcd(client, "/junk2/")
        deadline = time.monotonic() + 60
        seen = ""
        while "does not take its record" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "space exceeded" in seen and "does not take its record" in seen, seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1
        last = err.strip().splitlines()[-1]
        assert last.startswith("gateway: ") and "not stored" in last, err
        assert " succeeded:" not in err
        _free(client, "/junk2/")
        runs = ok(gw(env, "get", "runs", "-o", "json")).json()
        assert runs[0]["status"] in ("running", "interrupted")
    finally:
        client.close()


async def test_an_etcd_watch_behind_a_compaction_starts_again_from_the_current_state(etcd_server):
    import pyetcd

    from gateway_daemon.store import namespace_for
    from gateway_daemon.store.etcd import EtcdStore

    namespace = namespace_for(f"compact-{uuid.uuid4().hex[:8]}")
    store = EtcdStore(namespace, [etcd_server.hosts], timeout=5)
    other = pyetcd.client("127.0.0.1", etcd_server.client_port)
    try:
        await store.put("a/0", b"first")  # what this store saw last
        for n in range(1, 5):
            response = other.put(f"{namespace}a/{n}", f"v{n}".encode())
        other.compact(response.header.revision)  # the history after "a/0" is gone
        watch = store.watch("a/")
        other.put(f"{namespace}a/5", b"v5")
        seen = {}
        while "a/5" not in seen:
            event = await asyncio.wait_for(watch.__anext__(), 10)
            seen[event.key] = event.value
        assert seen == {"a/1": b"v1", "a/2": b"v2", "a/3": b"v3", "a/4": b"v4", "a/5": b"v5"}
        # and a watch that is live when a compaction passes it goes on
        other.compact(other.put(f"{namespace}a/6", b"v6").header.revision)
        other.put(f"{namespace}a/7", b"v7")
        keys = []
        while "a/7" not in keys:
            keys.append((await asyncio.wait_for(watch.__anext__(), 10)).key)
        assert keys == ["a/6", "a/7"]
        await watch.aclose()
    finally:
        other.close()
        await store.close()
