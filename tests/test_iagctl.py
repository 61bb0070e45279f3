"""iagctl's command lines run through the installed `iagctl` command (the same program as `gateway`, under
IAG 5's name): a shell script of every iagctl form, run as written, against local mode and (the client-mode
subset) against a real TLS daemon whose certificates `gateway cert-gen` made; the lines of IAG 5's reference
(--schema, --value @file, --state, --executable-object, create user on a terminal, login --raw, describe secret
--editor, inspect cluster, old spellings) each through `iagctl`. Also: completion scripts, each verb's --help
naming its iagctl form, and the exit codes (2 bad usage, 1 the operation failed, one `gateway: ...` line)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from cli_helpers import BIN, IAGCTL, Result, check_all, gateway_env, gw, iagctl, ok, run_all, run_command
from gateway_server import Client, Daemon
from gitutil import new_repo
from test_workspace import sshd  # noqa: F401  (a real OpenSSH server on loopback, for hostkeys scan)

VERSION = metadata.version("automation-gateway")
GREET = '''\
import argparse, sys
parser = argparse.ArgumentParser()
parser.add_argument("--name", default="world")
parser.add_argument("--loud", action="store_true")
parser.add_argument("--exit", type=int, default=0)
args = parser.parse_args()
print(("HELLO " if args.loud else "hello ") + args.name)
print("a note on stderr", file=sys.stderr)
sys.exit(args.exit)
'''
SCHEMA = {"type": "object", "required": ["name"],
          "properties": {"name": {"type": "string", "description": "who to greet"},
                         "loud": {"type": "boolean", "default": False, "description": "shout it"},
                         "exit": {"type": "integer", "description": "the exit code"}}}
IMPORT_FILE = '''\
format: automation-gateway/v1
decorators:
  - name: imported-form
    schema: {type: object, properties: {x: {type: string}}}
'''


def iagctl_script(body: str) -> str:
    """An iagctl script as an IAG 5 operator has it, unchanged: `iagctl` is the installed command (first on
    PATH). `step` marks where each command's output starts; stderr goes with stdout, in order."""
    return "set -euo pipefail\nexec 2>&1\nstep() { echo \"==== $*\"; }\n" + body


def run_script(folder: Path, body: str, env: dict[str, str]) -> dict[str, str]:
    """Run the script in `folder`; returns the output of each step by its name. Every command must succeed."""
    script = folder / "iag5.sh"
    script.write_text(iagctl_script(body))
    result = run_command("bash", [str(script)], {**env, "PATH": f"{BIN}:{env['PATH']}"}, cwd=folder, timeout=600)
    assert result.code == 0 and "Traceback" not in result.out, str(result)
    steps: dict[str, str] = {}
    name = None
    for line in result.out.splitlines():
        if line.startswith("==== "):
            name = line[5:]
            steps[name] = ""
        elif name is not None:
            steps[name] += line + "\n"
    return steps


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> tuple[Path, str]:
    repo = tmp_path_factory.mktemp("origin")
    commit = new_repo(repo, {"greet.py": GREET, "exports/import.yaml": IMPORT_FILE})
    return repo, commit


# ---------------------------------------------------------------- local mode: every form
LOCAL = '''\
step version
iagctl version
step version --show-config
iagctl version --show-config
step completion
iagctl completion bash > completion.bash
step create
iagctl create repository apps --url "file://$ORIGIN" --tag web
iagctl create decorator form --schema form.json
iagctl create service python-script greet --repository apps --filename greet.py --decorator form --tag web
iagctl create service executable other --repository apps --filename greet.py --tag ops
step get services --type --tag
iagctl get services --type python-script --tag web
step get services --tag ops
iagctl get services --tag ops
step get repositories --tag
iagctl get repositories --tag web
step get decorators --tag
iagctl get decorators --tag web
step get secrets --tag
iagctl get secrets --tag web
step run --use
iagctl run service python-script greet --use
step run TYPE NAME --set flag
iagctl run service python-script greet --set name=ops --set loud
step run NAME --raw
iagctl run service greet --set name=raw --raw
step run --verbose
iagctl run service python-script greet --set name=v --verbose
step db export FILE
iagctl db export export.yaml
step db import --validate
iagctl db import export.yaml --validate
step db import --check
iagctl db import export.yaml --check
step db import --force
iagctl db import export.yaml --force
step db import --repository --check
iagctl db import --repository "file://$ORIGIN" exports/import.yaml --check
step db import --repository
iagctl db import --repository "file://$ORIGIN" exports/import.yaml
step hostkeys add
iagctl hostkeys add git.example.com ssh-ed25519 "$KEY1"
step hostkeys add --replace
iagctl hostkeys add git.example.com ssh-ed25519 "$KEY2" --replace
step hostkeys get
iagctl hostkeys get
step hostkeys clear
iagctl hostkeys clear
step cert-gen ca
iagctl cert-gen ca --cn "Script CA" --output certs --expiry 30 --key-algo rsa --key-size 2048
step cert-gen server
iagctl cert-gen server --cn 127.0.0.1 --sans 127.0.0.1,localhost --output certs
step cert-gen client
iagctl cert-gen client --output certs
step cert-gen runner
iagctl cert-gen runner --output certs --key-algo ecdsa --key-size 384 --sans runner.example.com
'''


