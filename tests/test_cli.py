"""The command lines of `gateway` and `gateway-daemon`: usage, exit codes, one-line errors, --config
on every command, and the JSON that scripts read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from cli_helpers import DAEMON, Sandbox, check_all, run_all, write
from gitutil import new_repo

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FIELDS = {
    "repository": {"kind", "name", "url", "reference", "private_key_name", "description", "tags", "created_at",
                   "updated_at", "username", "password_name", "token_name"},
    "decorator": {"kind", "name", "schema", "description", "created_at", "updated_at"},
    "service": {"kind", "name", "type", "repository", "working_dir", "filename", "decorator", "env", "secrets",
                "runtime_args", "requirements_file", "tags", "runner_tags", "arg_format", "timeout", "description",
                "created_at", "updated_at", "playbooks", "inventories", "extra_vars", "extra_vars_files", "config_file",
                "pypi_registry", "galaxy_registry", "executable", "tofu_action", "tofu_vars", "tofu_var_files",
                "tofu_backend_config", "id"},  # issue 17: a service's id (its runs record it)
    "secret": {"kind", "name", "description", "tags", "created_at", "updated_at",  # issue 17: secrets take tags
               "provider", "path", "key"},  # issue 20: an alias names its provider, path and key
}
PLURAL = {"repository": "repositories", "decorator": "decorators", "service": "services", "secret": "secrets"}


@pytest.fixture(autouse=True)
def each_command_its_own_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests start the installed programs themselves, as a shell does (elsewhere they are forked from a
    process that imported them once: cli_forkserver.py)."""
    monkeypatch.setenv("GATEWAY_TEST_EXEC", "1")


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def nothing_stored(box: Sandbox) -> bool:
    return box.stored() in ([], [("(revision)", b"", 0)])


# ---------------------------------------------------------------- usage
USAGE_ERRORS = [  # argv, fragments of the one line
    (("frobnicate",), ("invalid choice: 'frobnicate'", "(see: gateway --help)")),
    (("--bogus",), ("unrecognized arguments: --bogus",)),
    (("create",), ("required: KIND", "(see: gateway create --help)")),
    (("create", "widget", "x"), ("invalid choice: 'widget'",)),
    (("create", "repository"), ("required: name, --url", "(see: gateway create repository --help)")),
    (("create", "service", "python-script", "x"), ("required: --repository",)),
    (("create", "secret", "x", "--value", "a", "--value-file", "f"), ("not allowed with argument",)),
    (("get",), ("required: KIND",)),
    (("get", "widgets"), ("unknown kind 'widgets'", "repositories, decorators, services, secrets")),
    (("get", "repositories", "-o", "xml"), ("invalid choice: 'xml'", "table", "json", "yaml")),
    (("describe", "repository"), ("required: name",)),
    (("edit", "repository", "r", "--clear", "url"), ("--clear url", "tag")),
    (("delete", "service"), ("required: name",)),
    (("prune", "runs"), ("required: --before", "(see: gateway prune runs --help)")),
    (("run",), ("required: service",)),
    (("run", "service", "s", "--timeout", "soon"), ("invalid int value: 'soon'",)),
    (("logs",), ("required: RUN_ID",)),
    (("hostkeys",), ("required: add|get|delete",)),
    (("config", "extra"), ("unrecognized arguments: extra",)),
]


def test_bad_usage_is_exit_2_one_line_and_stores_nothing(box: Sandbox) -> None:
    results = box.many(argv for argv, _ in USAGE_ERRORS)
    daemon = box.many([("frobnicate",), ("--bogus",), ("config", "-o", "xml")], program=DAEMON)
    check_all(
        [lambda r=r, frags=frags: r.fails(2, *frags) for r, (_, frags) in zip(results, USAGE_ERRORS)]
        + [lambda: daemon[0].fails(2, "invalid choice: 'frobnicate'", "(see: gateway-daemon --help)",
                                   prefix="gateway-daemon: "),
           lambda: daemon[1].fails(2, "unrecognized arguments: --bogus", prefix="gateway-daemon: "),
           lambda: daemon[2].fails(2, "invalid choice: 'xml'", prefix="gateway-daemon: ")]
    )
    assert nothing_stored(box)
    assert all(r.out == "" for r in results + daemon)


def test_help_is_exit_0(box: Sandbox) -> None:
    gateway, create, daemon = run_all([lambda: box.gateway("--help"), lambda: box.gateway("create", "--help"),
                                       lambda: box.daemon("--help")])
    for verb in ("create", "get", "describe", "edit", "delete", "run", "logs", "db", "config"):
        assert verb in gateway.ok().out
    assert "repository" in create.ok().out and "secret" in create.out
    assert "config" in daemon.ok().out


