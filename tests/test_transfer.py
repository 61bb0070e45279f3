"""`gateway db export` / `gateway db import`: round trips, the IAG 5 format, all-or-nothing imports."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import yaml

from cli_helpers import Result, gateway_env, gw, ok
from cli_helpers import one_error_line as shared_one_error_line

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import InvalidArgument, Repository, Unavailable
from gateway_daemon.core.api import ImportReport
from gateway_daemon.core.transfer.native import FORMAT
from gateway_daemon.store import StoreUnavailable

SECRET_VALUE = "s3cr3t-Value-9f81c2"
KEY_VALUE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"

SCHEMA = {
    "type": "object",
    "properties": {"host": {"type": "string"}, "count": {"type": "integer", "minimum": 1}},
    "required": ["host"],
    "additionalProperties": False,
}

# What `iagctl db export` writes, with the runtime options its services can carry.
IAG_EXPORT = textwrap.dedent("""\
    decorators:
      - name: ansible-xr
        description: Device inputs
        schema:
          $id: https://example.com/device.schema.json
          $schema: https://json-schema.org/draft/2020-12/schema
          title: Network Device
          type: object
          properties:
            device_type:
              description: The type of device
              enum: [ios, eos, nxos]
              type: string
            host:
              description: The hostname or IP address of the device
              type: string
          required: [host]
    repositories:
      - name: xr-resources
        description: XR Resources for testing
        url: git@gitlab.com:jh/xr/resources.git
        reference: main
        tags:
          - cisco
          - xr
        private-key-name: xr-gitlab-private
      - name: hello-iagctl
        description: Get started with iagctl
        url: https://github.com/example/hello-itential.git
        reference: main
        tags: [demo]
    services:
      - name: Ansible-Example
        type: ansible-playbook
        description: An ansible playbook to say hello-world
        playbooks:
          - hello-world.yml
          - cleanup.yml
        working-directory: ./
        repository: xr-resources
        decorator: ansible-xr
        tags:
          - xr
          - cisco
        runtime:
          check: true
          diff: true
          skip-tags: example-tag
          inventory:
            - ./inventory.ini
            - hosts.yml
          limit: routers
          tags: [upgrade, verify]
          verbose-level: 3
          config-file: ansible.cfg
          env:
            ANSIBLE_HOST_KEY_CHECKING: "False"
      - name: Hello-World
        type: python-script
        description: A simple hello-world
        filename: hello.py
        working-directory: python/hello/
        repository: hello-iagctl
        tags: [demo, python]
        secrets:
          - name: api-token
            type: env
            target: API_TOKEN
        runtime:
          env:
            GREETING: hi
            RETRIES: 3
          req-file: requirements-prod.txt
      - name: hello-opentofu
        type: opentofu-plan
        description: OpenTofu hello world
        working-directory: hello-opentofu
        repository: hello-iagctl
        runtime:
          action: apply
          vars:
            region: eu-west-1
            replicas: 2
            zones: [a, b]
          var-files:
            - prod.tfvars
            - ../common.tfvars
      - name: legacy-plan
        type: terraform-plan
        working-directory: plans/legacy
        repository: hello-iagctl
      - name: ping
        type: executable
        filename: tools/ping.sh
        repository: hello-iagctl
        arg-format: "--{{.Key}} {{.Value}}"
    secrets:
      - name: api-token
        description: sealed with the other gateway's key
    registries: []
    """)


# ---------------------------------------------------------------- helpers
def make_env(root: Path, key_file: Path) -> dict[str, str]:
    """Environment for the real `gateway` command against its own data dir and the given secrets key."""
    return gateway_env(root, f"[secrets]\nencrypt_key_file = {key_file}\n", home=root)


def make_key(path: Path) -> Path:
    path.write_text(os.urandom(32).hex() + "\n")
    path.chmod(0o600)
    return path


def one_error_line(result: Result) -> str:
    return shared_one_error_line(result, code=1, prefix="gateway: ")


def listing(env: dict[str, str]) -> dict[str, list]:
    return {kind: json.loads(ok(gw(env, "get", kind, "-o", "json")).stdout)
            for kind in ("repositories", "decorators", "services", "secrets")}


def described(env: dict[str, str], kind: str, name: str) -> dict:
    return json.loads(ok(gw(env, "describe", kind, name, "-o", "json")).stdout)


@pytest.fixture
def key(tmp_path) -> Path:
    return make_key(tmp_path / "secrets.key")


@pytest.fixture
def env(tmp_path, key) -> dict[str, str]:
    return make_env(tmp_path / "one", key)


@pytest.fixture
def populated(env, tmp_path) -> dict[str, str]:
    """Every kind of resource, made through the CLI."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    ok(gw(env, "create", "secret", "token", "--value", SECRET_VALUE, "--description", "API token"))
    ok(gw(env, "create", "secret", "deploy-key", "--value-file", "-", stdin=KEY_VALUE + "\n"))
    ok(gw(env, "create", "repository", "infra", "--url", "https://example.com/infra.git", "--reference", "main",
          "--tag", "prod", "--description", "infrastructure"))
    ok(gw(env, "create", "repository", "private", "--url", "git@example.com:ops/private.git",
          "--private-key-name", "deploy-key"))
    ok(gw(env, "create", "decorator", "deploy-form", "--schema", str(schema)))
    ok(gw(env, "create", "service", "python-script", "deploy", "--repository", "infra", "--working-dir", "deploy",
          "--filename", "main.py", "--decorator", "deploy-form", "--env", "STAGE=prod",
          "--secret", "name=token,type=env,target=TOKEN", "--runtime-arg", "--verbose", "--tag", "prod",
          "--timeout", "120"))
    ok(gw(env, "create", "service", "ansible-playbook", "patch", "--repository", "private", "--filename", "site.yml",
          "--runtime-arg", "-i", "--runtime-arg", "inventory.ini"))
    return env