def _public_key(folder: Path, name: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    return (folder / f"{name}.pub").read_text().split()[1]


def test_an_iagctl_script_runs_against_local_mode(tmp_path, origin):
    repo, commit = origin
    env = gateway_env(tmp_path / "gw", home=tmp_path / "home")
    (tmp_path / "form.json").write_text(json.dumps(SCHEMA))
    keys = tmp_path / "keys"
    keys.mkdir()
    key1, key2 = _public_key(keys, "one"), _public_key(keys, "two")
    steps = run_script(tmp_path, LOCAL, {**env, "ORIGIN": str(repo), "KEY1": key1, "KEY2": key2})

    def has(step: str, *fragments: str, absent: tuple[str, ...] = ()):
        def check():
            text = steps[step]
            for fragment in fragments:
                assert fragment in text, f"{fragment!r} missing from step {step!r}:\n{text}"
            for fragment in absent:
                assert fragment not in text, f"{fragment!r} unexpected in step {step!r}:\n{text}"
        return check

    check_all([
        has("version", f"gateway {VERSION} (automation-gateway"),
        has("version --show-config", f"gateway {VERSION}", "# config file:", "[application]", str(tmp_path / "gw" / "data")),
        has("get services --type --tag", "greet", absent=("other",)),
        has("get services --tag ops", "other", absent=("greet",)),
        has("get repositories --tag", "apps"),
        has("get decorators --tag", "(none)", absent=("form",)),
        has("get secrets --tag", "(none)"),
        has("run --use", "loud", "boolean", "shout it", "who to greet", "yes", "false",
            "usage: gateway run service python-script greet --set name=VALUE", absent=("HELLO", "hello")),
        has("run TYPE NAME --set flag", "HELLO ops", "a note on stderr", "succeeded"),
        has("run NAME --raw", "hello raw", "a note on stderr", absent=("[gateway]", "succeeded", "exit code")),
        has("run --verbose", "hello v", f"commit:       {commit}", "queued for:", "duration:", "succeeded"),
        has("db export FILE", "exported to export.yaml"),
        has("db import --validate", "valid: export.yaml holds 4 resources", "nothing was changed",
            absent=("unchanged service",)),
        has("db import --check", "unchanged service greet", "dry run"),
        has("db import --force", "imported: 0 created, 0 updated, 4 unchanged"),
        has("db import --repository --check", "created decorator imported-form", "dry run"),
        has("db import --repository", "imported: 1 created"),
        has("hostkeys add", "added git.example.com ssh-ed25519 SHA256:"),
        has("hostkeys add --replace", "replaced git.example.com ssh-ed25519"),
        has("hostkeys clear", "removed 1 key"),
        has("cert-gen ca", "certs/ca.pem", "certs/ca-key.pem"),
        has("cert-gen server", "certs/server.pem", "for 127.0.0.1, localhost"),
        has("cert-gen client", "certs/client.pem"),
        has("cert-gen runner", "certs/runner.pem", "runner.example.com"),
    ])
    assert "gateway" in (tmp_path / "completion.bash").read_text()
    assert ok(gw(env, "describe", "decorator", "imported-form", "-o", "json")).json()["name"] == "imported-form"
    assert ok(gw(env, "hostkeys", "get", "-o", "json")).json() == []
    assert "hello v" not in steps["run --use"]
    # The certificates chain to the CA (a real TLS daemon uses such certificates in the tests below).
    verified = subprocess.run(["openssl", "verify", "-CAfile", "certs/ca.pem", "certs/server.pem", "certs/client.pem",
                               "certs/runner.pem"], cwd=tmp_path, capture_output=True, text=True)
    assert verified.returncode == 0 and verified.stdout.count(": OK") == 3, verified.stdout + verified.stderr
    assert oct((tmp_path / "certs" / "ca-key.pem").stat().st_mode & 0o777) == "0o600"


def test_hostkeys_scan_prints_and_trusts_what_a_real_sshd_offers(tmp_path, sshd):  # noqa: F811
    env = gateway_env(tmp_path, home=tmp_path / "home")
    port = str(sshd["port"])
    scanned = ok(gw(env, "hostkeys", "scan", "127.0.0.1", "--port", port))
    expected = subprocess.run(["ssh-keygen", "-lf", "-"], input=sshd["host_key"], capture_output=True,
                              text=True, check=True).stdout.split()[1]
    assert f"trusted [127.0.0.1]:{port} ssh-ed25519 {expected}" in scanned.out
    listed = ok(gw(env, "hostkeys", "get", "-o", "json")).json()
    assert [k["fingerprint"] for k in listed] == [expected]
    # The same key given on the line is already trusted; another one of that type needs --replace.
    again = ok(gw(env, "hostkeys", "add", "127.0.0.1", "ssh-ed25519", sshd["host_key"].split()[1], "--port", port))
    assert again.out.startswith(f"already trusted [127.0.0.1]:{port} ssh-ed25519")
    other = _public_key(tmp_path, "other")
    refused = gw(env, "hostkeys", "add", "127.0.0.1", "ssh-ed25519", other, "--port", port)
    refused.fails(1, "already has a trusted ssh-ed25519 key", "--replace")
    assert "removed 1 key" in ok(gw(env, "hostkeys", "clear")).out
    assert ok(gw(env, "hostkeys", "get", "-o", "json")).json() == []


def test_bare_set_needs_a_boolean_and_bad_usage_is_exit_2(tmp_path, origin):
    repo, _ = origin
    env = gateway_env(tmp_path, home=tmp_path / "home")
    schema = tmp_path / "form.json"
    schema.write_text(json.dumps(SCHEMA))
    ok(iagctl(env, "create", "repository", "apps", "--url", f"file://{repo}"))
    ok(iagctl(env, "create", "decorator", "form", "--schema", str(schema)))
    ok(iagctl(env, "create", "service", "python-script", "greet", "--repository", "apps", "--filename", "greet.py",
          "--decorator", "form"))
    ok(iagctl(env, "create", "service", "python-script", "plain", "--repository", "apps", "--filename", "greet.py"))
    empty = tmp_path / "empty"
    empty.mkdir()
    calls = {
        # bad usage: 2
        ("run", "service", "greet", "--set", "name"): (2, "--set 'name'", "does not declare 'name' a boolean"),
        ("run", "service", "greet", "--set", "=x"): (2, "--set '=x' is not KEY=VALUE"),
        ("run", "service", "widget", "greet"): (2, "'widget' is not a service type"),
        ("run", "service", "python-script", "greet", "extra"): (2, "unrecognized arguments: extra"),
        ("db", "import", "x.yaml", "--validate", "--check"): (2, "--validate or --check"),
        ("db", "import", "x.yaml", "--reference", "main"): (2, "--reference goes with --repository"),
        ("db", "export", "a.yaml", "-o", "b.yaml"): (2, "two files given"),
        ("hostkeys", "add", "h.example.com", "ssh-ed25519"): (2, "the KEY is missing"),
        ("hostkeys", "add", "h.example.com", "--replace"): (2, "--replace goes with a key given here"),
        ("get", "decorators", "--type", "executable"): (2, "--type is for services"),
        ("get", "runs", "--tag", "x"): (2, "--tag is for"),
        ("completion", "tcsh"): (2, "invalid choice: 'tcsh'"),
        ("cert-gen", "ca", "--key-algo", "rsa", "--key-size", "1024"): (2, "rsa keys have 2048, 3072, 4096 bits"),
        ("cert-gen", "ca", "--country", "USA"): (2, "--country is two letters"),
        ("cert-gen", "--cn", "x"): (2, "--cn goes with a TYPE"),
        ("login", "alice", "--username", "bob"): (2, "two users given"),
        ("create", "user", "carol", "--temp-password", "--password-stdin"): (2, "not allowed with argument"),
        # the operation fails: 1
        ("run", "service", "ansible-playbook", "greet"): (1, "service 'greet' is a python-script, "
                                                             "not an ansible-playbook"),
        ("run", "service", "nope", "--use"): (1, "service 'nope' not found"),
        ("cert-gen", "server", "--output", str(empty)): (1, "ca.pem not found", "gateway cert-gen ca"),
        ("hostkeys", "add", "h.example.com", "ssh-ed25519", "bm90IGEga2V5"): (1, "not an ssh-ed25519 public key"),
        ("hostkeys", "add", "h.example.com", "ssh-dss", "AAAA"): (1, "key type 'ssh-dss' is not one of"),
        ("db", "import", "--repository", f"file://{repo}", "missing.yaml"): (1, "missing.yaml is not a file in"),
        ("create", "user", "carol", "--temp-password"): (1, "local mode"),
    }
    results = run_all([lambda argv=argv: iagctl(env, *argv) for argv in calls])
    check_all([lambda r=r, expected=expected: r.fails(expected[0], *expected[1:])
               for r, expected in zip(results, calls.values())])
    # A bare --set with no decorator is KEY=true, as IAG 5 passes it (--novalue=true).
    passed = iagctl(env, "run", "service", "plain", "--set", "name=p", "--set", "novalue", "--raw")
    assert passed.code == 1 and "unrecognized arguments: --novalue=true" in passed.err, str(passed)
    # A bare --set of a boolean the decorator declares is true; --use lists the inputs as data too.
    loud = ok(iagctl(env, "run", "service", "greet", "--set", "name=x", "--set", "loud", "--raw"))
    assert loud.out == "HELLO x\n" and loud.err == "a note on stderr\n"
    inputs = ok(iagctl(env, "run", "service", "greet", "--use", "-o", "json")).json()
    assert inputs == [  # in the order the schema was written: a saved schema keeps it
        {"name": "name", "type": "string", "required": True, "default": None, "description": "who to greet"},
        {"name": "loud", "type": "boolean", "required": False, "default": False, "description": "shout it"},
        {"name": "exit", "type": "integer", "required": False, "default": None, "description": "the exit code"}]
    plain = ok(iagctl(env, "run", "service", "plain", "--use"))
    assert "has no decorator" in plain.out and "--KEY=value" in plain.out
    # A failed run with --raw: the script's output and the exit code, no gateway lines.
    failed = iagctl(env, "run", "service", "greet", "--set", "name=f", "--set", "exit=3", "--raw")
    assert failed.code == 1 and failed.out == "hello f\n" and failed.err == "a note on stderr\n", str(failed)
    # --raw on get is JSON, as iagctl's.
    assert [s["name"] for s in ok(iagctl(env, "get", "services", "--raw")).json()] == ["greet", "plain"]


# ---------------------------------------------------------------- help and completion
HELP_PATHS = [
    ("create",), ("create", "repository"), ("create", "decorator"), ("create", "service"), ("create", "secret"),
    ("create", "user"), ("get",), ("describe",), ("edit",), ("edit", "service"), ("edit", "user"), ("delete",),
    ("run",), ("run", "service"), ("logs",), ("cancel", "run"), ("hostkeys",), ("hostkeys", "add"),
    ("hostkeys", "scan"), ("hostkeys", "get"), ("hostkeys", "delete"), ("hostkeys", "clear"), ("login",),
    ("logout",), ("whoami",), ("cert-gen",), ("db",), ("db", "export"), ("db", "import"), ("config",),
    ("version",), ("completion",), ("prune",), ("prune", "runs"), ("inspect",),
]


def test_each_verbs_help_names_its_iagctl_form(tmp_path):
    env = gateway_env(tmp_path)
    results = run_all([lambda path=path: gw(env, *path, "--help") for path in HELP_PATHS])
    check_all([lambda r=r: (ok(r), None)[1] if "iagctl: " in r.out else pytest.fail(f"no iagctl form:\n{r}")
               for r in results])
    by_path = dict(zip(HELP_PATHS, results))
    assert "iagctl: iagctl run service python-script NAME" in by_path[("run", "service")].out
    assert "iagctl: iagctl login USER" in by_path[("login",)].out
    assert "--temp-password" in by_path[("create", "user")].out
    assert "iagctl cert-gen ca|server|client|runner" in by_path[("cert-gen",)].out
    for flag in ("--validate", "--check", "--force", "--repository"):
        assert flag in by_path[("db", "import")].out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_come_from_the_grammar(tmp_path, shell):
    # No configuration is read: a broken one does not matter.
    env = gateway_env(tmp_path, config="[application]\nmood = happy\n")
    script = ok(gw(env, "completion", shell)).out
    assert len(script.splitlines()) > 50
    for verb in ("create", "run", "hostkeys", "cert-gen", "completion", "version", "db"):
        assert verb in script, f"{verb} missing from the {shell} completion"
    for word in ("temp-password", "set-secret", "show-config"):  # fish writes options without the dashes
        assert word in script, f"{word} missing from the {shell} completion"
    if shell == "bash":
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


# ---------------------------------------------------------------- a real server, with cert-gen's certificates
@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Daemon, Path]:
    """A real TLS daemon on certificates `gateway cert-gen` made: an RSA CA and an ECDSA server certificate."""
    folder = tmp_path_factory.mktemp("iag-certs")
    env = gateway_env(folder / "gw")
    ok(gw(env, "cert-gen", "ca", "--cn", "IAG CA", "--key-algo", "rsa", "--key-size", "2048", "--expiry", "30",
          "--output", str(folder), "--org", "Automation", "--country", "US"))
    ok(gw(env, "cert-gen", "server", "--cn", "127.0.0.1", "--sans", "127.0.0.1", "--sans", "localhost",
          "--output", str(folder)))
    daemon = Daemon(tmp_path_factory.mktemp("iag-server"),
                    {"cert": folder / "server.pem", "key": folder / "server-key.pem"})
    daemon.start()
    yield daemon, folder / "ca.pem"
    if daemon.process is not None:
        daemon.stop()


