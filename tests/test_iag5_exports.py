"""IAG 5 exports both ways: a real `iagctl db export` file (tests/iag5_exports/) comes in without editing, our own
export re-imports whatever it holds, `db export --format iag5` writes what IAG 5's `db import` reads, and
`db import --check` says per resource what an import would do, listing every problem.

Where the IAG 5 names come from: the `iagctl db export` / `db import` reference pages (layout, -f json, --file,
--check states), IAG 5's registry page (default-pypi https://pypi.org/simple, default-galaxy
https://galaxy.ansible.com), the `create executable-object` and `create secret-provider` / secret alias pages
(exec-command; --provider, --secret, --key), and Itential's service-file schema reference (registries,
executable-objects, mcp_servers, users, runtime pyproj-script).  Not confirmed by any of them, and so only as
good as a guess: `executable-object` as a service's key, the keys of a `secret-providers` entry, and an alias
listed under `secrets` with `provider`.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cli_helpers import check_all, gateway_env, gw, ok, one_error_line
from gateway_server import ADMIN_PASSWORD, Client, Daemon
from gitutil import git, new_repo

FIXTURES = Path(__file__).parent / "iag5_exports"
FULL_YAML = FIXTURES / "full.yaml"
FULL_JSON = FIXTURES / "full.json"
# What the export's services name but an IAG 5 export cannot carry (values sealed there, or aliases of an
# external secrets manager): made here first, as an operator moving in does.
SECRETS = ("xr-gitlab-private", "pypi-password", "device-password", "snmp-community")
KINDS = ("repository", "decorator", "service", "registry", "executable-object")
PLURALS = {"repository": "repositories", "decorator": "decorators", "service": "services",
           "registry": "registries", "executable-object": "executable-objects"}


def make_env(root: Path) -> dict[str, str]:
    key = root / "secrets.key"
    root.mkdir(parents=True, exist_ok=True)
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o600)
    return gateway_env(root, f"[secrets]\nencrypt_key_file = {key}\n", home=root)


def with_secrets(env: dict[str, str], names=SECRETS) -> dict[str, str]:
    for name in names:
        ok(gw(env, "create", "secret", name, "--value", f"value of {name}"))
    return env


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return with_secrets(make_env(tmp_path / "here"))


def described(env: dict[str, str], kind: str, name: str) -> dict:
    data = json.loads(ok(gw(env, "describe", kind, name, "-o", "json")).stdout)
    for stamp in ("created_at", "updated_at", "id"):  # what each store gives a resource itself
        data.pop(stamp, None)
    return data


def everything(env: dict[str, str]) -> dict[str, dict[str, dict]]:
    """Every resource but secrets, as `describe` shows it, without timestamps and a service's own id."""
    result = {}
    for kind in KINDS:
        names = [item["name"] for item in json.loads(ok(gw(env, "get", PLURALS[kind], "-o", "json")).stdout)]
        result[kind] = {name: described(env, kind, name) for name in names}
    return result


def warnings_of(result) -> list[str]:
    return [line[len("warning: "):] for line in result.stderr.splitlines() if line.startswith("warning: ")]


