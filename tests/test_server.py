"""Server and client modes: a real `gateway-daemon` on 127.0.0.1 with TLS certificates made here, and the real
`gateway` command in client mode, its API keys in a real keyring backend (keyrings.alt's file keyring)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway_daemon.rpc.gen import common_pb2, common_pb2_grpc, runs_pb2, runs_pb2_grpc

from gateway_server import ADMIN_PASSWORD, SCRIPT, Client, Daemon, free_port
from cli_helpers import BIN, DAEMON, clean_environ, gw, one_error_line, run_command
from gitutil import new_repo


@pytest.fixture(scope="module")
def admin(daemon, tmp_path_factory, certs) -> Client:
    client = Client(tmp_path_factory.mktemp("admin"), daemon.port, certs["ca"])
    first = client("login", "--username", "admin", "--password-stdin", stdin=daemon.admin_password + "\n")
    assert first.returncode == 1
    assert one_error_line(first) == ("gateway: the password of admin is temporary and must be changed first: "
                                     "log in again with a new password (gateway login --change-password)")
    changed = client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                        stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    assert "password changed; logged in to 127.0.0.1" in changed.stdout and "PlaintextKeyring" in changed.stdout
    return client


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("origin")
    new_repo(repo, {"main.py": SCRIPT})
    return repo


@pytest.fixture(scope="module")
def service(admin, origin) -> str:
    admin.ok("create", "repository", "apps", "--url", str(origin))
    admin.ok("create", "secret", "token", "--value-file", "-", stdin="t0ken-value")
    admin.ok("create", "decorator", "form", "--schema", "-", stdin=json.dumps(
        {"type": "object", "properties": {"name": {"type": "string"}, "sleep": {"type": "number"},
                                          "exit": {"type": "integer"}}, "required": ["name"]}))
    admin.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py",
             "--decorator", "form", "--secret", "name=token,type=env,target=TOKEN")
    return "hello"


def test_the_temporary_admin_password_is_printed_once_and_stored_nowhere(daemon, admin):
    assert daemon.admin_password
    store = (daemon.folder / "data" / "gateway.db").read_bytes()
    assert daemon.admin_password.encode() not in store and ADMIN_PASSWORD.encode() not in store
    assert daemon.log.read_text().count(daemon.admin_password) == 1


def test_wrong_password_and_unknown_user(daemon, certs, tmp_path):
    client = Client(tmp_path / "c", daemon.port, certs["ca"])
    for user, password in (("admin", "not-the-password"), ("nobody", "whatever-it-is")):
        result = client("login", "--username", user, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 1
        assert one_error_line(result) == "gateway: wrong username or password"
    result = client("get", "services")
    assert result.returncode == 1
    assert one_error_line(result) == f"gateway: not logged in to 127.0.0.1:{daemon.port}: run gateway login"


def test_everything_local_mode_does_works_against_the_server(admin, service):
    listed = json.loads(admin.ok("get", "services", "-o", "json").stdout)
    assert [s["name"] for s in listed] == ["hello"]
    described = json.loads(admin.ok("describe", "decorator", "form", "-o", "json").stdout)
    assert described["schema"]["required"] == ["name"]
    result = admin("run", "service", "hello", "--set", "name=ops")
    assert result.returncode == 0, result.stderr
    assert "hello ops token ******" in result.stdout
    failing = admin("run", "service", "hello", "--set", "name=x", "--set", "exit=3")
    assert failing.returncode == 1 and "failed: exit code 3" in failing.stderr
    bad = admin("run", "service", "hello", "--set", "exit=1")
    assert bad.returncode == 1
    assert one_error_line(bad) == "gateway: inputs do not match the decorator: name: 'name' is a required property"
    runs = json.loads(admin.ok("get", "runs", "--service", "hello", "-o", "json").stdout)
    assert [r["status"] for r in runs][:2] == ["failed", "succeeded"]
    assert {r["started_by"] for r in runs} == {"admin"}
    logs = admin.ok("logs", runs[-1]["id"])
    assert "hello ops token ******" in logs.stdout and "t0ken-value" not in logs.stdout
    assert admin.ok("describe", "secret", "token", "--reveal", "-o", "json").stdout.count("t0ken-value") == 1
    assert "t0ken-value" not in admin.ok("get", "secrets", "-o", "json").stdout
    in_use = admin("delete", "repository", "apps")
    assert in_use.returncode == 1
    assert one_error_line(in_use) == "gateway: repository 'apps' is in use by service hello; change or delete those first"
    missing = admin("describe", "service", "nope")
    assert missing.returncode == 1 and one_error_line(missing) == "gateway: service 'nope' not found"
    admin.ok("edit", "service", "hello", "--description", "says hello")
    assert json.loads(admin.ok("describe", "service", "hello", "-o", "json").stdout)["description"] == "says hello"
    exported = admin.ok("db", "export").stdout
    assert "t0ken-value" not in exported and "name: hello" in exported


def test_users_admins_and_non_admins(daemon, admin, certs, tmp_path):
    admin.ok("create", "user", "bob", "--password-stdin", stdin="bob-password-1\n")
    users = json.loads(admin.ok("get", "users", "-o", "json").stdout)
    assert {u["name"]: u["admin"] for u in users} == {"admin": True, "bob": False}
    assert all(u["created_at"] for u in users)
    assert next(u for u in users if u["name"] == "admin")["last_login_at"]

    bob = Client(tmp_path / "bob", daemon.port, certs["ca"])
    bob.login("bob", "bob-password-1")
    denied = bob("get", "users")
    assert denied.returncode == 1
    assert one_error_line(denied) == "gateway: bob is not an admin: user management needs an admin"
    assert bob.ok("get", "services", "-o", "json").stdout.strip() != "[]"  # everyone may use the gateway

    myself = admin("delete", "user", "admin")
    assert myself.returncode == 1 and one_error_line(myself) == "gateway: you cannot delete yourself"
    last = admin("edit", "user", "admin", "--no-admin")
    assert one_error_line(last) == "gateway: you cannot take away your own admin rights"
    short = admin("create", "user", "carol", "--password-stdin", stdin="short\n")
    assert one_error_line(short) == "gateway: a password needs at least 8 characters"
    assert "carol" not in admin.ok("get", "users").stdout

    # A new password for bob revokes every key he has.
    admin.ok("edit", "user", "bob", "--password-stdin", stdin="bob-password-2\n")
    revoked = bob("get", "services")
    assert revoked.returncode == 1
    assert one_error_line(revoked) == "gateway: the API key is not valid (revoked or unknown): run gateway login"
    bob.login("bob", "bob-password-2")
    bob.ok("logout")
    after = bob("get", "services")
    assert one_error_line(after) == f"gateway: not logged in to 127.0.0.1:{daemon.port}: run gateway login"
    admin.ok("delete", "user", "bob")


def test_changing_your_password_revokes_your_other_keys(daemon, admin, certs, tmp_path):
    admin.ok("create", "user", "dave", "--password-stdin", stdin="dave-password-1\n")
    laptop, desktop = (Client(tmp_path / name, daemon.port, certs["ca"]) for name in ("laptop", "desktop"))
    laptop.login("dave", "dave-password-1")
    desktop.login("dave", "dave-password-1")
    laptop.ok("login", "--username", "dave", "--password-stdin", "--change-password",
              stdin="dave-password-1\ndave-password-2\n")
    assert laptop.ok("whoami", "-o", "json")
    assert desktop("get", "services").returncode == 1


def test_an_expired_key_is_refused(tmp_path, certs):
    daemon = Daemon(tmp_path / "short", certs, expiration="0.03")  # keys live 1.8 s
    daemon.start()
    try:
        client = Client(tmp_path / "c", daemon.port, certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
        client.ok("get", "services")
        time.sleep(2.2)
        expired = client("get", "services")
        assert expired.returncode == 1
        assert one_error_line(expired) == f"gateway: the API key for 127.0.0.1:{daemon.port} has expired: run gateway login"
        # The server refuses it too, not only the client's own bookkeeping.
        key = _admin_key(daemon, certs)
        time.sleep(2.2)
        with _channel(daemon, certs) as channel, pytest.raises(grpc.RpcError) as error:
            common_pb2_grpc.InfoServiceStub(channel).GetInfo(common_pb2.Empty(),
                                                             metadata=(("authorization", f"Bearer {key}"),))
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.value.details() == "the API key has expired: run gateway login"
    finally:
        daemon.stop()


def test_tls_mismatches_and_a_server_that_is_down(daemon, admin, certs, tmp_path):
    plain = Client(tmp_path / "plain", daemon.port, None, use_tls=False)
    result = plain("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 1
    assert one_error_line(result).startswith(f"gateway: the gateway server at 127.0.0.1:{daemon.port} is unreachable")
    wrong_ca = Client(tmp_path / "wrong", daemon.port, certs["other_ca"])
    result = wrong_ca("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"gateway: cannot talk TLS with the gateway server at 127.0.0.1:{daemon.port}") or \
        line.startswith(f"gateway: the gateway server at 127.0.0.1:{daemon.port} is unreachable"), line
    down = Client(tmp_path / "down", free_port(), certs["ca"])
    result = down("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 1
    assert "is unreachable" in one_error_line(result)


def _channel(daemon, certs) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    return grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials)


def test_health_reflection_and_calls_without_a_key(daemon, certs):
    with _channel(daemon, certs) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING
        assert health.Check(health_pb2.HealthCheckRequest(
            service="gateway.v1.RunService")).status == health_pb2.HealthCheckResponse.SERVING
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for reply in replies for s in reply.list_services_response.service}
        assert {"gateway.v1.RunService", "gateway.v1.AuthService", "grpc.health.v1.Health"} <= names
        with pytest.raises(grpc.RpcError) as error:
            common_pb2_grpc.InfoServiceStub(channel).GetInfo(common_pb2.Empty())
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.value.details() == "not logged in: run gateway login"


def test_malformed_requests_get_invalid_argument(daemon, admin, service, certs):
    key = _admin_key(daemon, certs)
    metadata = (("authorization", f"Bearer {key}"),)
    with _channel(daemon, certs) as channel:
        runs = runs_pb2_grpc.RunServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            list(runs.RunService(runs_pb2.RunServiceRequest(name="hello", inputs_json="{not json"), metadata=metadata))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as error:
            runs.GetRun(runs_pb2.RunIdRequest(id="../../etc"), metadata=metadata)
        assert error.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
        with pytest.raises(grpc.RpcError) as error:
            list(common_pb2_grpc.InfoServiceStub(channel).Watch(common_pb2.WatchRequest(kind="bogus"),
                                                                 metadata=metadata))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _admin_key(daemon, certs) -> str:
    from gateway_daemon.rpc.gen import auth_pb2, auth_pb2_grpc

    with _channel(daemon, certs) as channel:
        return auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username="admin", password=ADMIN_PASSWORD)).api_key


def test_reset_password_on_the_server_host(daemon, admin, tmp_path, certs):
    admin.ok("create", "user", "erin", "--password-stdin", stdin="erin-password-1\n")
    env = clean_environ(None)
    reset = run_command(DAEMON, ["--config", str(daemon.config), "user", "reset-password", "erin"], env)
    assert reset.returncode == 0, reset.stderr
    temporary = re.search(r"new temporary password for erin: (\S+)", reset.stdout).group(1)
    erin = Client(tmp_path / "erin", daemon.port, certs["ca"])
    must = erin("login", "--username", "erin", "--password-stdin", stdin=temporary + "\n")
    assert "temporary and must be changed" in one_error_line(must)
    erin.ok("login", "--username", "erin", "--password-stdin", "--change-password",
            stdin=f"{temporary}\nerin-password-2\n")
    missing = run_command(DAEMON, ["--config", str(daemon.config), "user", "reset-password", "nobody"], env)
    assert missing.returncode == 1 and one_error_line(missing) == "gateway-daemon: user 'nobody' not found"


def test_feature_table_local_mode_has_no_users_and_no_login(tmp_path):
    env = clean_environ(tmp_path, GATEWAY_APPLICATION_DATA_DIR=str(tmp_path / "data"))
    run = lambda *args, stdin=None: gw(env, *args, stdin=stdin, timeout=60)  # noqa: E731
    for args in (("get", "users"), ("create", "user", "x", "--password-stdin"), ("delete", "user", "x")):
        result = run(*args, stdin="password-123\n")
        assert result.returncode == 1
        assert one_error_line(result) == ("gateway: user management needs a server: in local mode there are no "
                                          "users (set mode = client and log in)")
    login = run("login", "--username", "admin", "--password-stdin", stdin="x\n")
    assert one_error_line(login) == ("gateway: login is for client mode (this configuration is mode = local); "
                                     "local mode needs no login")
    # run automations, create secrets, services and repositories: yes, with no login
    assert run("create", "secret", "s", "--value", "v").returncode == 0
    assert run("get", "secrets").returncode == 0


def test_sigterm_lets_a_run_in_flight_finish(tmp_path, certs, origin):
    daemon = Daemon(tmp_path / "graceful", certs)
    daemon.start()
    client = Client(tmp_path / "c", daemon.port, certs["ca"])
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    client.ok("create", "repository", "apps", "--url", str(origin))
    client.ok("create", "service", "python-script", "slow", "--repository", "apps", "--filename", "main.py")
    running = subprocess.Popen([str(BIN / "gateway"), "run", "service", "slow", "--set", "sleep=2", "--set", "name=z"],
                               env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while "running" not in client.ok("get", "runs", "-o", "json").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert daemon.stop(signal.SIGTERM) == 0
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0, err
    assert "hello z" in out
    daemon.start()  # what was acknowledged is still there
    record = json.loads(client.ok("get", "runs", "-o", "json").stdout)[0]
    assert record["status"] == "succeeded" and record["service"] == "slow"
    daemon.stop()


def test_generated_code_is_fresh(tmp_path):
    from gateway_daemon.rpc import protogen

    fresh = {p.name: p.read_text() for p in protogen.generate(tmp_path / "gen")}
    committed = {p.name: p.read_text() for p in protogen.TARGET.iterdir() if p.suffix in (".py", ".pyi")
                 and p.name != "__init__.py"}
    fresh.pop("__init__.py", None)
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"regenerate with: .venv/bin/python -m gateway_daemon.rpc.protogen ({', '.join(stale)})"
