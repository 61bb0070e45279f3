"""`gateway get KIND` in local mode is a plain read of the store (cli/local_read.py): none of the engine,
asyncio, grpc, textual or the schema checker is loaded, and what it prints is what the full command prints."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from cli_helpers import Sandbox
from gitutil import new_repo

HEAVY = ("asyncio", "grpc", "textual", "jsonschema", "concurrent", "gateway_daemon.core.engine",
         "gateway_daemon.execution", "gateway_daemon.store")
# What a probe prints: the exit code, then on stderr the heavy modules it loaded.
PROBE = ("import sys\nfrom gateway_tui.cli import {entry}\ncode = {entry}({argv!r})\n"
         "heavy = sorted(m for m in sys.modules if m.startswith({heavy!r}))\n"
         "print('loaded: ' + ' '.join(heavy), file=sys.stderr)\nsys.exit(code)\n")
LISTINGS = [("services",), ("svc", "-o", "table"), ("services", "--tag", "blue"), ("services", "--tag", "blue",
            "--tag", "red"), ("repositories",), ("repos", "--output=table"), ("decorators",), ("secrets",),
            ("secrets", "--tag", "blue"), ("executable-objects",)]


def probe(box: Sandbox, argv: list[str], full: bool = False):
    """`gateway ARGV` in this interpreter; `full`: through the full command (argparse, the engine)."""
    entry = "_main" if full else "main"
    result = box.python("-c", PROBE.format(entry=entry, argv=argv, heavy=HEAVY))
    out_err, _, loaded = result.err.rpartition("loaded: ")
    return result.code, result.out, out_err, loaded.split()


@pytest.fixture(scope="module")
def stocked(tmp_path_factory) -> Sandbox:
    root = tmp_path_factory.mktemp("local-read")
    box = Sandbox(root)
    new_repo(root / "origin", {"main.py": "print('hi')\n"})
    schema = json.dumps({"type": "object", "properties": {"who": {"type": "string"}, "n": {"type": "integer"}},
                         "required": ["who"]})
    for argv in (("create", "repository", "apps", "--url", str(root / "origin"), "--tag", "blue",
                  "--description", "the apps"),
                 ("create", "repository", "other", "--url", str(root / "origin"), "--reference", "main"),
                 ("create", "decorator", "greet", "--schema", schema, "--description", "who to greet"),
                 ("create", "service", "python-script", "b-hello", "--repository", "apps", "--filename", "main.py",
                  "--decorator", "greet", "--tag", "blue", "--tag", "red", "--description", "says \x1b[31mhi"),
                 ("create", "service", "python-script", "a-plain", "--repository", "apps", "--filename", "main.py",
                  "--tag", "blue"),
                 ("create", "service", "python-script", "c-none", "--repository", "other", "--filename", "main.py"),
                 ("create", "secret", "token", "--value", "s3cret-value-here", "--tag", "blue"),
                 ("create", "executable-object", "tool", "--exec-command", "/bin/echo", "--description", "echoes")):
        box.gateway(*argv).ok()
    return box


@pytest.mark.parametrize("argv", LISTINGS, ids=lambda argv: " ".join(argv))
def test_get_reads_the_store_without_the_engine(stocked: Sandbox, argv: tuple[str, ...]) -> None:
    code, out, err, loaded = probe(stocked, ["get", *argv])
    full_code, full_out, full_err, full_loaded = probe(stocked, ["get", *argv], full=True)
    assert (code, out, err) == (full_code, full_out, full_err) == (0, full_out, "")
    assert loaded == [], f"a local read loaded {loaded}"
    assert "asyncio" in full_loaded  # the probe sees what the full command loads
    assert out.count("\n") > 1 or out == "(none)\n"


def test_what_it_cannot_answer_goes_to_the_full_command(stocked: Sandbox) -> None:
    """JSON, a type filter, runs, registries (the built-in ones are the engine's), an unknown kind: as before."""
    for argv in (["get", "services", "-o", "json"], ["get", "services", "--type", "python-script"],
                 ["get", "runs"], ["get", "registries"], ["get", "services", "--raw"]):
        code, out, err, loaded = probe(stocked, argv)
        assert (code, out, err) == probe(stocked, argv, full=True)[:3]
        assert code == 0 and "asyncio" in loaded, argv
    code, out, err, _ = probe(stocked, ["get", "widgets"])
    assert code == 2 and "unknown kind 'widgets'" in err


def test_an_older_record_without_a_shown_field_is_read_by_the_engine(tmp_path: Path) -> None:
    """A record from before a field existed gets the field's default from the engine: the plain read leaves it
    to the full command rather than print something else."""
    box = Sandbox(tmp_path)
    new_repo(tmp_path / "origin", {"main.py": "print('hi')\n"})
    box.gateway("create", "repository", "apps", "--url", str(tmp_path / "origin")).ok()
    box.gateway("create", "service", "python-script", "old", "--repository", "apps", "--filename", "main.py").ok()
    conn = sqlite3.connect(box.db)
    with conn:
        (key, value), = conn.execute("SELECT key, value FROM kv WHERE key LIKE '%/services/old'").fetchall()
        record = json.loads(value)
        del record["tags"], record["decorator"]
        conn.execute("UPDATE kv SET value = ? WHERE key = ?", (json.dumps(record).encode(), key))
    conn.close()
    code, out, err, loaded = probe(box, ["get", "services"])
    assert (code, out, err) == probe(box, ["get", "services"], full=True)[:3]
    assert code == 0 and "old" in out and "asyncio" in loaded


def test_a_data_dir_open_to_others_is_still_tightened_and_said(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.gateway("get", "services").ok()  # the store made
    os.chmod(box.data_dir, 0o755)
    result = box.gateway("get", "services").ok()
    assert "now 0700" in result.err and result.out == "(none)\n"
    assert os.stat(box.data_dir).st_mode & 0o777 == 0o700
