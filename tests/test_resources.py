"""Repositories, decorators, services and secrets through the real `gateway` command.

Every validation rule: the one-line message, exit code 1, and nothing stored changed afterwards.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from cli_helpers import Result, Sandbox, check_all, write
from gitutil import new_repo

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 2}, "count": {"type": "integer"}},
    "required": ["name"],
}
PLAINTEXT = "pl41n-s3cret-VALUE-never-shown"


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def seed(box: Sandbox) -> None:
    """A repository r, a decorator d, a secret tok and a python-script service s using all three."""
    schema = write(box.root / "schema.json", json.dumps(SCHEMA))
    box.gateway("create", "secret", "tok", "--value", PLAINTEXT).ok()  # first: it makes the key file
    check_all(lambda r=r: r.ok() for r in box.many([
        ("create", "repository", "r", "--url", "https://git.example.com/team/automations.git"),
        ("create", "decorator", "d", "--schema", str(schema)),
    ]))
    box.gateway("create", "service", "python-script", "s", "--repository", "r", "--decorator", "d",
                "--secret", "name=tok,type=env,target=TOKEN").ok()


def refused(box: Sandbox, cases: list[tuple[tuple[str, ...], int, tuple[str, ...]]],
            kinds: tuple[str, ...]) -> list[Result]:
    """Run each (argv, exit code, message fragments) case; each fails with one line, and nothing changes:
    neither what `gateway get KIND -o json` shows for `kinds`, nor any row (or the revision) of the store."""
    before = box.snapshot(kinds)
    results = box.many(argv for argv, _, _ in cases)
    check_all(lambda r=r, code=code, frags=frags: r.fails(code, *frags)
              for r, (_, code, frags) in zip(results, cases))
    assert box.snapshot(kinds) == before, "a refused command changed what is stored"
    return results


# ---------------------------------------------------------------- names
def test_names_are_1_to_64_letters_digits_dash_underscore_dot(box: Sandbox) -> None:
    ok64 = "n" * 64
    created = box.many([
        ("create", "repository", ok64, "--url", "https://example.com/a.git"),
        ("create", "repository", "a-b_c.9", "--url", "https://example.com/b.git"),
    ])
    check_all(lambda r=r: r.ok() for r in created)
    url = ("--url", "https://example.com/x.git")
    schema = str(write(box.root / "schema.json", "{}"))
    bad_names = ["n" * 65, "a/b", "a b", "naïve"]
    cases = [(("create", "repository", name, *url), 1, (repr(name), "1-64 letters, digits, '-', '_' or '.'"))
             for name in bad_names]
    cases += [
        (("create", "repository", "", *url), 1, ("repository name ''", "1-64")),
        (("create", "decorator", "d/1", "--schema", schema), 1, ("'d/1'", "1-64")),
        (("create", "service", "executable", "s 1", "--repository", ok64, "--filename", "x"), 1, ("'s 1'", "1-64")),
        (("create", "secret", "../tok", "--value", PLAINTEXT), 1, ("'../tok'", "1-64")),
        (("describe", "repository", "a/b"), 1, ("'a/b'", "1-64")),
    ]
    results = refused(box, cases, kinds=("repositories",))
    assert all(PLAINTEXT not in r.err for r in results)
    names = [r["name"] for r in box.listing("repositories")]
    assert names == sorted([ok64, "a-b_c.9"])


def test_names_are_unique_per_kind(box: Sandbox) -> None:
    seed(box)
    schema = str(write(box.root / "other.json", '{"type": "object"}'))
    refused(box, [
        (("create", "repository", "r", "--url", "https://other.example.com/x.git"), 1,
         ("repository 'r' already exists",)),
        (("create", "decorator", "d", "--schema", schema), 1, ("decorator 'd' already exists",)),
        (("create", "service", "executable", "s", "--repository", "r", "--filename", "x"), 1,
         ("service 's' already exists",)),
        (("create", "secret", "tok", "--value", "another-value"), 1, ("secret 'tok' already exists",)),
    ], kinds=("repositories", "secrets"))
    # The same name in another kind is fine.
    box.gateway("create", "repository", "d", "--url", "https://example.com/d.git").ok()
    assert box.gateway("describe", "secret", "tok", "--reveal", "-o", "json").json()["value"] == PLAINTEXT


# ---------------------------------------------------------------- repositories
def test_repository_urls_and_references(box: Sandbox) -> None:
    good = {
        "https": "https://git.example.com/team/repo.git",
        "ssh": "ssh://git@git.example.com:2222/team/repo.git",
        "scp": "git@github.com:team/repo.git",
        "local": str(box.root / "some" / "repo"),
        "file": f"file://{box.root}/repo",
    }
    for folder in (box.root / "some" / "repo", box.root / "repo"):  # a local repository is read when created
        new_repo(folder, {"main.py": "print(1)\n"})
    created = box.many([("create", "repository", name, "--url", url) for name, url in good.items()]
                       + [("create", "repository", "pinned", "--url", good["https"], "--reference", "release/1.2"),
                          ("create", "repository", "commit", "--url", good["https"], "--reference", "a" * 40)])
    check_all(lambda r=r: r.ok() for r in created)
    listed = {r["name"]: r for r in box.listing("repositories")}
    assert {name: listed[name]["url"] for name in good} == good
    assert listed["pinned"]["reference"] == "release/1.2"

    def create(url: str, *extra: str) -> tuple[str, ...]:
        return ("create", "repository", "bad", f"--url={url}", *extra)

    ext = "ext::sh -c touch% /tmp/pwned"
    refused(box, [
        (create(ext), 1, (repr(ext), "runs commands", "ext::")),
        (create("fd::17"), 1, ("'fd::17'", "runs commands", "fd::")),
        (create("ftp://example.com/repo.git"), 1, ("'ftp://example.com/repo.git'", "ftp:// scheme is not supported", "file://")),
        (create("relative/path"), 1, ("'relative/path'", "https", "ssh", "local path", "file:///path/to/repo")),
        (create("-uupload-pack=touch /tmp/x"), 1, ("may not start with '-'",)),
        (create(good["https"], "--reference=a..b"), 1, ("reference 'a..b' is not a valid",)),
        (create(good["https"], "--reference=-f"), 1, ("reference '-f'",)),
        (create(good["https"], "--reference=bad ref"), 1, ("reference 'bad ref'",)),
        (create(good["https"], "--reference=main.lock"), 1, ("reference 'main.lock'",)),
        (create(good["https"], "--reference=HEAD@{1}"), 1, ("reference 'HEAD@{1}'",)),
        (create(good["https"], "--private-key-name", "deploy"), 1, ("private key is used only with ssh", "https")),
        (create(good["scp"], "--private-key-name", "deploy"), 1, ("secret 'deploy' does not exist",)),
        (("edit", "repository", "https", f"--url={ext}"), 1, (repr(ext),)),
        (("edit", "repository", "nope", "--url", good["https"]), 1, ("repository 'nope' not found",)),
    ], kinds=("repositories",))


# ---------------------------------------------------------------- decorators
def test_decorator_schema_must_be_a_valid_draft_2020_12_object_schema(box: Sandbox) -> None:
    draft_2020 = {  # keywords that only draft 2020-12 has
        "type": "object",
        "properties": {"pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
                       "region": {"$ref": "#/$defs/region"}},
        "$defs": {"region": {"enum": ["eu", "us"]}},
        "dependentRequired": {"pair": ["region"]},
    }
    as_yaml = write(box.root / "schema.yaml", "type: object\nproperties:\n  host: {type: string}\n")
    results = box.many([
        ("create", "decorator", "modern", "--schema", str(write(box.root / "modern.json", json.dumps(draft_2020)))),
        ("create", "decorator", "from-yaml", "--schema", str(as_yaml), "--description", "YAML is fine too"),
    ])
    check_all(lambda r=r: r.ok() for r in results)
    box.gateway("create", "decorator", "from-stdin", "--schema", "-", stdin=json.dumps(SCHEMA)).ok()
    listed = {d["name"]: d for d in box.listing("decorators")}
    assert listed["modern"]["schema"] == draft_2020
    assert listed["from-yaml"]["schema"] == {"type": "object", "properties": {"host": {"type": "string"}}}
    assert listed["from-stdin"]["schema"] == SCHEMA

    def schema_file(name: str, text: str) -> str:
        return str(write(box.root / name, text))

    refused(box, [
        (("create", "decorator", "x", "--schema", schema_file("typo.json", '{"type": "strnig"}')), 1,
         ("decorator x: invalid JSON Schema", "strnig")),
        (("create", "decorator", "x", "--schema",
          schema_file("neg.json", '{"type": "object", "properties": {"a": {"minLength": -1}}}')), 1,
         ("decorator x: invalid JSON Schema at properties/a/minLength",)),
        (("create", "decorator", "x", "--schema", schema_file("array.json", '{"type": "array"}')), 1,
         ("must describe an object", "'array'")),
        (("create", "decorator", "x", "--schema", schema_file("list.json", "[1, 2]")), 1,
         ("must be a JSON object, not list",)),
        (("create", "decorator", "x", "--schema", schema_file("broken.json", '{"type": [')), 1,
         ("is neither JSON nor YAML", "line 1")),
        (("create", "decorator", "x", "--schema", str(box.root / "missing.json")), 2,
         ("cannot read schema file", "missing.json")),
        (("edit", "decorator", "modern", "--schema", schema_file("typo2.json", '{"type": "strnig"}')), 1,
         ("decorator modern: invalid JSON Schema",)),
    ], kinds=("decorators",))
    refused_from_stdin = box.gateway("create", "decorator", "x", "--schema", "-", stdin='{"type": 5}')
    refused_from_stdin.fails(1, "invalid JSON Schema")


# ---------------------------------------------------------------- services
def test_service_fields_are_checked(box: Sandbox) -> None:
    seed(box)
    full = box.gateway(
        "create", "service", "executable", "full", "--repository", "r", "--working-dir", "deploy/app",
        "--filename", "bin/run.sh", "--decorator", "d", "--env", "A=1", "--env", "B=x=y",
        "--secret", "name=tok,type=env,target=TOKEN", "--runtime-arg=-i", "--runtime-arg", "inventory.ini",
        "--requirements-file", "deploy/requirements.txt", "--tag", "prod", "--arg-format", "{key}:{value}",
        "--timeout", "90", "--description", "everything set", "-o", "json",
    ).json()
    assert {k: full[k] for k in ("type", "repository", "working_dir", "filename", "decorator", "env", "secrets",
                                 "runtime_args", "requirements_file", "tags", "arg_format", "timeout")} == {
        "type": "executable", "repository": "r", "working_dir": "deploy/app", "filename": "bin/run.sh",
        "decorator": "d", "env": {"A": "1", "B": "x=y"}, "secrets": ["name=tok,type=env,target=TOKEN"],
        "runtime_args": ["-i", "inventory.ini"], "requirements_file": "deploy/requirements.txt", "tags": ["prod"],
        "arg_format": "{key}:{value}", "timeout": 90}

    def create(*extra: str, kind: str = "python-script") -> tuple[str, ...]:
        return ("create", "service", kind, "x", "--repository", "r", *extra)

    refused(box, [
        (create(kind="bash"), 2, ("invalid choice: 'bash'", "python-script", "ansible-playbook", "opentofu-plan",
                                  "executable")),
        (("create", "service", "python-script", "x", "--repository", "nope"), 1,
         ("service x: repository 'nope' does not exist",)),
        (create("--decorator", "nope"), 1, ("service x: decorator 'nope' does not exist",)),
        (create("--secret", "name=nope,type=env,target=T"), 1, ("service x: secret 'nope' does not exist",)),
        (create("--working-dir", "../outside"), 1, ("working-dir '../outside'", "'..' is not allowed")),
        (create("--working-dir", "/etc"), 1, ("working-dir '/etc'", "not absolute")),
        (create("--working-dir", "~/x"), 1, ("working-dir '~/x'", "not absolute")),
        (create("--filename", "/etc/passwd"), 1, ("filename '/etc/passwd'", "not absolute")),
        (create("--filename", "../../run.py"), 1, ("filename '../../run.py'", "'..' is not allowed")),
        (create("--requirements-file", "../requirements.txt"), 1, ("requirements-file '../requirements.txt'",)),
        (create("--env", "NOEQUALS"), 1, ("--env 'NOEQUALS' is not KEY=VALUE",)),
        (create("--env", "1BAD=x"), 1, ("env '1BAD' is not a valid environment variable name",)),
        (create("--secret", "tok"), 1, ("'tok' is not valid", "name=SECRET,type=env,target=ENV_VAR")),
        (create("--secret", "name=tok"), 1, ("needs name= and target=",)),
        (create("--secret", "name=tok,type=file,target=T"), 1, ("type 'file' is not supported", "type=env")),
        (create("--secret", "name=tok,type=env,target=1BAD"), 1, ("target '1BAD' is not a valid",)),
        (create("--secret", "name=tok,target=T", "--secret", "name=tok,target=T"), 1, ("two secrets target T",)),
        (create("--arg-format", "{bogus}"), 1, ("arg-format '{bogus}' is not valid",)),
        (create("--arg-format", "plain"), 1, ("arg-format 'plain' uses neither {key} nor {value}",)),
        (create("--timeout", "0"), 1, ("timeout 0 is not valid", "1 to 604800 seconds")),
        (create("--timeout", "soon"), 2, ("--timeout", "'soon'")),
        (create(kind="executable"), 1, ("service x: an executable service needs --filename",)),
        (("edit", "service", "s", "--working-dir", "../x"), 1, ("working-dir '../x'",)),
        (("edit", "service", "s", "--decorator", "nope"), 1, ("service s: decorator 'nope' does not exist",)),
        (("edit", "service", "nope", "--timeout", "5"), 1, ("service 'nope' not found",)),
        (("edit", "service", "s", "--clear", "repository"), 2, ("--clear repository",)),
    ], kinds=("services",))


# ---------------------------------------------------------------- in use
def test_deleting_what_a_service_or_repository_uses_is_refused_naming_the_user(box: Sandbox) -> None:
    seed(box)
    box.gateway("create", "secret", "deploy-key", "--value", "-----BEGIN KEY-----").ok()
    box.gateway("create", "repository", "over-ssh", "--url", "git@git.example.com:team/x.git",
                "--private-key-name", "deploy-key").ok()
    refused(box, [
        (("delete", "repository", "r"), 1, ("repository 'r' is in use by service s",)),
        (("delete", "decorator", "d"), 1, ("decorator 'd' is in use by service s",)),
        (("delete", "secret", "tok"), 1, ("secret 'tok' is in use by service s",)),
        (("delete", "secret", "deploy-key"), 1, ("secret 'deploy-key' is in use by repository over-ssh",)),
        (("delete", "service", "nope"), 1, ("service 'nope' not found",)),
        (("delete", "repository", "nope"), 1, ("repository 'nope' not found",)),
    ], kinds=("services",))
    # Once the user is gone, the thing it used can go.
    box.gateway("delete", "service", "s").ok()
    results = box.many([("delete", "repository", "r"), ("delete", "decorator", "d"), ("delete", "secret", "tok")])
    check_all(lambda r=r: r.ok() for r in results)
    assert [r.out for r in results] == ["repository r deleted\n", "decorator d deleted\n", "secret tok deleted\n"]
    assert [r["name"] for r in box.listing("secrets")] == ["deploy-key"]


# ---------------------------------------------------------------- secrets
def test_secret_values_are_encrypted_at_rest_and_shown_only_on_reveal(box: Sandbox) -> None:
    first = box.gateway("create", "secret", "tok", "--value", PLAINTEXT, "--description", "api token")
    first.ok()
    key_file = box.data_dir / "secrets.key"
    assert first.out == "secret tok created\n"
    assert str(key_file) in first.err and "0600" in first.err, "the user is told where the new key is"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    from_file = write(box.root / "value.txt", "file-value-0123\n")
    created = box.many([("create", "secret", "from-file", "--value-file", str(from_file))])
    created[0].ok()
    assert "created a new secrets key" not in created[0].err, "the key is made once"
    box.gateway("create", "secret", "from-stdin", stdin="stdin-value-4567\n").ok()

    views = box.many([
        ("get", "secrets"), ("get", "secrets", "-o", "json"), ("get", "secrets", "-o", "yaml"),
        ("describe", "secret", "tok"), ("describe", "secret", "tok", "-o", "json"),
        ("describe", "secret", "tok", "-o", "yaml"),
        ("create", "secret", "tok", "--value", PLAINTEXT),  # already exists: the error must not echo it
    ])
    for view in views:
        assert PLAINTEXT not in view.out + view.err, str(view)
    views[-1].fails(1, "secret 'tok' already exists")
    listed = views[1].json()
    assert [s["name"] for s in listed] == ["from-file", "from-stdin", "tok"]
    # issue 17: secrets carry tags (a scope limits who sees them)
    assert all(set(s) == {"kind", "name", "description", "tags", "created_at", "updated_at",
                          "provider", "path", "key"} for s in listed)  # issue 20: an alias's fields, empty here
    assert all((s["provider"], s["path"], s["key"]) == ("", "", "") for s in listed)
    assert yaml.safe_load(views[2].out) == listed

    # At rest: not in the store file, nor anywhere else in data_dir.
    for path in box.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for plain in (PLAINTEXT, "file-value-0123", "stdin-value-4567"):
                assert plain.encode() not in content, f"{plain} in {path}"

    revealed = box.many([
        ("describe", "secret", "tok", "--reveal", "-o", "json"),
        ("describe", "secret", "from-file", "--reveal", "-o", "json"),
        ("describe", "secret", "from-stdin", "--reveal", "-o", "yaml"),
        ("describe", "secret", "tok", "--reveal"),
    ])
    assert revealed[0].json()["value"] == PLAINTEXT
    assert revealed[1].json()["value"] == "file-value-0123"  # the trailing newline is not part of the value
    assert yaml.safe_load(revealed[2].ok().out)["value"] == "stdin-value-4567"
    assert PLAINTEXT in revealed[3].ok().out

    box.gateway("edit", "secret", "tok", "--value-file", "-", stdin="rotated-value\n").ok()
    assert box.gateway("describe", "secret", "tok", "--reveal", "-o", "json").json()["value"] == "rotated-value"


def test_secret_input_rules(box: Sandbox) -> None:
    box.gateway("create", "secret", "tok", "--value", PLAINTEXT).ok()
    empty = write(box.root / "empty.txt", "")
    results = refused(box, [
        (("create", "secret", "blank", "--value", ""), 1, ("secret blank: the value is empty",)),
        (("create", "secret", "blank", "--value-file", str(empty)), 1, ("the value is empty",)),
        (("create", "secret", "both", "--value", "a", "--value-file", str(empty)), 2, ("not allowed with",)),
        (("create", "secret", "gone", "--value-file", str(box.root / "missing.txt")), 2,
         ("cannot read value file", "missing.txt")),
        (("edit", "secret", "tok"), 2, ("nothing to change",)),
        (("edit", "secret", "tok", "--value", ""), 1, ("the value is empty",)),
        (("edit", "secret", "nope", "--value", PLAINTEXT), 1, ("secret 'nope' not found",)),
        (("describe", "secret", "nope", "--reveal"), 1, ("secret 'nope' not found",)),
        (("describe", "repository", "tok", "--reveal"), 2, ("--reveal is for secrets only",)),
    ], kinds=("secrets",))
    assert all(PLAINTEXT not in r.out + r.err for r in results)
    assert box.gateway("create", "secret", "piped", stdin="").fails(1, "the value is empty")


def test_a_secret_sealed_with_another_key_cannot_be_revealed(box: Sandbox) -> None:
    box.gateway("create", "secret", "tok", "--value", PLAINTEXT).ok()
    (box.data_dir / "secrets.key").write_text("a-completely-different-key-0123456789\n")
    result = box.gateway("describe", "secret", "tok", "--reveal")
    result.fails(1, "is not this store's", str(box.data_dir / "secrets.key"))  # refused before any secret is opened
    assert PLAINTEXT not in result.out + result.err


# ---------------------------------------------------------------- persistence
def test_what_one_process_creates_the_next_one_sees(box: Sandbox) -> None:
    seed(box)
    box.gateway("edit", "repository", "r", "--reference", "v2", "--tag", "team-a", "--description", "edited").ok()
    box.gateway("edit", "service", "s", "--env", "MODE=fast", "--clear", "decorator").ok()
    repositories, services, decorators, secrets, revealed = box.many([
        ("get", "repositories", "-o", "json"), ("get", "services", "-o", "json"),
        ("get", "decorators", "-o", "json"), ("get", "secrets", "-o", "json"),
        ("describe", "secret", "tok", "--reveal", "-o", "json"),
    ])
    [repository] = repositories.json()
    assert (repository["name"], repository["reference"], repository["tags"], repository["description"]) == (
        "r", "v2", ["team-a"], "edited")
    [service] = services.json()
    assert (service["name"], service["decorator"], service["env"]) == ("s", "", {"MODE": "fast"})
    assert service["secrets"] == ["name=tok,type=env,target=TOKEN"]
    assert [d["schema"] for d in decorators.json()] == [SCHEMA]
    assert [s["name"] for s in secrets.json()] == ["tok"]
    assert revealed.json()["value"] == PLAINTEXT
    assert box.db.is_file()