CLIENT = '''\
step login USER
printf '%s\\n' "$PASSWORD" | iagctl login admin --password-stdin
step create
iagctl create repository apps --url "$ORIGIN" --tag web
iagctl create decorator form --schema form.json
iagctl create service python-script greet --repository apps --filename greet.py --decorator form --tag web
iagctl create service executable other --repository apps --filename greet.py
step get services --type --tag
iagctl get services --type python-script --tag web
step run --use
iagctl run service python-script greet --use
step run TYPE NAME --set flag --raw
iagctl run service python-script greet --set name=srv --set loud --raw
step run --verbose
iagctl run service greet --set name=v --verbose
step db export FILE
iagctl db export export.yaml
step create user --temp-password
iagctl create user carol --temp-password
step whoami
iagctl whoami
'''


def test_the_iagctl_script_runs_against_a_real_server(tmp_path, served, origin):
    daemon, ca = served
    repo, commit = origin
    admin = Client(tmp_path / "admin", daemon.port, ca)
    first_password = "iag-admin-password-1"
    ok(admin("login", "admin", "--password-stdin", "--change-password",
             stdin=f"{daemon.admin_password}\n{first_password}\n"))
    (tmp_path / "form.json").write_text(json.dumps(SCHEMA))
    steps = run_script(tmp_path, CLIENT, {**admin.env, "PASSWORD": first_password, "ORIGIN": str(repo)})
    assert f"logged in to 127.0.0.1:{daemon.port} as admin (admin)" in steps["login USER"]
    listed = steps["get services --type --tag"]
    assert "greet" in listed and "other" not in listed
    assert "shout it" in steps["run --use"] and "boolean" in steps["run --use"]
    raw = steps["run TYPE NAME --set flag --raw"]
    assert "HELLO srv" in raw and "[gateway]" not in raw and "succeeded" not in raw
    assert f"commit:       {commit}" in steps["run --verbose"] and "hello v" in steps["run --verbose"]
    exported = (tmp_path / "export.yaml").read_text()
    assert "name: greet" in exported and "imported-form" not in exported
    assert "admin" in steps["whoami"]

    # The temporary password is printed once and works once: it must be changed at the first login.
    made = re.search(r"user carol created with the temporary password (\S+) \(shown once\)",
                     steps["create user --temp-password"])
    assert made, steps["create user --temp-password"]
    temporary = made.group(1)
    assert temporary.encode() not in (daemon.folder / "data" / "gateway.db").read_bytes()
    carol = Client(tmp_path / "carol", daemon.port, ca)
    refused = carol("login", "carol", "--password-stdin", stdin=temporary + "\n")
    refused.fails(1, "the password of carol is temporary and must be changed first")
    changed = ok(carol("login", "carol", "--password-stdin", "--change-password",
                       stdin=f"{temporary}\ncarol-password-1\n"))
    assert "password changed; logged in" in changed.out and "(admin)" not in changed.out
    users = {u["name"]: u for u in ok(admin("get", "users", "-o", "json")).json()}
    assert users["carol"]["must_change_password"] is False and users["carol"]["admin"] is False
    # As data: the temporary password is in the JSON, once.
    as_json = ok(admin("create", "user", "dave", "--temp-password", "-o", "json")).json()
    assert as_json["must_change_password"] is True and len(as_json["temporary_password"]) >= 12


