"""One contract for every store backend: memory, local (SQLite) and etcd (plain and TLS).

Each test gets fresh cluster ids, so tests sharing one etcd or one SQLite file
never see each other's keys.  Backends other than memory are opened the way
the programs open them: a gateway.conf read by load_config, then open_store.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from etcd_server import EtcdServer, free_port

from gateway_daemon.config import load_config
from gateway_daemon.store import (
    KeyExists,
    RevisionMismatch,
    Store,
    StoreUnavailable,
    namespace_for,
    open_store,
)
from gateway_daemon.store.etcd import EtcdStore
from gateway_daemon.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parent.parent
EVENT_TIMEOUT = 10.0

ALL = [
    pytest.param("memory", id="memory"),
    pytest.param("local", id="local"),
    pytest.param("etcd", id="etcd", marks=pytest.mark.etcd),
    pytest.param("etcd-tls", id="etcd-tls", marks=pytest.mark.etcd),
]
PERSISTENT = ALL[1:]


class Backend:
    """Opens stores of one backend; every store opened is closed after the test."""

    def __init__(self, name: str, tmp_path: Path, request: pytest.FixtureRequest):
        self.name = name
        self.tmp_path = tmp_path
        self.run_id = uuid.uuid4().hex[:12]
        self.stores: list[Store] = []
        self.etcd_lines: list[str] = []
        if name == "etcd":
            server: EtcdServer = request.getfixturevalue("etcd_server")
            self.etcd_lines = [f"etcd_hosts = {server.hosts}"]
        elif name == "etcd-tls":
            tls = request.getfixturevalue("etcd_tls")
            self.etcd_lines = [
                f"etcd_hosts = {tls.server.hosts}",
                "etcd_use_tls = true",
                f"etcd_ca_certificate_file = {tls.ca}",
                "etcd_client_cert_auth = true",
                f"etcd_certificate_file = {tls.cert}",
                f"etcd_private_key_file = {tls.key}",
            ]

    def cluster_id(self, cluster: str) -> str:
        return f"t{self.run_id}-{cluster}"

    def config_file(self, cluster: str = "a") -> Path:
        """A gateway.conf for this backend and cluster (memory has none)."""
        assert self.name != "memory"
        lines = [
            "[application]",
            f"cluster_id = {self.cluster_id(cluster)}",
            f"data_dir = {self.tmp_path / 'data'}",
            "[store]",
            f"backend = {'local' if self.name == 'local' else 'etcd'}",
            *self.etcd_lines,
        ]
        path = self.tmp_path / f"gateway-{cluster}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def open(self, cluster: str = "a") -> Store:
        if self.name == "memory":
            store: Store = MemoryStore(namespace_for(self.cluster_id(cluster)))
        else:
            store = open_store(load_config(str(self.config_file(cluster)), environ={}))
        self.stores.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.stores:
            await store.close()


@pytest.fixture(params=ALL)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    made = Backend(request.param, tmp_path, request)
    yield made
    await made.close_all()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


async def next_event(sub, timeout: float = EVENT_TIMEOUT):
    return await asyncio.wait_for(sub.__anext__(), timeout)


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# ---------------------------------------------------------------- reading and writing
async def test_get_absent_is_none(store: Store):
    assert await store.get("nothing/here") is None


async def test_put_get_and_revisions_grow(store: Store):
    r1 = await store.put("k/a", b"one")
    r2 = await store.put("k/a", b"two")
    r3 = await store.put("k/b", b"three")
    assert 0 < r1 < r2 < r3
    entry = await store.get("k/a")
    assert (entry.key, entry.value, entry.revision) == ("k/a", b"two", r2)
    assert (await store.get("k/b")).revision == r3


async def test_create_only_when_absent(store: Store):
    revision = await store.create("c/key", b"first")
    assert (await store.get("c/key")).revision == revision
    with pytest.raises(KeyExists):
        await store.create("c/key", b"second")
    assert (await store.get("c/key")).value == b"first"


async def test_update_compares_the_revision(store: Store):
    r1 = await store.put("u/key", b"v1")
    r2 = await store.update("u/key", b"v2", r1)
    assert r2 > r1
    with pytest.raises(RevisionMismatch):
        await store.update("u/key", b"stale", r1)
    entry = await store.get("u/key")
    assert (entry.value, entry.revision) == (b"v2", r2)
    with pytest.raises(RevisionMismatch):
        await store.update("u/absent", b"x", r2)
    assert await store.get("u/absent") is None


async def test_delete(store: Store):
    assert await store.delete("d/absent") is False
    with pytest.raises(RevisionMismatch):
        await store.delete("d/absent", revision=1)
    r1 = await store.put("d/key", b"v1")
    r2 = await store.put("d/key", b"v2")
    with pytest.raises(RevisionMismatch):
        await store.delete("d/key", revision=r1)
    assert (await store.get("d/key")).value == b"v2"
    assert await store.delete("d/key", revision=r2) is True
    assert await store.get("d/key") is None
    await store.put("d/other", b"x")
    assert await store.delete("d/other") is True
    assert await store.delete("d/other") is False


async def test_list_by_prefix_sorted_without_siblings(store: Store):
    for key in ["a/3", "ab/1", "a/1", "a", "b/1", "a/2/deep", "a/10"]:
        await store.put(key, key.encode())
    entries = await store.list("a/")
    assert [e.key for e in entries] == ["a/1", "a/10", "a/2/deep", "a/3"]
    assert all(e.value == e.key.encode() and e.revision > 0 for e in entries)
    assert [e.key for e in await store.list("ab/")] == ["ab/1"]
    assert [e.key for e in await store.list("")] == ["a", "a/1", "a/10", "a/2/deep", "a/3", "ab/1", "b/1"]
    assert await store.list("zzz/") == []


async def test_delete_prefix_removes_that_prefix_alone_and_watchers_see_it(store: Store):
    for key in ("p/a/1", "p/a/2", "p/a2", "p/b/1"):
        await store.put(key, b"x")
    watch = store.watch("p/")
    assert await store.delete_prefix("p/a/") == 2
    assert [e.key for e in await store.list("p/")] == ["p/a2", "p/b/1"]
    seen = {(await next_event(watch)).key, (await next_event(watch)).key}
    assert seen == {"p/a/1", "p/a/2"}
    assert await store.delete_prefix("p/a/") == 0
    await watch.aclose()


async def test_values_are_arbitrary_bytes(store: Store):
    values = {
        "bin/nul-ff": b"\x00\xff",
        "bin/empty": b"",
        "bin/all": bytes(range(256)),
        "bin/big": os.urandom(200_000),
        "bin/ключ-é": "ünïcödé".encode(),
    }
    for key, value in values.items():
        revision = await store.put(key, value)
        entry = await store.get(key)
        assert (entry.value, entry.revision) == (value, revision)
    assert {e.key: e.value for e in await store.list("bin/")} == values


# ---------------------------------------------------------------- watching
async def test_watch_sees_puts_and_deletes_in_order_under_its_prefix(store: Store):
    await store.put("w/before", b"old")
    sub = store.watch("w/")
    r1 = await store.put("w/a", b"\x00\xff")
    await store.put("x/elsewhere", b"no")
    await store.put("wx/sibling", b"no")
    r2 = await store.put("w/b", b"2")
    assert await store.delete("w/a") is True
    r3 = await store.put("w/end", b"")
    events = [await next_event(sub) for _ in range(4)]
    assert [(e.kind, e.key, e.value) for e in events] == [
        ("put", "w/a", b"\x00\xff"),
        ("put", "w/b", b"2"),
        ("delete", "w/a", None),
        ("put", "w/end", b""),
    ]
    assert events[0].revision == r1 and events[1].revision == r2 and events[3].revision == r3
    assert r2 < events[2].revision < r3
    await sub.aclose()


async def test_closed_watch_stops_and_others_go_on(store: Store):
    first = store.watch("c/")
    second = store.watch("c/")
    await first.aclose()
    with pytest.raises(StopAsyncIteration):
        await next_event(first, 2)
    await store.put("c/1", b"1")
    assert (await next_event(second)).key == "c/1"
    await second.aclose()
    with pytest.raises(StopAsyncIteration):
        await next_event(second, 2)
    await store.put("c/2", b"2")
    # a new watch after every other one was closed starts from now
    third = store.watch("c/")
    await store.put("c/3", b"3")
    assert (await next_event(third)).key == "c/3"
    await third.aclose()


async def test_two_watches_on_different_prefixes(store: Store):
    runs = store.watch("runs/")
    services = store.watch("services/")
    await store.put("services/s1", b"s")
    await store.put("runs/r1", b"r")
    assert (await next_event(runs)).key == "runs/r1"
    assert (await next_event(services)).key == "services/s1"
    await runs.aclose()
    await services.aclose()


async def test_clusters_never_see_each_other(backend: Backend):
    a = backend.open("a")
    b = backend.open("b")
    watch_a = a.watch("")
    watch_b = b.watch("")
    await b.put("k", b"from b")
    await b.put("only-b/x", b"b")
    await a.put("k", b"from a")
    await a.put("only-a/y", b"a")
    assert [(e.key, e.value) for e in [await next_event(watch_a), await next_event(watch_a)]] == [
        ("k", b"from a"), ("only-a/y", b"a"),
    ]
    assert [(e.key, e.value) for e in [await next_event(watch_b), await next_event(watch_b)]] == [
        ("k", b"from b"), ("only-b/x", b"b"),
    ]
    assert (await a.get("k")).value == b"from a"
    assert (await b.get("k")).value == b"from b"
    assert await a.get("only-b/x") is None
    assert [e.key for e in await a.list("")] == ["k", "only-a/y"]
    assert [e.key for e in await b.list("")] == ["k", "only-b/x"]
    assert await a.delete("only-b/x") is False
    with pytest.raises(KeyExists):
        await b.create("k", b"again")
    await watch_a.aclose()
    await watch_b.aclose()


# ---------------------------------------------------------------- durability
@pytest.mark.parametrize("backend", PERSISTENT, indirect=True)
async def test_data_survives_reopening(backend: Backend):
    first = backend.open()
    r1 = await first.put("p/1", b"\x00one")
    r2 = await first.create("p/2", b"two")
    await first.close()
    second = backend.open()
    assert [(e.key, e.value, e.revision) for e in await second.list("p/")] == [
        ("p/1", b"\x00one", r1), ("p/2", b"two", r2),
    ]
    assert await second.update("p/2", b"three", r2) > r2


WRITER = r"""
import asyncio, sys
from gateway_daemon.config import load_config
from gateway_daemon.store import open_store