# ---------------------------------------------------------------- a real IAG 5 export comes in
@pytest.mark.parametrize("fixture", [FULL_YAML, FULL_JSON], ids=["yaml", "json"])
def test_real_iag5_export_with_default_registries_is_imported(env, fixture):
    result = ok(gw(env, "db", "import", str(fixture)))
    lines = result.stdout.splitlines()
    check_all([
        lambda: assert_in("unchanged registry default-pypi", lines),
        lambda: assert_in("unchanged registry default-galaxy", lines),
        lambda: assert_in("create registry internal-pypi", lines),
        lambda: assert_in("create executable-object python312", lines),
        lambda: assert_in("create executable-object bash", lines),
        lambda: assert_in("create service upgrade-xr", lines),
        lambda: assert_in("create service interface-report", lines),
        lambda: assert_in("create service backup-configs", lines),
        lambda: assert_in("create secret-provider prod-vault", lines),
        lambda: assert_in("update secret device-password", lines),  # an alias of prod-vault's now
        lambda: assert_equal(lines[-1], "imported: 10 created, 1 updated, 2 unchanged"),
    ])
    alias = described(env, "secret", "device-password")
    assert (alias["provider"], alias["path"], alias["key"]) == ("prod-vault", "network/devices", "password")
    vault = described(env, "secret-provider", "prod-vault")
    assert (vault["auth_method"], vault["role_id"], vault["secret_id_file"], vault["mount"] if "mount" in vault
            else vault["secrets_endpoint"]) == ("approle", "6f1c5a2e-6d3b-4a53-9a6c-2f1b8d0e7c11",
                                                "/etc/gateway/secret_id", "itential/data")
    # The built-in registries stay built in (pip's and ansible-galaxy's own configuration); the private one is
    # stored with its credentials' secret.
    registries = {r["name"]: r for r in json.loads(ok(gw(env, "get", "registries", "-o", "json")).stdout)}
    assert registries["internal-pypi"]["url"] == "https://pypi.internal.example.com/simple"
    assert registries["internal-pypi"]["username"] == "deploy"
    assert registries["internal-pypi"]["password_name"] == "pypi-password"
    assert not registries["internal-pypi"]["default"]
    assert registries["default-pypi"]["created_at"] == ""  # built in, not a stored copy
    assert described(env, "executable-object", "python312")["exec_command"] == "/usr/bin/python3.12"
    assert described(env, "service", "interface-report")["executable"] == "python312"
    backup = described(env, "service", "backup-configs")
    assert backup["executable"] == "bash" and backup["arg_format"] == "--{key} {value}"
    # Imported again: nothing changes.
    assert ok(gw(env, "db", "import", str(fixture))).stdout.splitlines()[-1] == \
        "imported: 0 created, 0 updated, 13 unchanged"


def assert_in(item, items):
    assert item in items, f"{item!r} not in {items}"


def assert_equal(a, b):
    assert a == b, f"{a!r} != {b!r}"


def part_of_full(tmp_path: Path, *sections: str, services: tuple[str, ...] = ()) -> Path:
    """The fixture with only `sections` (and only `services` of its services, when given)."""
    document = yaml.safe_load(FULL_YAML.read_text())
    part = {key: document[key] for key in sections}
    if services:
        part["services"] = [s for s in document["services"] if s["name"] in services]
    path = tmp_path / "part.yaml"
    path.write_text(yaml.safe_dump(part, sort_keys=False))
    return path


def test_several_playbooks_all_run_in_turn(env, tmp_path):
    path = part_of_full(tmp_path, "repositories", "decorators", services=("upgrade-xr",))
    result = ok(gw(env, "db", "import", str(path)))
    assert not [w for w in warnings_of(result) if "playbook" in w], result.stderr
    service = described(env, "service", "upgrade-xr")
    assert [service["filename"], *service["playbooks"]] == ["precheck.yml", "upgrade.yml", "postcheck.yml"]
    assert service["working_dir"] == "ansible"


def test_sections_not_supported_get_one_line_each(env, tmp_path):
    path = part_of_full(tmp_path, "repositories", "executable-objects", "secret-providers", "secrets", "mcp_servers",
                        "users", services=("interface-report", "speak"))
    result = ok(gw(env, "db", "import", str(path)))
    warnings = warnings_of(result)
    check_all([
        lambda: assert_in("secret-providers[cyberark-prod]: not imported: secret-provider cyberark-prod: a cyberark "
                          "provider needs --app-id", warnings),
        lambda: assert_in("MCP servers are not supported: netbox-mcp, local-tools", warnings),
        lambda: assert_in("users are not imported: alice, bob; create each here with gateway create user NAME "
                          "--role ROLE (IAG 5 users are all superusers)", warnings),
        lambda: assert_in("services[speak]: not imported: pyproj-script services are not supported yet (a "
                          "python-script service here runs the file its filename names)", warnings),
        lambda: assert_in("secrets[snmp-community]: the secret already here is used (an alias of secret "
                          "provider 'cyberark-prod' in IAG 5, which is not imported)", warnings),
    ])
    # An alias is not called sealed; an unknown section is not what is said of these.
    assert not [w for w in warnings if "sealed" in w and ("device-password" in w or "snmp-community" in w)]
    assert not [w for w in warnings if "unknown key" in w], warnings
    assert "speak" not in [s["name"] for s in json.loads(ok(gw(env, "get", "services", "-o", "json")).stdout)]


