"""Bad input, tried the way an attacker or an unlucky operator would: each gets one line on stderr, exit 1 (or 2 for
usage), nothing stored, and a server keeps answering everyone else.

Everything here goes through the real `gateway` command (local mode in a Sandbox, client mode against a real
`gateway-daemon`) or real gRPC calls to that daemon; the daemon's memory is read from /proc.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway_daemon.rpc.gen import auth_pb2, auth_pb2_grpc

from cli_helpers import Sandbox
from gateway_server import ADMIN_PASSWORD, Client, Daemon
from gitutil import new_repo

SCRIPT = "import sys\nprint('args', sys.argv[1:])\n"


@pytest.fixture
def sb(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


@pytest.fixture
def origin(tmp_path) -> Path:
    repo = tmp_path / "origin"
    new_repo(repo, {"main.py": SCRIPT})
    return repo


def _schema(sb: Sandbox, schema, name: str = "schema.json") -> str:
    path = sb.root / name
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return str(path)


def _refused_unchanged(sb: Sandbox, before, result, code: int, *fragments: str) -> str:
    line = result.fails(code, *fragments)
    assert sb.stored() == before, "a refused command changed the store"
    return line


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()
    server.server_close()


def _deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def _deep_text(levels: int) -> str:
    """A schema `levels` objects deep, as JSON text (too deep for json.dumps to write)."""
    return '{"type":"object","properties":{"x":' * levels + '{"type":"string"}' + "}}" * levels


# ---------------------------------------------------------------- decorators
def test_a_ref_outside_the_document_is_refused_and_nothing_is_fetched(sb, web):
    url, hits = web
    sb.gateway("create", "decorator", "seed", "--schema", _schema(sb, {"type": "object"})).ok()
    before = sb.stored()
    for target in (f"{url}/remote.json", "file:///etc/passwd", "/etc/passwd", "other.json#/x"):
        schema = {"type": "object", "properties": {"name": {"$ref": target}}}
        result = sb.gateway("create", "decorator", "remote", "--schema", _schema(sb, schema))
        _refused_unchanged(sb, before, result, 1, "decorator remote", "$ref", "inside")
    assert hits == []


def test_refs_inside_the_document_still_work(sb, origin):
    schema = {"type": "object", "$defs": {"name": {"type": "string", "minLength": 2}},
              "properties": {"name": {"$ref": "#/$defs/name"}, "tree": {"type": "object", "$ref": "#/$defs/tree"}},
              "required": ["name"]}
    schema["$defs"]["tree"] = {"type": "object", "properties": {"children": {"type": "array",
                                                                            "items": {"$ref": "#/$defs/tree"}}}}
    sb.gateway("create", "decorator", "form", "--schema", _schema(sb, schema)).ok()
    sb.gateway("create", "repository", "apps", "--url", str(origin)).ok()
    sb.gateway("create", "service", "python-script", "hello", "--repository", "apps", "--decorator", "form").ok()
    sb.gateway("run", "service", "hello", "--set", "name=ok", "--set", 'tree={"children": [{"children": []}]}').ok()
    sb.gateway("run", "service", "hello", "--set", "name=x").fails(1, "name")


def test_a_ref_that_loops_or_a_schema_nested_too_deep_is_refused(sb):
    sb.gateway("create", "decorator", "seed", "--schema", _schema(sb, {"type": "object"})).ok()
    before = sb.stored()
    loops = [
        {"type": "object", "$ref": "#"},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"$ref": "#/$defs/b"},
                                                                                "b": {"allOf": [{"$ref": "#/$defs/a"}]}}},
    ]
    for schema in loops:
        result = sb.gateway("create", "decorator", "loop", "--schema", _schema(sb, schema))
        _refused_unchanged(sb, before, result, 1, "decorator loop", "$ref", "loop")
    for levels in (100, 5000):
        result = sb.gateway("create", "decorator", "deep", "--schema", _schema(sb, _deep_text(levels)))
        _refused_unchanged(sb, before, result, 1, "deep", "32 levels")
    result = sb.gateway("create", "decorator", "deep", "--schema", _schema(sb, "[" * 200000 + "]" * 200000))
    _refused_unchanged(sb, before, result, 1, "32 levels")


def test_a_schema_bigger_than_the_limit_is_refused_quickly(sb):
    sb.gateway("create", "decorator", "seed", "--schema", _schema(sb, {"type": "object"})).ok()
    before = sb.stored()
    big = {"type": "object", "properties": {f"field{i}": {"type": "string", "description": "d" * 200}
                                            for i in range(75000)}}
    path = _schema(sb, big)
    assert Path(path).stat().st_size > 15 * 1024 * 1024
    started = time.monotonic()
    result = sb.gateway("create", "decorator", "big", "--schema", path)
    _refused_unchanged(sb, before, result, 1, path, "larger than 2 MiB")
    # Within the file limit, but more than the schema's own 1 MiB.
    path = _schema(sb, {"type": "object", "description": "d" * (1024 * 1024 + 10)}, "long.json")
    _refused_unchanged(sb, before, sb.gateway("create", "decorator", "big", "--schema", path), 1, "at most 1 MiB")
    assert time.monotonic() - started < 10


def test_a_pattern_that_backtracks_without_end_is_cut_off(sb, origin):
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"},
                                               "other": {"type": "string", "pattern": "^(a|a)+$"}},
              "patternProperties": {"^(b|b)+$": {"type": "string"}}, "additionalProperties": False}
    sb.gateway("create", "decorator", "form", "--schema", _schema(sb, schema)).ok()
    sb.gateway("create", "repository", "apps", "--url", str(origin)).ok()
    sb.gateway("create", "service", "python-script", "hello", "--repository", "apps", "--decorator", "form").ok()
    sb.gateway("run", "service", "hello", "--set", "name=aaaa").ok()
    for item in ("name=" + "a" * 60 + "!", "other=" + "a" * 60 + "!", "b" * 60 + "!=x"):
        started = time.monotonic()
        result = sb.gateway("run", "service", "hello", "--set", item, timeout=60)
        result.fails(1, "inputs do not match the decorator")
        assert time.monotonic() - started < 20, result
    assert sb.gateway("get", "runs", "-o", "json").json().__len__() == 1


# ---------------------------------------------------------------- files that never end
def test_files_that_never_end_are_refused_with_the_limit(sb):
    sb.gateway("create", "decorator", "seed", "--schema", _schema(sb, {"type": "object"})).ok()
    sb.gateway("create", "secret", "token", "--value", "v").ok()
    before = sb.stored()
    cases = [
        (("create", "decorator", "zero", "--schema", "/dev/zero"), 1),
        (("edit", "decorator", "seed", "--schema", "/dev/zero"), 1),
        (("create", "secret", "zero", "--value-file", "/dev/zero"), 1),
        (("edit", "secret", "token", "--value-file", "/dev/zero"), 1),
        (("db", "import", "/dev/zero"), 1),
    ]
    for argv, code in cases:
        result = sb.gateway(*argv, timeout=60)
        _refused_unchanged(sb, before, result, code, "/dev/zero", "larger than")
    result = sb.gateway("--config", "/dev/zero", "get", "services", timeout=60)
    result.fails(2, "/dev/zero", "larger than 1 MiB")
    assert sb.stored() == before


def test_a_yaml_alias_bomb_is_refused(sb):
    sb.gateway("create", "decorator", "seed", "--schema", _schema(sb, {"type": "object"})).ok()
    before = sb.stored()
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 10):
        prev, this = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{this}: &{this} [{', '.join('*' + prev for _ in range(10))}]")
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 800
    path = sb.root / "bomb.yaml"
    path.write_text(bomb)
    started = time.monotonic()
    result = sb.gateway("db", "import", str(path), timeout=60)
    _refused_unchanged(sb, before, result, 1, str(path), "alias")
    result = sb.gateway("create", "decorator", "bomb", "--schema", str(path), timeout=60)
    _refused_unchanged(sb, before, result, 1, str(path), "alias")
    assert time.monotonic() - started < 20
    # An ordinary export, aliases and all, still comes back in.
    sb.gateway("db", "export", "-o", str(sb.root / "out.yaml")).ok()
    sb.gateway("db", "import", str(sb.root / "out.yaml")).ok()


# ---------------------------------------------------------------- arg-format
BAD_FORMATS = ["{value:>99999999999}", "{value!r}", "{key.__class__}", "{value[0]}", "{0}", "{}", "{other}",
               "--{key}={value:{key}}"]


def test_an_arg_format_takes_only_key_and_value(sb):
    sb.gateway("create", "repository", "apps", "--url", "https://example.com/x.git").ok()
    sb.gateway("create", "service", "executable", "tool", "--repository", "apps", "--filename", "run.sh").ok()
    before = sb.stored()
    for fmt in BAD_FORMATS:
        result = sb.gateway("create", "service", "executable", "bad", "--repository", "apps", "--filename", "run.sh",
                            "--arg-format", fmt, timeout=60)
        _refused_unchanged(sb, before, result, 1, "arg-format", "{key}", "{value}")
        result = sb.gateway("edit", "service", "tool", "--arg-format", fmt, timeout=60)
        _refused_unchanged(sb, before, result, 1, "arg-format")
    for fmt in ("--{key}={value}", "{key} {value}", "-D{key}={{literal}}{value}", "{value}"):
        sb.gateway("edit", "service", "tool", "--arg-format", fmt).ok()


# ---------------------------------------------------------------- what people read
def test_control_characters_never_reach_the_terminal_but_json_stays_exact(sb):
    hostile = "ok\x1b]0;owned\x07\x1b[2J\x1b[31mred\rback\x08\x9b1m\u202eend"
    sb.gateway("create", "repository", "apps", "--url", "https://example.com/x.git", "--description", hostile).ok()
    sb.gateway("create", "secret", "token", "--value", "v", "--description", hostile).ok()
    for argv in (("get", "repositories"), ("describe", "repository", "apps"), ("get", "secrets"),
                 ("describe", "secret", "token")):
        out = sb.gateway(*argv).ok().out
        for bad in ("\x1b", "\x07", "\r", "\x08", "\x9b", "\u202e"):
            assert bad not in out, (argv, out)
        assert "ok" in out and "end" in out, out
    # YAML is for scripts: it keeps the text, its own escapes keep control characters off the terminal.
    yaml_out = sb.gateway("get", "repositories", "-o", "yaml").ok().out
    assert not any(c in yaml_out for c in ("\x1b", "\x07", "\r", "\x08", "\x9b"))
    assert sb.gateway("describe", "repository", "apps", "-o", "json").json()["description"] == hostile
    assert sb.gateway("get", "secrets", "-o", "json").json()[0]["description"] == hostile


def test_a_database_truncated_to_nothing_is_reported_and_kept(sb):
    sb.gateway("create", "secret", "token", "--value", "v").ok()
    sb.db.write_bytes(b"")
    for argv in (("get", "secrets"), ("create", "secret", "other", "--value", "v")):
        result = sb.gateway(*argv)
        result.fails(1, str(sb.db), "empty")
        assert sb.db.stat().st_size == 0


# ---------------------------------------------------------------- a real server
@pytest.fixture(scope="module")
def admin(daemon, tmp_path_factory, certs) -> Client:
    client = Client(tmp_path_factory.mktemp("admin"), daemon.port, certs["ca"])
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    client.certs = certs  # for the raw gRPC probes
    return client


@pytest.fixture(scope="module")
def served(admin, tmp_path_factory) -> str:
    repo = tmp_path_factory.mktemp("origin")
    new_repo(repo, {"main.py": SCRIPT})
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a|a)+$"}}}
    admin.ok("create", "decorator", "form", "--schema", "-", stdin=json.dumps(schema))
    admin.ok("create", "repository", "apps", "--url", str(repo))
    admin.ok("create", "service", "python-script", "hello", "--repository", "apps", "--decorator", "form")
    return "hello"


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_the_server_refuses_the_same_bad_input_in_one_line(admin, served, tmp_path):
    before = admin.ok("get", "decorators", "-o", "json").stdout
    for schema in ({"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}},
                   {"type": "object", "$ref": "#"}, _deep(100)):
        result = admin("create", "decorator", "bad", "--schema", "-", stdin=json.dumps(schema))
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1 and "decorator bad" in result.stderr, result.stderr
    for fmt in BAD_FORMATS[:3]:
        result = admin("create", "service", "executable", "bad", "--repository", "apps", "--filename", "x",
                       "--arg-format", fmt)
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "arg-format" in result.stderr
    started = time.monotonic()
    result = admin("run", "service", served, "--set", "name=" + "a" * 60 + "!")
    assert result.returncode == 1 and "inputs do not match" in result.stderr, result.stderr
    assert time.monotonic() - started < 20
    assert admin.ok("get", "decorators", "-o", "json").stdout == before


def test_a_big_schema_sent_straight_to_the_server_is_refused_without_stalling_it(daemon, admin, certs):
    from gateway_daemon.rpc.gen import decorators_pb2, decorators_pb2_grpc

    key = _api_key(daemon, certs)
    big = {"type": "object", "properties": {f"f{i}": {"type": "string", "description": "d" * 200}
                                            for i in range(75000)}}

    async def probe():
        async with _aio_channel(daemon, certs) as channel:
            stub = decorators_pb2_grpc.DecoratorServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            create = asyncio.ensure_future(stub.CreateDecorator(
                decorators_pb2.Decorator(name="big", schema_json=json.dumps(big)),
                metadata=(("authorization", f"Bearer {key}"),), timeout=60))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            waited = time.monotonic() - started
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await create
            return waited, error.value

    waited, error = asyncio.run(probe())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "1 MiB" in error.details()
    assert waited < 2


def _aio_channel(daemon, certs):
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    return grpc.aio.secure_channel(f"127.0.0.1:{daemon.port}", credentials,
                                   options=[("grpc.max_send_message_length", -1)])


def _api_key(daemon, certs) -> str:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials) as channel:
        return auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username="admin", password=ADMIN_PASSWORD)).api_key


def test_wrong_logins_do_not_stall_everyone_else(daemon, admin):
    async def probe():
        async with _aio_channel(daemon, admin.certs) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            stop = time.monotonic() + 4
            answered = 0

            async def wrong(index: int):
                nonlocal answered
                while time.monotonic() < stop:
                    with pytest.raises(grpc.aio.AioRpcError) as error:
                        await auth.Login(auth_pb2.LoginRequest(username="admin", password=f"wrong-{index}"),
                                         timeout=120)
                    # refused, or over the bound on calls without a login in flight (RESOURCE_EXHAUSTED, unread)
                    assert error.value.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                                  grpc.StatusCode.RESOURCE_EXHAUSTED)
                    answered += 1

            logins = [asyncio.ensure_future(wrong(i)) for i in range(200)]
            await asyncio.sleep(0.3)
            waits = []
            while time.monotonic() < stop - 0.5:
                started = time.monotonic()
                await health.Check(health_pb2.HealthCheckRequest(), timeout=120)
                waits.append(time.monotonic() - started)
                await asyncio.sleep(0.05)
            await asyncio.gather(*logins)
            assert answered >= 200
            return waits

    waits = asyncio.run(probe())
    assert waits, "the wrong logins were all answered before a health check could be sent"
    assert max(waits) < 1.0, f"health checks waited up to {max(waits):.2f} s behind wrong logins: {waits}"


def test_unauthenticated_big_messages_cost_the_server_no_memory(tmp_path, certs):
    from gateway_daemon.rpc.gen import common_pb2, decorators_pb2

    server = Daemon(tmp_path / "server", certs)
    server.start()
    try:
        pid = server.process.pid
        baseline = _vm(pid, "VmRSS")
        text = "x" * (30 * 1024 * 1024)
        bodies = {"/gateway.v1.DecoratorService/CreateDecorator":
                  decorators_pb2.Decorator(name="x", schema_json=text).SerializeToString(),
                  "/gateway.v1.InfoService/ImportDb": common_pb2.ImportRequest(document_json=text).SerializeToString()}

        async def flood():
            async with _aio_channel(server, certs) as channel:
                calls = [channel.unary_unary(method)(body, timeout=120) for method, body in bodies.items()
                         for _ in range(8)]
                results = await asyncio.gather(*calls, return_exceptions=True)
                return [r.code() if isinstance(r, grpc.aio.AioRpcError) else r for r in results]

        codes = asyncio.run(flood())
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 16
        peak = _vm(pid, "VmHWM")
        assert peak - baseline < 150 * 1024 * 1024, f"RSS {baseline >> 20} MiB -> peak {peak >> 20} MiB"
    finally:
        server.stop()
