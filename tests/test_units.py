"""The pure functions under the run path and the wire, each on its own: argv building, input coercion, proto
conversion. No subprocess, no server, no store: a failure here names the function that broke."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway_daemon.core.resources.decorators import Decorator
from gateway_daemon.core.errors import FailedPrecondition, InvalidArgument
from gateway_daemon.core.resources.repositories import Repository
from gateway_daemon.core.resources.runners import RunnerInfo
from gateway_daemon.core.runs.records import OutputLine, Run, RunEvent, coerce_input, parse_set, prepare_inputs
from gateway_daemon.core.resources.secrets import Secret
from gateway_daemon.core.resources.services import SecretRef, Service
from gateway_daemon.execution import command_lines, tofu
from gateway_daemon.rpc import convert

PYTHON = "/opt/python/bin/python3"  # build() only names the interpreter, never starts it


def service(**fields) -> Service:
    return Service(name="svc", repository="repo", **fields)


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A checked-out working directory with the files the service types run."""
    work = tmp_path / "tree"
    work.mkdir()
    (work / "main.py").write_text("print('hi')\n")
    (work / "site.yml").write_text("- hosts: localhost\n")
    (work / "tools").mkdir()
    (work / "tools" / "ping.sh").write_text("#!/bin/sh\necho ping\n")
    (work / "tools" / "ping.sh").chmod(0o644)  # a checkout may lose the execute bit
    return work