async def main():
    store = open_store(load_config(sys.argv[1], environ={}))
    i = 0
    while True:
        key = f"crash/{i:06d}"
        await store.put(key, key.encode())
        sys.stdout.write(key + "\n")
        sys.stdout.flush()
        i += 1

asyncio.run(main())
"""


def start_writer(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=subprocess_env(),
    )


def read_acknowledged(proc: subprocess.Popen, count: int, timeout: float = 30.0) -> list[str]:
    """The first `count` keys the writer printed (it prints a key once its put returned)."""
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    keys: list[str] = []
    try:
        while len(keys) < count:
            line = proc.stdout.readline()
            if not line:
                break
            keys.append(line.strip())
    finally:
        watchdog.cancel()
    if len(keys) < count:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the writer stopped after {len(keys)} keys:\n{err[-3000:]}")
    return keys


def kill_and_collect(proc: subprocess.Popen, keys: list[str]) -> list[str]:
    """SIGKILL the writer; every complete line it printed before dying was acknowledged too."""
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return keys + [line for line in rest.split("\n")[:-1] if line]


@pytest.mark.parametrize("backend", [PERSISTENT[0], PERSISTENT[1]], indirect=True)
async def test_acknowledged_writes_survive_kill_9(backend: Backend):
    proc = start_writer(backend.config_file())
    keys = await asyncio.to_thread(read_acknowledged, proc, 300)
    keys = kill_and_collect(proc, keys)
    assert len(keys) >= 300
    stored = {e.key: e.value for e in await backend.open().list("crash/")}
    missing = [k for k in keys if stored.get(k) != k.encode()]
    assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:5]}"


ONE_PUT = r"""
import asyncio, sys
from gateway_daemon.config import load_config
from gateway_daemon.store import open_store