def test_a_client_refuses_a_server_whose_certificate_another_ca_signed(tmp_path, served):
    daemon, _ = served
    other = tmp_path / "other"
    env = gateway_env(tmp_path / "gw")
    ok(gw(env, "cert-gen", "ca", "--output", str(other)))
    stranger = Client(tmp_path / "stranger", daemon.port, other / "ca.pem")
    result: Result = stranger("login", "admin", "--password-stdin", stdin="whatever-password\n")
    assert result.code == 1 and "Traceback" not in result.err, str(result)
    assert len(result.err.splitlines()) == 1 and result.err.startswith("gateway: ")


# ---------------------------------------------------------------- IAG 5's reference lines, as it documents them
ARGS_ECHO = '''\
import json, sys
print(json.dumps(sys.argv[1:]))
'''
BOX_PLAN = '''\
resource "terraform_data" "box" {
  input = "boxed"
}
'''


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("tools")
    new_repo(repo, {"echo.py": ARGS_ECHO, "box/main.tf": BOX_PLAN})
    return repo


def _argv_printed(result: Result) -> list[str]:
    return json.loads(ok(result).out.strip().splitlines()[-1])


def test_the_reference_lines_of_decorators_secrets_and_services(tmp_path, tools):
    """`--schema` inline or `@file`, `--value @file`, `--encryption-file`, `--executable-object`, `--req-file`,
    `--vars`, the `--key value` default of executables and a bare `--set` with no decorator: as IAG 5 reads them."""
    env = gateway_env(tmp_path / "gw", home=tmp_path / "home")
    other = {"type": "object", "properties": {"loud": {"type": "boolean"}}}
    (tmp_path / "form.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "other.yaml").write_text("type: object\nproperties:\n  loud: {type: boolean}\n")
    (tmp_path / "secret.txt").write_text("from-a-file-value\n")
    key = tmp_path / "iag5.key"
    key.write_text(subprocess.run(["openssl", "rand", "-base64", "256"], capture_output=True, text=True,
                                  check=True).stdout)
    key.chmod(0o400)

    def schema_of(name: str) -> dict:
        return ok(iagctl(env, "describe", "decorator", name, "-o", "json")).json()["schema"]

    ok(iagctl(env, "create", "decorator", "inline", "--schema", json.dumps(SCHEMA)))
    assert schema_of("inline") == SCHEMA
    ok(iagctl(env, "create", "decorator", "fromfile", "--schema", f"@{tmp_path / 'form.json'}"))
    assert schema_of("fromfile") == SCHEMA
    ok(iagctl(env, "edit", "decorator", "fromfile", "--schema", f"@{tmp_path / 'other.yaml'}"))
    assert schema_of("fromfile") == other
    iagctl(env, "create", "decorator", "broken", "--schema", '{"type": ').fails(1, "--schema", "neither JSON nor YAML")
    iagctl(env, "create", "decorator", "gone", "--schema", f"@{tmp_path / 'missing.json'}").fails(2, "missing.json")

    ok(iagctl(env, "create", "secret", "fromfile", "--value", f"@{tmp_path / 'secret.txt'}"))
    revealed = ok(iagctl(env, "describe", "secret", "fromfile", "--reveal", "-o", "json")).json()["value"]
    assert revealed == "from-a-file-value"
    # --encryption-file: the key file this command seals and opens with (IAG 5's own key file works).
    ok(iagctl(env, "create", "secret", "sealed", "--value", "sealed-value-1", "--encryption-file", str(key)))
    opened = ok(iagctl(env, "describe", "secret", "sealed", "--reveal", "--encryption-file", str(key), "-o", "json"))
    assert opened.json()["value"] == "sealed-value-1"
    without = iagctl(env, "describe", "secret", "sealed", "--reveal")
    assert without.code == 1 and "sealed-value-1" not in without.out + without.err, str(without)
    iagctl(env, "create", "secret", "x", "--value", "v", "--encryption-file", str(tmp_path / "nokey")).fails(
        2, "--encryption-file", "nokey")

    ok(iagctl(env, "create", "repository", "tools", "--url", str(tools)))
    ok(iagctl(env, "create", "executable-object", "py", "--exec-command", sys.executable))
    ok(iagctl(env, "create", "service", "executable", "echo", "--repository", "tools", "--filename", "echo.py",
          "--executable-object", "py"))
    assert ok(iagctl(env, "describe", "service", "echo", "-o", "json")).json()["executable"] == "py"
    # IAG 5's default arg-format: --key value; a bare --set with no decorator is true.
    assert _argv_printed(iagctl(env, "run", "service", "executable", "echo", "--set", "device=10.0.0.1",
                            "--set", "verbose", "--raw")) == ["--device", "10.0.0.1", "--verbose", "true"]
    ok(iagctl(env, "create", "service", "python-script", "withreq", "--repository", "tools", "--filename", "echo.py",
          "--req-file", "reqs/none.txt"))
    described = ok(iagctl(env, "describe", "service", "withreq", "-o", "json")).json()
    assert described["requirements_file"] == "reqs/none.txt"
    ok(iagctl(env, "create", "service", "python-script", "pyecho", "--repository", "tools", "--filename", "echo.py"))
    assert _argv_printed(iagctl(env, "run", "service", "python-script", "pyecho", "--set", "verbose", "--set", "n=1",
                            "--raw")) == ["--verbose=true", "--n=1"]
    ok(iagctl(env, "create", "service", "opentofu-plan", "box", "--repository", "tools", "--working-dir", "box",
          "--vars", "region=us-east"))
    assert ok(iagctl(env, "describe", "service", "box", "-o", "json")).json()["tofu_vars"] == {"region": "us-east"}


def test_run_state_inline_or_at_file_as_iag5(tmp_path, tools):
    """`--state @f.json`: the run starts from that file and the state it ends with is written back there (unless
    --state-out); `--state '{...}'`: inline JSON."""
    found = shutil.which("tofu") or shutil.which("terraform")
    if not found:
        pytest.skip("neither OpenTofu nor terraform is on PATH")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "tofu").symlink_to(found)
    env = gateway_env(tmp_path / "gw", home=tmp_path / "home")
    env["PATH"] = f"{bindir}:{env['PATH']}"
    ok(iagctl(env, "create", "repository", "tools", "--url", str(tools)))
    ok(iagctl(env, "create", "service", "opentofu-plan", "box", "--repository", "tools", "--working-dir", "box"))
    first = tmp_path / "first.tfstate"
    ok(iagctl(env, "run", "service", "opentofu-plan", "apply", "box", "--state-out", str(first)))
    state = first.read_text()
    ok(iagctl(env, "run", "service", "opentofu-plan", "destroy", "box"))
    # @file: read from it, and the result written back to it
    at_file = tmp_path / "at.tfstate"
    at_file.write_text(state)
    again = ok(iagctl(env, "run", "service", "opentofu-plan", "apply", "box", "--state", f"@{at_file}"))
    assert "No changes." in again.out, str(again)
    assert json.loads(at_file.read_text())["serial"] >= json.loads(state)["serial"]
    ok(iagctl(env, "run", "service", "opentofu-plan", "destroy", "box"))
    # inline JSON
    inline = ok(iagctl(env, "run", "service", "opentofu-plan", "apply", "box", "--state", state))
    assert "No changes." in inline.out, str(inline)
    iagctl(env, "run", "service", "opentofu-plan", "apply", "box", "--state", f"@{tmp_path / 'none.json'}").fails(
        2, "none.json")


