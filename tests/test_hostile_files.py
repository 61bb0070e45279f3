"""Inputs stay data, files stay bounded, secrets stay masked: an operator's or a repository's hostile content, tried
through the real `gateway` and `gateway-daemon` commands, real ansible-playbook runs and real processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cli_helpers import GATEWAY, Result, gateway_env, gw, ok, one_error_line
from gateway_server import ADMIN_PASSWORD, Client, Daemon
from gitutil import commit_files, new_repo

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

PLAY = '''\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: say
      ansible.builtin.debug:
        msg: "name={{ name }} items={{ items | default([]) | to_json }} extra={{ extra | default({}) | to_json }}"
    - name: where the inputs are
      ansible.builtin.command: find /tmp -maxdepth 1 -type f -printf "%m %u %f\\n"
      register: found
    - ansible.builtin.debug:
        msg: "tmp files: {{ found.stdout_lines | join(', ') }}"
'''

INJECTION = "{{ lookup('pipe','echo $SA|rev') }}"
SECRET = "s3rvice-account-t0ken"


@pytest.fixture
def playbook_env(tmp_path) -> dict[str, str]:
    if not ANSIBLE_PLAYBOOK.is_file():
        pytest.skip("ansible-core is not installed: pip install 'automation-gateway[ansible]'")
    repo = tmp_path / "origin"
    new_repo(repo, {"site.yml": PLAY})
    env = gateway_env(tmp_path / "gw")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {
        "name": {"type": "string"},
        "items": {"type": "array", "items": {"type": "string"}},
        "extra": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "port": {"type": "integer"},
    }}))
    ok(gw(env, "create", "repository", "plays", "--url", str(repo)))
    ok(gw(env, "create", "decorator", "play", "--schema", str(schema)))
    ok(gw(env, "create", "secret", "sa", "--value", SECRET))
    ok(gw(env, "create", "service", "ansible-playbook", "play", "--repository", "plays", "--filename", "site.yml",
          "--decorator", "play", "--secret", "name=sa,type=env,target=SA"))
    ok(gw(env, "create", "service", "ansible-playbook", "open", "--repository", "plays", "--filename", "site.yml"))
    return env


def _said(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if '"msg":' in line]


def test_playbook_inputs_are_never_templated(playbook_env):
    nested = "{{ 6 * 7 }}"
    result = ok(gw(playbook_env, "run", "service", "play", "--set", f"name={INJECTION}",
                   "--set", f'items=["{nested}", "plain"]', "--set", f'extra={{"{nested}": ["{nested}"]}}'))
    said = "\n".join(_said(result.stdout))
    assert SECRET[::-1] not in result.stdout + result.stderr, result.stdout
    assert "lookup('pipe','echo $SA|rev')" in said, said  # the braces printed as they were given
    assert "42" not in said, said  # nested values (in lists and objects, keys too) are not templated either
    assert said.count("{{ 6 * 7 }}") >= 3, said
    # The inputs reach ansible-playbook in a file of the run's private /tmp that only the run can read.
    files = next(line for line in said.splitlines() if "tmp files:" in line)
    assert "600 " in files, files
    run = json.loads(ok(gw(playbook_env, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "succeeded"
    data = Path(playbook_env["GATEWAY_APPLICATION_DATA_DIR"])
    assert not list((data / "runs").glob("*/tmp")), "the run's temporary folder outlived the run"


@pytest.mark.parametrize("name", ["ansible_connection", "hostvars", "omit", "playbook_dir", "environment", "vars",
                                  "inventory_hostname", "ansible_python_interpreter"])
def test_reserved_ansible_variables_cannot_be_set_through_inputs(playbook_env, name):
    line = one_error_line(gw(playbook_env, "run", "service", "open", "--set", f"{name}=x"), code=1)
    assert name in line and "reserved" in line, line
    runs = json.loads(ok(gw(playbook_env, "get", "runs", "-o", "json")).stdout)
    assert runs == []


def test_a_reserved_name_the_decorator_declares_is_an_input(playbook_env):
    """`name` and `port` are names Ansible reserves: the decorator names them, so they are the service's inputs."""
    result = ok(gw(playbook_env, "run", "service", "play", "--set", "name=plain", "--set", "port=8080"))
    assert any("name=plain" in line for line in _said(result.stdout)), result.stdout