def test_an_alias_not_here_is_named_as_an_alias(tmp_path):
    env = with_secrets(make_env(tmp_path / "fresh"), ("xr-gitlab-private", "pypi-password", "device-password"))
    path = part_of_full(tmp_path, "repositories", "secret-providers", "secrets", services=("interface-report",))
    line = one_error_line(gw(env, "db", "import", str(path)), code=1, prefix="gateway: ")
    assert line.startswith("gateway: secrets[snmp-community]: an alias of a secret in secret provider "
                           "'cyberark-prod', which is not imported (see its warning); create the provider or the "
                           "secret here first: gateway create secret snmp-community"), line
    assert "sealed" not in line
    assert json.loads(ok(gw(env, "get", "services", "-o", "json")).stdout) == []


# ---------------------------------------------------------------- our own export, with an executable service
def test_own_export_with_an_executable_service_reimports(tmp_path):
    one = make_env(tmp_path / "one")
    ok(gw(one, "create", "repository", "tools", "--url", "https://example.com/tools.git"))
    ok(gw(one, "create", "executable-object", "bash", "--exec-command", "/bin/bash", "--description", "shell"))
    ok(gw(one, "create", "registry", "pypi", "mirror", "--url", "https://pypi.example.com/simple"))
    ok(gw(one, "create", "service", "executable", "backup", "--repository", "tools", "--filename", "backup.sh",
          "--executable", "bash"))
    exported = tmp_path / "ours.yaml"
    ok(gw(one, "db", "export", "-o", str(exported)))

    empty = make_env(tmp_path / "empty")
    result = gw(empty, "db", "import", str(exported))
    assert result.code == 0 and "Traceback" not in result.stderr, str(result)
    assert result.stdout.splitlines()[-1] == "imported: 4 created, 0 updated, 0 unchanged"
    assert everything(empty) == everything(one)
    again = ok(gw(one, "db", "import", str(exported)))
    assert again.stdout.splitlines()[-1] == "imported: 0 created, 0 updated, 4 unchanged"
    document = yaml.safe_load(exported.read_text())
    assert [o["name"] for o in document["executable-objects"]] == ["bash"]
    assert [r["name"] for r in document["registries"]] == ["mirror"]


# ---------------------------------------------------------------- the way back: --format iag5
def test_iag5_round_trip(env, tmp_path):
    """IAG 5 file -> here -> export --format iag5 -> an empty gateway: the same resources."""
    ok(gw(env, "db", "import", str(FULL_YAML)))
    out = tmp_path / "for-iag5.yaml"
    result = ok(gw(env, "db", "export", "--format", "iag5", "--file", str(out)))
    notes = [line for line in result.stderr.splitlines() if line.startswith("not in the IAG 5 file: ")]
    assert notes == ["not in the IAG 5 file: secrets pypi-password, snmp-community, "
                     "xr-gitlab-private: their values are sealed with this gateway's key; create each on the "
                     "IAG 5 gateway (iagctl create secret NAME) before importing there"], result.stderr
    document = yaml.safe_load(out.read_text())
    # the alias and its provider go back as IAG 5 writes them
    assert document["secrets"] == [{"name": "device-password", "provider": "prod-vault", "secret": "network/devices",
                                    "key": "password"}]
    assert [p["name"] for p in document["secret-providers"]] == ["prod-vault"]
    assert document["secret-providers"][0]["secret-id-file"] == "/etc/gateway/secret_id"
    # IAG 5's layout, keys and type names.
    assert "format" not in document
    assert set(document) == {"decorators", "repositories", "services", "registries", "executable-objects",
                             "secret-providers", "secrets"}
    services = {s["name"]: s for s in document["services"]}
    assert services["upgrade-xr"]["playbooks"] == ["precheck.yml", "upgrade.yml", "postcheck.yml"]
    assert services["upgrade-xr"]["runtime"]["inventory"] == ["inventory.ini"]
    assert services["upgrade-xr"]["runtime"]["check"] is True
    assert services["upgrade-xr"]["runtime"]["verbose-level"] == 2
    assert services["upgrade-xr"]["working-directory"] == "ansible"
    assert services["backup-configs"]["arg-format"] == "--{{.Key}} {{.Value}}"
    assert services["backup-configs"]["executable-object"] == "bash"
    assert services["interface-report"]["runtime"]["req-file"] == "requirements.txt"
    assert {s["type"] for s in document["services"]} == {"ansible-playbook", "python-script", "executable"}
    registries = {r["name"]: r for r in document["registries"]}
    assert registries["default-pypi"] == {"name": "default-pypi", "type": "pypi", "url": "https://pypi.org/simple",
                                          "default": True}
    assert registries["internal-pypi"]["password-name"] == "pypi-password"
    assert {o["name"]: o["exec-command"] for o in document["executable-objects"]} == {
        "python312": "/usr/bin/python3.12", "bash": "/bin/bash"}
    repos = {r["name"]: r for r in document["repositories"]}
    assert repos["xr-resources"]["private-key-name"] == "xr-gitlab-private"

    other = with_secrets(make_env(tmp_path / "other"))
    imported = ok(gw(other, "db", "import", str(out), "--strict"))
    assert imported.stdout.splitlines()[-1] == "imported: 10 created, 1 updated, 2 unchanged"
    assert everything(other) == everything(env)