def test_old_spellings_answer_with_the_current_form(tmp_path):
    env = gateway_env(tmp_path)
    calls = {
        ("run", "pythonscript", "greet"): "use: gateway run service python-script greet",
        ("run", "ansible-playbook", "play", "--set", "a=1"): "use: gateway run service ansible-playbook play",
        ("users", "create", "kevin"): "use: gateway create user kevin",
        ("create", "pythonscript", "greet"): "use: gateway create service python-script greet",
        ("describe", "opentofu-plan", "simple-tofu"): "use: gateway describe service simple-tofu",
    }
    results = run_all([lambda argv=argv: iagctl(env, *argv) for argv in calls])
    check_all([lambda r=r, text=text: r.fails(2, text) for r, text in zip(results, calls.values())])


def test_describe_secret_opens_the_value_in_the_editor(tmp_path):
    env = gateway_env(tmp_path / "gw", home=tmp_path / "home")
    ok(iagctl(env, "create", "secret", "token", "--value", "editor-shown-value"))
    seen = tmp_path / "seen.txt"
    editor = tmp_path / "editor.sh"
    editor.write_text(f"#!/bin/sh\ncat \"$1\" > {seen}\nls -l \"$1\" >> {seen}.mode\necho \"$1\" > {seen}.path\n")
    editor.chmod(0o755)
    opened = ok(iagctl({**env, "EDITOR": str(editor)}, "describe", "secret", "token", "--editor"))
    assert "editor-shown-value" not in opened.out + opened.err
    assert seen.read_text() == "editor-shown-value"
    assert (tmp_path / "seen.txt.mode").read_text().startswith("-rw-------")
    assert not Path((tmp_path / "seen.txt.path").read_text().strip()).exists(), "the file is removed afterwards"
    iagctl({**env, "EDITOR": str(tmp_path / "no-editor")}, "describe", "secret", "token", "--editor").fails(1, "editor")
    iagctl(env, "describe", "service", "token", "--editor").fails(2, "--editor is for secrets")


