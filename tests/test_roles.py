"""Roles against a real `gateway-daemon`: a user of each role, and every verb of `gateway` tried by each of them:
allowed, or refused with PERMISSION_DENIED in one line.  Then the tag scope: an operator scoped to site-a sees and
runs only site-a's services (any other is not found to them), an editor scoped to site-a keeps its tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway_daemon.core.access.auth import Auth, User
from gateway_daemon.core.errors import InvalidArgument
from gateway_daemon.store.memory import MemoryStore

from cli_helpers import Result, one_error_line, run_all
from gateway_server import SCRIPT, Client
from gitutil import new_repo

ROLES = ("admin", "editor", "operator", "viewer")
USERS = {"admin": "root2", "editor": "ed", "operator": "opal", "viewer": "vic"}
EVERYONE = set(ROLES)
WRITERS = {"admin", "editor"}
RUNNERS = {"admin", "editor", "operator"}
ADMINS = {"admin"}


@pytest.fixture(scope="module")
def world(admin, tmp_path_factory) -> Path:
    """Two services, site-a's and site-b's, with what they need; returns a folder for files."""
    folder = tmp_path_factory.mktemp("world")
    origin = folder / "origin"
    new_repo(origin, {"main.py": SCRIPT})
    admin.ok("create", "repository", "apps", "--url", str(origin))
    admin.ok("create", "secret", "token", "--value-file", "-", stdin="t0ken-value")
    admin.ok("create", "decorator", "form", "--schema", "-", stdin=json.dumps(
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}))
    for name, tag in (("hello", "site-a"), ("other", "site-b")):
        admin.ok("create", "service", "python-script", name, "--repository", "apps", "--filename", "main.py",
                 "--decorator", "form", "--secret", "name=token,type=env,target=TOKEN", "--tag", tag)
    (folder / "schema.json").write_text(json.dumps({"type": "object"}))
    (folder / "export.yaml").write_text(admin.ok("db", "export").stdout)
    return folder


@pytest.fixture(scope="module")
def clients(daemon, admin, world, certs, tmp_path_factory) -> dict[str, Client]:
    """A logged-in client per role."""
    found = {}
    for role, name in USERS.items():
        admin.ok("create", "user", name, "--role", role, "--password-stdin", stdin=f"{name}-password-1\n")
        client = Client(tmp_path_factory.mktemp(name), daemon.port, certs["ca"])
        client.login(name, f"{name}-password-1")
        found[role] = client
    return found


def _run_id(admin: Client) -> str:
    runs = json.loads(admin.ok("get", "runs", "-o", "json").stdout)
    if not runs:
        admin.ok("run", "service", "hello", "--set", "name=x")
        runs = json.loads(admin.ok("get", "runs", "-o", "json").stdout)
    return runs[0]["id"]


# Each verb: who may, and the command lines (a function of the role, so that what one role creates another's
# attempt does not find).  Allowed commands must succeed, except where an expected failure is given (the call was
# let through and failed on its own merits).
def verbs(world: Path, run_id: str) -> list[tuple[str, set[str], object, str]]:
    schema = str(world / "schema.json")
    export = str(world / "export.yaml")
    return [
        ("get repositories", EVERYONE, lambda r: [("get", "repositories")], ""),
        ("get decorators", EVERYONE, lambda r: [("get", "decorators")], ""),
        ("get services", EVERYONE, lambda r: [("get", "services")], ""),
        ("get secrets", EVERYONE, lambda r: [("get", "secrets")], ""),
        ("get runs", EVERYONE, lambda r: [("get", "runs")], ""),
        ("get runners", EVERYONE, lambda r: [("get", "runners")], ""),
        ("describe service", EVERYONE, lambda r: [("describe", "service", "hello")], ""),
        ("describe secret", EVERYONE, lambda r: [("describe", "secret", "token")], ""),
        ("describe run", EVERYONE, lambda r: [("describe", "run", run_id)], ""),
        ("logs", EVERYONE, lambda r: [("logs", run_id)], ""),
        ("whoami", EVERYONE, lambda r: [("whoami",)], ""),
        ("get apikeys", EVERYONE, lambda r: [("get", "apikeys")], ""),
        ("describe secret --reveal", ADMINS, lambda r: [("describe", "secret", "token", "--reveal")], ""),
        ("db export", ADMINS, lambda r: [("db", "export")], ""),
        ("db import", ADMINS, lambda r: [("db", "import", export, "--dry-run")], ""),
        ("create+delete repository", WRITERS,
         lambda r: [("create", "repository", f"repo-{r}", "--url", str(world / "origin")),
                    ("delete", "repository", f"repo-{r}" if r in WRITERS else "apps")], ""),
        ("create+edit+delete decorator", WRITERS,
         lambda r: [("create", "decorator", f"dec-{r}", "--schema", schema),
                    ("edit", "decorator", f"dec-{r}", "--description", "changed"),
                    ("delete", "decorator", f"dec-{r}" if r in WRITERS else "form")], ""),
        ("create+edit+delete secret", WRITERS,
         lambda r: [("create", "secret", f"sec-{r}", "--value", "v4lue"),
                    ("edit", "secret", f"sec-{r}", "--value", "v5lue"),
                    ("delete", "secret", f"sec-{r}" if r in WRITERS else "token")], ""),
        ("create+edit+delete service", WRITERS,
         lambda r: [("create", "service", "python-script", f"svc-{r}", "--repository", "apps", "--tag", "site-a"),
                    ("edit", "service", f"svc-{r}" if r in WRITERS else "hello", "--description", "changed"),
                    ("delete", "service", f"svc-{r}" if r in WRITERS else "hello")], ""),
        ("run service", RUNNERS, lambda r: [("run", "service", "hello", "--set", "name=x")], ""),
        ("cancel run", RUNNERS, lambda r: [("cancel", "run", run_id)], "has already ended"),
        ("get users", ADMINS, lambda r: [("get", "users")], ""),
        ("describe user", ADMINS, lambda r: [("describe", "user", "ed")], ""),
        ("create+edit+delete user", ADMINS,
         lambda r: [("create", "user", f"u-{r}", "--role", "viewer", "--password-stdin"),
                    ("edit", "user", f"u-{r}" if r in ADMINS else "vic", "--role", "operator"),
                    ("delete", "user", f"u-{r}" if r in ADMINS else "vic")], ""),
        ("get audit", ADMINS, lambda r: [("get", "audit", "--limit", "5")], ""),
    ]


def _check(role: str, name: str, allowed: bool, expected_failure: str, results: list[Result]) -> None:
    for result in results:
        if allowed:
            if expected_failure:
                assert expected_failure in result.err or result.code == 0, f"{role}: {name}\n{result}"
                assert "needs" not in result.err, f"{role}: {name}\n{result}"
            else:
                assert result.code == 0, f"{role}: {name}\n{result}"
        else:
            line = one_error_line(result, 1, "gateway: ")
            assert f"{USERS[role]} is " in line and " needs " in line, f"{role}: {name}\n{result}"


def test_every_verb_against_every_role(admin, clients, world):
    run_id = _run_id(admin)
    table = verbs(world, run_id)
    assert len(table) >= 25
    thunks, keys = [], []
    for name, allowed_roles, commands, expected_failure in table:
        for role in ROLES:
            client = clients[role]

            def thunk(client=client, lines=commands(role)):
                return [client(*line, stdin="new-user-password-1\n") for line in lines]
            thunks.append(thunk)
            keys.append((role, name, role in allowed_roles, expected_failure))
    problems = []
    for (role, name, allowed, expected_failure), results in zip(keys, run_all(thunks)):
        try:
            _check(role, name, allowed, expected_failure, results)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, f"{len(problems)} of {len(keys)} failed:\n\n" + "\n\n".join(problems)
    # what the refused ones would have changed is all there
    assert {s["name"] for s in json.loads(admin.ok("get", "services", "-o", "json").stdout)} == {"hello", "other"}
    assert "vic" in admin.ok("get", "users").stdout


def test_refusals_name_the_role_and_who_may(clients):
    line = one_error_line(clients["viewer"]("run", "service", "hello", "--set", "name=x"), 1)
    assert line == "gateway: vic is a viewer: running services needs an admin, an editor or an operator"
    line = one_error_line(clients["operator"]("create", "secret", "s", "--value", "v"), 1)
    assert line == "gateway: opal is an operator: creating, editing and deleting needs an admin or an editor"
    line = one_error_line(clients["editor"]("describe", "secret", "token", "--reveal"), 1)
    assert line == "gateway: ed is not an admin: revealing secret values needs an admin"
    line = one_error_line(clients["editor"]("db", "export"), 1)
    assert line == "gateway: ed is not an admin: exporting the database (its secrets too) needs an admin"


def test_roles_show_in_get_and_describe_users_and_in_whoami(admin, clients):
    users = {u["name"]: u for u in json.loads(admin.ok("get", "users", "-o", "json").stdout)}
    assert {name: users[name]["role"] for name in USERS.values()} == {v: k for k, v in USERS.items()}
    assert users["admin"]["role"] == "admin" and users["admin"]["admin"] is True
    table = admin.ok("get", "users").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "ROLE", "SCOPE"] or "role" in table.splitlines()[0].lower()
    described = json.loads(admin.ok("describe", "user", "opal", "-o", "json").stdout)
    assert (described["role"], described["scope"], described["admin"]) == ("operator", [], False)
    me = json.loads(clients["viewer"].ok("whoami", "-o", "json").stdout)
    assert me["role"] == "viewer"


def test_admin_flag_is_role_admin_and_bad_roles_are_one_line(admin, daemon, certs, tmp_path):
    made = json.loads(admin.ok("create", "user", "boss", "--admin", "--password-stdin", "-o", "json",
                               stdin="boss-password-1\n").stdout)
    assert (made["role"], made["admin"]) == ("admin", True)
    plain = json.loads(admin.ok("create", "user", "newbie", "--password-stdin", "-o", "json",
                                stdin="newbie-password-1\n").stdout)
    assert plain["role"] == "viewer"
    admin.ok("edit", "user", "newbie", "--admin")
    assert json.loads(admin.ok("describe", "user", "newbie", "-o", "json").stdout)["role"] == "admin"
    admin.ok("edit", "user", "newbie", "--no-admin")
    assert json.loads(admin.ok("describe", "user", "newbie", "-o", "json").stdout)["role"] == "viewer"
    bad = admin("create", "user", "x1", "--role", "king", "--password-stdin", stdin="x1-password-1\n")
    assert one_error_line(bad, 2).startswith("gateway: argument --role: invalid choice: 'king'")
    both = admin("create", "user", "x2", "--admin", "--role", "viewer", "--password-stdin", stdin="x2-password-1\n")
    assert one_error_line(both, 2) == "gateway: --admin is --role admin: it cannot go with --role viewer"
    scoped_admin = admin("edit", "user", "boss", "--scope", "tag=site-a")
    assert one_error_line(scoped_admin, 1) == ("gateway: an admin sees every service: a scope is for the roles "
                                               "editor, operator and viewer")
    bad_scope = admin("edit", "user", "newbie", "--scope", "tag=no spaces")
    assert "is not valid: expected tag=TAG" in one_error_line(bad_scope, 1)
    for name in ("boss", "newbie"):
        admin.ok("delete", "user", name)


def test_an_operator_scoped_to_a_tag_sees_and_runs_only_its_services(admin, world, daemon, certs, tmp_path):
    admin.ok("create", "user", "sam", "--role", "operator", "--scope", "tag=site-a", "--password-stdin",
             stdin="sam-password-1\n")
    assert json.loads(admin.ok("describe", "user", "sam", "-o", "json").stdout)["scope"] == ["tag=site-a"]
    sam = Client(tmp_path / "sam", daemon.port, certs["ca"])
    sam.login("sam", "sam-password-1")
    admin.ok("run", "service", "other", "--set", "name=b")
    assert [s["name"] for s in json.loads(sam.ok("get", "services", "-o", "json").stdout)] == ["hello"]
    assert one_error_line(sam("describe", "service", "other"), 1) == "gateway: service 'other' not found"
    assert one_error_line(sam("run", "service", "other", "--set", "name=b"), 1) == \
        "gateway: service 'other' not found"
    assert "hello x" in sam.ok("run", "service", "hello", "--set", "name=x").stdout
    runs = json.loads(sam.ok("get", "runs", "-o", "json").stdout)
    assert runs and {r["service"] for r in runs} == {"hello"}
    others = [r["id"] for r in json.loads(admin.ok("get", "runs", "-o", "json").stdout) if r["service"] == "other"]
    assert others
    assert one_error_line(sam("logs", others[0]), 1) == f"gateway: run {others[0]!r} not found"
    # the scope lifted: everything again
    admin.ok("edit", "user", "sam", "--no-scope")
    assert {s["name"] for s in json.loads(sam.ok("get", "services", "-o", "json").stdout)} == {"hello", "other"}
    admin.ok("delete", "user", "sam")


def test_an_editor_scoped_to_a_tag_keeps_its_services_in_it(admin, world, daemon, certs, tmp_path):
    admin.ok("create", "user", "edna", "--role", "editor", "--scope", "tag=site-a", "--password-stdin",
             stdin="edna-password-1\n")
    edna = Client(tmp_path / "edna", daemon.port, certs["ca"])
    edna.login("edna", "edna-password-1")
    untagged = edna("create", "service", "python-script", "loose", "--repository", "apps")
    assert one_error_line(untagged, 1) == ("gateway: edna may only have services tagged tag=site-a: give service "
                                           "loose one of those tags")
    # issue 17: an untagged repository is outside every scope, so she may not attach it; tagged for her site, she may
    untagged_repository = edna("create", "service", "python-script", "mine", "--repository", "apps", "--tag", "site-a")
    assert one_error_line(untagged_repository, 1) == "gateway: service mine: repository 'apps' does not exist"
    admin.ok("edit", "repository", "apps", "--tag", "site-a", "--tag", "site-b")
    edna.ok("create", "service", "python-script", "mine", "--repository", "apps", "--tag", "site-a")
    moved = edna("edit", "service", "mine", "--tag", "site-b")
    assert "may only have services tagged tag=site-a" in one_error_line(moved, 1)
    assert one_error_line(edna("delete", "service", "other"), 1) == "gateway: service 'other' not found"
    edna.ok("delete", "service", "mine")
    admin.ok("edit", "repository", "apps", "--clear", "tag")
    admin.ok("delete", "user", "edna")


# ---------------------------------------------------------------- users stored before roles
async def test_a_user_stored_without_a_role_is_an_admin():
    store = MemoryStore("test")
    await store.put("users/old", json.dumps({"name": "old", "admin": False, "password": {}}).encode())
    await store.put("users/older", json.dumps({"name": "older", "password": {}}).encode())
    auth = Auth(store)
    assert {u.name: (u.role, u.admin) for u in await auth.list_users()} == {"old": ("admin", True),
                                                                           "older": ("admin", True)}
    made = await auth.create_user("new", "new-password-1")
    assert made.role == "viewer" and json.loads((await store.get("users/new")).value)["role"] == "viewer"
    with pytest.raises(InvalidArgument, match="unknown role 'king'"):
        await auth.create_user("bad", "bad-password-1", role="king")
    assert User.decode(made.encode()).role == "viewer"
