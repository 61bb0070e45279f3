"""Logins and the public surface, tried the way an attacker would, against a real `gateway-daemon` over TLS: bursts
of guesses, floods from one address, huge unauthenticated requests; and an audit trail that a flood of failed logins
can neither erase nor blind.

Everything goes through real gRPC calls (grpc.aio, as many at once as the probe needs) or the real `gateway`
command; "another address" is 127.0.0.2, reached through a TCP relay that connects from that loopback address; the
daemon's memory is read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from gateway_daemon.rpc.gen import auth_pb2, auth_pb2_grpc

from cli_helpers import one_error_line
from gateway_server import ADMIN_PASSWORD, Client, Daemon
from gitutil import new_repo

CAROL = "carol-password-1"
BOB = "bob-password-1"
WRONG = "wrong username or password"


# ---------------------------------------------------------------- helpers
def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _channel(port: int, certs) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials,
                                   options=[("grpc.max_send_message_length", -1),
                                            ("grpc.ssl_target_name_override", "127.0.0.1")])


def _admin(daemon: Daemon, certs, folder: Path) -> Client:
    client = Client(folder, daemon.port, certs["ca"])
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    return client


def _events(admin: Client, *args: str) -> list[dict]:
    return json.loads(admin.ok("get", "audit", *args, "-o", "json").stdout)


async def _login(stub, user: str, password: str, timeout: float = 120):
    """The reply, or (code, details) of the refusal."""
    try:
        return await stub.Login(auth_pb2.LoginRequest(username=user, password=password), timeout=timeout)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details()


class Relay:
    """A TCP relay on 127.0.0.1 that connects to the server from another loopback address (127.0.0.2), so that
    a client through it is, to the server, another machine."""

    def __init__(self, port: int, source: str = "127.0.0.2"):
        self.target, self.source = port, source
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                inbound, _ = self.listener.accept()
            except OSError:
                return
            outbound = socket.socket()
            outbound.bind((self.source, 0))
            outbound.connect(("127.0.0.1", self.target))
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed = True
        self.listener.close()


# ---------------------------------------------------------------- guesses
@pytest.fixture(scope="module")
def burst_server(tmp_path_factory, certs):
    """Many calls in flight at once are allowed here, so that the throttle alone decides."""
    daemon = Daemon(tmp_path_factory.mktemp("burst"), certs,
                    server="login_failures_per_user = 5\nlogin_failures_per_address = 100000\n"
                           "login_lock_seconds = 120\npublic_calls_at_once = 512\n"
                           "public_calls_per_address = 512\n")
    daemon.start()
    yield daemon
    daemon.stop()


def test_two_hundred_parallel_guesses_lock_the_user_before_the_right_password_is_tried(burst_server, certs,
                                                                                       tmp_path):
    admin = _admin(burst_server, certs, tmp_path / "admin")
    admin.ok("create", "user", "carol", "--role", "operator", "--password-stdin", stdin=CAROL + "\n")

    async def burst():
        async with _channel(burst_server.port, certs) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            wrong = [asyncio.ensure_future(_login(stub, "carol", f"guess-{i:04d}")) for i in range(199)]
            # The right password goes while most of the burst is still in flight, once five guesses have been
            # answered (counted): the server reads each user before its throttle counts the attempt, and those
            # reads end in any order, so a password sent last may well be counted among the first five.
            answered = 0
            for done in asyncio.as_completed(wrong):
                await done
                answered += 1
                if answered == 5:
                    break
            in_flight = sum(not future.done() for future in wrong)
            right = asyncio.ensure_future(_login(stub, "carol", CAROL))
            results = await asyncio.gather(*wrong, right)
            again = await _login(stub, "carol", CAROL)
            return results, again, in_flight

    results, again, in_flight = asyncio.run(burst())
    refusals = [r for r in results if isinstance(r, tuple)]
    assert len(refusals) == 200, f"{200 - len(refusals)} of the burst logged in ({in_flight} guesses in flight)"
    assert {code for code, _ in refusals} == {grpc.StatusCode.UNAUTHENTICATED}
    kinds = Counter("wrong" if d == WRONG else "locked" if d.startswith("too many failed logins for carol") else d
                    for _, d in refusals)
    assert kinds["wrong"] <= 5, kinds  # only as many passwords were tried as the limit allows
    assert kinds["locked"] >= 195, kinds
    assert isinstance(again, tuple) and again[1].startswith("too many failed logins for carol: try again after ")
    admin.ok("edit", "user", "carol", "--unlock")
    assert not isinstance(asyncio.run(_one_login(burst_server.port, certs, "carol", CAROL)), tuple)


async def _one_login(port: int, certs, user: str, password: str):
    async with _channel(port, certs) as channel:
        return await _login(auth_pb2_grpc.AuthServiceStub(channel), user, password)


FLOOD = """
import asyncio, sys, time
import grpc
from gateway_daemon.rpc.gen import auth_pb2, auth_pb2_grpc