@pytest.fixture
def fake_tofu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A `tofu` on PATH (build() only looks it up), and nothing else found there."""
    tofu = executable(tmp_path / "bin" / "tofu")
    monkeypatch.setenv("PATH", str(tofu.parent))
    return str(tofu)


# ---------------------------------------------------------------- argv: execution/command_lines.py
def test_python_args_turn_inputs_into_flags() -> None:
    inputs = {"name": "x", "count": 3, "ratio": 0.5, "debug": True, "quiet": False, "verbose": True,
              "hosts": ["a", "b"], "opts": {"k": 1}, "empty": None}
    assert command_lines.python_args(inputs, booleans={"debug", "quiet"}) == [
        "--name=x", "--count=3", "--ratio=0.5", "--debug", "--verbose=true",
        '--hosts=["a","b"]', '--opts={"k":1}', "--empty=",
    ]
    assert command_lines.python_args({}, set()) == []


def test_formatted_args_split_a_format_with_spaces() -> None:
    assert command_lines.formatted_args("--{key}={value}", {"a": 1, "b": False}) == ["--a=1", "--b=false"]
    assert command_lines.formatted_args("--{key} {value}", {"a": "x y", "b": [1]}) == ["--a", "x y", "--b", "[1]"]
    assert command_lines.formatted_args("{value}", {"a": "only"}) == ["only"]


def test_tofu_action_is_the_first_runtime_argument_or_plan() -> None:
    assert tofu.tofu_action(service(type="opentofu-plan")) == ("plan", [])
    assert tofu.tofu_action(service(type="opentofu-plan", runtime_args=["apply", "-parallelism=2"])) \
        == ("apply", ["-parallelism=2"])
    assert tofu.tofu_action(service(type="opentofu-plan", runtime_args=["-refresh=false"])) \
        == ("plan", ["-refresh=false"])


def test_build_python_script(tree: Path) -> None:
    svc = service(type="python-script", runtime_args=["-x"])
    assert command_lines.build(svc, tree, {"name": "a", "on": True}, {"on"}, PYTHON) == [
        [PYTHON, "-u", str(tree / "main.py"), "-x", "--name=a", "--on"]]
    assert command_lines.build(service(type="python-script", filename="main.py"), tree, {}, set(), PYTHON) == [
        [PYTHON, "-u", str(tree / "main.py")]]
    with pytest.raises(FailedPrecondition, match=r"service svc: other\.py not found in \."):
        command_lines.build(service(type="python-script", filename="other.py"), tree, {}, set(), PYTHON)


def test_build_ansible_playbook(tree: Path) -> None:
    inputs = {"host": "h1", "port": 22}
    steps = command_lines.build(service(type="ansible-playbook", runtime_args=["--check"]), tree, inputs, set(), PYTHON,
                           inputs_file="/tmp/inputs.yml")
    # The inputs go in a file (never on the command line, never templated: test_hostile_files.py runs them).
    assert steps == [[command_lines.ansible_binary(), "--check", "--extra-vars", "@/tmp/inputs.yml", str(tree / "site.yml")]]
    with pytest.raises(FailedPrecondition, match="playbook other.yml not found"):
        command_lines.build(service(type="ansible-playbook", filename="other.yml"), tree, {}, set(), PYTHON)


def test_build_opentofu_plan(tree: Path, fake_tofu: str) -> None:
    plan = command_lines.build(service(type="opentofu-plan"), tree, {"region": "eu", "n": 2}, set(), PYTHON)
    assert plan == [[fake_tofu, "init", "-input=false", "-no-color"],
                    [fake_tofu, "plan", "-input=false", "-no-color", "-var", "region=eu", "-var", "n=2"]]
    apply = command_lines.build(service(type="opentofu-plan", runtime_args=["apply", "-lock=false"]), tree, {}, set(),
                           PYTHON)
    assert apply[1] == [fake_tofu, "apply", "-input=false", "-no-color", "-auto-approve", "-lock=false"]
    destroy = command_lines.build(service(type="opentofu-plan", runtime_args=["destroy"]), tree, {}, set(), PYTHON)
    assert destroy[1][-1] == "-auto-approve"


def test_build_opentofu_plan_without_tofu(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FailedPrecondition, match="OpenTofu is not installed: no 'tofu' on PATH"):
        command_lines.build(service(type="opentofu-plan"), tree, {}, set(), PYTHON)


def test_build_executable_from_the_tree_or_path(tree: Path, fake_tofu: str) -> None:
    in_tree = service(type="executable", filename="tools/ping.sh", arg_format="--{key} {value}", runtime_args=["-q"])
    steps = command_lines.build(in_tree, tree, {"count": 2}, set(), PYTHON)
    assert steps == [[str(tree / "tools" / "ping.sh"), "-q", "--count", "2"]]
    assert os.stat(tree / "tools" / "ping.sh").st_mode & stat.S_IXUSR  # made runnable by its owner
    on_path = service(type="executable", filename="tofu")  # any command on PATH
    assert command_lines.build(on_path, tree, {"a": "b"}, set(), PYTHON) == [[fake_tofu, "--a", "b"]]  # IAG 5's default
    with pytest.raises(FailedPrecondition, match="missing.sh is neither a file in the repository nor a command"):
        command_lines.build(service(type="executable", filename="bin/missing.sh"), tree, {}, set(), PYTHON)


def test_child_environment_keeps_only_what_a_script_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_CONFIG", "/secret/gateway.conf")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = command_lines.child_environment({"TOKEN": "t"}, tmp_path, PYTHON)
    assert "GATEWAY_CONFIG" not in env
    assert env["PATH"] == f"/opt/python/bin{os.pathsep}/usr/bin"
    assert env["TMPDIR"] == str(tmp_path) and env["TOKEN"] == "t" and env["PYTHONUNBUFFERED"] == "1"
    assert env["ANSIBLE_LOCAL_TEMP"] == str(tmp_path)  # not ~/.ansible/tmp
    assert command_lines.child_environment({"ANSIBLE_LOCAL_TEMP": "/srv/t"}, tmp_path, PYTHON)["ANSIBLE_LOCAL_TEMP"] == "/srv/t"


# ---------------------------------------------------------------- inputs: core/runs.py
def test_parse_set_splits_at_the_first_equals_sign() -> None:
    assert parse_set([]) == {}
    assert parse_set(["a=1", " b =x=y", "c=", "a=2"]) == {"a": "2", "b": "x=y", "c": ""}
    for bad in ("novalue", "=x", "  =x"):
        with pytest.raises(InvalidArgument, match=f"--set '{bad}' is not key=value"):
            parse_set([bad])


@pytest.mark.parametrize("text, schema, expected", [
    ("42", {"type": "integer"}, 42),
    (" -7 ", {"type": "integer"}, -7),
    ("1.5", {"type": "integer"}, "1.5"),  # not an integer: left for the schema check to name
    ("1.5", {"type": "number"}, 1.5),
    ("2e3", {"type": "number"}, 2000.0),
    ("12", {"type": "number"}, 12),
    ("twelve", {"type": "number"}, "twelve"),
    ("yes", {"type": "boolean"}, True),
    ("Off", {"type": "boolean"}, False),
    ("0", {"type": "boolean"}, False),
    ("maybe", {"type": "boolean"}, "maybe"),
    ('["a", 1]', {"type": "array"}, ["a", 1]),
    ('{"a": 1}', {"type": "array"}, '{"a": 1}'),  # JSON, but not a list
    ('{"a": 1}', {"type": "object"}, {"a": 1}),
    ("not json", {"type": "object"}, "not json"),
    ("null", {"type": "null"}, None),
    ("", {"type": ["integer", "null"]}, None),
    ("5", {"type": ["null", "integer"]}, 5),
    ("5", {"type": "string"}, "5"),
    ("5", {}, "5"),
])
def test_coerce_turns_text_into_the_schema_type(text: str, schema: dict, expected) -> None:
    result = coerce_input(text, schema)
    assert result == expected and type(result) is type(expected)


def test_coerce_leaves_values_that_are_not_text() -> None:
    for value in (3, 2.5, True, None, [1], {"a": 1}):
        assert coerce_input(value, {"type": "string"}) == value


SCHEMA = {
    "type": "object",
    "properties": {"host": {"type": "string"}, "count": {"type": "integer", "minimum": 1, "default": 1},
                   "debug": {"type": "boolean", "default": False}, "tags": {"type": "array"}},
    "required": ["host"],
    "additionalProperties": False,
}


def test_prepare_inputs_coerces_and_fills_defaults() -> None:
    assert prepare_inputs(SCHEMA, {"host": "h", "count": "3", "tags": '["x"]'}) == {
        "host": "h", "count": 3, "tags": ["x"], "debug": False}
    assert prepare_inputs(SCHEMA, {"host": "h"}) == {"host": "h", "count": 1, "debug": False}
    given = {"anything": "goes"}
    assert prepare_inputs(None, given) == given and prepare_inputs(None, given) is not given


def test_prepare_inputs_names_every_failing_field_in_one_error() -> None:
    with pytest.raises(InvalidArgument) as caught:
        prepare_inputs(SCHEMA, {"count": "0", "debug": "perhaps", "extra": "x"})
    message = str(caught.value)
    assert message.startswith("inputs do not match the decorator: ")
    for field in ("count:", "debug:", "host", "extra"):
        assert field in message, message


# ---------------------------------------------------------------- the wire: rpc/convert.py
def resource_round_trip(resource):
    message = convert.resource_message(resource)
    assert type(message) is convert.MESSAGES[resource.KIND]
    return convert.resource_from_message(resource.KIND, type(message).FromString(message.SerializeToString()))


def test_repository_round_trip() -> None:
    repo = Repository(name="r", url="https://example.com/r.git", reference="main", private_key_name="key",
                      description="d", tags=["a", "b"])
    assert resource_round_trip(repo) == repo
    bare = Repository(name="bare", url="/srv/bare")  # empty text and lists come back empty, not missing
    assert resource_round_trip(bare) == bare


def test_decorator_round_trip_carries_the_schema() -> None:
    decorator = Decorator(name="d", schema=SCHEMA, description="inputs")
    back = resource_round_trip(decorator)
    assert back == decorator and back.schema == SCHEMA


def test_decorator_from_a_message_without_schema_is_an_object() -> None:
    message = convert.MESSAGES["decorator"](name="d")
    assert convert.resource_from_message("decorator", message).schema == {"type": "object"}
    with pytest.raises(InvalidArgument, match="decorator schema is not valid JSON"):
        convert.resource_from_message("decorator", convert.MESSAGES["decorator"](name="d", schema_json="{"))


@pytest.mark.parametrize("timeout", [None, 30])
def test_service_round_trip(timeout) -> None:
    svc = Service(name="s", type="executable", repository="r", working_dir="sub", filename="run.sh",
                  decorator="d", env={"A": "1", "B": ""}, secrets=[SecretRef(name="tok", target="TOKEN")],
                  runtime_args=["-v", ""], requirements_file="req.txt", tags=["t"], runner_tags=["gpu"],
                  arg_format="--{key} {value}", timeout=timeout, description="x")
    back = resource_round_trip(svc)
    assert back == svc
    assert back.timeout == timeout and isinstance(back.secrets[0], SecretRef)


def test_secret_round_trip_leaves_the_sealed_value_behind() -> None:
    secret = Secret(name="tok", description="api token", sealed={"kdf": "x", "ciphertext": "c"})
    message = convert.resource_message(secret)
    assert b"ciphertext" not in message.SerializeToString()
    back = resource_round_trip(secret)
    assert back.sealed == {}
    assert (back.name, back.description, back.created_at, back.updated_at) == (
        secret.name, secret.description, secret.created_at, secret.updated_at)


def test_sealing_many_secrets_costs_one_pbkdf2_and_what_was_sealed_per_secret_still_opens(tmp_path) -> None:
    """The key file goes through PBKDF2 once per process and salt, each secret's key through HKDF: 20 seals cost
    one PBKDF2, not 20 (~80 ms each). A value sealed the earlier way (PBKDF2 per secret) still opens; another
    key file, or another name, opens neither."""
    import base64
    import secrets as random

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    from gateway_daemon.core.resources import secrets

    key_file = tmp_path / "secrets.key"
    key_file.write_text(random.token_hex(32) + "\n")
    box = secrets.SecretBox(key_file)
    before = secrets._derive.cache_info().misses
    sealed = [box.seal(f"s{i}", f"value-{i}") for i in range(20)]
    assert secrets._derive.cache_info().misses - before == 1
    assert {s["kdf"] for s in sealed} == {secrets.KDF} and len({s["master_salt"] for s in sealed}) == 1
    assert len({s["salt"] for s in sealed}) == 20 and len({s["ciphertext"] for s in sealed}) == 20
    assert [secrets.SecretBox(key_file).open(f"s{i}", s) for i, s in enumerate(sealed)] == [
        f"value-{i}" for i in range(20)]

    # sealed per secret, as before (PBKDF2 of the key file with the secret's own salt)
    salt, nonce = random.token_bytes(16), random.token_bytes(12)
    key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=1_000).derive(
        key_file.read_bytes().strip())
    earlier = {"kdf": "pbkdf2-sha256", "iterations": 1_000, "salt": base64.b64encode(salt).decode(),
               "nonce": base64.b64encode(nonce).decode(),
               "ciphertext": base64.b64encode(AESGCM(key).encrypt(nonce, b"old-value", b"old")).decode()}
    assert secrets.SecretBox(key_file).open("old", earlier) == "old-value"

    other = tmp_path / "other.key"
    other.write_text(random.token_hex(32) + "\n")
    for name, value, opener in (("s0", sealed[0], secrets.SecretBox(other)), ("old", earlier, secrets.SecretBox(other)),
                                ("s1", sealed[0], box), ("new", earlier, box)):
        with pytest.raises(FailedPrecondition, match="cannot be decrypted"):
            opener.open(name, value)


def test_changes_from_message_takes_the_masked_fields() -> None:
    message = convert.resource_message(Decorator(name="d", schema=SCHEMA, description="new"))
    assert convert.changes_from_message("decorator", message, ["schema_json", "description"]) == {
        "schema": SCHEMA, "description": "new"}


def run_round_trip(run: Run) -> Run:
    message = convert.run_message(run)
    return convert.run_from_message(type(message).FromString(message.SerializeToString()))


def test_run_round_trip_queued_and_finished() -> None:
    queued = Run(id="20240101-000000-abcdef", service="s", service_type="python-script",
                 inputs={"n": 1, "tags": ["a"], "on": False}, started_by="admin", reason="waiting for a runner")
    back = run_round_trip(queued)
    assert back == queued
    assert (back.started_at, back.ended_at, back.exit_code) == (None, None, None)
    finished = Run(id="20240101-000000-abcdef", service="s", status="succeeded", started_at=10.5, ended_at=12.0,
                   exit_code=0, commit="c0ffee", runner="r1:50052", output_lines=7, output_dropped=2, owner="o")
    back = run_round_trip(finished)
    assert back == finished and back.exit_code == 0  # a zero exit code is kept, not taken for "unset"


def test_run_from_a_message_with_bad_inputs_json() -> None:
    message = convert.run_message(Run(id="20240101-000000-abcdef", service="s"))
    message.inputs_json = "{not json"
    with pytest.raises(InvalidArgument, match="run inputs is not valid JSON"):
        convert.run_from_message(message)


def test_event_round_trip() -> None:
    run = Run(id="20240101-000000-abcdef", service="s", status="running", started_at=1.0)
    status = RunEvent("status", run=run)
    output = RunEvent("output", lines=(OutputLine("stdout", "hello"), OutputLine("gateway", "cloning r")))
    for event in (status, output):
        message = convert.event_message(event)
        assert convert.event_from_message(type(message).FromString(message.SerializeToString())) == event
    assert convert.event_from_message(convert.event_message(output)).run is None
    assert convert.line_message(OutputLine("stderr", "oops")).text == "oops"


def test_runner_round_trip() -> None:
    runner = RunnerInfo(id="host:50052", address="::1", port=50052, tags=["gpu"], capacity=4, load=1,
                        last_seen=5.5, started_at=1.25, use_tls=True, draining=True, problem="no key", version="1")
    message = convert.runner_message(runner)
    assert convert.runner_from_message(type(message).FromString(message.SerializeToString())) == runner


async def test_a_job_offered_to_several_runners_is_encoded_once_and_forgotten_with_it() -> None:
    import gc

    from gateway_daemon.core.runs.jobs import Job
    from gateway_daemon.rpc.runner_client import RunnerClient

    async def token() -> str:
        return "t"

    client = RunnerClient(token, ttl=3)
    job = Job(run_id="20240101-000000-abcdef", service=Service(name="s", repository="r", filename="main.py"),
              repository=Repository(name="r", url="/x"), inputs={"vlan": 10, "names": ["a", "b"]}, timeout=60)
    first = client.request(job)
    assert client.request(job) is first  # the next runner tried gets the same message
    back = convert.job_from_message(type(first).FromString(first.SerializeToString()))
    assert back.inputs == job.inputs and back.run_id == job.run_id and back.service.name == "s"
    other = Job(run_id="20240101-000000-fedcba", service=job.service, repository=job.repository, inputs={},
                timeout=60)
    assert client.request(other) is not first and len(client._requests) == 2
    del job, first, back
    gc.collect()
    assert len(client._requests) == 1  # forgotten with its job
    await client.close()
