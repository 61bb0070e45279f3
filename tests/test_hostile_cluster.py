"""Nothing forged is trusted, for real: an attacker who reaches the cluster's etcd (no client certificates, as in
the seed's own example) writes users, API keys and runner entries straight into it.  One etcd, a real
`gateway-daemon` server (distributed execution) and runner, TLS with a CA, real logins with the real `gateway`
command; a plain TCP listener poses as a runner and records every byte it is sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import select
import socket
import threading
import time

import pytest

from gateway_daemon.core.access.auth import User, hash_password
from gateway_daemon.core.access.integrity import RecordMacs
from gateway_daemon.core.resources.runners import RunnerInfo
from gateway_daemon.core.resources.secrets import SecretBox
from gateway_daemon.store import namespace_for
from gateway_daemon.store.etcd import EtcdStore
from cluster import SCRIPT, Node, new_site, start_all, wait_for
from gateway_server import ADMIN_PASSWORD, Client
from cli_helpers import BIN, DAEMON, clean_environ, one_error_line, run_command
from gitutil import new_repo

SECRET_VALUE = "t0ken-value"
CAROL = "carol-password-1"
NO_CLIENT_CERTS = "is used without client-certificate authentication"


class Decoy:
    """A TCP listener on 127.0.0.1 posing as a runner: it answers nothing and keeps every byte it is sent."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[bytearray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        open_ones: dict[socket.socket, bytearray] = {}
        while not self._stop.is_set():
            readable, _, _ = select.select([self.sock, *open_ones], [], [], 0.1)
            for ready in readable:
                if ready is self.sock:
                    conn, _ = self.sock.accept()
                    open_ones[conn] = bytearray()
                    self.connections.append(open_ones[conn])
                    continue
                data = ready.recv(65536)
                if data:
                    open_ones[ready].extend(data)
                else:
                    ready.close()
                    del open_ones[ready]
        for conn in open_ones:
            conn.close()
        self.sock.close()

    def received(self) -> bytes:
        return b"".join(bytes(c) for c in self.connections)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def in_etcd(site, action):
    """Run `action(store)` against the cluster's etcd with no key and no gateway in between: the attacker."""
    async def go():
        store = EtcdStore(namespace_for(site.name), hosts=[site.etcd.hosts])
        try:
            return await action(store)
        finally:
            await store.close()
    return asyncio.run(go())


def put_raw(site, key: str, value: bytes) -> None:
    async def action(store):
        await store.put(key, value)
    in_etcd(site, action)


def get_raw(site, key: str) -> bytes | None:
    async def action(store):
        entry = await store.get(key)
        return entry.value if entry else None
    return in_etcd(site, action)


def delete_raw(site, *keys: str) -> None:
    async def action(store):
        for key in keys:
            await store.delete(key)
    in_etcd(site, action)


def forged_user(name: str, password: str, role: str = "admin") -> bytes:
    """What the gateway stores for a user, made by hand: the format, a real scrypt hash, no key."""
    return User(name, role=role, password=hash_password(password)).encode()


def entry_for(decoy: Decoy, runner_id: str, tags: list[str], use_tls: bool) -> RunnerInfo:
    return RunnerInfo(id=runner_id, address="127.0.0.1", port=decoy.port, tags=tags, capacity=50, use_tls=use_tls)


def with_key(site, key: str, data: dict) -> bytes:
    """A record signed with the cluster's key file: what only a holder of the key can make."""
    return RecordMacs(SecretBox(site.key_file), namespace_for(site.name)).sign(key, data)


def last_run(client: Client, service: str) -> dict:
    runs = json.loads(client.ok("get", "runs", "--service", service, "-o", "json").stdout)
    return runs[0] if runs else {}