# ---------------------------------------------------------------- our own format
def test_round_trip_keeps_secrets_sealed(populated, tmp_path, key):
    exported = tmp_path / "backup.yaml"
    ok(gw(populated, "db", "export", "-o", str(exported)))
    text = exported.read_text()
    assert SECRET_VALUE not in text and "OPENSSH PRIVATE KEY" not in text and "b3BlbnNzaC1rZXkt" not in text
    document = yaml.safe_load(text)
    assert document["format"] == FORMAT
    assert {s["name"] for s in document["secrets"]} == {"token", "deploy-key"}
    assert all(s["sealed"]["ciphertext"] for s in document["secrets"])
    assert [r["name"] for r in document["repositories"]] == ["infra", "private"]
    # stdout gives the same document
    assert yaml.safe_load(ok(gw(populated, "db", "export")).stdout) == document

    # A fresh data dir that shares the secrets key file.
    other = make_env(tmp_path / "two", key)
    result = ok(gw(other, "db", "import", str(exported)))
    lines = result.stdout.splitlines()
    assert lines[:7] == ["create secret deploy-key", "create secret token", "create repository infra",
                         "create repository private", "create decorator deploy-form", "create service deploy",
                         "create service patch"]
    assert lines[-1] == "imported: 7 created, 0 updated, 0 unchanged"
    assert result.stderr == ""

    # Secrets open with the same key; everything else is exactly as it was, timestamps included.
    assert described(other, "secret", "token")["description"] == "API token"
    revealed = json.loads(ok(gw(other, "describe", "secret", "token", "--reveal", "-o", "json")).stdout)
    assert revealed["value"] == SECRET_VALUE
    revealed = json.loads(ok(gw(other, "describe", "secret", "deploy-key", "--reveal", "-o", "json")).stdout)
    assert revealed["value"] == KEY_VALUE
    assert yaml.safe_load(ok(gw(other, "db", "export")).stdout) == document
    service = described(other, "service", "deploy")
    assert service["env"] == {"STAGE": "prod"} and service["secrets"] == ["name=token,type=env,target=TOKEN"]
    assert service["runtime_args"] == ["--verbose"] and service["timeout"] == 120

    # Importing again changes nothing.
    again = ok(gw(other, "db", "import", str(exported)))
    assert all(line.startswith("unchanged ") for line in again.stdout.splitlines()[:-1])
    assert again.stdout.splitlines()[-1] == "imported: 0 created, 0 updated, 7 unchanged"