# ---------------------------------------------------------------- --config everywhere
EVERY_COMMAND = [
    ("config",),
    ("create", "repository", "x", "--url", "https://example.com/x.git"),
    ("create", "decorator", "x", "--schema", "-"),
    ("create", "service", "python-script", "x", "--repository", "r"),
    ("create", "secret", "x", "--value", "v"),
    ("get", "repositories"),
    ("get", "runs"),
    ("describe", "service", "x"),
    ("describe", "run", "x"),
    ("edit", "repository", "x", "--description", "d"),
    ("edit", "decorator", "x", "--description", "d"),
    ("edit", "service", "x", "--description", "d"),
    ("edit", "secret", "x", "--description", "d"),
    ("delete", "secret", "x"),
    ("run", "service", "x"),
    ("logs", "x"),
    ("cancel", "run", "x"),
    ("hostkeys", "add", "git.example.com"),
    ("hostkeys", "get"),
    ("hostkeys", "delete", "git.example.com"),
    ("db", "export"),
    ("db", "import", "export.yaml"),
]


def test_every_command_of_both_programs_takes_config(box: Sandbox) -> None:
    # A file only this flag names, with a mistake: the error naming it proves the flag was read.
    bad = write(box.root / "elsewhere" / "bad.conf", "[application]\ndata_dir = /nowhere\nmood = happy\n")
    flag = ("--config", str(bad))
    gateway_calls = [argv + flag for argv in EVERY_COMMAND]
    gateway_calls += [flag + ("get", "services"), ("create", *flag, "repository", "x", "--url", "/srv/x")]
    daemon_calls = [("config", *flag), (*flag, "config"), flag]
    results = box.many(gateway_calls) + box.many(daemon_calls, program=DAEMON)
    check_all(
        lambda r=r: r.fails(2, str(bad), "[application] unknown key 'mood'",
                            prefix="gateway-daemon: " if r.args[0] == "gateway-daemon" else "gateway: ")
        for r in results
    )
    assert nothing_stored(box)


def test_config_flag_chooses_the_store(box: Sandbox) -> None:
    other = write(box.root / "other.conf", f"[application]\ndata_dir = {box.root / 'other-data'}\n")
    box.gateway("create", "repository", "x", "--url", "https://example.com/x.git", "--config", str(other)).ok()
    there, here = box.many([("--config", str(other), "get", "repositories", "-o", "json"),
                            ("get", "repositories", "-o", "json")])
    assert [r["name"] for r in there.json()] == ["x"]
    assert here.json() == []
    assert (box.root / "other-data" / "gateway.db").is_file()


