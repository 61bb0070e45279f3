"""Running services end to end: a real git repository, real processes, the real `gateway` command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import (Decorator, InvalidArgument, NotFound, Repository, SecretRef,
                                 Service)

from cli_helpers import BIN, gateway_env, gw, ok, one_error_line
from gitutil import git, new_repo

HELLO = '''\
import argparse, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--name", default="world")
parser.add_argument("--count", type=int, default=1)
parser.add_argument("--loud", action="store_true")
parser.add_argument("--exit", type=int, default=0)
parser.add_argument("--items", default="[]")
args = parser.parse_args()
for _ in range(args.count):
    print(("HELLO " if args.loud else "hello ") + args.name)
print("token is " + os.environ.get("TOKEN", "<none>"))
print("items " + args.items)
print("to stderr", file=sys.stderr)
import tinydep
print("tinydep says " + tinydep.VALUE)
sys.exit(args.exit)
'''

PLAYBOOK = '''\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: greet
      ansible.builtin.debug:
        msg: "greeting={{ greeting }} token={{ lookup('env', 'TOKEN') }}"
'''

PLAN = '''\
variable "greeting" { type = string }
output "message" { value = "tofu says ${var.greeting}" }
'''

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "count": {"type": "integer", "minimum": 1, "maximum": 5},
        "loud": {"type": "boolean"},
        "exit": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def origin(tmp_path_factory, tinydep) -> Path:
    repo = tmp_path_factory.mktemp("origin")
    git(repo, "init", "-q", "-b", "main")
    (repo / "hello").mkdir()
    (repo / "hello" / "main.py").write_text(HELLO)
    # In the repository: the build (sandboxed) sees the run's tree, not the test's folders.
    shutil.copy(tinydep, repo / "hello" / tinydep.name)
    (repo / "hello" / "requirements.txt").write_text(f"./{tinydep.name}\n")
    (repo / "play").mkdir()
    (repo / "play" / "site.yml").write_text(PLAYBOOK)
    (repo / "plan").mkdir()
    (repo / "plan" / "main.tf").write_text(PLAN)
    (repo / "tools").mkdir()
    (repo / "tools" / "echo-args.sh").write_text('#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\n')
    (repo / "tools" / "spin.py").write_text(textwrap.dedent('''\
        import os, sys, time, subprocess
        marker = f"spin-child-{os.getpid()}-{time.time_ns()}"  # its pid in the sandbox is not its pid outside
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
        print("child", child.pid, marker, flush=True)
        time.sleep(600)
        '''))
    (repo / "tools" / "junk.py").write_text(textwrap.dedent('''\
        import sys
        sys.stdout.buffer.write(b"\\xff\\xfe binary \\x00\\x1b[31mred\\x1b[0m\\n")
        sys.stdout.buffer.write(b"x" * 100000 + b"\\n")
        for i in range(20000):
            print("flood", i, "y" * 100)  # about 2 MiB in all: past the 1 MiB cap
        print("done")
        '''))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "automations")
    return repo


@pytest.fixture
def env(tmp_path, origin) -> dict[str, str]:
    return gateway_env(tmp_path)


@pytest.fixture
def setup(env, origin, tmp_path):
    schema = tmp_path / "hello.json"
    schema.write_text(json.dumps(SCHEMA))
    ok(gw(env, "create", "repository", "automations", "--url", str(origin), "--reference", "main"))
    ok(gw(env, "create", "decorator", "hello-form", "--schema", str(schema)))
    ok(gw(env, "create", "secret", "token", "--value", "s3cr3t-value"))
    ok(gw(env, "create", "service", "python-script", "hello", "--repository", "automations", "--working-dir",
          "hello", "--filename", "main.py", "--decorator", "hello-form",
          "--secret", "name=token,type=env,target=TOKEN"))
    return env


def test_python_script_with_inputs_secret_and_requirements(setup):
    env = setup
    result = gw(env, "run", "service", "hello", "--set", "name=ops", "--set", "count=2", "--set", "loud=true",
                "--set", 'items=["a","b"]')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["HELLO ops", "HELLO ops"]
    assert "token is ******" in result.stdout
    assert "s3cr3t-value" not in result.stdout + result.stderr
    assert 'items ["a","b"]' in result.stdout
    assert "tinydep says 42" in result.stdout
    assert "to stderr" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert " succeeded" in last and "exit code 0" in last and "duration" in last

    # The history: the record, its inputs and output, with the secret masked everywhere.
    runs = json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout)
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "succeeded" and run["exit_code"] == 0 and run["service"] == "hello"
    assert run["inputs"] == {"name": "ops", "count": 2, "loud": True, "items": ["a", "b"]}
    assert run["commit"] and run["duration"] > 0
    logs = ok(gw(env, "logs", run["id"]))
    assert "HELLO ops" in logs.stdout and "token is ******" in logs.stdout and "to stderr" in logs.stderr
    described = json.loads(ok(gw(env, "describe", "run", run["id"], "-o", "json")).stdout)
    assert described["id"] == run["id"] and described["status"] == "succeeded"
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    assert b"s3cr3t-value" not in (data_dir / "gateway.db").read_bytes()

    # The second run reuses the venv: no build progress is shown.
    second = ok(gw(env, "run", "service", "hello", "--set", "name=again"))
    assert "hello again" in second.stdout
    assert "pip" not in second.stderr.lower()


def test_run_json_output_and_failing_script(setup):
    result = gw(setup, "run", "service", "hello", "--set", "name=ops", "--set", "exit=3", "-o", "json")
    assert result.returncode == 1
    record = json.loads(result.stdout)
    assert record["status"] == "failed" and record["exit_code"] == 3
    assert {"stream": "stdout", "text": "hello ops"} in record["output"]
    assert {"stream": "stderr", "text": "to stderr"} in record["output"]


def test_bad_inputs_list_every_failing_field_and_nothing_runs(setup):
    result = gw(setup, "run", "service", "hello", "--set", "count=9", "--set", "color=red")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "count" in line and "maximum" in line and "name" in line and "required" in line and "color" in line
    assert json.loads(ok(gw(setup, "get", "runs", "-o", "json")).stdout) == []


def test_unknown_service_and_missing_repository(setup, tmp_path):
    line = one_error_line(gw(setup, "run", "service", "nope"))
    assert line == "gateway: service 'nope' not found"
    refused = one_error_line(gw(setup, "create", "repository", "gone", "--url", str(tmp_path / "no-such-repo")))
    assert "git cannot read" in refused and "does not appear to be a git repository" in refused  # git's reason
    made = tmp_path / "moved-away"  # a repository that goes away after it was created
    new_repo(made, {"main.py": "print('hi')\n"})
    ok(gw(setup, "create", "repository", "gone", "--url", str(made)))
    shutil.rmtree(made)
    ok(gw(setup, "create", "service", "python-script", "lost", "--repository", "gone", "--filename", "main.py"))
    result = gw(setup, "run", "service", "lost")
    assert result.returncode == 1
    assert "repository gone" in result.stderr and "cannot fetch" in result.stderr
    run = json.loads(ok(gw(setup, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "failed" and "cannot fetch" in run["reason"]


def test_unreachable_git_url(setup):
    ok(gw(setup, "create", "repository", "far", "--url", "https://127.0.0.1:9/nothing.git"))
    ok(gw(setup, "create", "service", "python-script", "far-away", "--repository", "far", "--filename", "main.py"))
    result = gw(setup, "run", "service", "far-away")
    assert result.returncode == 1
    assert "repository far" in result.stderr and "cannot fetch" in result.stderr
    assert "Traceback" not in result.stderr


def test_timeout_kills_the_whole_process_group(setup):
    ok(gw(setup, "create", "service", "python-script", "spin", "--repository", "automations", "--working-dir",
          "tools", "--filename", "spin.py", "--timeout", "2"))
    started = time.monotonic()
    result = gw(setup, "run", "service", "spin")
    assert result.returncode == 1
    assert time.monotonic() - started < 60
    assert "timed-out" in result.stderr
    marker = next(l for l in result.stdout.splitlines() if l.startswith("child ")).split()[2]
    assert not _marked(marker), "the script's child outlived the run"
    run = json.loads(ok(gw(setup, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "timed-out"


def test_cancel_from_another_command(setup):
    ok(gw(setup, "create", "service", "python-script", "spin", "--repository", "automations", "--working-dir",
          "tools", "--filename", "spin.py"))
    runner = subprocess.Popen([str(BIN / "gateway"), "run", "service", "spin"], env=setup, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    run_id = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run_id is None:
        runs = json.loads(ok(gw(setup, "get", "runs", "-o", "json")).stdout)
        if runs and runs[0]["status"] == "running":
            run_id = runs[0]["id"]
        time.sleep(0.2)
    assert run_id, "the run never started"
    time.sleep(0.5)
    cancelled = ok(gw(setup, "cancel", "run", run_id))
    assert "cancelled" in cancelled.stdout
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 1
    assert "cancelled" in err
    # The status is said once: "run ... cancelled: exit code ...", never "cancelled (cancelled)".
    assert "cancelled (cancelled)" not in err + cancelled.stdout
    assert json.loads(ok(gw(setup, "describe", "run", run_id, "-o", "json")).stdout)["status"] == "cancelled"


def test_ctrl_c_cancels_the_run(setup):
    ok(gw(setup, "create", "service", "python-script", "spin", "--repository", "automations", "--working-dir",
          "tools", "--filename", "spin.py"))
    runner = subprocess.Popen([str(BIN / "gateway"), "run", "service", "spin"], env=setup, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    line = runner.stdout.readline()
    assert line.startswith("child ")
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 1 and "cancelled" in err
    assert not _marked(line.split()[2])


def test_a_run_whose_gateway_was_killed_ends_interrupted_and_a_live_gateways_run_is_left_alone(setup):
    ok(gw(setup, "create", "service", "python-script", "spin", "--repository", "automations", "--working-dir",
          "tools", "--filename", "spin.py"))
    started = [subprocess.Popen([str(BIN / "gateway"), "run", "service", "spin"], env=setup,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    victim, survivor = started
    children = [_marked_soon(p.stdout.readline().split()[2]) for p in started]  # both runs are running
    runs_dir = Path(setup["GATEWAY_APPLICATION_DATA_DIR"]) / "runs"
    try:
        victim.kill()
        victim.wait(timeout=30)
        # the killed gateway's script ends with it (its supervisor's control pipe closes; bwrap dies with it)
        deadline = time.monotonic() + 20
        while _alive(children[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(children[0]), "the killed gateway's script outlived it"

        runs = {r["owner"].split(":")[1]: r for r in json.loads(ok(gw(setup, "get", "runs", "-o", "json")).stdout)}
        lost, live = runs[str(victim.pid)], runs[str(survivor.pid)]
        assert lost["status"] == "interrupted"
        assert lost["reason"] == f"gateway lost: pid {victim.pid} on {socket.gethostname()} ended before the run did"
        assert lost["ended_at"] is not None
        assert live["status"] == "running", "the run of a gateway that still lives was touched"
        # what the dead one left running is ended, its run folder (checked-out tree, temporary files) removed
        assert not _alive(children[0]) and _alive(children[1])
        assert [d.name.split("-")[:3] for d in runs_dir.iterdir()] == [live["id"].split("-")]
        assert json.loads(ok(gw(setup, "describe", "run", lost["id"], "-o", "json")).stdout)["status"] == "interrupted"

        survivor.send_signal(signal.SIGINT)
        _, err = survivor.communicate(timeout=60)
        assert "cancelled" in err
        assert json.loads(ok(gw(setup, "describe", "run", live["id"], "-o", "json")).stdout)["status"] == "cancelled"
    finally:
        for process in started:
            process.kill()
            process.communicate()
        with contextlib.suppress(ProcessLookupError):  # the killed gateway's script outlives it
            os.killpg(os.getpgid(children[0]), signal.SIGKILL)


def test_binary_junk_and_floods_do_not_hurt(setup):
    ok(gw(setup, "create", "service", "python-script", "junk", "--repository", "automations", "--working-dir",
          "tools", "--filename", "junk.py"))
    result = gw(setup, "run", "service", "junk", "-o", "json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    texts = [line["text"] for line in record["output"]]
    assert texts[-1] == "done"
    assert record["output_lines"] == 20003  # the binary line, the long line (cut), 20000, done
    assert record["output_dropped"] > 0  # 1 MiB kept, the tail
    assert all("\x1b" not in t and "\x00" not in t for t in texts)


def test_executable_with_arg_format(setup):
    ok(gw(setup, "create", "service", "executable", "args", "--repository", "automations", "--working-dir", "tools",
          "--filename", "echo-args.sh", "--arg-format", "--{key} {value}", "--runtime-arg", "first"))
    result = ok(gw(setup, "run", "service", "args", "--set", "host=r1", "--set", "mode=check it"))
    assert result.stdout.splitlines() == ["arg:first", "arg:--host", "arg:r1", "arg:--mode", "arg:check it"]


def test_ansible_playbook(setup, tmp_path):
    if not shutil.which("ansible-playbook", path=str(BIN)):
        pytest.skip("ansible-core is not installed: pip install 'automation-gateway[ansible]'")
    ok(gw(setup, "create", "service", "ansible-playbook", "greet", "--repository", "automations", "--working-dir",
          "play", "--filename", "site.yml", "--secret", "name=token,type=env,target=TOKEN",
          "--runtime-arg", "-i", "--runtime-arg", "localhost,"))
    home = tmp_path / "home"
    home.mkdir()
    result = gw({**setup, "HOME": str(home)}, "run", "service", "greet", "--set", "greeting=hi-there")
    assert result.returncode == 0, result.stdout + result.stderr
    # Ansible's temporary files stay in the run's private tmp, not in the home of whoever runs the gateway.
    assert not (home / ".ansible" / "tmp").exists()
    assert "greeting=hi-there token=******" in result.stdout
    assert "s3cr3t-value" not in result.stdout
    run = json.loads(ok(gw(setup, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "succeeded" and run["service"] == "greet"


def test_opentofu_plan_with_real_tofu(setup):
    if not shutil.which("tofu"):
        pytest.skip("no 'tofu' on PATH (OpenTofu is not in the package registries this project's CI reaches)")
    ok(gw(setup, "create", "service", "opentofu-plan", "plan", "--repository", "automations", "--working-dir", "plan",
          "--runtime-arg", "apply"))
    result = gw(setup, "run", "service", "plan", "--set", "greeting=hello")
    assert result.returncode == 0, result.stderr
    assert "tofu says hello" in result.stdout


def test_opentofu_without_tofu_says_how_to_get_it(setup):
    env = dict(setup, PATH=str(BIN) + os.pathsep + "/usr/bin:/bin")
    if shutil.which("tofu", path=env["PATH"]):
        pytest.skip("tofu is installed in /usr/bin")
    ok(gw(env, "create", "service", "opentofu-plan", "plan", "--repository", "automations", "--working-dir", "plan"))
    result = gw(env, "run", "service", "plan", "--set", "greeting=hello")
    assert result.returncode == 1
    assert "OpenTofu is not installed" in result.stderr and "opentofu.org" in result.stderr


def test_opentofu_command_lines_with_a_stand_in(setup, tmp_path):
    """STAND-IN: OpenTofu cannot be installed here, so a script named `tofu` says how it is called (on its
    output: a sandboxed run writes nothing outside its tree)."""
    bindir = tmp_path / "stand-in-bin"
    bindir.mkdir()
    tofu = bindir / "tofu"
    tofu.write_text('#!/bin/sh\necho "called: $@"\necho "stand-in tofu $1"\n')
    tofu.chmod(0o755)
    env = dict(setup, PATH=f"{bindir}{os.pathsep}{setup['PATH']}")
    ok(gw(env, "create", "service", "opentofu-plan", "plan", "--repository", "automations", "--working-dir", "plan",
          "--runtime-arg", "apply"))
    result = ok(gw(env, "run", "service", "plan", "--set", "greeting=hello"))
    assert "stand-in tofu init" in result.stdout and "stand-in tofu apply" in result.stdout
    calls = [line.removeprefix("called: ") for line in result.stdout.splitlines() if line.startswith("called: ")]
    assert calls == ["init -input=false -no-color",
                     "apply -input=false -no-color -auto-approve -var greeting=hello"]


# ---------------------------------------------------------------- the engine directly
@pytest.fixture
async def engine(tmp_path, origin):
    config_file = tmp_path / "gateway.conf"
    config_file.write_text("[execution]\nmax_concurrent_runs = 1\n")
    config = load_config(str(config_file), environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")})
    engine = open_engine(config, announce=lambda text: None)
    await engine.create(Repository(name="automations", url=str(origin), reference="main"))
    await engine.create(Service(name="spin", type="python-script", repository="automations", working_dir="tools",
                                filename="spin.py"))
    await engine.create(Service(name="args", type="executable", repository="automations", working_dir="tools",
                                filename="echo-args.sh"))
    yield engine
    await engine.close()


async def _first_status(events):
    event = await events.__anext__()
    assert event.kind == "status"
    return event.run


async def test_queue_says_why_a_run_waits_and_cancel_while_queued(engine):
    first = engine.run_service("spin")
    run1 = await _first_status(first)
    second = engine.run_service("args")
    run2 = await _first_status(second)
    reasons = []
    async for event in second:
        if event.kind == "status":
            reasons.append(event.run.reason)
            if "position 1" in event.run.reason:
                break
    assert any("position 1 in the queue" in r and "1 of 1" in r for r in reasons)
    await engine.cancel_run(run2.id)
    async for event in second:
        pass
    assert (await engine.get_run(run2.id)).status == "cancelled"
    await engine.cancel_run(run1.id)
    async for event in first:
        pass
    assert (await engine.get_run(run1.id)).status == "cancelled"


async def test_run_errors_are_domain_errors(engine):
    with pytest.raises(NotFound):
        await engine.run_service("missing").__anext__()
    with pytest.raises(InvalidArgument):
        await engine.run_service("args", timeout=0).__anext__()
    with pytest.raises(NotFound):
        await engine.run_service("args", secrets=[SecretRef(name="nope", target="X")]).__anext__()
    with pytest.raises(NotFound):
        await engine.cancel_run("20200101-000000-abcdef")
    with pytest.raises(InvalidArgument):
        await engine.get_run("../../etc")
    assert await engine.list_runs() == []


async def test_decorator_booleans_and_defaults(engine, tmp_path):
    await engine.create(Decorator(name="form", schema={
        "type": "object", "properties": {"dry": {"type": "boolean"}, "site": {"type": "string", "default": "dc1"}}}))
    await engine.update("service", "args", {"decorator": "form"})
    lines = []
    async for event in engine.run_service("args", {"dry": "false"}):
        lines.extend(l.text for l in event.lines if l.stream == "stdout")
    assert lines == ["arg:--dry", "arg:false", "arg:--site", "arg:dc1"]  # an executable: IAG 5's --key value


def _marked_soon(marker: str) -> int:
    """The pid of the live process with `marker` as an argument, waiting a little for /proc to show it."""
    deadline = time.monotonic() + 10
    while not (found := _marked(marker)):
        assert time.monotonic() < deadline, f"no live process has the argument {marker}"
        time.sleep(0.05)
    return found[0]


def _marked(marker: str) -> list[int]:
    """The pids (outside any sandbox) of the live processes with `marker` as an argument."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv and _alive(int(entry)):
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # it went between the two looks
        return False