def test_import_from_stdin(populated, tmp_path, key):
    text = ok(gw(populated, "db", "export")).stdout
    other = make_env(tmp_path / "two", key)
    result = ok(gw(other, "db", "import", "-", stdin=text))
    assert "create service deploy" in result.stdout.splitlines()
    assert [s["name"] for s in listing(other)["services"]] == ["deploy", "patch"]


def test_secrets_sealed_with_another_key_are_refused(populated, tmp_path):
    text = ok(gw(populated, "db", "export")).stdout
    other = make_env(tmp_path / "two", make_key(tmp_path / "other.key"))
    line = one_error_line(gw(other, "db", "import", "-", stdin=text))
    assert "secrets[deploy-key]" in line and "cannot be decrypted" in line
    assert SECRET_VALUE not in line
    assert listing(other) == {"repositories": [], "decorators": [], "services": [], "secrets": []}


def test_forged_sealed_values_are_one_line_and_nothing_is_stored(populated, tmp_path, key):
    """A sealed value with its fields changed by hand, in both kinds (PBKDF2 then HKDF, and PBKDF2 per secret):
    each import is refused in one line naming the secret, and stores nothing."""
    document = yaml.safe_load(ok(gw(populated, "db", "export")).stdout)
    sealed = document["secrets"][0]["sealed"]
    assert sealed["kdf"] == "pbkdf2-hkdf-sha256" and sealed["master_salt"]
    per_secret = {k: v for k, v in sealed.items() if k != "master_salt"} | {"kdf": "pbkdf2-sha256"}
    forged = [
        ({k: v for k, v in sealed.items() if k != "master_salt"}, "has no master_salt"),
        (sealed | {"master_salt": ["not", "base64"]}, "cannot be decrypted"),
        (sealed | {"master_salt": "AAAA" * 64}, "cannot be decrypted"),  # another salt: another key
        (sealed | {"kdf": ["pbkdf2-hkdf-sha256"]}, "cannot be decrypted"),  # not a type error
        (sealed | {"kdf": "md5"}, "cannot be decrypted"),
        (per_secret, "cannot be decrypted"),  # this value's salt and ciphertext read as the per-secret kind
        (per_secret | {"master_salt": sealed["master_salt"]}, "unknown field 'master_salt'"),
        (sealed | {"iterations": 10**9}, "implausible iteration count"),
    ]
    other = make_env(tmp_path / "two", key)
    for value, said in forged:
        changed = json.loads(json.dumps(document))
        changed["secrets"][0]["sealed"] = value
        line = one_error_line(gw(other, "db", "import", "-", stdin=yaml.safe_dump(changed)))
        assert f"secrets[{document['secrets'][0]['name']}]" in line and said in line, (value, line)
        assert SECRET_VALUE not in line and KEY_VALUE not in line
        assert listing(other) == {"repositories": [], "decorators": [], "services": [], "secrets": []}


def test_own_format_changed_resources_are_updated(populated, tmp_path):
    document = yaml.safe_load(ok(gw(populated, "db", "export")).stdout)
    before = described(populated, "repository", "infra")
    document["repositories"][0]["description"] = "changed in the file"
    document["repositories"][0]["colour"] = "blue"
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(document))
    result = ok(gw(populated, "db", "import", str(path)))
    assert "update repository infra" in result.stdout.splitlines()
    assert "unchanged service deploy" in result.stdout.splitlines()
    assert "repositories[infra]: unknown key 'colour' ignored" in result.stderr
    after = described(populated, "repository", "infra")
    assert after["description"] == "changed in the file"
    assert after["created_at"] == before["created_at"]