def test_create_user_on_a_terminal_asks_twice_and_login_raw_prints_the_key(tmp_path, served):
    daemon, ca = served
    admin, password = _admin(tmp_path, daemon, ca)
    # --raw: only the key, for scripts
    raw = ok(iagctl(admin.env, "login", "admin", "--password-stdin", "--raw", stdin=password + "\n"))
    key = raw.out.strip()
    assert raw.out == key + "\n" and len(key) >= 20 and " " not in key, str(raw)
    typed = _on_a_terminal(admin.env, ["create", "user", "kevin"], ["kevin-password-1", "kevin-password-1"])
    assert "created user kevin (role viewer)" in typed, typed
    kevin = Client(tmp_path / "kevin", daemon.port, ca)
    assert "logged in" in ok(kevin("login", "kevin", "--password-stdin", stdin="kevin-password-1\n")).out
    differs = _on_a_terminal(admin.env, ["create", "user", "lena"], ["lena-password-1", "lena-password-2"])
    assert "the two passwords differ" in differs, differs
    assert "lena" not in [u["name"] for u in ok(admin("get", "users", "-o", "json")).json()]


def _admin(tmp_path: Path, daemon: Daemon, ca: Path) -> tuple[Client, str]:
    """The admin of the module's daemon, logged in: its first password changed here, or by a test before."""
    admin = Client(tmp_path / "admin", daemon.port, ca)
    password = "iag-admin-password-1"
    first = admin("login", "admin", "--password-stdin", "--change-password",
                  stdin=f"{daemon.admin_password}\n{password}\n")
    if first.code != 0:
        ok(admin("login", "admin", "--password-stdin", stdin=password + "\n"))
    return admin, password