async def main():
    store = open_store(load_config(sys.argv[1], environ={}))
    await store.put(sys.argv[2], sys.argv[3].encode())
    await store.close()

asyncio.run(main())
"""


async def put_from_another_process(config: Path, key: str, value: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ONE_PUT, str(config), key, value,
        cwd=ROOT, env=subprocess_env(), stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]


@pytest.mark.parametrize("backend", PERSISTENT, indirect=True)
async def test_watch_sees_another_process(backend: Backend):
    store = backend.open("a")
    await store.get("x/warm-up")
    sub = store.watch("x/")
    await put_from_another_process(backend.config_file("b"), "x/other-cluster", "no")
    await put_from_another_process(backend.config_file("a"), "x/from-elsewhere", "hello")
    event = await next_event(sub)
    assert (event.kind, event.key, event.value) == ("put", "x/from-elsewhere", b"hello")
    await sub.aclose()


# ---------------------------------------------------------------- etcd outages
def etcd_store(hosts: list[str], timeout: float = 2.0, namespace: str | None = None) -> EtcdStore:
    return EtcdStore(namespace or namespace_for(f"t{uuid.uuid4().hex[:12]}"), hosts, timeout=timeout)


@pytest.mark.etcd
async def test_etcd_unreachable_then_back_with_the_same_store(make_etcd_server):
    server = make_etcd_server()
    store = etcd_store([server.hosts])
    try:
        await store.put("k", b"before")
        sub = store.watch("w/")
        await store.put("w/1", b"before")
        assert (await next_event(sub)).key == "w/1"

        server.stop()
        for attempt in (store.get("k"), store.put("k", b"during"), store.list("")):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                await attempt
            assert time.monotonic() - started < 15
            message = str(caught.value)
            assert message.startswith(f"etcd at {server.hosts} is unreachable: ")
            assert "\n" not in message

        server.start()
        assert (await store.get("k")).value == b"before"
        revision = await store.put("w/2", b"after")
        event = await next_event(sub, 15)
        assert (event.key, event.value, event.revision) == ("w/2", b"after", revision)
        await sub.aclose()
    finally:
        await store.close()


@pytest.mark.etcd
async def test_etcd_watch_loses_nothing_written_while_it_reconnects(make_etcd_server):
    server = make_etcd_server()
    writer = etcd_store([server.hosts])
    watcher = etcd_store([server.hosts], namespace=writer.namespace)
    try:
        await writer.put("zero", b"0")
        assert (await watcher.get("zero")).value == b"0"
        sub = watcher.watch("")
        await writer.put("one", b"1")
        assert (await next_event(sub)).key == "one"
        server.kill()
        server.start()
        # written before the watcher's stream is back: it must still be delivered
        await writer.put("two", b"2")
        await writer.put("three", b"3")
        assert [(await next_event(sub, 15)).key for _ in range(2)] == ["two", "three"]
        await sub.aclose()
    finally:
        await writer.close()
        await watcher.close()


@pytest.mark.etcd
async def test_etcd_acknowledged_writes_survive_killing_etcd(make_etcd_server, tmp_path: Path):
    server = make_etcd_server()
    config = tmp_path / "gateway.conf"
    cluster = f"t{uuid.uuid4().hex[:12]}"
    config.write_text(f"[application]\ncluster_id = {cluster}\n[store]\nbackend = etcd\netcd_hosts = {server.hosts}\n")
    proc = start_writer(config)
    keys = await asyncio.to_thread(read_acknowledged, proc, 200)
    server.kill()
    keys = kill_and_collect(proc, keys)
    server.start()
    store = open_store(load_config(str(config), environ={}))
    try:
        stored = {e.key for e in await store.list("crash/")}
    finally:
        await store.close()
    missing = [k for k in keys if k not in stored]
    assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:5]}"


@pytest.mark.etcd
async def test_etcd_fails_over_to_the_next_host(etcd_server: EtcdServer, tmp_path: Path):
    dead = f"127.0.0.1:{free_port()}"
    config = tmp_path / "gateway.conf"
    config.write_text(
        f"[application]\ncluster_id = t{uuid.uuid4().hex[:12]}\n"
        f"[store]\nbackend = etcd\netcd_hosts = {dead}, {etcd_server.hosts}\n"
    )
    store = open_store(load_config(str(config), environ={}))
    try:
        sub = store.watch("f/")
        revision = await store.put("f/1", b"x")
        assert (await store.get("f/1")).revision == revision
        assert (await next_event(sub)).revision == revision
        assert await store.create("f/2", b"y") > revision
        assert [e.key for e in await store.list("f/")] == ["f/1", "f/2"]
        await sub.aclose()
    finally:
        await store.close()


@pytest.mark.etcd
async def test_etcd_all_hosts_down_names_them_all():
    hosts = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    store = etcd_store(hosts, timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await store.put("k", b"v")
        assert time.monotonic() - started < 5
        assert str(caught.value) == f"etcd at {hosts[0]}, {hosts[1]} is unreachable: connection refused"
    finally:
        await store.close()


@pytest.mark.etcd
async def test_etcd_tls_without_a_client_certificate_is_refused(etcd_tls):
    store = EtcdStore(namespace_for("tls-check"), [etcd_tls.server.hosts], use_tls=True,
                      ca_file=str(etcd_tls.ca), timeout=1.0)
    try:
        with pytest.raises(StoreUnavailable, match="is unreachable: TLS"):
            await store.get("k")
    finally:
        await store.close()