# ---------------------------------------------------------------- the IAG 5 format
@pytest.fixture
def iag_ready(env):
    """The secrets an IAG export refers to, made here first (IAG exports carry no secrets)."""
    ok(gw(env, "create", "secret", "xr-gitlab-private", "--value", KEY_VALUE))
    ok(gw(env, "create", "secret", "api-token", "--value", SECRET_VALUE))
    return env


def test_iag5_export_is_imported_with_mapped_fields(iag_ready, tmp_path):
    env = iag_ready
    path = tmp_path / "iag.yaml"
    path.write_text(IAG_EXPORT)
    result = ok(gw(env, "db", "import", str(path)))
    assert result.stdout.splitlines() == [
        "create repository hello-iagctl", "create repository xr-resources", "create decorator ansible-xr",
        "create service Ansible-Example", "create service Hello-World", "create service hello-opentofu",
        "create service legacy-plan", "create service ping",
        "imported: 8 created, 0 updated, 0 unchanged",
    ]
    assert "playbooks" not in result.stderr  # both run: nothing to warn about
    assert "services[legacy-plan]: type 'terraform-plan' imported as opentofu-plan" in result.stderr

    repo = described(env, "repository", "xr-resources")
    assert repo["url"] == "git@gitlab.com:jh/xr/resources.git" and repo["reference"] == "main"
    assert repo["private_key_name"] == "xr-gitlab-private" and repo["tags"] == ["cisco", "xr"]
    assert repo["description"] == "XR Resources for testing"

    decorator = described(env, "decorator", "ansible-xr")
    assert decorator["schema"]["properties"]["device_type"]["enum"] == ["ios", "eos", "nxos"]
    assert decorator["schema"]["required"] == ["host"] and decorator["description"] == "Device inputs"

    ansible = described(env, "service", "Ansible-Example")
    assert ansible["type"] == "ansible-playbook" and ansible["filename"] == "hello-world.yml"
    assert ansible["playbooks"] == ["cleanup.yml"]
    assert ansible["working_dir"] == "." and ansible["repository"] == "xr-resources"
    assert ansible["decorator"] == "ansible-xr" and ansible["tags"] == ["xr", "cisco"]
    assert ansible["runtime_args"] == ["-i", "./inventory.ini", "-i", "hosts.yml", "--check", "--diff",
                                       "--limit", "routers", "--tags", "upgrade,verify", "--skip-tags", "example-tag",
                                       "-vvv"]
    assert ansible["env"] == {"ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_CONFIG": "ansible.cfg"}

    python = described(env, "service", "Hello-World")
    assert python["type"] == "python-script" and python["filename"] == "hello.py"
    assert python["working_dir"] == "python/hello"
    assert python["env"] == {"GREETING": "hi", "RETRIES": "3"}
    assert python["requirements_file"] == "requirements-prod.txt"
    assert python["secrets"] == ["name=api-token,type=env,target=API_TOKEN"]
    assert python["description"] == "A simple hello-world"

    tofu = described(env, "service", "hello-opentofu")
    assert tofu["type"] == "opentofu-plan" and tofu["working_dir"] == "hello-opentofu"
    # The action first (execution/commands.py tofu_action), then the var files, then the vars.
    assert tofu["runtime_args"] == ["apply", "-var-file=prod.tfvars", "-var-file=../common.tfvars",
                                    "-var", "region=eu-west-1", "-var", "replicas=2", "-var", 'zones=["a","b"]']
    assert "warning: secrets[api-token]: the secret already here is used" in result.stderr
    assert described(env, "service", "legacy-plan")["type"] == "opentofu-plan"

    ping = described(env, "service", "ping")
    assert ping["type"] == "executable" and ping["filename"] == "tools/ping.sh"
    assert ping["arg_format"] == "--{key} {value}"