# ---------------------------------------------------------------- files a repository holds
def _vm_hwm_mib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0  # gone (or a zombie, which holds no memory)


def _run_watching_memory(env: dict[str, str], bound_mib: int, *args: str) -> tuple[int, Result]:
    """Run `gateway ARGS` to its end, reading the peak memory of that process (its VmHWM; git and the other
    programs it starts are not the gateway) every 20 ms: the peak seen, and the result.  Past `bound_mib` the
    command is stopped there, and the peak tells it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([GATEWAY, *args], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        peak = 0
        try:
            while proc.poll() is None:
                peak = max(peak, _vm_hwm_mib(proc.pid))
                if peak > bound_mib:
                    break
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        err.seek(0)
        result = Result(["gateway", *args], proc.returncode, out.read().decode(), err.read().decode())
    return peak, result


def test_a_huge_requirements_file_is_refused_in_one_line_without_being_read_whole(tmp_path):
    repo = tmp_path / "origin"
    new_repo(repo, {"main.py": "print('ran')\n"})
    with open(repo / "requirements.txt", "wb") as handle:
        handle.truncate(512 << 20)  # 512 MiB of zeros, sparse on disk (read whole, it was that much memory)
    commit_files(repo, {}, "a huge requirements file")
    env = gateway_env(tmp_path / "gw")
    ok(gw(env, "create", "repository", "big", "--url", str(repo)))
    ok(gw(env, "create", "service", "python-script", "big", "--repository", "big", "--filename", "main.py"))
    peak, result = _run_watching_memory(env, 200, "run", "service", "big")
    assert peak < 200, f"the gateway held {peak} MiB"
    assert result.code == 1 and "Traceback" not in result.err, str(result)
    said = [line for line in result.err.splitlines() if "requirements.txt" in line and "larger than 4 MiB" in line]
    assert len(said) == 2 and said[0].startswith("[gateway] requirements file"), str(result)  # the reason, the end
    run = json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout)[0]
    assert run["status"] == "failed" and "larger than 4 MiB" in run["reason"], run


def test_the_reserved_names_are_the_installed_ansibles():
    """The gateway keeps Ansible's reserved and magic variable names without importing Ansible: they match."""
    reserved = pytest.importorskip("ansible.vars.reserved")
    from ansible import constants

    from gateway_daemon.core.runs.playbook_variables import is_reserved

    names = set(reserved.get_reserved_names()) | set(constants.INTERNAL_STATIC_VARS)
    names |= {alias for aliases in constants.MAGIC_VARIABLE_MAPPING.values() for alias in aliases}
    assert sorted(name for name in names if not is_reserved(name)) == []


# ---------------------------------------------------------------- secrets in output
MASKED = "t0ps3cret-\"quoted\"-back\\slash-wörd"  # a quote, a backslash and a letter JSON escapes

PRINTS = '''\
import json, os, sys
secret = os.environ["SA"]
print("x" * (16 * 1024 - 12) + secret + "y" * 100_000)  # the secret straddles the 16 KiB cut
print("x" * (16 * 1024 - 12) + secret + "y" * 64, end="")  # the last line, without a newline, straddling it too
sys.stdout.flush()
print()
print(json.dumps(secret))
print(json.dumps(secret, ensure_ascii=False))
print(json.dumps({"multi": os.environ["ML"]}))
print("c1:" + "\\x9b31m" + "\\x85" + "\\x90" + "end")
'''


