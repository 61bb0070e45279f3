"""Generated hostile input, thousands of cases: whatever arrives, the answer is a result or one domain error,
never a traceback.

Decorator schemas and run inputs (hypothesis-jsonschema for inputs that must be accepted), import documents
(as data and as raw bytes through `gateway db import`), gateway.conf files, `gateway` command lines, and random
bytes sent to every method of a real gateway-daemon over TLS.  Examples are derandomized so a CI run is
repeatable; GATEWAY_FUZZ_SCALE multiplies every count (the sum at scale 1 is above 10,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import string
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import ConfigError, load_config
from gateway_daemon.core import GatewayError
from gateway_daemon.core.resources.decorators import Decorator
from gateway_daemon.core.runs.records import prepare_inputs
from gateway_daemon.rpc.gen import auth_pb2, auth_pb2_grpc
from gateway_tui.cli import main as gateway_main

from gateway_server import ADMIN_PASSWORD
from test_rpc_policy import SERVED, _bearer

SCALE = float(os.environ.get("GATEWAY_FUZZ_SCALE", "1"))


def fuzz(examples: int):
    # No shrinking: a failure is reported as found, in seconds rather than minutes of CI time.
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])


# ---------------------------------------------------------------- values
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=20))
KEYWORDS = st.sampled_from(["type", "properties", "required", "items", "$ref", "$defs", "definitions", "pattern",
                            "format", "enum", "const", "default", "minimum", "maxLength", "allOf", "anyOf",
                            "oneOf", "not", "if", "then", "additionalProperties", "writeOnly", "$id", "$schema"])
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(KEYWORDS, st.text(max_size=8)), inner, max_size=5)),
    max_leaves=30)
REFS = st.sampled_from(["#", "#/properties/a", "#/$defs/x", "http://127.0.0.1:9/x.json", "file:///etc/passwd",
                        "other.json#/a", "#/definitions/loop"])
PATTERNS = st.sampled_from(["^[a-z]+$", "(a+)+$", "([a-zA-Z]+)*$", "[", "(?P<x>a)(?P=x)", "\\"])


@st.composite
def schemas(draw) -> object:
    """Mostly object schemas, with refs, patterns and nesting an attacker would try; sometimes any JSON."""
    if draw(st.integers(0, 4)) == 0:
        return draw(JSON)
    properties = {}
    for name in draw(st.lists(st.sampled_from("abcdef"), max_size=4, unique=True)):
        prop: dict = {"type": draw(st.sampled_from(["string", "integer", "number", "boolean", "array", "object",
                                                    ["string", "null"], "nonsense"]))}
        if draw(st.booleans()):
            prop["$ref"] = draw(REFS)
        if draw(st.booleans()):
            prop["pattern"] = draw(PATTERNS)
        if draw(st.booleans()):
            prop["default"] = draw(SCALARS)
        properties[name] = prop
    schema: dict = {"type": "object", "properties": properties}
    if draw(st.booleans()):
        schema["$defs"] = {"x": {"$ref": "#/$defs/x"}, "loop": {"$ref": "#"}}
    if draw(st.booleans()):
        schema["required"] = draw(st.lists(st.sampled_from("abcdefg"), max_size=3))
    return schema


@fuzz(2500)
@given(schema=schemas(), inputs=st.dictionaries(st.sampled_from("abcdefg"), st.one_of(SCALARS, st.text(max_size=40)),
                                                max_size=4))
def test_decorator_schemas_and_inputs_get_a_result_or_a_domain_error(schema, inputs):
    decorator = Decorator(name="fuzz", schema=schema)
    try:
        decorator.validate()
    except GatewayError:
        return
    with contextlib.suppress(GatewayError):
        prepare_inputs(decorator.schema, inputs)


REALISTIC = [
    {"type": "object", "properties": {"host": {"type": "string", "minLength": 1, "maxLength": 64},
                                      "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                      "dry_run": {"type": "boolean", "default": True}},
     "required": ["host"]},
    {"type": "object", "properties": {"vlans": {"type": "array", "items": {"type": "integer"}, "maxItems": 5},
                                      "site": {"enum": ["a", "b", "c"]},
                                      "options": {"type": "object", "additionalProperties": {"type": "string"}}}},
    {"type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 20},
                                      "ratio": {"type": "number"}, "token": {"type": "string", "writeOnly": True}},
     "required": ["name"], "additionalProperties": False},
]


@pytest.mark.parametrize("schema", REALISTIC, ids=["device", "vlans", "strict"])
def test_every_input_a_decorator_allows_is_accepted(schema):
    Decorator(name="fuzz", schema=schema).validate()

    @fuzz(500)
    @given(inputs=from_schema(schema))
    def check(inputs):
        result = prepare_inputs(schema, inputs)
        assert all(result[key] == value for key, value in inputs.items())

    check()


# ---------------------------------------------------------------- import documents, as data and as bytes
@pytest.fixture(scope="module")
def engine_loop(tmp_path_factory):
    """A local engine on its own event loop, for examples that must not each pay for opening a store."""
    loop = asyncio.new_event_loop()
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path_factory.mktemp("fuzz-data"))})
    engine = open_engine(config, announce=lambda _text: None)
    yield engine, loop
    loop.run_until_complete(engine.close())
    loop.close()


SECTIONS = st.sampled_from(["repositories", "decorators", "services", "secrets", "format", "registries", "version",
                            "executable-objects", "secret-providers", "mcp_servers", "users"])
RESOURCE_KEYS = st.sampled_from(["name", "url", "reference", "type", "repository", "filename", "schema", "decorator",
                                 "secrets", "env", "tags", "timeout", "working-dir", "working_dir", "arg-format",
                                 "private-key-name", "runtime-args", "action", "vars", "description", "value",
                                 "playbooks", "exec-command", "executable-object", "provider", "default",
                                 "password-name", "runtime"])
DOCUMENTS = st.one_of(JSON, st.dictionaries(SECTIONS, st.one_of(
    st.lists(st.dictionaries(RESOURCE_KEYS, st.one_of(SCALARS, JSON), max_size=6), max_size=3), JSON), max_size=4))


@fuzz(1500)
@given(document=DOCUMENTS, strict=st.booleans())
def test_import_documents_get_a_report_or_a_domain_error(engine_loop, document, strict):
    engine, loop = engine_loop
    with contextlib.suppress(GatewayError):
        loop.run_until_complete(engine.import_db(document, dry_run=True, strict=strict))


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory):
    """An isolated local-mode `gateway` in this process: its config, data dir and working folder."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    config = root / "gateway.conf"
    config.write_text(f"[application]\ndata_dir = {root / 'data'}\n")
    saved = {k: os.environ.get(k) for k in ("GATEWAY_CONFIG", "HOME")}
    os.environ.update(GATEWAY_CONFIG=str(config), HOME=str(root))
    cwd = os.getcwd()
    os.chdir(root)
    yield root
    os.chdir(cwd)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _gateway(argv: list[str]) -> tuple[int, str]:
    """`gateway ARGV` in this process: its exit code and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = gateway_main(argv)
        except SystemExit as exc:  # argparse's --help
            code = exc.code if isinstance(exc.code, int) else 0
    return code, err.getvalue()


def _one_line_or_nothing(code: int, stderr: str) -> None:
    assert code in (0, 1, 2), (code, stderr)
    assert "Traceback" not in stderr, stderr
    if code:
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("gateway: "), stderr


YAMLISH = st.one_of(
    st.binary(max_size=400),
    st.text(alphabet=string.printable + "&*!|>-:[]{}", max_size=300).map(str.encode),
    DOCUMENTS.map(lambda d: json.dumps(d, default=str).encode()),
    st.sampled_from([b"a: &a [*a]\n", b"a: &a ['x','x']\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: [*c,*c,*c,*c]\n",
                     b"!!python/object/apply:os.system ['true']\n", b"\xff\xfe\x00", b"services: 5\n",
                     b"format: 99\n"]))


@fuzz(500)
@given(data=YAMLISH, flags=st.sampled_from([["--dry-run"], [], ["--dry-run", "--strict"]]))
def test_db_import_of_any_bytes_is_one_line_or_a_report(local_gateway, data, flags):
    path = local_gateway / "import.yaml"
    path.write_bytes(data)
    _one_line_or_nothing(*_gateway(["db", "import", str(path), *flags]))


# ---------------------------------------------------------------- gateway.conf
CONF_LINES = st.one_of(
    st.sampled_from(["[application]", "[server]", "[client]", "[runner]", "[store]", "[execution]", "[secrets]",
                     "[log]", "[client:x]", "[", "]", "= value", "mode = server", "mode = local", "mode = 'server'",
                     "port = 99999", "port = -1", "use_tls = maybe", "etcd_hosts = a:b:c", "level = LOUD",
                     "data_dir = /dev/null", "backend = etcd", "%(x)s", "key = %(missing)s"]),
    st.builds(lambda k, v: f"{k} = {v}", st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12),
              st.text(max_size=20)),
    st.text(max_size=40))


@fuzz(2000)
@given(text=st.one_of(st.lists(CONF_LINES, max_size=12).map("\n".join), st.text(max_size=200)),
       environ=st.dictionaries(st.sampled_from(["GATEWAY_APPLICATION_MODE", "GATEWAY_SERVER_PORT",
                                                "GATEWAY_STORE_BACKEND", "GATEWAY_LOG_LEVEL"]),
                               st.text(max_size=10), max_size=2))
def test_any_gateway_conf_loads_or_is_one_config_error(tmp_path_factory, text, environ):
    path = tmp_path_factory.getbasetemp() / "fuzz.conf"
    try:
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return
    try:
        load_config(str(path), environ=dict(environ, HOME=str(path.parent)))
    except ConfigError as exc:
        assert "\n" not in str(exc).strip(), str(exc)


# ---------------------------------------------------------------- command lines
VERBS = st.sampled_from(["get", "describe", "create", "edit", "delete", "run", "logs", "cancel", "whoami", "config",
                         "db", "hostkeys", "login", "logout", "nonsense"])
TOKENS = st.one_of(
    st.sampled_from(["service", "services", "repository", "decorator", "secret", "run", "runs", "user", "runner",
                     "-o", "json", "yaml", "table", "--set", "a=1", "flag", "--secret", "name=x,type=env,target=X",
                     "--filename", "main.py", "--repository", "--url", "file:///nonexistent", "--schema", "{}",
                     "--value", "--type", "python-script", "--timeout", "0", "99999999999", "--arg-format",
                     "{value:>99999999999}", "--{{.Key}} {{.Value}}", "--reveal", "--dry-run", "--help", "-h",
                     "--follow", "--limit", "-1", "--status", "x", "--", "-", "--profile", "nope"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-_=.,{}[]:'\" \t\x1b\x00é", max_size=16))


@fuzz(800)
@given(verb=VERBS, rest=st.lists(TOKENS, max_size=6))
def test_any_command_line_is_a_result_or_one_line(local_gateway, verb, rest):
    argv = [verb, *rest]
    if any("/" in token or "\x00" in token for token in argv):
        return  # paths could name anything on this machine; the verbs that take files are fuzzed above
    _one_line_or_nothing(*_gateway(argv))


# ---------------------------------------------------------------- random bytes to a real server
ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED,
           grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.ABORTED,
           grpc.StatusCode.RESOURCE_EXHAUSTED}
# Calls that would end the session the fuzzing uses (they are fuzzed without a key: refused before parsing).
KEEPS_SESSION = {"/gateway.v1.AuthService/Logout", "/gateway.v1.AuthService/ChangePassword",
                 "/gateway.v1.UserService/UpdateUser", "/gateway.v1.UserService/DeleteUser"}


@pytest.fixture(scope="module")
def admin_channel(daemon, certs):
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials) as channel:
        key = auth_pb2_grpc.AuthServiceStub(channel).Login(auth_pb2.LoginRequest(
            username="admin", password=daemon.admin_password, new_password=ADMIN_PASSWORD)).api_key
        yield channel, key


@fuzz(2000)
@given(method=st.sampled_from(sorted(SERVED)), payload=st.binary(max_size=300))
def test_random_bytes_to_every_method_get_a_status_never_a_crash(daemon, admin_channel, method, payload):
    channel, key = admin_channel
    metadata = () if method in KEEPS_SESSION else _bearer(key)
    shape = SERVED[method]
    try:
        if shape.client_streaming:
            list(channel.stream_stream(method)(iter([payload]), metadata=metadata, timeout=3))
        elif shape.server_streaming:  # a watch that parsed would go on: a short deadline ends it
            list(channel.unary_stream(method)(payload, metadata=metadata, timeout=3))
        else:
            channel.unary_unary(method)(payload, metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        streaming = shape.server_streaming or shape.client_streaming
        allowed = ANSWERS | ({grpc.StatusCode.DEADLINE_EXCEEDED} if streaming else set())
        assert exc.code() in allowed, (method, payload, exc.code(), exc.details())


def test_the_server_logged_no_traceback_while_fuzzed(daemon):
    log = Path(daemon.log).read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500:][:3000]