FLOOD_ON_FLAG = '''\
import argparse, os, time
parser = argparse.ArgumentParser()
parser.add_argument("--flag")
args = parser.parse_args()
print("begin", os.getcwd(), flush=True)
while not os.path.exists(args.flag):  # in its tree: a sandboxed run sees nothing else of the test's
    time.sleep(0.05)
for i in range(400):
    print(f"line {i:04d} " + "x" * 40)
print("end", flush=True)
'''


async def test_a_run_goes_on_while_etcd_is_away_and_its_record_and_output_tail_are_stored_after(make_etcd_server,
                                                                                                  tmp_path):
    etcd = make_etcd_server()
    new_repo(tmp_path / "origin", {"flood.py": FLOOD_ON_FLAG})
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data"),
                                        "GATEWAY_STORE_BACKEND": "etcd", "GATEWAY_STORE_ETCD_HOSTS": etcd.hosts,
                                        "GATEWAY_EXECUTION_OUTPUT_LIMIT": "4096"})
    engine = open_engine(config, announce=lambda text: None)
    try:
        await engine.create(Repository(name="origin", url=str(tmp_path / "origin"), reference="main"))
        await engine.create(Service(name="flood", type="python-script", repository="origin", filename="flood.py"))
        events = engine.run_service("flood", {"flag": "flag"})
        run = await _first_status(events)
        async for event in events:
            begun = [line.text.split(" ", 1)[1] for line in event.lines if line.text.startswith("begin ")]
            if begun:
                break
        etcd.stop()
        Path(begun[0], "flag").touch()
        heard, final, waited = [], None, False
        async for event in events:  # whoever follows the run in this process hears all of it meanwhile
            heard.extend(line.text for line in event.lines if line.stream == "stdout")
            final = event.run if event.kind == "status" else final
            if any(line.stream == "gateway" and "does not take its record" in line.text for line in event.lines):
                assert final is None or not final.finished, "a result the store does not hold was reported"
                waited = True
                etcd.start()  # the result is reported once the store holds it
        assert waited and final is not None and final.status == "succeeded"
        assert len(heard) == 401 and heard[-1] == "end"
        stored = await engine.get_run(run.id)  # written before it was reported
        assert stored.status == "succeeded" and stored.exit_code == 0
        output = [line.text for line in await engine.run_output(run.id)]
        assert output[-1] == "end" and not any(text.startswith("begin") for text in output)  # the tail, within the limit
        assert sum(len(text) for text in output) <= 4096
        assert stored.output_dropped > 0 and len(output) + stored.output_dropped == stored.output_lines == 402
    finally:
        await engine.close()