@pytest.fixture
def printing_env(tmp_path) -> dict[str, str]:
    repo = tmp_path / "origin"
    new_repo(repo, {"prints.py": PRINTS})
    env = gateway_env(tmp_path / "gw")
    ok(gw(env, "create", "repository", "prints", "--url", str(repo)))
    ok(gw(env, "create", "secret", "sa", "--value", MASKED))
    value = tmp_path / "multi.txt"
    value.write_text("first-line\nsecond-line")
    ok(gw(env, "create", "secret", "ml", "--value-file", str(value)))
    ok(gw(env, "create", "service", "python-script", "prints", "--repository", "prints", "--filename", "prints.py",
          "--secret", "name=sa,type=env,target=SA", "--secret", "name=ml,type=env,target=ML"))
    return env


def _printed(env: dict[str, str]) -> list[str]:
    """What the run printed, as `gateway run` showed it and as its record keeps it."""
    result = ok(gw(env, "run", "service", "prints", "--raw"))
    stored = json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout)[0]
    return [result.stdout, ok(gw(env, "logs", stored["id"])).stdout]


def test_a_secret_is_masked_across_the_line_cut(printing_env):
    for shown in _printed(printing_env):
        lines = shown.splitlines()
        cut = [line for line in lines if line.startswith("xxxx")]
        assert len(cut) == 2 and all(line.endswith("[line cut at 16 KiB]") for line in cut), \
            [line[-60:] for line in cut]
        for line in cut:
            assert "t0ps3" not in line, line[-60:]  # not even the first characters of it
            assert line[16 * 1024 - 12:].startswith("******"), line[-60:]


def test_a_secret_is_masked_in_its_json_form_and_c1_controls_are_removed(printing_env):
    for shown in _printed(printing_env):
        lines = shown.splitlines()
        assert lines.count('"******"') == 2, lines[2:]  # json.dumps(secret), ASCII or not
        assert '{"multi": "******"}' in lines, lines[2:]
        for fragment in ("t0ps3cret", "quoted", "first-line", "second-line", "w\\u00f6rd"):
            assert fragment not in shown, fragment
        c1 = next(line for line in lines if line.startswith("c1:"))
        assert c1 == "c1:31mend", repr(c1)  # C1 control characters go with the others


# ---------------------------------------------------------------- registries
def test_an_http_registry_with_credentials_needs_insecure(tmp_path):
    env = gateway_env(tmp_path)
    ok(gw(env, "create", "secret", "pypi-password", "--value", "registry-pass"))
    ok(gw(env, "create", "secret", "galaxy-token", "--value", "galaxy-token-value"))
    for args in (["pypi", "plain", "--url", "http://127.0.0.1:9/simple", "--username", "alice",
                  "--password-name", "pypi-password"],
                 ["ansible-galaxy", "plain-galaxy", "--url", "http://127.0.0.1:9/", "--token-name", "galaxy-token"]):
        line = one_error_line(gw(env, "create", "registry", *args), code=1)
        assert "http://" in line and "--insecure" in line, line
    assert [r["name"] for r in json.loads(ok(gw(env, "get", "registries", "-o", "json")).stdout)
            if not r["name"].startswith("default-")] == []
    # Without credentials plain http is taken; with --insecure too (the operator said so); https always.
    ok(gw(env, "create", "registry", "pypi", "open", "--url", "http://127.0.0.1:9/simple"))
    ok(gw(env, "create", "registry", "pypi", "said-so", "--url", "http://127.0.0.1:9/simple", "--username", "alice",
          "--password-name", "pypi-password", "--insecure"))
    ok(gw(env, "create", "registry", "pypi", "tls", "--url", "https://127.0.0.1:9/simple", "--username", "alice",
          "--password-name", "pypi-password"))
    # Credentials added later to an http registry are refused the same way, and so is dropping --insecure.
    line = one_error_line(gw(env, "edit", "registry", "open", "--username", "bob", "--password-name",
                             "pypi-password"), code=1)
    assert "--insecure" in line, line
    for args in (["said-so", "--no-insecure"], ["tls", "--url", "http://127.0.0.1:9/simple"]):
        line = one_error_line(gw(env, "edit", "registry", *args), code=1)
        assert "--insecure" in line, line