def _on_a_terminal(env: dict[str, str], argv: list[str], answers: list[str]) -> str:
    """Run `iagctl ARGV` on a pseudo-terminal, typing each answer at a password prompt; all it wrote."""
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the real command on the terminal
        os.execve(IAGCTL, ["iagctl", *argv], env)
    out = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if pending and out.lower().rstrip().endswith(b":"):
                time.sleep(0.1)
                os.write(fd, (pending.pop(0) + "\n").encode())
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    return out.decode(errors="replace")


def test_inspect_cluster_health_and_activity(tmp_path, served, origin):
    daemon, ca = served
    repo, _ = origin
    admin, _ = _admin(tmp_path, daemon, ca)
    health = ok(iagctl(admin.env, "inspect", "cluster", "health"))
    assert "Store:" in health.out and "healthy" in health.out and "Runners:" in health.out, str(health)
    assert "COMPONENT" in health.out and "store" in health.out
    as_json = ok(iagctl(admin.env, "inspect", "cluster", "health", "-o", "json")).json()
    assert as_json["healthy"] is True and as_json["store"]["status"] == "healthy"
    # a run in flight shows in the activity
    ok(admin("create", "repository", "slowrepo", "--url", str(repo)))
    ok(admin("create", "service", "python-script", "sleeper", "--repository", "slowrepo", "--filename", "greet.py",
             "--runtime-arg", "--name=x"))
    activity = ok(iagctl(admin.env, "inspect", "cluster", "activity"))
    assert "NAME" in activity.out and "TYPE" in activity.out and "STARTED" in activity.out, str(activity)
    ok(admin("run", "service", "sleeper"))
    recent = ok(iagctl(admin.env, "inspect", "cluster", "activity", "-o", "json")).json()
    assert any(entry["service"] == "sleeper" and entry["type"] == "python-script" for entry in recent), recent
    both = ok(iagctl(admin.env, "inspect", "cluster"))
    assert "Store:" in both.out and "sleeper" in both.out