def refusals(client: Client) -> list[dict]:
    return json.loads(client.ok("get", "audit", "--action", "integrity", "-o", "json").stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    site = new_site(tmp_path_factory.mktemp("hostile-cluster"), "hostile")
    server, runner = site.node("server", "server"), site.node("runner", "runner", "real")
    server.start()
    start_all([runner])
    origin = site.root / "origin"
    new_repo(origin, {"main.py": SCRIPT})
    admin = Client(site.root / "admin", server.port, site.certs["ca"])
    admin.ok("login", "--username", "admin", "--password-stdin", "--change-password",
             stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
    admin.ok("create", "user", "carol", "--role", "operator", "--password-stdin", stdin=CAROL + "\n")
    admin.ok("create", "repository", "apps", "--url", str(origin))
    admin.ok("create", "secret", "token", "--value-file", "-", stdin=SECRET_VALUE)
    for name, tag in (("on-real", "real"), ("on-decoy", "decoy"), ("in-clear", "clear")):
        admin.ok("create", "service", "python-script", name, "--repository", "apps", "--filename", "main.py",
                 "--secret", "name=token,type=env,target=TOKEN", "--runner-tag", tag, "--timeout", "4")
    wait_for("the runner", lambda: runner.id in admin.ok("get", "runners").stdout)
    yield {"site": site, "server": server, "runner": runner, "admin": admin}
    for node in (server, runner):
        if node.process is not None:
            node.kill()
    site.etcd.kill()
    site.etcd.remove_data()


# ---------------------------------------------------------------- users and API keys
def test_an_admin_written_straight_into_etcd_cannot_log_in(cluster, tmp_path):
    site, server, admin = cluster["site"], cluster["server"], cluster["admin"]
    put_raw(site, "users/pwn", forged_user("pwn", "pwn-password-1"))
    attacker = Client(tmp_path / "attacker", server.port, site.certs["ca"])
    refused = attacker("login", "--username", "pwn", "--password-stdin", stdin="pwn-password-1\n")
    assert one_error_line(refused, 1) == "gateway: wrong username or password"
    # said in the log, and in the audit trail
    assert "refused the record " in server.log.read_text() and "users/pwn: it carries no MAC" in server.log.read_text()
    assert any(e["target"] == "users/pwn" and e["outcome"] == "refused" for e in refusals(admin))
    # the real users still work, and the forged one is no user of the gateway
    assert "pwn" not in {u["name"] for u in json.loads(admin.ok("get", "users", "-o", "json").stdout)}
    Client(tmp_path / "carol", server.port, site.certs["ca"]).login("carol", CAROL)
    # an admin removes it
    admin.ok("delete", "user", "pwn")
    assert get_raw(site, "users/pwn") is None


def test_a_user_record_copied_to_another_name_or_changed_is_refused(cluster, tmp_path):
    site, server, admin = cluster["site"], cluster["server"], cluster["admin"]
    real_admin = get_raw(site, "users/admin")
    assert real_admin is not None and b'"mac"' in real_admin
    # the admin's own record, under another name: the admin's password, an admin role, a valid MAC -- of users/admin
    put_raw(site, "users/shadow", real_admin.replace(b'"name": "admin"', b'"name": "shadow"'))
    put_raw(site, "users/admin2", real_admin)
    attacker = Client(tmp_path / "attacker", server.port, site.certs["ca"])
    for name in ("shadow", "admin2"):
        result = attacker("login", "--username", name, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
        assert one_error_line(result, 1) == "gateway: wrong username or password"
    # carol's own record with the role changed to admin: refused, and carol is not an admin for it
    carol_record = json.loads(get_raw(site, "users/carol"))
    put_raw(site, "users/carol", json.dumps(dict(carol_record, role="admin")).encode())
    carol = Client(tmp_path / "carol", server.port, site.certs["ca"])
    assert one_error_line(carol("login", "--username", "carol", "--password-stdin", stdin=CAROL + "\n"), 1) \
        == "gateway: wrong username or password"
    targets = {e["target"] for e in refusals(admin)}
    assert {"users/shadow", "users/admin2", "users/carol"} <= targets
    put_raw(site, "users/carol", json.dumps(carol_record).encode())  # put back as it was: trusted again
    carol.login("carol", CAROL)
    delete_raw(site, "users/shadow", "users/admin2")
    admin.ok("get", "users")


def test_a_forged_or_copied_api_key_is_refused(cluster, tmp_path):
    site, admin = cluster["site"], cluster["admin"]
    forged_key = "gw_" + "A" * 43
    digest = hashlib.sha256(forged_key.encode()).hexdigest()
    record = {"user": "admin", "expires_at": time.time() + 3600, "created_at": "2026-01-01T00:00:00Z",
              "last_used_at": "2026-01-01T00:00:00Z", "last_used": time.time()}
    put_raw(site, f"apikeys/{digest}", json.dumps(record).encode())
    env = clean_environ(None, HOME=str(tmp_path), GATEWAY_CONFIG=str(admin.config), GATEWAY_CLIENT_API_KEY=forged_key)
    result = run_command(str(BIN / "gateway"), ["get", "secrets"], env)
    assert one_error_line(result, 1) == "gateway: the API key is not valid (revoked or unknown): run gateway login"
    # a real key's record (admin's, signed) copied under the digest of a key the attacker chose
    real = [k for k in json.loads(admin.ok("get", "apikeys", "-o", "json").stdout) if k["user"] == "admin"][0]

    async def real_record(store):
        return [e.value for e in await store.list("apikeys/") if e.key.split("/")[1].startswith(real["id"])][0]
    put_raw(site, f"apikeys/{digest}", in_etcd(site, real_record))
    result = run_command(str(BIN / "gateway"), ["get", "secrets"], env)
    assert one_error_line(result, 1) == "gateway: the API key is not valid (revoked or unknown): run gateway login"
    assert f"apikeys/{digest}" in {e["target"] for e in refusals(admin)}
    # not listed as a key of anyone
    assert all(not digest.startswith(k["id"]) for k in json.loads(admin.ok("get", "apikeys", "-o", "json").stdout))
    delete_raw(site, f"apikeys/{digest}")


def test_the_runner_token_is_not_kept_in_the_store(cluster):
    site = cluster["site"]

    async def everything(store):
        return await store.list("")
    stored = in_etcd(site, everything)
    token = RecordMacs(SecretBox(site.key_file), namespace_for(site.name)).token("runner-token").encode()
    assert "cluster/runner-token" not in {e.key for e in stored}
    assert not any(token in e.value for e in stored)


# ---------------------------------------------------------------- runners
def test_a_forged_runner_entry_never_receives_a_job(cluster):
    site, server, admin, runner = cluster["site"], cluster["server"], cluster["admin"], cluster["runner"]
    decoy = Decoy()
    try:
        # no MAC, plaintext, the tags, room for 50 runs, an id that sorts before the real runner's
        unsigned = entry_for(decoy, "0-fast", ["real", "decoy"], use_tls=False)
        put_raw(site, "runners/0-fast", unsigned.encode())
        # a MAC that is no MAC
        bogus = entry_for(decoy, "0-faster", ["real", "decoy"], use_tls=False)
        put_raw(site, "runners/0-faster", json.dumps(dict(bogus.to_dict(), mac="00" * 32)).encode())
        listed = wait_for("the forged entries in the list", lambda: (
            r := {x["id"]: x for x in json.loads(admin.ok("get", "runners", "-o", "json").stdout)})
            and "0-fast" in r and "0-faster" in r and r)
        assert "not trusted" in listed["0-fast"]["problem"] and "not trusted" in listed["0-faster"]["problem"]
        for index in range(3):
            result = admin.ok("run", "service", "on-real", "--set", f"name=n{index}")
            assert f"hello n{index} token ******" in result.stdout
            assert last_run(admin, "on-real")["runner"] == runner.id
        # with only the forged entries to go to, the run waits for a runner and fails: nothing was sent
        result = admin("run", "service", "on-decoy", "--set", "name=d")
        assert result.returncode == 1
        run = last_run(admin, "on-decoy")
        assert run["status"] == "failed" and not run["runner"]
        assert run["reason"].startswith("no runner took the run within its 4 s time limit"), run["reason"]
        assert decoy.received() == b"" and decoy.connections == []
        # said once each in the server's log, not at every heartbeat: 100 heartbeats, and 100 more forged entries
        async def heartbeats(store):
            for beat in range(100):
                await store.put("runners/0-fast", RunnerInfo(**dict(unsigned.to_dict(), last_seen=time.time(),
                                                                    load=beat % 3)).encode())
            for index in range(100):
                await store.put(f"runners/flood-{index}", entry_for(decoy, f"flood-{index}", ["real"], False).encode())
        in_etcd(site, heartbeats)
        assert "hello f token ******" in admin.ok("run", "service", "on-real", "--set", "name=f").stdout
        assert last_run(admin, "on-real")["runner"] == runner.id
        time.sleep(0.5)
        log = server.log.read_text()
        assert log.count("refused the record ") and log.count("runners/0-fast: it carries no MAC") == 1
        assert log.count("runners/0-faster: its MAC does not match") == 1
        assert all(log.count(f"runners/flood-{index}: it carries no MAC") == 1 for index in range(100))
        assert decoy.connections == []
    finally:
        decoy.close()
        delete_raw(site, "runners/0-fast", "runners/0-faster", *(f"runners/flood-{i}" for i in range(100)))


def test_with_a_ca_the_server_speaks_only_tls_to_runners_whatever_they_announce(cluster):
    """An entry with a valid MAC (made with the key) that says use_tls = false: the server still speaks TLS,
    and the listener behind it, which has no certificate of the CA, gets a TLS hello and nothing else."""
    site, admin = cluster["site"], cluster["admin"]
    decoy = Decoy()
    try:
        entry = entry_for(decoy, "127.0.0.1:" + str(decoy.port), ["decoy"], use_tls=False)
        put_raw(site, f"runners/{entry.id}", with_key(site, f"runners/{entry.id}", entry.to_dict()))
        wait_for("the entry", lambda: entry.id in admin.ok("get", "runners").stdout)
        result = admin("run", "service", "on-decoy", "--set", "name=tls")
        assert result.returncode == 1
        assert last_run(admin, "on-decoy")["status"] == "failed"
        assert decoy.connections, "the server did not try the runner"
        for data in decoy.connections:
            assert data[:2] == b"\x16\x03", bytes(data[:40])  # a TLS handshake record
        received = decoy.received()
        assert SECRET_VALUE.encode() not in received and b"PRI * HTTP/2.0" not in received
    finally:
        decoy.close()
        delete_raw(site, f"runners/127.0.0.1:{decoy.port}")


def test_without_a_ca_no_job_goes_in_clear_unless_allowed_and_allowing_it_is_warned(cluster, tmp_path):
    site = cluster["site"]
    clear = Node(tmp_path / "clear", site.certs, site.etcd, site.name, "server", site.key_file)
    conf = clear.config.read_text()
    clear.config.write_text("".join(line for line in conf.splitlines(keepends=True)
                                    if not line.startswith("ca_certificate_file")))
    decoy = Decoy()
    entry = entry_for(decoy, "127.0.0.1:" + str(decoy.port), ["clear"], use_tls=False)
    put_raw(site, f"runners/{entry.id}", with_key(site, f"runners/{entry.id}", entry.to_dict()))
    client = Client(tmp_path / "client", clear.port, site.certs["ca"])
    try:
        clear.start()
        assert "allow_plaintext_runners" not in clear.log.read_text()
        client.login("admin", ADMIN_PASSWORD)
        result = client("run", "service", "in-clear", "--set", "name=c")
        assert result.returncode == 1
        run = last_run(client, "in-clear")
        assert run["status"] == "failed" and run["reason"].startswith(
            f"runner {entry.id} serves without TLS, and nothing is sent to a runner in clear"), run["reason"]
        assert decoy.connections == []
        clear.stop()

        clear.config.write_text(clear.config.read_text().replace(
            "distributed_execution = true\n", "distributed_execution = true\nallow_plaintext_runners = true\n"))
        clear.start()
        warned = [line for line in clear.log.read_text().splitlines()
                  if "[server] allow_plaintext_runners = true:" in line]
        assert len(warned) == 1 and "WARNING" in warned[0] and "in clear" in warned[0], warned
        result = client("run", "service", "in-clear", "--set", "name=c2")
        assert result.returncode == 1  # the listener never answers: it is passed over until the time limit
        assert b"PRI * HTTP/2.0" in decoy.received()  # allowed: the server spoke in clear
    finally:
        if clear.process is not None:
            clear.stop()
        decoy.close()
        delete_raw(site, f"runners/{entry.id}")


# ---------------------------------------------------------------- etcd without client certificates
def test_a_server_and_a_runner_on_etcd_without_client_certificates_say_so_when_they_start(cluster):
    for node in (cluster["server"], cluster["runner"]):
        lines = [line for line in node.log.read_text().splitlines() if NO_CLIENT_CERTS in line]
        assert len(lines) == 1 and "WARNING" in lines[0], lines
        assert "etcd_client_cert_auth = true" in lines[0] and "--client-cert-auth" in lines[0]


# ---------------------------------------------------------------- a store from before MACs
def test_a_store_from_before_macs_is_sealed_once_and_its_users_and_keys_still_work(cluster, tmp_path):
    site = cluster["site"]
    old_name = site.name + "-old"
    old_key = "gw_" + "B" * 43

    async def before(store):  # what a gateway from before MACs stored
        await store.put("users/olga", User("olga", role="admin", password=hash_password("olga-password-1")).encode())
        await store.put("users/otto", User("otto", role="viewer", password=hash_password("otto-password-1")).encode())
        await store.put(f"apikeys/{hashlib.sha256(old_key.encode()).hexdigest()}", json.dumps(
            {"user": "otto", "expires_at": time.time() + 3600, "created_at": "", "last_used_at": "",
             "last_used": time.time()}).encode())

    async def attack(store):  # a forged user, and the marker that says the store is sealed deleted
        await store.put("users/late", forged_user("late", "late-password-1"))
        await store.delete("cluster/records-sealed")

    def in_old(action):
        async def go():
            store = EtcdStore(namespace_for(old_name), hosts=[site.etcd.hosts])
            try:
                return await action(store)
            finally:
                await store.close()
        return asyncio.run(go())

    in_old(before)
    server = Node(tmp_path / "server", site.certs, site.etcd, old_name, "server", site.key_file)
    try:
        server.start()
        log = server.log.read_text()
        assert "signed 3 of them once" in log and "users/olga" in log
        olga = Client(tmp_path / "olga", server.port, site.certs["ca"])
        olga.login("olga", "olga-password-1")
        assert any(e["action"] == "integrity.sealed" for e in refusals(olga))
        env = clean_environ(None, HOME=str(tmp_path), GATEWAY_CONFIG=str(olga.config), GATEWAY_CLIENT_API_KEY=old_key)
        assert run_command(str(BIN / "gateway"), ["get", "services"], env).returncode == 0  # otto's old key
        # sealed: an unsigned user written now is refused, and a restart does not sign it, even with the marker gone
        in_old(attack)
        server.stop()
        server.start()
        assert server.log.read_text().count("signed 3 of them once") == 1
        assert "the store's sealed marker is gone, though it holds signed records" in server.log.read_text()
        late = Client(tmp_path / "late", server.port, site.certs["ca"])
        refused = late("login", "--username", "late", "--password-stdin", stdin="late-password-1\n")
        assert one_error_line(refused, 1) == "gateway: wrong username or password"
        # recovery on the server host, with the key, still works
        reset = run_command(DAEMON, ["--config", str(server.config), "user", "reset-password", "otto",
                                     "--password-stdin"], clean_environ(None), stdin="otto-password-2\n")
        assert reset.returncode == 0, reset
        Client(tmp_path / "otto", server.port, site.certs["ca"]).login("otto", "otto-password-2")
        # but it does not make a forged record trusted
        forged = run_command(DAEMON, ["--config", str(server.config), "user", "reset-password", "late"],
                             clean_environ(None))
        assert one_error_line(forged, 1).startswith("gateway-daemon: the record of user late carries no valid MAC")
    finally:
        if server.process is not None:
            server.stop()
