"""opentofu-plan services with a real OpenTofu CLI: the action at run time, the state kept sealed, one change at a time.

OpenTofu cannot be installed from this project's package registries; terraform, the same CLI, is on these
machines' PATH.  The tests put whichever is there on PATH under the name `tofu` (a symlink in a temporary bin
folder) and run real plans with the built-in `terraform_data` resource, which needs no provider download.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Repository, Service

from cli_helpers import gateway_env, gw, ok, one_error_line
from gitutil import new_repo

PLAN = '''\
variable "greeting" {
  type    = string
  default = "hi"
}
variable "size" {
  type    = string
  default = "s"
}
resource "terraform_data" "box" {
  input = "${var.greeting}-${var.size}"
}
output "box" { value = terraform_data.box.output }
'''

SLOW_PLAN = '''\
variable "n" {
  type    = string
  default = "0"
}
resource "terraform_data" "slow" {
  triggers_replace = var.n
  provisioner "local-exec" { command = "sleep 2" }
}
'''


@pytest.fixture(scope="module")
def tofu_bin(tmp_path_factory) -> Path:
    """A bin folder holding `tofu`: OpenTofu where installed, else terraform under that name."""
    found = shutil.which("tofu") or shutil.which("terraform")
    if not found:
        pytest.skip("neither OpenTofu ('tofu') nor terraform is on PATH; OpenTofu cannot be installed from this "
                    "machine's package registries")
    folder = tmp_path_factory.mktemp("tofu-bin")
    (folder / "tofu").symlink_to(found)
    return folder


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("plans")
    new_repo(repo, {"box/main.tf": PLAN, "box/prod.tfvars": 'size = "xl"\n', "slow/main.tf": SLOW_PLAN})
    return repo


def key_file(path: Path) -> Path:
    if not path.exists():
        path.write_text(secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    return path


@pytest.fixture
def env(tmp_path, tofu_bin, origin) -> dict[str, str]:
    key_file(tmp_path / "secrets.key")
    env = gateway_env(tmp_path / "gw", f"[secrets]\nencrypt_key_file = {tmp_path / 'secrets.key'}\n")
    env["PATH"] = f"{tofu_bin}{os.pathsep}{env['PATH']}"
    ok(gw(env, "create", "repository", "plans", "--url", str(origin), "--reference", "main"))
    ok(gw(env, "create", "service", "opentofu-plan", "box", "--repository", "plans", "--working-dir", "box",
          "--var", "greeting=hello", "--var-file", "prod.tfvars"))
    return env


def state_of(env: dict[str, str], name: str = "box") -> dict | None:
    return json.loads(ok(gw(env, "describe", "service", name, "-o", "json")).stdout)["state"]


def test_plan_apply_again_destroy_with_the_state_kept(env, tmp_path):
    plan = ok(gw(env, "run", "service", "opentofu-plan", "plan", "box"))
    assert "Plan: 1 to add, 0 to change, 0 to destroy" in plan.stdout
    assert state_of(env) is None  # a plan stores nothing
    assert "none yet" in ok(gw(env, "describe", "service", "box")).stdout

    out = tmp_path / "after-apply.tfstate"
    applied = ok(gw(env, "run", "service", "opentofu-plan", "apply", "box", "--state-out", str(out)))
    assert "Resources: 1 added, 0 changed, 0 destroyed" in applied.stdout
    state = state_of(env)
    assert state["resources"] == ["terraform_data.box"] and state["serial"] >= 1 and state["lineage"]
    assert state["run"] and state["updated_at"]
    described = ok(gw(env, "describe", "service", "box")).stdout
    assert "1 resource (terraform_data.box)" in described and f"serial {state['serial']}" in described
    written = json.loads(out.read_text())  # --state-out: the state itself, for its owner only
    assert written["resources"][0]["instances"][0]["attributes"]["input"]["value"] == "hello-xl"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # Sealed in the store: no value of the state is readable there.
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    with contextlib.closing(sqlite3.connect(data_dir / "gateway.db")) as db:
        rows = db.execute("SELECT key, value FROM kv WHERE key LIKE '%service-states/box'").fetchall()
    assert len(rows) == 1 and b"hello-xl" not in bytes(rows[0][1]) and b"ciphertext" in bytes(rows[0][1])
    assert not list((data_dir / "runs").glob("*")), "the run's tree (and its state file) is gone"

    again = ok(gw(env, "run", "service", "opentofu-plan", "apply", "box"))  # the stored state is used
    assert "No changes." in again.stdout and "Resources: 0 added" in again.stdout
    assert state_of(env)["serial"] == state["serial"]
    ok_plan = ok(gw(env, "run", "service", "plan", "box"))  # ACTION NAME without the type word
    assert "No changes." in ok_plan.stdout

    destroyed = ok(gw(env, "run", "service", "opentofu-plan", "destroy", "box"))
    assert "Resources: 1 destroyed" in destroyed.stdout
    assert state_of(env)["resources"] == []
    assert "0 resources" in ok(gw(env, "describe", "service", "box")).stdout

    # --state FILE: a run starts from the caller's state; an apply stores what it ends with.
    from_file = ok(gw(env, "run", "service", "opentofu-plan", "apply", "box", "--state", str(out)))
    assert "No changes." in from_file.stdout
    assert state_of(env)["resources"] == ["terraform_data.box"]

    # The service's default action: a run that names none takes it.
    ok(gw(env, "edit", "service", "box", "--action", "destroy"))
    assert "Resources: 1 destroyed" in ok(gw(env, "run", "service", "box")).stdout
    assert state_of(env)["resources"] == []


def test_the_state_travels_with_db_export(env, tmp_path):
    ok(gw(env, "run", "service", "opentofu-plan", "apply", "box"))
    export = tmp_path / "export.yaml"
    ok(gw(env, "db", "export", str(export)))
    text = export.read_text()
    assert "service_states:" in text and "terraform_data.box" in text and "hello-xl" not in text

    # Another gateway with the same secrets key takes it, and its next apply has nothing to do.
    other = gateway_env(tmp_path / "other", f"[secrets]\nencrypt_key_file = {tmp_path / 'secrets.key'}\n")
    other["PATH"] = env["PATH"]
    imported = ok(gw(other, "db", "import", str(export)))
    assert "create state box" in imported.stdout
    assert state_of(other)["resources"] == ["terraform_data.box"]
    assert "No changes." in ok(gw(other, "run", "service", "opentofu-plan", "apply", "box")).stdout
    assert "unchanged state box" in ok(gw(other, "db", "import", str(export))).stdout

    # A gateway with another key cannot open it: the import is refused whole.
    stranger = gateway_env(tmp_path / "stranger", f"[secrets]\nencrypt_key_file = {key_file(tmp_path / 'other.key')}\n")
    line = one_error_line(gw(stranger, "db", "import", str(export)), code=1)
    assert "service_states[0]" in line and "cannot be decrypted" in line


def test_bad_actions_flags_and_states_are_one_line(env, tmp_path):
    line = one_error_line(gw(env, "run", "service", "opentofu-plan", "explode", "box"), code=2)
    assert "opentofu-plan ACTION NAME" in line
    ok(gw(env, "create", "service", "executable", "tool", "--repository", "plans", "--filename", "ls"))
    assert "for opentofu-plan services" in one_error_line(gw(env, "run", "service", "apply", "tool"), code=1)
    assert "for opentofu-plan services" in one_error_line(
        gw(env, "create", "service", "executable", "tool2", "--repository", "plans", "--filename", "ls",
           "--var", "a=b"), code=1)
    assert "not KEY=VALUE" in one_error_line(gw(env, "edit", "service", "box", "--var", "novalue"), code=1)
    assert "inside the repository" in one_error_line(gw(env, "edit", "service", "box", "--var-file", "../x"), code=1)
    bad = tmp_path / "bad.tfstate"
    bad.write_text("not json")
    line = one_error_line(gw(env, "run", "service", "apply", "box", "--state", str(bad)), code=1)
    assert "not an OpenTofu state" in line
    assert json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout) == []


async def test_two_runs_that_change_one_state_never_overlap(tmp_path, tofu_bin, origin, monkeypatch):
    monkeypatch.setenv("PATH", f"{tofu_bin}{os.pathsep}{os.environ['PATH']}")
    config_file = tmp_path / "gateway.conf"
    config_file.write_text(f"[execution]\nmax_concurrent_runs = 4\n[secrets]\n"
                           f"encrypt_key_file = {key_file(tmp_path / 'k')}\n")
    config = load_config(str(config_file), environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")})
    engine = open_engine(config, announce=lambda text: None)
    try:
        await engine.create(Repository(name="plans", url=str(origin), reference="main"))
        await engine.create(Service(name="slow", type="opentofu-plan", repository="plans", working_dir="slow",
                                    tofu_action="apply"))

        async def run(n: str, action: str = "") -> tuple[object, list[str]]:
            reasons, final = [], None
            async for event in engine.run_service("slow", {"n": n}, action=action):
                if event.kind == "status":
                    final = event.run
                    if event.run.reason:
                        reasons.append(event.run.reason)
            return final, reasons

        first = asyncio.ensure_future(run("1"))
        await asyncio.sleep(0.3)
        second = asyncio.ensure_future(run("2"))
        await asyncio.sleep(0.3)
        plan = asyncio.ensure_future(run("3", "plan"))  # a plan changes nothing: it does not wait
        (run1, _), (run2, reasons2), (run3, reasons3) = await asyncio.gather(first, second, plan)
        assert run1.status == run2.status == run3.status == "succeeded", (run1, run2, run3)
        assert f"waiting: run {run1.id} holds the state of service slow" in reasons2
        assert run2.started_at >= run1.ended_at  # the second began only after the first had stored its state
        assert not any("holds the state" in r for r in reasons3) and run3.started_at < run1.ended_at
        state = await engine.service_state("slow")
        assert state.run == run2.id and state.resources == ["terraform_data.slow"] and state.serial >= 2
        assert "triggers_replace" in (await engine.states.open("slow")) and '"2"' in await engine.states.open("slow")

        # A lock left by a run that ended (its process gone) does not block the next one.
        await engine.store.put("state-locks/slow", json.dumps({"run": run1.id, "owner": "elsewhere:1:1"}).encode())
        run4, reasons4 = await run("4")
        assert run4.status == "succeeded" and not any("holds the state" in r for r in reasons4)

        # Cancelled while it waits for the state: it never starts.
        blocker = asyncio.ensure_future(run("5"))
        await asyncio.sleep(0.3)
        events = engine.run_service("slow", {"n": "6"})
        waiting = (await events.__anext__()).run
        async for event in events:
            if event.kind == "status" and "holds the state" in event.run.reason:
                break
        await engine.cancel_run(waiting.id)
        async for event in events:
            pass
        ended = await engine.get_run(waiting.id)
        assert ended.status == "cancelled" and "waiting for the state" in ended.reason and ended.started_at is None
        await blocker
    finally:
        await engine.close()


def test_the_action_and_the_state_go_to_a_runner_and_back(tmp_path, tofu_bin, origin, monkeypatch):
    """Distributed: the server opens the state and sends it with the job; the runner's final event brings the new
    one back, and the server stores it (describe through a client says so)."""
    from cluster import new_site, start_all
    from gateway_server import ADMIN_PASSWORD, Client

    monkeypatch.setenv("PATH", f"{tofu_bin}{os.pathsep}{os.environ['PATH']}")  # the runner finds `tofu`
    site = new_site(tmp_path / "site", "tofu")
    server, runner = site.node("server", "server"), site.node("runner", "runner")
    try:
        server.start()
        start_all([runner])
        client = Client(tmp_path / "client", server.port, site.certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
        client.ok("create", "repository", "plans", "--url", str(origin), "--reference", "main")
        client.ok("create", "service", "opentofu-plan", "box", "--repository", "plans", "--working-dir", "box",
                  "--var", "greeting=remote")
        applied = client.ok("run", "service", "opentofu-plan", "apply", "box", "--verbose")
        assert "Resources: 1 added" in applied.stdout and runner.id in applied.stderr
        described = json.loads(client.ok("describe", "service", "box", "-o", "json").stdout)["state"]
        assert described["resources"] == ["terraform_data.box"]
        out = tmp_path / "out.tfstate"
        again = client.ok("run", "service", "opentofu-plan", "apply", "box", "--state-out", str(out))
        assert "No changes." in again.stdout and "remote-s" in out.read_text()
        assert "Resources: 1 destroyed" in client.ok("run", "service", "opentofu-plan", "destroy", "box").stdout
        assert json.loads(client.ok("describe", "service", "box", "-o", "json").stdout)["state"]["resources"] == []
    finally:
        for node in (server, runner):
            if node.process is not None:
                node.kill()
        site.etcd.kill()