def test_iag5_round_trip_keeps_every_runtime_option(tmp_path):
    here = with_secrets(make_env(tmp_path / "here"), ("api-token",))
    source = FIXTURES / "runtime-options.yaml"
    ok(gw(here, "db", "import", str(source), "--strict"))
    ansible = described(here, "service", "Ansible-Example")
    assert ansible["runtime_args"] == ["-i", "./inventory.ini", "-i", "hosts.yml", "--check", "--diff", "--limit",
                                       "routers", "--tags", "upgrade,verify", "--skip-tags", "example-tag",
                                       "--forks", "20", "-vvv", "--extra-vars", '{"retries": 2, "site": "ams1"}',
                                       "--extra-vars", "@vars/common.yml"]
    assert described(here, "service", "plan-only")["runtime_args"] == []
    out = tmp_path / "for-iag5.yaml"
    result = ok(gw(here, "db", "export", "--format", "iag5", "-o", str(out)))
    assert [line for line in result.stderr.splitlines() if line.startswith("not in the IAG 5 file") and
            "secrets api-token" not in line] == [], result.stderr
    document = yaml.safe_load(out.read_text())
    services = {s["name"]: s for s in document["services"]}
    assert services["Ansible-Example"]["runtime"]["extra-vars"] == {"retries": 2, "site": "ams1"}
    assert services["Ansible-Example"]["runtime"]["forks"] == 20
    assert services["hello-opentofu"]["action"] == "apply"
    assert services["hello-opentofu"]["vars"] == {"region": "eu-west-1", "replicas": "2"}
    assert services["plan-only"]["action"] == "plan"
    assert services["ping"]["arg-format"] == "-{{.Key}}={{.Value}}"

    there = with_secrets(make_env(tmp_path / "there"), ("api-token",))
    ok(gw(there, "db", "import", str(out), "--strict"))
    assert everything(there) == everything(here)
    assert ok(gw(here, "db", "import", str(out))).stdout.splitlines()[-1] == \
        "imported: 0 created, 0 updated, 8 unchanged"


def test_export_json_and_file(env, tmp_path):
    ok(gw(env, "db", "import", str(part_of_full(tmp_path, "repositories", "decorators"))))
    ours = json.loads(ok(gw(env, "db", "export", "-f", "json")).stdout)
    assert ours["format"] == "automation-gateway/v1" and len(ours["repositories"]) == 2
    theirs = json.loads(ok(gw(env, "db", "export", "--format", "iag5", "-f", "json")).stdout)
    assert "format" not in theirs and theirs["decorators"][0]["name"] == "device-input"
    target = tmp_path / "export.json"
    result = ok(gw(env, "db", "export", "-f", "json", "--file", str(target)))
    assert json.loads(target.read_text()) == ours and result.stdout == ""
    line = one_error_line(gw(env, "db", "export", "-f", "pdf"), code=2)
    assert "pdf" in line


# ---------------------------------------------------------------- --check, every problem
def test_check_says_created_unchanged_or_conflict(env, tmp_path):
    ok(gw(env, "db", "import", str(FULL_YAML)))
    ok(gw(env, "edit", "service", "interface-report", "--description", "changed here"))
    document = yaml.safe_load(FULL_YAML.read_text())
    document["decorators"].append({"name": "new-form", "schema": {"type": "object"}})
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(document))
    before = ok(gw(env, "db", "export")).stdout
    lines = ok(gw(env, "db", "import", str(path), "--check")).stdout.splitlines()
    check_all([
        lambda: assert_in("created decorator new-form", lines),
        lambda: assert_in("unchanged repository netops", lines),
        lambda: assert_in("unchanged registry default-pypi", lines),
        lambda: assert_in("conflict service interface-report (differs from what is stored; the import replaces "
                          "it)", lines),
        lambda: assert_equal(lines[-1], "check (dry run): 1 created, 12 unchanged, 1 conflict; nothing was "
                                        "changed"),
    ])
    assert ok(gw(env, "db", "export")).stdout == before