# ---------------------------------------------------------------- machine-readable output
def test_json_output_has_a_stable_shape(box: Sandbox) -> None:
    schema = write(box.root / "schema.json", '{"type": "object", "properties": {"n": {"type": "integer"}}}')
    empty = box.many([("get", "services", "-o", "json"), ("get", "runs", "-o", "json")])
    assert [r.json() for r in empty] == [[], []]
    created = {"secret": box.gateway("create", "secret", "tok", "--value", "v4lue", "-o", "json").json()}
    new_repo(box.root / "a", {"main.py": "print(1)\n"})  # a local repository is read when created
    repository, decorator, second = box.many([
        ("create", "repository", "r", "--url", "https://example.com/r.git", "--tag", "a", "-o", "json"),
        ("create", "decorator", "d", "--schema", str(schema), "-o", "json"),
        ("create", "repository", "a-first", "--url", str(box.root / "a"), "-o", "json"),
    ])
    created.update(repository=repository.json(), decorator=decorator.json())
    second.ok()
    created["service"] = box.gateway(
        "create", "service", "python-script", "s", "--repository", "r", "--decorator", "d", "--env", "A=1",
        "--secret", "name=tok,type=env,target=TOKEN", "--timeout", "30", "-o", "json").json()

    reads = box.many([("get", PLURAL[kind], "-o", "json") for kind in FIELDS]
                     + [("describe", kind, created[kind]["name"], "-o", "json") for kind in FIELDS]
                     + [("get", "services", "-o", "yaml"), ("get", "repos", "-o", "json")])
    lists, described, as_yaml, again = reads[:4], reads[4:8], reads[8], reads[9]
    for kind, listing, one in zip(FIELDS, lists, described):
        items = listing.json()
        for item in items:
            assert set(item) == FIELDS[kind], (kind, sorted(item))
            assert item["kind"] == kind
            assert TIMESTAMP.match(item["created_at"]) and TIMESTAMP.match(item["updated_at"])
        assert one.json() == created[kind] == [i for i in items if i["name"] == created[kind]["name"]][0]
        # One document, keys in a fixed order: the same data always prints the same bytes.
        assert listing.out == json.dumps(items, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert [r["name"] for r in lists[0].json()] == ["a-first", "r"], "sorted by name"
    assert again.out == lists[0].out  # "repos" is "repositories"
    assert yaml.safe_load(as_yaml.ok().out) == lists[2].json()
    service = created["service"]
    assert (service["env"], service["secrets"], service["timeout"], service["tags"]) == (
        {"A": "1"}, ["name=tok,type=env,target=TOKEN"], 30, [])
    assert created["repository"]["tags"] == ["a"] and created["repository"]["reference"] == ""
    assert created["decorator"]["schema"] == json.loads(schema.read_text())


# ---------------------------------------------------------------- failures
def test_describe_service_says_how_inputs_reach_the_script(box: Sandbox) -> None:
    schema = write(box.root / "schema.json", '{"type": "object", "properties": {"n": {"type": "integer"}}}')
    new_repo(box.root / "r", {"main.py": "print(1)\n"})  # a local repository is read when created
    for argv in (("create", "repository", "r", "--url", f"file://{box.root / 'r'}"),
                 ("create", "decorator", "d", "--schema", str(schema)),
                 ("create", "service", "python-script", "plain", "--repository", "r"),
                 ("create", "service", "python-script", "checked", "--repository", "r", "--decorator", "d"),
                 ("create", "service", "executable", "tool", "--repository", "r", "--filename", "t.sh",
                  "--arg-format", "-{key} {value}")):
        box.gateway(*argv).ok()
    plain, checked, tool, as_json = box.many([
        ("describe", "service", "plain"), ("describe", "service", "checked"), ("describe", "service", "tool"),
        ("describe", "service", "plain", "-o", "json")])
    assert "Inputs:" in plain.ok().out and \
        "no decorator: each input reaches the script as --KEY=value, unchecked" in plain.out
    assert "checked against decorator d, then each input reaches the script as --KEY=value" in checked.ok().out
    assert "no decorator: each input reaches the script as -{key} {value} (its arg format)" in tool.ok().out
    assert set(as_json.json()) == FIELDS["service"]  # -o json stays the resource


def test_failures_are_exit_1_with_one_line_and_no_traceback(box: Sandbox) -> None:
    (box.root / "a-file").write_text("not a directory\n")
    cases = [
        (("describe", "repository", "nope"), ("repository 'nope' not found",), {}),
        (("describe", "secret", "nope"), ("secret 'nope' not found",), {}),
        (("delete", "decorator", "nope"), ("decorator 'nope' not found",), {}),
        (("edit", "repository", "nope", "--description", "x"), ("repository 'nope' not found",), {}),
        (("run", "service", "nope"), ("nope",), {}),
        (("describe", "run", "nope"), ("run id 'nope'",), {}),
        (("logs", "nope"), ("run id 'nope'",), {}),
        (("cancel", "run", "nope"), ("run id 'nope'",), {}),
        (("get", "services"), ("mode = server", "gateway-daemon"), {"GATEWAY_APPLICATION_MODE": "server"}),
        (("get", "services"), (str(box.root / "a-file"),),
         {"GATEWAY_APPLICATION_DATA_DIR": str(box.root / "a-file" / "data")}),
    ]
    results = run_all(lambda argv=argv, env=env: box.gateway(*argv, env=env) for argv, _, env in cases)
    daemon = box.daemon()
    client = box.gateway("get", "services", env={"GATEWAY_APPLICATION_MODE": "client"})  # no server here
    check_all(
        [lambda r=r, frags=frags: r.fails(1, *frags) for r, (_, frags, _) in zip(results, cases)]
        + [lambda: daemon.fails(1, "local", prefix="gateway-daemon: ")]
        + [lambda: client.fails(1)]
    )
    assert all(r.out == "" for r in results)
    assert nothing_stored(box)


def test_unrelated_gateway_variables_are_not_config(box: Sandbox) -> None:
    result = box.gateway("get", "repositories", "-o", "json", env={"GATEWAY_PASSWORD": "x", "GATEWAY_TOKEN": "y"})
    assert result.json() == []
    assert result.err == ""


# ---------------------------------------------------------------- what a verb loads
LOADED_MODULES = """\
import sys
from gateway_tui.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("loaded:", " ".join(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""
NEVER_FOR_A_LOCAL_VERB = ("textual", "grpc", "google", "yaml", "cryptography", "jsonschema")


def loaded(result) -> set[str]:
    lines = [line for line in result.err.splitlines() if line.startswith("loaded: ")]
    assert len(lines) == 1, str(result)
    return set(lines[0].split()[1:])


def heavy(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages)


def test_a_local_verb_and_help_load_only_what_they_need(box: Sandbox) -> None:
    listing, usage = run_all([lambda: box.python("-c", LOADED_MODULES, "get", "services"),
                              lambda: box.python("-c", LOADED_MODULES, "--help")])
    assert listing.code == 0 and listing.out == "(none)\n", str(listing)
    assert usage.code == 0 and usage.out.startswith("usage: gateway"), str(usage)
    for result in (listing, usage):
        assert "Traceback" not in result.err, str(result)
    on_get, on_help = loaded(listing), loaded(usage)
    assert "gateway_daemon.core.engine" in on_get  # the check sees what the verb really imported
    assert heavy(on_get, NEVER_FOR_A_LOCAL_VERB) == []
    assert heavy(on_help, NEVER_FOR_A_LOCAL_VERB + ("asyncio", "sqlite3")) == []
    assert "gateway_daemon.core.engine" not in on_help