def test_iag5_reimport_updates_only_what_differs(iag_ready, tmp_path):
    env = iag_ready
    path = tmp_path / "iag.yaml"
    path.write_text(IAG_EXPORT)
    ok(gw(env, "db", "import", str(path)))
    before = described(env, "service", "Hello-World")
    ok(gw(env, "edit", "service", "Hello-World", "--description", "edited here"))

    dry = ok(gw(env, "db", "import", str(path), "--dry-run"))
    assert "update service Hello-World" in dry.stdout.splitlines()
    assert "unchanged service ping" in dry.stdout.splitlines()
    assert "unchanged repository xr-resources" in dry.stdout.splitlines()
    assert dry.stdout.splitlines()[-1] == "dry run: 0 to create, 1 to update, 7 unchanged; nothing was changed"
    assert described(env, "service", "Hello-World")["description"] == "edited here"

    result = ok(gw(env, "db", "import", str(path)))
    assert result.stdout.splitlines()[-1] == "imported: 0 created, 1 updated, 7 unchanged"
    after = described(env, "service", "Hello-World")
    assert after["description"] == "A simple hello-world"
    assert after["created_at"] == before["created_at"]


def test_unknown_keys_are_reported_by_name(iag_ready, tmp_path):
    env = iag_ready
    document = yaml.safe_load(IAG_EXPORT)
    document["services"][1]["owner"] = "netops"
    document["services"][1]["runtime"]["python-version"] = "3.11"
    document["services"][2]["runtime"] = {"check": True}
    document["repositories"][0]["mirror"] = True
    document["version"] = 5
    path = tmp_path / "iag.yaml"
    path.write_text(yaml.safe_dump(document))
    result = ok(gw(env, "db", "import", str(path)))
    warnings = result.stderr.splitlines()
    assert "warning: services[Hello-World]: unknown key 'owner' ignored" in warnings
    assert "warning: services[Hello-World] runtime: unknown key 'python-version' ignored" in warnings
    assert any("services[hello-opentofu] runtime: unknown key 'check' ignored" in w for w in warnings)
    assert "warning: repositories[xr-resources]: unknown key 'mirror' ignored" in warnings
    assert "warning: document: unknown key 'version' ignored" in warnings
    assert "create service Hello-World" in result.stdout.splitlines()


def test_strict_refuses_unknown_keys_and_stores_nothing(iag_ready, tmp_path):
    env = iag_ready
    before = listing(env)
    document = yaml.safe_load(IAG_EXPORT)
    document["services"][1]["owner"] = "netops"
    path = tmp_path / "iag.yaml"
    path.write_text(yaml.safe_dump(document))
    line = one_error_line(gw(env, "db", "import", str(path), "--strict"))
    assert "services[Hello-World]" in line and "'owner'" in line
    assert listing(env) == before
    # Without the unknown key, --strict accepts the file (multiple playbooks and terraform are warnings).
    path.write_text(IAG_EXPORT)
    ok(gw(env, "db", "import", str(path), "--strict"))


def test_dry_run_says_what_it_would_do_and_stores_nothing(iag_ready, tmp_path):
    env = iag_ready
    before = listing(env)
    path = tmp_path / "iag.yaml"
    path.write_text(IAG_EXPORT)
    result = ok(gw(env, "db", "import", str(path), "--dry-run"))
    lines = result.stdout.splitlines()
    assert "create repository xr-resources" in lines and "create service Ansible-Example" in lines
    assert lines[-1] == "dry run: 8 to create, 0 to update, 0 unchanged; nothing was changed"
    assert listing(env) == before


def test_iag5_opentofu_options_beside_runtime_are_mapped_too(iag_ready, tmp_path):
    """iagctl's --var and --var-file spelled on the service itself, vars as NAME=VALUE text."""
    document = yaml.safe_load(IAG_EXPORT)
    tofu = document["services"][2]
    tofu.pop("runtime")
    tofu.update({"action": "destroy", "vars": ["region=eu-west-1", "note=a=b"], "var-files": "prod.tfvars"})
    path = tmp_path / "iag.yaml"
    path.write_text(yaml.safe_dump(document))
    ok(gw(iag_ready, "db", "import", str(path), "--strict"))
    assert described(iag_ready, "service", "hello-opentofu")["runtime_args"] == [
        "destroy", "-var-file=prod.tfvars", "-var", "region=eu-west-1", "-var", "note=a=b"]