port, ca, seconds, workers = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])


async def main():
    credentials = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        stop = time.monotonic() + seconds
        sent = 0

        async def attack(worker):
            nonlocal sent
            index = 0
            while time.monotonic() < stop:
                name = "admin" if index % 2 else f"ghost-{worker}-{index}"
                try:
                    await stub.Login(auth_pb2.LoginRequest(username=name, password=f"guess-{index}"), timeout=60)
                except grpc.aio.AioRpcError:
                    pass
                sent += 1
                index += 1
        await asyncio.gather(*[attack(w) for w in range(workers)])
        print(sent)

asyncio.run(main())
"""


def test_a_flood_against_one_user_from_one_address_does_not_hold_up_another_users_login(tmp_path, certs):
    daemon = Daemon(tmp_path / "server", certs)
    daemon.start()
    relay = flood = None
    try:
        admin = _admin(daemon, certs, tmp_path / "admin")
        admin.ok("create", "user", "bob", "--role", "viewer", "--password-stdin", stdin=BOB + "\n")
        relay = Relay(daemon.port)

        async def log_in_meanwhile():
            async with _channel(relay.port, certs) as other:
                bob = auth_pb2_grpc.AuthServiceStub(other)
                assert not isinstance(await _login(bob, "bob", BOB), tuple)  # through the relay, once
                await asyncio.sleep(1.5)  # the flood under way
                waits = []
                while flood.poll() is None and len(waits) < 12:
                    started = time.monotonic()
                    reply = await _login(bob, "bob", BOB, timeout=60)
                    waits.append(time.monotonic() - started)
                    assert not isinstance(reply, tuple), reply
                    await asyncio.sleep(0.3)
                return waits

        # the attacker: another process, 200 logins at a time for 10 s, against admin and made-up names
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(daemon.port), str(certs["ca"]), "10", "200"],
                                 stdout=subprocess.PIPE, text=True)
        waits = asyncio.run(log_in_meanwhile())
        sent = int(flood.communicate(timeout=120)[0])
        assert sent >= 1000 and len(waits) >= 3, (sent, waits)
        # on two shared cores the server answering the flood's hundreds of calls a second is slower for everyone,
        # but bob's login is not queued behind the flood's passwords (it was, for half a minute)
        assert max(waits) < 3.0, f"bob waited up to {max(waits):.2f} s behind {sent} guesses: {waits}"
        # bob's address is not the one locked
        assert [e for e in _events(admin, "--user", "bob") if e["action"] == "login"][0]["source"] == "127.0.0.2"
    finally:
        if flood is not None and flood.poll() is None:
            flood.kill()
            flood.wait()
        if relay is not None:
            relay.close()
        daemon.stop()


# ---------------------------------------------------------------- the public surface
def test_sixty_huge_unauthenticated_requests_are_refused_and_memory_stays_bounded(tmp_path, certs):
    daemon = Daemon(tmp_path / "server", certs)
    daemon.start()
    try:
        pid = daemon.process.pid
        text = "x" * (30 * 1024 * 1024)
        login = auth_pb2.LoginRequest(username="admin", password=text).SerializeToString()
        change = auth_pb2.ChangePasswordRequest(username=text, password="x", new_password="y").SerializeToString()
        health = health_pb2.HealthCheckRequest(service=text).SerializeToString()
        baseline = _vm(pid, "VmRSS")

        async def flood():
            async with _channel(daemon.port, certs) as channel:
                calls = [channel.unary_unary("/gateway.v1.AuthService/Login")(login, timeout=120)
                         for _ in range(60)]
                calls += [channel.unary_unary("/gateway.v1.AuthService/ChangePassword")(change, timeout=120),
                          channel.unary_unary("/grpc.health.v1.Health/Check")(health, timeout=120)]
                results = await asyncio.gather(*calls, return_exceptions=True)
                return [r.code() if isinstance(r, grpc.aio.AioRpcError) else r for r in results]

        started = time.monotonic()
        codes = asyncio.run(flood())
        took = time.monotonic() - started
        peak = _vm(pid, "VmHWM")
        print(f"RSS {baseline >> 20} MiB before the flood, peak {peak >> 20} MiB; {took:.1f} s")
        assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 62, Counter(codes)
        # the rest refused unread, and one request of an address read at a time: a message up to the server's
        # receive limit (32 MiB) is held twice while it is read (the transport's copy and Python's), and the
        # allocator keeps some of what it freed (measured: 140 MiB above where it was; before: 5 GiB)
        assert peak - baseline < 256 * 1024 * 1024, f"RSS {baseline >> 20} MiB -> peak {peak >> 20} MiB"
        # and small requests are still served
        assert asyncio.run(_one_login(daemon.port, certs, "admin", "not-the-password"))[1] == WRONG
    finally:
        daemon.stop()


# ---------------------------------------------------------------- the audit trail
@pytest.fixture(scope="module")
def audited(tmp_path_factory, certs):
    daemon = Daemon(tmp_path_factory.mktemp("audited"), certs, extra="[audit]\nretention = 90d 300\n")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def audit_admin(audited, certs, tmp_path_factory) -> Client:
    return _admin(audited, certs, tmp_path_factory.mktemp("admin"))


def test_a_refused_call_names_its_target(audited, audit_admin, certs, tmp_path):
    audit_admin.ok("create", "secret", "token", "--value", "t0ken-value")
    audit_admin.ok("create", "user", "vic", "--role", "viewer", "--password-stdin", stdin="vic-password-1\n")
    vic = Client(tmp_path / "vic", audited.port, certs["ca"])
    vic.login("vic", "vic-password-1")
    assert vic("create", "secret", "mine", "--value", "x").returncode == 1
    assert vic("describe", "secret", "token", "--reveal").returncode == 1
    assert vic("delete", "secret", "token").returncode == 1
    refused = [(e["action"], e["target"]) for e in _events(audit_admin, "--user", "vic") if e["outcome"] == "refused"]
    assert refused == [("delete", "secret/token"), ("reveal", "secret/token"), ("create", "secret/mine")], refused


def test_executable_objects_created_edited_and_deleted_are_audited(audited, audit_admin):
    audit_admin.ok("create", "executable-object", "py", "--exec-command", "/usr/bin/python3 -I")
    audit_admin.ok("edit", "executable-object", "py", "--description", "python")
    audit_admin.ok("delete", "executable-object", "py")
    seen = [(e["action"], e["target"], e["outcome"]) for e in _events(audit_admin, "--user", "admin")
            if "executable" in e["target"]]
    assert seen == [("delete", "executable-object/py", "ok"), ("edit", "executable-object/py", "ok"),
                    ("create", "executable-object/py", "ok")], seen


def test_an_out_of_scope_read_is_recorded_as_refused(audited, audit_admin, certs, tmp_path):
    origin = tmp_path / "origin"
    new_repo(origin, {"main.py": "print('hi')\n"})
    audit_admin.ok("create", "repository", "apps", "--url", str(origin))
    for name, tag in (("here", "site-a"), ("there", "site-b")):
        audit_admin.ok("create", "service", "python-script", name, "--repository", "apps", "--tag", tag)
    audit_admin.ok("create", "user", "sam", "--role", "operator", "--scope", "tag=site-a", "--password-stdin",
                   stdin="sam-password-1\n")
    sam = Client(tmp_path / "sam", audited.port, certs["ca"])
    sam.login("sam", "sam-password-1")
    sam.ok("describe", "service", "here")
    assert one_error_line(sam("describe", "service", "there"), 1) == "gateway: service 'there' not found"
    events = [(e["action"], e["target"], e["outcome"]) for e in _events(audit_admin, "--user", "sam")]
    assert ("read", "service/there", "refused") in events, events
    assert not any(target == "service/here" for _, target, _ in events)  # reads in scope are no events


def test_a_failed_login_flood_erases_nothing_and_is_counted(tmp_path, certs):
    daemon = Daemon(tmp_path / "server", certs, extra="[audit]\nretention = 90d 200\n")
    daemon.start()
    try:
        admin = _admin(daemon, certs, tmp_path / "admin")
        admin.ok("create", "secret", "before-flood", "--value", "v4lue-before")
        admin.ok("create", "user", "dora", "--role", "viewer", "--password-stdin", stdin="dora-password-1\n")
        flood_began = time.time()

        async def flood():
            async with _channel(daemon.port, certs) as channel:
                stub = auth_pb2_grpc.AuthServiceStub(channel)
                queue = [f"ghost-{i}" for i in range(1000)] + ["dora"] * 3000

                async def worker():
                    while queue:
                        await _login(stub, queue.pop(0), "not-the-password", timeout=60)
                await asyncio.gather(*[worker() for _ in range(6)])

        asyncio.run(flood())
        took = time.time() - flood_began
        print(f"4000 failed logins in {took:.1f} s")
        assert took < 120, f"the flood took {took:.0f} s"
        time.sleep(2.5)  # the last counts are written a moment after
        events = _events(admin, "--limit", "100000")
        assert ("admin", "create", "secret/before-flood", "ok") in \
            [(e["user"], e["action"], e["target"], e["outcome"]) for e in events]
        assert ("admin", "create", "user/dora", "ok") in [(e["user"], e["action"], e["target"], e["outcome"])
                                                           for e in events]
        dora = [e for e in events if e["action"] == "login" and e["target"] == "user/dora"]
        assert sum(e.get("count", 1) for e in dora) == 3000, dora
        assert len(dora) <= 3, dora  # one event a minute per user and address
        made_up = [e for e in events if e["action"] == "login" and e["target"] == "user/*"]
        assert sum(e.get("count", 1) for e in made_up) == 1000 and len(made_up) <= 3, made_up  # names no user has
        logins = [e for e in events if e["action"] == "login"]
        assert len(logins) <= 40, len(logins)  # failed logins have their own budget
        table = admin.ok("get", "audit", "--user", "dora").stdout
        assert re.search(r"  \d+ times: (wrong username or password|too many failed logins)", table), table
    finally:
        daemon.stop()


# ---------------------------------------------------------------- the bounds, on the store alone
async def test_failed_logins_have_their_own_budget_and_repeats_are_counted():
    from gateway_daemon.core.access.audit import Actor, AuditTrail
    from gateway_daemon.store.memory import MemoryStore

    store = MemoryStore("test")
    trail = AuditTrail(store, max_age=3600, max_count=100)
    for index in range(5):
        await trail.record("create", f"secret/s{index}", actor=Actor("admin", "10.0.0.1"))
    for index in range(300):  # a new user each time: each its own event, under the failures' budget
        await trail.record("login", f"user/u{index}", "failed", "wrong username or password",
                           actor=Actor(f"u{index}", "10.0.0.9"))
    for _ in range(500):
        await trail.record("login", "user/admin", "failed", "wrong username or password",
                           actor=Actor("admin", "10.0.0.9"))
    await trail.flush()
    await trail.prune()
    events = await trail.list(limit=100000)
    assert [e.target for e in events if e.action == "create"] == [f"secret/s{i}" for i in range(4, -1, -1)]
    failures = [e for e in events if e.action == "login"]
    assert len(failures) <= trail.failure_budget == 10
    assert failures[0].target == "user/admin" and failures[0].count == 500