def test_inspect_cluster_sees_a_runner_its_load_and_the_run_in_flight_then_its_loss(tmp_path):
    """A real server (distributed execution) and a real runner on etcd: health names the runner with its load,
    activity the run it is running; with the runner gone health says so and exits 1."""
    from cluster import SCRIPT, new_site, start_all, wait_for
    from gateway_server import ADMIN_PASSWORD

    site = new_site(tmp_path / "site", "inspect")
    server, runner = site.node("server", "server"), site.node("runner", "runner", "site-a")
    nodes = [server, runner]
    slow = None
    try:
        server.start()
        start_all([runner])
        origin = tmp_path / "origin"
        new_repo(origin, {"main.py": SCRIPT})
        client = Client(tmp_path / "client", server.port, site.certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
        client.ok("create", "repository", "apps", "--url", str(origin))
        client.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py")
        wait_for("the runner", lambda: runner.id in client.ok("get", "runners").stdout)
        slow = subprocess.Popen([str(BIN / "gateway"), "run", "service", "hello", "--set", "name=s",
                                 "--set", "sleep=30"], env=client.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for("the run in flight", lambda: '"running"' in client.ok("get", "runs", "-o", "json").stdout)

        def health() -> dict:
            return json.loads(iagctl(client.env, "inspect", "cluster", "health", "-o", "json").stdout)

        seen = wait_for("its load", lambda: (h := health()) and any(
            c["address"] == runner.id and c["load"] == "1/2" for c in h["components"]) and h)
        assert seen["healthy"] is True and seen["runners"] == {"registered": 1, "reachable": 1, "embedded": False}
        assert seen["store"] == {"backend": "etcd", "status": "healthy"} and seen["cluster"] == site.name
        table = ok(iagctl(client.env, "inspect", "cluster", "health")).stdout
        assert f"runner      remote  {runner.id}" in table and "Runners: 1 registered, 1 reachable" in table
        activity = json.loads(ok(iagctl(client.env, "inspect", "cluster", "activity", "-o", "json")).stdout)
        assert [(a["service"], a["node"], a["status"], a["completed"]) for a in activity] == \
            [("hello", runner.id, "running", None)]
        runner.kill()
        slow.communicate(timeout=60)
        gone = wait_for("the runner gone", lambda: (h := health()) and h["runners"]["registered"] == 0 and h)
        assert gone["healthy"] is False
        unhealthy = iagctl(client.env, "inspect", "cluster", "health")
        assert unhealthy.code == 1 and "Health: unhealthy" in unhealthy.out and "no runner is announced" in \
            unhealthy.out, str(unhealthy)
    finally:
        if slow is not None and slow.poll() is None:
            slow.kill()
            slow.communicate()
        for node in nodes:
            if node.process is not None:
                node.kill()
        site.etcd.kill()
        site.etcd.remove_data()