BROKEN = """\
repositories:
  - name: "a b"
    url: https://example.com/a.git
  - name: c
    url: ftp://example.com/c
services:
  - name: s
    type: powershell
    repository: c
"""


def test_every_problem_is_listed(env, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    for flag in ("--check", "--verbose", "--validate"):
        result = gw(env, "db", "import", str(path), flag)
        assert result.code == 1 and "Traceback" not in result.stderr, str(result)
        lines = result.stderr.splitlines()
        problems = [line for line in lines if line.startswith("problem: ")]
        assert len(problems) == 3, str(result)
        assert any("repositories[a b]" in p for p in problems)
        assert any("repositories[c]" in p for p in problems)
        assert any("services[s]" in p and "'powershell'" in p for p in problems)
        assert lines[-1] == f"gateway: 3 problems in {path}; nothing was imported", str(result)
    # Without them: the one line, as before.
    line = one_error_line(gw(env, "db", "import", str(path)), code=1)
    assert line.endswith("(and 2 more problems)")


# ---------------------------------------------------------------- --repository with IAG 5's file name
def test_import_from_a_repository_defaults_to_its_import_yml(env, tmp_path):
    origin = tmp_path / "origin"
    new_repo(origin, {"import.yml": "decorators:\n  - name: from-repo\n    schema: {type: object}\n"})
    result = ok(gw(env, "db", "import", "--repository", f"file://{origin}", "--check"))
    assert "created decorator from-repo" in result.stdout.splitlines()
    assert ok(gw(env, "db", "import", "--repository", f"file://{origin}")).stdout.splitlines()[-1] == \
        "imported: 1 created, 0 updated, 0 unchanged"
    bare = tmp_path / "bare"
    new_repo(bare, {"README": "nothing to import\n"})
    line = one_error_line(gw(env, "db", "import", "--repository", f"file://{bare}"), code=1)
    assert "has no import.yml or import.yaml" in line
    line = one_error_line(gw(env, "db", "import"), code=2)
    assert "give the FILE" in line


# ---------------------------------------------------------------- through a real server
@contextlib.contextmanager
def server_admin(tmp_path: Path, certs) -> Iterator[Client]:
    """A real server with a key file of its own, and a client logged in as its admin; the server stops after."""
    daemon = Daemon(tmp_path / "server", certs,
                    extra=f"[secrets]\nencrypt_key_file = {make_key(tmp_path / 'server.key')}\n")
    daemon.start()
    try:
        client = Client(tmp_path / "client", daemon.port, certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
        yield client
    finally:
        daemon.stop()


def test_through_a_server(tmp_path, certs):
    with server_admin(tmp_path, certs) as client:
        for name in SECRETS:
            client.ok("create", "secret", name, "--value", f"value of {name}")
        check = client.ok("db", "import", str(FULL_JSON), "--check")
        assert "unchanged registry default-galaxy" in check.stdout.splitlines()
        assert "created executable-object python312" in check.stdout.splitlines()
        assert "secret-providers[cyberark-prod]: not imported" in check.stderr
        imported = client.ok("db", "import", str(FULL_JSON))
        assert imported.stdout.splitlines()[-1] == "imported: 10 created, 1 updated, 2 unchanged"
        out = tmp_path / "for-iag5.json"
        client.ok("db", "export", "--format", "iag5", "-f", "json", "--file", str(out))
        document = json.loads(out.read_text())
        assert [s["playbooks"] for s in document["services"] if s["name"] == "upgrade-xr"] == [
            ["precheck.yml", "upgrade.yml", "postcheck.yml"]]
        ours = tmp_path / "ours.yaml"
        client.ok("db", "export", "--file", str(ours))
        assert client.ok("db", "import", str(ours)).stdout.splitlines()[-1] == \
            "imported: 0 created, 0 updated, 14 unchanged"
        path = tmp_path / "broken.yaml"
        path.write_text(BROKEN)
        result = client("db", "import", str(path), "--check")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len([line for line in result.stderr.splitlines() if line.startswith("problem: ")]) == 3


def test_import_from_a_repository_is_fetched_by_the_server(tmp_path, certs):
    """In client mode the server fetches `db import --repository` (with its host keys and its secrets), as an
    audited call of its own; what the repository links to outside itself is not read."""
    with server_admin(tmp_path, certs) as client:
        outside = tmp_path / "outside.yml"  # a file of the server's host, importable if it were followed
        outside.write_text("decorators:\n  - name: leaked\n    schema: {type: object}\n")
        origin = tmp_path / "origin"
        new_repo(origin, {"import.yml": "decorators:\n  - name: from-repo\n    schema: {type: object}\n"})
        url = f"file://{origin}"
        imported = client.ok("db", "import", "--repository", url)
        assert imported.stdout.splitlines()[-1] == "imported: 1 created, 0 updated, 0 unchanged"
        linked = tmp_path / "linked"
        new_repo(linked, {"README": "a link out\n"})
        (linked / "import.yml").symlink_to(outside)
        git(linked, "add", "-A")
        git(linked, "commit", "-q", "-m", "a link out")
        refused = client("db", "import", "--repository", f"file://{linked}")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "import.yml leads outside the repository" in refused.stderr
        missing = client("db", "import", "--repository", url, "nosuch.yml")
        assert missing.returncode == 1 and f"nosuch.yml is not a file in {url}" in missing.stderr, missing.stderr
        for path in ("/etc/hostname", "../outside.yml"):
            result = client("db", "import", "--repository", url, path)
            assert result.returncode in (1, 2) and "is a path inside the repository" in result.stderr, result.stderr
        assert "leaked" not in client.ok("get", "decorators").stdout
        trail = json.loads(client.ok("get", "audit", "--action", "fetch", "-o", "json").stdout)
        assert [(e["action"], e["target"], e["user"]) for e in trail][:3] == [("fetch", "repository", "admin")] * 3


def make_key(path: Path) -> Path:
    path.write_text("cd" * 32 + "\n")
    path.chmod(0o600)
    return path


def test_a_second_default_registry_is_refused_by_name(env, tmp_path):
    ok(gw(env, "create", "registry", "pypi", "mirror", "--url", "https://mirror.example.com/simple", "--default"))
    document = {"registries": [{"name": "default-pypi", "type": "pypi", "url": "https://pypi.org/simple",
                                "default": True},
                               {"name": "internal", "type": "pypi", "url": "https://pypi.internal.example.com/simple",
                                "default": True}]}
    path = tmp_path / "two-defaults.yaml"
    path.write_text(yaml.safe_dump(document))
    before = ok(gw(env, "db", "export")).stdout
    line = one_error_line(gw(env, "db", "import", str(path)), code=1)
    assert line == ("gateway: registries: internal and mirror would both be the default pypi registry (stored or "
                    "in the document); keep default: true on one")
    assert ok(gw(env, "db", "export")).stdout == before
    # Without default there, it comes in beside the stored default; IAG 5's own default-pypi stays built in.
    document["registries"][1]["default"] = False
    path.write_text(yaml.safe_dump(document))
    lines = ok(gw(env, "db", "import", str(path))).stdout.splitlines()
    assert lines == ["unchanged registry default-pypi", "create registry internal",
                     "imported: 1 created, 0 updated, 1 unchanged"]


def test_what_iag5_cannot_express_is_listed_on_stderr(tmp_path):
    env = make_env(tmp_path / "native")
    ok(gw(env, "create", "repository", "infra", "--url", "https://example.com/infra.git"))
    ok(gw(env, "create", "service", "python-script", "deploy", "--repository", "infra", "--filename", "main.py",
          "--runtime-arg", "--verbose", "--timeout", "120"))
    ok(gw(env, "create", "service", "opentofu-plan", "lab", "--repository", "infra", "--working-dir", "lab",
          "--var", "region=ams1", "--backend-config", "key=lab", "--action", "apply"))
    result = ok(gw(env, "db", "export", "--format", "iag5"))
    notes = sorted(line for line in result.stderr.splitlines() if line.startswith("not in the IAG 5 file: "))
    assert notes == ["not in the IAG 5 file: services[deploy]: runtime arguments --verbose (IAG 5 has no runtime "
                     "arguments)",
                     "not in the IAG 5 file: services[deploy]: timeout 120",
                     "not in the IAG 5 file: services[lab]: backend-config key=lab"], result.stderr
    services = {s["name"]: s for s in yaml.safe_load(result.stdout)["services"]}
    assert services["lab"]["action"] == "apply" and services["lab"]["vars"] == {"region": "ams1"}
    assert "timeout" not in services["deploy"] and "runtime" not in services["deploy"]