def _refused(env: dict[str, str], tmp_path: Path, document: dict) -> str:
    """The one error line of importing `document` (without and with --strict), after checking nothing was stored."""
    before = listing(env)
    path = tmp_path / "iag.yaml"
    path.write_text(yaml.safe_dump(document))
    line = one_error_line(gw(env, "db", "import", str(path)))
    assert one_error_line(gw(env, "db", "import", str(path), "--strict")) == line
    assert listing(env) == before
    return line


def test_iag5_keys_not_supported_yet_are_refused_by_name(iag_ready, tmp_path):
    env = iag_ready
    document = yaml.safe_load(IAG_EXPORT)
    document["services"][2]["runtime"]["state-file"] = "/var/lib/iag/states/hello.tfstate"
    line = _refused(env, tmp_path, document)
    assert line.startswith("gateway: services[hello-opentofu]: state-file '/var/lib/iag/states/hello.tfstate' "
                           "is not supported yet")
    assert "backend" in line

    document = yaml.safe_load(IAG_EXPORT)
    document["registries"] = [{"name": "internal-pypi", "type": "pip", "url": "https://pypi.example.com/simple"}]
    line = _refused(env, tmp_path, document)
    assert line.startswith("gateway: registries[internal-pypi]: registry type 'pip' is not valid")

    document = yaml.safe_load(IAG_EXPORT)
    document["secrets"].append({"name": "not-here"})
    line = _refused(env, tmp_path, document)
    assert "secrets[not-here]" in line and "gateway create secret not-here" in line


@pytest.mark.parametrize("options, expected", [
    ({"action": "refresh"}, "OpenTofu action 'refresh' is not known; use one of plan, apply, destroy"),
    ({"var-files": ["../../outside.tfvars"]}, "var-file '../../outside.tfvars' must be a path inside the repository"),
    ({"var-files": ["/etc/prod.tfvars"]}, "var-file '/etc/prod.tfvars' must be a path inside the repository"),
    ({"vars": {"bad name": "x"}}, "var 'bad name' is not a valid OpenTofu variable name"),
    ({"vars": "region=eu"}, "vars must be a mapping"),
])
def test_iag5_bad_opentofu_options_are_one_line(iag_ready, tmp_path, options, expected):
    document = yaml.safe_load(IAG_EXPORT)
    document["services"][2]["runtime"] = options
    line = _refused(iag_ready, tmp_path, document)
    assert line.startswith("gateway: services[hello-opentofu]: ") and expected in line


def test_iag5_opentofu_options_on_another_kind_are_reported(iag_ready, tmp_path):
    document = yaml.safe_load(IAG_EXPORT)
    document["services"][1]["runtime"]["vars"] = {"region": "eu"}
    document["services"][1]["action"] = "apply"
    path = tmp_path / "iag.yaml"
    path.write_text(yaml.safe_dump(document))
    warnings = ok(gw(iag_ready, "db", "import", str(path))).stderr.splitlines()
    assert ("warning: services[Hello-World] runtime: unknown key 'vars' ignored (it does not apply to a "
            "python-script service)") in warnings
    assert ("warning: services[Hello-World]: unknown key 'action' ignored (it does not apply to a "
            "python-script service)") in warnings


