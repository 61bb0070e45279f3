"""Inputs stay data, files stay bounded, secrets stay masked: an operator's or a repository's hostile content, tried
through the real `gateway` and `gateway-daemon` commands, real ansible-playbook runs and real processes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from cli_helpers import gateway_env, gw, ok, one_error_line
from gitutil import new_repo

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