# ---------------------------------------------------------------- log files
def test_log_files_are_private_and_the_first_password_goes_to_the_terminal_only(tmp_path, certs):
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    os.chmod(logs, 0o755)  # made open to others beforehand: the server tightens it
    daemon = Daemon(tmp_path / "server", certs, extra=f"[log]\nfile_enabled = true\nserver_dir = {logs}\n")
    daemon.start()
    try:
        assert daemon.admin_password, daemon.log.read_text()  # the terminal (its stdout) got it
        client = Client(tmp_path / "client", daemon.port, certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")  # an audited call: audit.log is written
        deadline = time.monotonic() + 10
        while not (logs / "audit.log").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.stop()
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    files = sorted(path.name for path in logs.iterdir())
    assert "gateway.log" in files and "audit.log" in files, files
    for path in logs.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))
        assert daemon.admin_password not in path.read_text(), path
    assert "temporary password" in daemon.log.read_text()


def test_a_rotated_log_file_is_private_too(tmp_path):
    """gateway.log's rotation opens a new file: 0600 as well, in local mode's data dir."""
    env = gateway_env(tmp_path, "[application]\nmode = local\n[log]\nfile_enabled = true\nlevel = DEBUG\n")
    data = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    ok(gw(env, "get", "services"))
    log = data / "gateway.log"
    assert log.exists(), sorted(p.name for p in data.iterdir())
    with open(log, "a") as handle:
        handle.write("x" * (10 * 1024 * 1024))  # past the rotation size: the next line rotates it
    os.chmod(log, 0o644)
    ok(gw(env, "get", "services"))
    for path in data.glob("gateway.log*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))


# ---------------------------------------------------------------- the secrets key
@pytest.mark.parametrize("older_store", [False, True], ids=["checked-store", "store-without-a-check-value"])
def test_local_mode_refuses_a_key_that_is_not_the_stores(tmp_path, older_store):
    env = gateway_env(tmp_path)
    data = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    ok(gw(env, "create", "secret", "first", "--value", "first-value"))
    if older_store:  # a store from before the check value: its first secret tells the key
        import sqlite3

        conn = sqlite3.connect(data / "gateway.db")
        with conn:
            deleted = conn.execute("DELETE FROM kv WHERE key LIKE '%secrets-check'").rowcount
        conn.close()
        assert deleted == 1
    key = data / "secrets.key"
    original = key.read_bytes()
    key.write_text("another-key-of-32-characters-0123456789\n")  # a different key file in its place
    before = sqlite_rows(data / "gateway.db")
    for args in (["create", "secret", "second", "--value", "second-value"],
                 ["edit", "secret", "first", "--value", "changed-value"],
                 ["describe", "secret", "first", "--reveal"]):
        line = one_error_line(gw(env, *args), code=1)
        assert str(key) in line and "key" in line, line
    assert sqlite_rows(data / "gateway.db") == before, "a refused command changed the store"
    # Another key named by the configuration is refused the same way.
    other = tmp_path / "other.key"
    other.write_text("yet-another-key-of-32-characters-0123456\n")
    line = one_error_line(gw(dict(env, GATEWAY_SECRETS_ENCRYPT_KEY_FILE=str(other)), "create", "secret", "third",
                             "--value", "third-value"), code=1)
    assert str(other) in line, line
    # The original key back: everything stored opens with it.
    key.write_bytes(original)
    assert ok(gw(env, "describe", "secret", "first", "--reveal")).stdout.count("first-value") == 1
    ok(gw(env, "create", "secret", "second", "--value", "second-value"))
    assert "second-value" in ok(gw(env, "describe", "secret", "second", "--reveal")).stdout


def sqlite_rows(db: Path) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT key, value FROM kv WHERE key NOT LIKE 'runs/%' ORDER BY key").fetchall()
    finally:
        conn.close()
