"""Ansible playbook services end to end: real git repositories, real ansible-playbook and ansible-galaxy runs,
real pip installs into the service's venv, collections served over real HTTP on an address of this machine (not
its loopback, which isolated runs and builds do not reach)."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli_helpers import gateway_env, gw, ok, one_error_line
from gitutil import commit_files, new_repo

ANSIBLE_BIN = Path(sys.executable).parent

FIRST = '''\
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: say
      ansible.builtin.debug:
        msg: "first host={{ inventory_hostname }} greeting={{ greeting | default('none') }} colour={{ colour }} size={{ size }} from_file={{ from_file }} forks={{ lookup('ansible.builtin.config', 'DEFAULT_FORKS') }}"
      tags: [say]
    - name: other
      ansible.builtin.debug:
        msg: "first untagged task"
      tags: [other]
    - name: touch
      ansible.builtin.file:
        path: "{{ marker }}"
        state: touch
      when: marker is defined
      tags: [say]
'''

SECOND = '''\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: second
      ansible.builtin.debug:
        msg: "second playbook ran"
      tags: [say]
'''

SCRIPT_INVENTORY = '''\
#!/bin/sh
if [ "$1" = "--list" ]; then
  echo '{"scripted": {"hosts": ["scripthost"], "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}, "_meta": {"hostvars": {}}}'
else
  echo '{}'
fi
'''

DEPS_PLAYBOOK = '''\
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - gwtest.demo.hello
  tasks:
    - name: the python the playbook runs with
      ansible.builtin.command: "{{ ansible_playbook_python }} -c 'import tinydep, sys; print(\\"tinydep=\\" + tinydep.VALUE + \\" python=\\" + sys.prefix)'"
      register: probe
    - ansible.builtin.debug:
        msg: "{{ probe.stdout }}"
'''


@pytest.fixture(scope="module")
def collection_host(outside_address) -> str:
    """Where the collection is served: an address of this machine that is not loopback, else 127.0.0.1 (and
    runs get the host's network)."""
    return outside_address or "127.0.0.1"


@pytest.fixture(scope="module")
def collection_server(tmp_path_factory, collection_host):
    """A collection tarball built with `ansible-galaxy collection build`, served over HTTP."""
    root = tmp_path_factory.mktemp("galaxy")
    subprocess.run([str(ANSIBLE_BIN / "ansible-galaxy"), "collection", "init", "gwtest.demo", "--init-path",
                    str(root / "src")], check=True, capture_output=True)
    tasks = root / "src" / "gwtest" / "demo" / "roles" / "hello" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text('- ansible.builtin.debug:\n    msg: "hello from the collection role"\n')
    served = root / "served"
    served.mkdir()
    subprocess.run([str(ANSIBLE_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(served),
                    str(root / "src" / "gwtest" / "demo")], check=True, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer((collection_host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{collection_host}:{server.server_address[1]}/gwtest-demo-1.0.0.tar.gz"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def origin(tmp_path_factory, tinydep, collection_server) -> Path:
    repo = tmp_path_factory.mktemp("origin")
    new_repo(repo, {
        "play/first.yml": FIRST,
        "play/second.yml": SECOND,
        "play/hosts.ini": ("[static]\nlocalhost ansible_connection=local\nsecondhost ansible_connection=local\n"
                           "[static:vars]\nansible_python_interpreter={{ ansible_playbook_python }}\n"),
        "play/scripted.sh": SCRIPT_INVENTORY,
        "play/vars.yml": "from_file: yes-from-file\ncolour: from-file\n",
        "play/ansible.cfg": "[defaults]\nforks = 7\n",
        "deps/site.yml": DEPS_PLAYBOOK,
        "deps/requirements.txt": f"./{tinydep.name}\n",  # in the tree: the sandboxed build sees only that
        "deps/requirements.yml": f"collections:\n  - name: {collection_server}\n    type: url\n",
    })
    shutil.copy(tinydep, repo / "deps" / tinydep.name)
    commit_files(repo, {}, "the wheel")
    return repo


@pytest.fixture
def env(tmp_path, origin, collection_host) -> dict[str, str]:
    env = gateway_env(tmp_path, **({"GATEWAY_EXECUTION_NETWORK": "host"} if collection_host == "127.0.0.1" else {}))
    ok(gw(env, "create", "repository", "plays", "--url", str(origin), "--reference", "main"))
    return env


def _ansible_lines(text: str) -> list[str]:
    return [line.strip().strip('"') for line in text.splitlines() if '"msg":' in line]


def test_playbooks_inventories_extra_vars_config_and_run_options(env, tmp_path):
    ok(gw(env, "create", "service", "ansible-playbook", "multi", "--repository", "plays", "--working-dir", "play",
          "--filename", "first.yml", "--playbook", "second.yml", "--inventory", "hosts.ini",
          "--inventory", "scripted.sh", "--extra-vars", "colour=red size=3", "--extra-vars", '{"size": 5}',
          "--extra-vars-file", "vars.yml", "--config-file", "ansible.cfg"))
    described = json.loads(ok(gw(env, "describe", "service", "multi", "-o", "json")).stdout)
    assert described["playbooks"] == ["second.yml"] and described["inventories"] == ["hosts.ini", "scripted.sh"]
    assert described["extra_vars"] == ["colour=red size=3", '{"size": 5}'] and described["config_file"] == "ansible.cfg"

    result = ok(gw(env, "run", "service", "multi", "--set", "greeting=hi"))
    said = [line for line in _ansible_lines(result.stdout) if "first host=" in line]
    hosts = sorted(line.split("host=")[1].split()[0] for line in said)
    assert hosts == ["localhost", "scripthost", "secondhost"]  # the static inventory and the script's
    # Later extra vars win: the file's colour over colour=red, the JSON size over size=3; the inputs last.
    assert all("greeting=hi colour=from-file size=5 from_file=yes-from-file forks=7" in line for line in said), said
    assert "second playbook ran" in result.stdout and "first untagged task" in result.stdout

    marker = tmp_path / "touched"  # outside the run's tree: these two runs go without the sandbox to write it
    unboxed = dict(env, GATEWAY_EXECUTION_SANDBOX="none")
    limited = ok(gw(unboxed, "run", "service", "multi", "--set", f"marker={marker}", "--limit", "localhost",
                    "--tags", "say", "--check"))
    said = [line for line in _ansible_lines(limited.stdout) if "first host=" in line]
    assert len(said) == 1 and "host=localhost" in said[0]
    assert "first untagged task" not in limited.stdout and "second playbook ran" in limited.stdout
    assert not marker.exists()  # --check changed nothing
    ok(gw(unboxed, "run", "service", "multi", "--set", f"marker={marker}", "--limit", "localhost", "--tags", "say"))
    assert marker.exists()
    runs = json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout)
    assert [r["status"] for r in runs] == ["succeeded"] * 3


def test_requirements_txt_venv_with_ansible_core_and_galaxy_collections(env, tmp_path):
    ok(gw(env, "create", "service", "ansible-playbook", "deps", "--repository", "plays", "--working-dir", "deps"))
    first = ok(gw(env, "run", "service", "deps"))
    data = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    assert "hello from the collection role" in first.stdout
    probe = next(line for line in first.stdout.splitlines() if "tinydep=42" in line)
    prefix = probe.split("python=")[1].strip().strip('"')
    assert prefix.startswith(str(data / "venvs")), probe  # the playbook ran with the service's venv
    venv = Path(prefix)
    assert (venv / "bin" / "ansible-playbook").is_file()
    assert "ansible-core" in first.stderr and "ansible-galaxy" in first.stderr  # the first run built both
    # The second run reuses both: nothing is installed again.
    second = ok(gw(env, "run", "service", "deps"))
    assert "tinydep=42" in second.stdout and "hello from the collection role" in second.stdout
    assert "pip:" not in second.stderr and "ansible-galaxy:" not in second.stderr


def test_requirements_txt_that_names_ansible_core_keeps_its_version(tmp_path, origin):
    from importlib import metadata

    version = metadata.version("ansible-core")
    repo = tmp_path / "pinned"
    new_repo(repo, {"site.yml": SECOND, "requirements.txt": f"ansible-core=={version}  # pinned here\n"})
    env = gateway_env(tmp_path / "gw")
    ok(gw(env, "create", "repository", "pinned", "--url", str(repo)))
    ok(gw(env, "create", "service", "ansible-playbook", "pinned", "--repository", "pinned"))
    result = ok(gw(env, "run", "service", "pinned"))
    assert "second playbook ran" in result.stdout
    # Only the file is installed: the gateway adds no ansible-core of its own.
    assert "building a virtual environment for requirements.txt (first run" in result.stderr


def test_bad_ansible_fields_are_one_line(env):
    line = one_error_line(gw(env, "create", "service", "ansible-playbook", "two", "--repository", "plays",
                             "--filename", "a.yml", "--filename", "b.yml"), code=2)
    assert "--filename given 2 times" in line and "--playbook" in line
    line = one_error_line(gw(env, "create", "service", "ansible-playbook", "bad", "--repository", "plays",
                             "--extra-vars", "not pairs"), code=1)
    assert "extra vars 'not pairs' is not KEY=VALUE" in line
    line = one_error_line(gw(env, "create", "service", "ansible-playbook", "bad", "--repository", "plays",
                             "--extra-vars", "[1, 2]"), code=1)
    assert "JSON object" in line
    line = one_error_line(gw(env, "create", "service", "ansible-playbook", "bad", "--repository", "plays",
                             "--inventory", "../outside"), code=1)
    assert "inventories" in line and "'..'" in line
    line = one_error_line(gw(env, "create", "service", "python-script", "bad", "--repository", "plays",
                             "--playbook", "x.yml"), code=1)
    assert "only apply to an ansible-playbook service" in line

    ok(gw(env, "create", "service", "ansible-playbook", "lost", "--repository", "plays", "--working-dir", "play",
          "--filename", "second.yml", "--inventory", "missing.ini"))
    result = gw(env, "run", "service", "lost")
    assert result.code == 1 and "inventory missing.ini not found" in result.err and "Traceback" not in result.err
    ok(gw(env, "create", "service", "python-script", "py", "--repository", "plays", "--filename", "x.py"))
    line = one_error_line(gw(env, "run", "service", "py", "--limit", "web"), code=1)
    assert "--limit does not apply" in line


def test_edit_and_clear_ansible_fields(env):
    ok(gw(env, "create", "service", "ansible-playbook", "edited", "--repository", "plays", "--working-dir", "play",
          "--filename", "first.yml", "--playbook", "second.yml", "--extra-vars", "a=1"))
    ok(gw(env, "edit", "service", "edited", "--playbook", "first.yml", "--inventory", "hosts.ini",
          "--clear", "extra-vars"))
    described = json.loads(ok(gw(env, "describe", "service", "edited", "-o", "json")).stdout)
    assert described["playbooks"] == ["first.yml"] and described["extra_vars"] == []
    assert described["inventories"] == ["hosts.ini"]