def test_iag5_import_round_trips_through_our_export(iag_ready, tmp_path, key):
    """IAG 5 export -> here -> our export -> another gateway: the same resources; and again here: unchanged."""
    path = tmp_path / "iag.yaml"
    path.write_text(IAG_EXPORT)
    ok(gw(iag_ready, "db", "import", str(path)))
    exported = tmp_path / "ours.yaml"
    ok(gw(iag_ready, "db", "export", "-o", str(exported)))

    again = ok(gw(iag_ready, "db", "import", str(exported))).stdout.splitlines()
    assert again[-1] == "imported: 0 created, 0 updated, 10 unchanged"

    other = make_env(tmp_path / "other", key)
    ok(gw(other, "db", "import", str(exported)))
    assert listing(other) == listing(iag_ready)
    for kind, name in (("service", "hello-opentofu"), ("service", "Ansible-Example"), ("service", "ping"),
                       ("decorator", "ansible-xr"), ("repository", "xr-resources")):
        assert described(other, kind, name) == described(iag_ready, kind, name)
    # The IAG 5 file itself, imported there, changes nothing.
    assert ok(gw(other, "db", "import", str(path))).stdout.splitlines()[-1] == \
        "imported: 0 created, 0 updated, 8 unchanged"


# ---------------------------------------------------------------- invalid documents: all or nothing
INVALID = {
    "missing-repository": ("""\
        repositories:
          - name: apps
            url: https://example.com/apps.git
        services:
          - name: deploy
            type: python-script
            filename: main.py
            repository: nowhere
        """, ["services[deploy]", "repository 'nowhere' does not exist"]),
    "missing-secret": ("""\
        repositories:
          - name: apps
            url: git@example.com:ops/apps.git
            private-key-name: no-such-key
        """, ["repositories[apps]", "secret 'no-such-key'"]),
    "bad-name": ("""\
        repositories:
          - name: apps
            url: https://example.com/apps.git
          - name: "bad name!"
            url: https://example.com/other.git
        """, ["repositories[bad name!]", "not valid"]),
    "malformed-schema": ("""\
        repositories:
          - name: apps
            url: https://example.com/apps.git
        decorators:
          - name: form
            schema:
              type: object
              properties:
                host: {type: 12}
        """, ["decorators[form]", "invalid JSON Schema"]),
    "bad-url": ("""\
        repositories:
          - name: apps
            url: "ext::sh -c touch% /tmp/pwned"
        """, ["repositories[apps]", "runs commands"]),
    "duplicate": ("""\
        repositories:
          - name: apps
            url: https://example.com/apps.git
          - name: apps
            url: https://example.com/apps2.git
        """, ["repositories[apps]", "two repositories named 'apps'"]),
    "bad-type": ("""\
        repositories:
          - name: apps
            url: https://example.com/apps.git
        services:
          - name: deploy
            type: powershell
            repository: apps
        """, ["services[deploy]", "'powershell'"]),
    "escaping-path": ("""\
        repositories:
          - name: apps
            url: https://example.com/apps.git
        services:
          - name: deploy
            type: python-script
            working-directory: ../../etc
            filename: main.py
            repository: apps
        """, ["services[deploy]", "'..' is not allowed"]),
    "not-a-mapping": ("""\
        - repositories
        - services
        """, ["must be a mapping"]),
    "unknown-format": ("""\
        format: something-else/v3
        repositories: []
        """, ["format 'something-else/v3' is not supported"]),
    "entry-not-a-mapping": ("""\
        repositories:
          - just-a-name
        """, ["repositories item 1", "expected a mapping"]),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_document_stores_nothing(env, tmp_path, case):
    ok(gw(env, "create", "repository", "existing", "--url", "https://example.com/existing.git"))
    before = ok(gw(env, "db", "export")).stdout
    text, expected = INVALID[case]
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    for extra in ([], ["--dry-run"]):
        line = one_error_line(gw(env, "db", "import", str(path), *extra))
        for part in expected:
            assert part in line, line
    assert ok(gw(env, "db", "export")).stdout == before


def test_several_problems_are_counted_in_one_line(env, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        repositories:
          - name: "a b"
            url: https://example.com/a.git
          - name: c
            url: ftp://example.com/c
        """))
    line = one_error_line(gw(env, "db", "import", str(path)))
    assert line.startswith("gateway: repositories[a b]: ") and line.endswith("(and 1 more problem)")
    assert listing(env)["repositories"] == []


def test_malformed_yaml_is_one_line_naming_file_and_line(env, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("repositories:\n  - name: apps\n    url: [unclosed\n  - name: other\n")
    line = one_error_line(gw(env, "db", "import", str(path)))
    assert str(path) in line and "line " in line and "not valid YAML" in line
    line = one_error_line(gw(env, "db", "import", "-", stdin="services:\n\t- name: x\n"))
    assert "stdin: line 2" in line
    assert listing(env)["repositories"] == []


def test_empty_document_and_missing_file(env, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert "empty" in one_error_line(gw(env, "db", "import", str(empty)))
    result = gw(env, "db", "import", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("gateway: cannot read import file")


def test_export_to_unwritable_place_is_one_line(env, tmp_path):
    result = gw(env, "db", "export", "-o", str(tmp_path / "no" / "such" / "dir" / "out.yaml"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("gateway: cannot write")


# ---------------------------------------------------------------- the engine directly
@pytest.fixture
async def engine(tmp_path, key):
    config = tmp_path / "engine" / "gateway.conf"
    config.parent.mkdir()
    config.write_text(f"[application]\ndata_dir = {tmp_path / 'engine' / 'data'}\n\n"
                      f"[secrets]\nencrypt_key_file = {key}\n")
    engine = open_engine(load_config(str(config), {"HOME": str(tmp_path)}))
    try:
        yield engine
    finally:
        await engine.close()


async def test_engine_round_trip_and_report(engine):
    await engine.create_secret("token", SECRET_VALUE)
    await engine.create(Repository(name="infra", url="https://example.com/infra.git"))
    document = await engine.export_db()
    assert document["format"] == FORMAT
    assert SECRET_VALUE not in json.dumps(document)
    report = await engine.import_db(document)
    assert isinstance(report, ImportReport) and not report.dry_run
    assert report.changes == [("unchanged", "secret", "token"), ("unchanged", "repository", "infra")]
    assert report.lines()[-1] == "imported: 0 created, 0 updated, 2 unchanged"
    assert ImportReport.from_dict(report.to_dict()) == report


async def test_engine_strict_and_warnings(engine):
    document = {"repositories": [{"name": "infra", "url": "https://example.com/infra.git", "colour": "red"}]}
    with pytest.raises(InvalidArgument, match=r"repositories\[infra\]: unknown key 'colour'"):
        await engine.import_db(document, strict=True)
    assert await engine.list("repository") == []
    report = await engine.import_db(document, dry_run=True)
    assert report.changes == [("create", "repository", "infra")]
    assert report.warnings == ["repositories[infra]: unknown key 'colour' ignored"]
    assert "warning: repositories[infra]: unknown key 'colour' ignored" in report.lines()
    assert await engine.list("repository") == []


async def test_failed_write_rolls_back(engine):
    """A store failure midway puts back what the import had written, then reports the failure."""
    await engine.create(Repository(name="infra", url="https://example.com/infra.git", description="old"))
    before = await engine.export_db()
    document = {
        "repositories": [{"name": "infra", "url": "https://example.com/infra.git", "description": "new"},
                         {"name": "apps", "url": "https://example.com/apps.git"}],
        "services": [{"name": "deploy", "type": "python-script", "filename": "main.py", "repository": "apps"}],
    }
    real_create = engine.store.create

    async def failing_create(key: str, value: bytes) -> int:
        if key.startswith("services/"):
            raise StoreUnavailable("local store: disk I/O error")
        return await real_create(key, value)

    engine.store.create = failing_create  # type: ignore[method-assign]
    try:
        with pytest.raises(Unavailable, match="disk I/O error"):
            await engine.import_db(document)
    finally:
        engine.store.create = real_create  # type: ignore[method-assign]
    assert await engine.export_db() == before
    report = await engine.import_db(document)
    assert report.changes == [("create", "repository", "apps"), ("update", "repository", "infra"),
                              ("create", "service", "deploy")]
    assert (await engine.get("repository", "infra")).description == "new"
