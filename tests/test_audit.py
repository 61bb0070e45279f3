"""The audit trail after a scripted session against a real `gateway-daemon`: who did what, from where, to what, and
how it ended; read with `gateway get audit` and its filters, appended to audit.log beside gateway.log, bounded by
[audit] retention, and never holding a secret value or a password."""

from __future__ import annotations

import json
import time

import pytest

from gateway_daemon.core.access.audit import Actor, AuditTrail, since_time
from gateway_daemon.core.errors import InvalidArgument
from gateway_daemon.store.memory import MemoryStore

from cli_helpers import one_error_line
from gateway_server import ADMIN_PASSWORD, SCRIPT, Client, Daemon
from gitutil import new_repo

SECRET = "s3cret-v4lue-xyz"
TYPED = "hunter2-typed-in"  # a run input the decorator marks as a password
VIC_PASSWORD = "vic-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory, certs):
    folder = tmp_path_factory.mktemp("audited")
    daemon = Daemon(folder, certs, extra=f"[log]\nfile_enabled = true\nserver_dir = {folder / 'logs'}\n")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def session(server, certs, tmp_path_factory) -> dict:
    """The scripted session; returns the clients and when it began."""
    began = time.time()
    admin = Client(tmp_path_factory.mktemp("admin"), server.port, certs["ca"])
    wrong = admin("login", "--username", "admin", "--password-stdin", stdin="not-the-password\n")
    assert wrong.returncode == 1
    admin.ok("login", "--username", "admin", "--password-stdin", "--change-password",
             stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
    origin = tmp_path_factory.mktemp("origin")
    new_repo(origin, {"main.py": SCRIPT})
    admin.ok("create", "repository", "apps", "--url", str(origin))
    admin.ok("create", "secret", "token", "--value-file", "-", stdin=SECRET)
    admin.ok("create", "decorator", "form", "--schema", "-", stdin=json.dumps(
        {"type": "object", "properties": {"name": {"type": "string"},
                                          "pin": {"type": "string", "format": "password"}}}))
    admin.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py",
             "--decorator", "form", "--secret", "name=token,type=env,target=TOKEN")
    admin.ok("edit", "service", "hello", "--description", "says hello")
    ran = admin.ok("run", "service", "hello", "--set", "name=world", "--set", f"pin={TYPED}")
    assert "hello world token ******" in ran.stdout
    admin.ok("edit", "secret", "token", "--value", SECRET + "-2")
    assert SECRET in admin.ok("describe", "secret", "token", "--reveal").stdout
    admin.ok("db", "export")
    admin.ok("create", "user", "vic", "--role", "viewer", "--password-stdin", stdin=VIC_PASSWORD + "\n")
    vic = Client(tmp_path_factory.mktemp("vic"), server.port, certs["ca"])
    vic.login("vic", VIC_PASSWORD)
    assert vic("create", "secret", "mine", "--value", SECRET).returncode == 1
    assert vic("run", "service", "hello", "--set", "name=x").returncode == 1
    vic.ok("logout")
    admin.ok("edit", "user", "vic", "--role", "operator")
    admin.ok("delete", "service", "hello")
    admin.ok("delete", "user", "vic")
    return {"admin": admin, "began": began}


def _events(admin: Client, *args: str) -> list[dict]:
    return json.loads(admin.ok("get", "audit", *args, "-o", "json").stdout)


def test_the_session_is_in_the_trail_in_order_with_who_where_and_how(session):
    admin = session["admin"]
    events = list(reversed(_events(admin)))  # oldest first
    seen = [(e["user"], e["action"], e["target"], e["outcome"]) for e in events]
    expected = [
        ("admin", "login", "user/admin", "failed"),
        ("admin", "login", "user/admin", "ok"),  # and its temporary password changed
        ("admin", "create", "repository/apps", "ok"),
        ("admin", "create", "secret/token", "ok"),
        ("admin", "create", "decorator/form", "ok"),
        ("admin", "create", "service/hello", "ok"),
        ("admin", "edit", "service/hello", "ok"),
        ("admin", "run", "service/hello", "started"),
        ("admin", "run.end", "service/hello", "succeeded"),
        ("admin", "edit", "secret/token", "ok"),
        ("admin", "reveal", "secret/token", "ok"),
        ("admin", "export", "database", "ok"),
        ("admin", "create", "user/vic", "ok"),
        ("vic", "login", "user/vic", "ok"),
        ("vic", "create", "secret/mine", "refused"),  # a user refused for their role: the request names it
        ("vic", "run", "service/hello", "refused"),
        ("vic", "logout", "user/vic", "ok"),
        ("admin", "edit", "user/vic", "ok"),
        ("admin", "delete", "service/hello", "ok"),
        ("admin", "delete", "user/vic", "ok"),
    ]
    assert seen == expected, json.dumps(events, indent=1)
    assert all(e["source"] == "127.0.0.1" for e in events), events
    assert all(e["time"].endswith("Z") and e["time"] >= time.strftime("%Y-%m-%d", time.gmtime(session["began"]))
               for e in events)
    wrong = events[0]
    assert wrong["detail"] == "wrong username or password"
    refused = next(e for e in events if e["outcome"] == "refused" and e["action"] == "run")
    assert refused["detail"] == "vic is a viewer: running services needs an admin, an editor or an operator"
    started = next(e for e in events if e["action"] == "run")
    assert started["inputs"] == {"name": "world", "pin": "******"}
    assert started["detail"].startswith("run ")
    ended = next(e for e in events if e["action"] == "run.end")
    assert ended["detail"].split(":")[0] == started["detail"]


def test_the_trail_never_holds_a_secret_value_or_a_password(session, server):
    admin = session["admin"]
    trail = admin.ok("get", "audit", "-o", "json").stdout + admin.ok("get", "audit").stdout
    written = (server.folder / "logs" / "audit.log").read_text()
    stored = (server.folder / "data" / "gateway.db").read_bytes()
    for text in (trail, written):
        for value in (SECRET, TYPED, ADMIN_PASSWORD, VIC_PASSWORD, server.admin_password, "not-the-password"):
            assert value not in text
    assert TYPED.encode() not in stored and VIC_PASSWORD.encode() not in stored


def test_the_trail_is_appended_to_audit_log_as_json_lines(session, server):
    lines = (server.folder / "logs" / "audit.log").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert {"time", "user", "source", "action", "target", "outcome"} <= set(events[0])
    listed = _events(session["admin"])
    # the file has every event the store has (and the reads of the trail are no events)
    assert [(e["time"], e["action"], e["target"]) for e in events[-len(listed):]] == \
        [(e["time"], e["action"], e["target"]) for e in reversed(listed)]


def test_filters_by_user_action_and_time(session):
    admin = session["admin"]
    vic = _events(admin, "--user", "vic")
    assert vic and {e["user"] for e in vic} == {"vic"}
    runs = _events(admin, "--action", "run")
    assert {e["action"] for e in runs} == {"run", "run.end"}
    assert {e["action"] for e in _events(admin, "--action", "delete")} == {"delete"}
    assert len(_events(admin, "--since", "1h")) == len(_events(admin))
    assert _events(admin, "--since", "2999-01-01T00:00:00Z") == []
    table = admin.ok("get", "audit", "--user", "vic").stdout
    assert table.splitlines()[0].split()[:4] == ["TIME", "USER", "SOURCE", "ACTION"]
    bad = admin("get", "audit", "--since", "yesterday")
    assert one_error_line(bad, 1) == ("gateway: --since 'yesterday' is not a time: give an ISO time "
                                      "(2024-05-01T12:00:00Z) or an age (30m, 2h, 7d)")
    wrong_kind = admin("get", "services", "--user", "vic")
    assert one_error_line(wrong_kind, 2) == "gateway: --user, --action and --since are for: gateway get audit"


# ---------------------------------------------------------------- the bounds, on the store alone
async def test_retention_keeps_at_most_the_count_and_nothing_older_than_the_age():
    store = MemoryStore("test")
    trail = AuditTrail(store, max_age=3600, max_count=20)
    old = f"audit/{int((time.time() - 7200) * 1e6):017d}-000000"
    await store.put(old, json.dumps({"time": "old", "user": "u", "source": "", "action": "create", "target": "x",
                                     "outcome": "ok"}).encode())
    for index in range(60):
        await trail.record("create", f"service/s{index}", actor=Actor("u", "10.0.0.1"))
    kept = await store.list("audit/")
    assert len(kept) <= 22 and old not in {e.key for e in kept}
    newest = await trail.list(limit=5)
    assert [e.target for e in newest] == [f"service/s{i}" for i in range(59, 54, -1)]
    assert newest[0].source == "10.0.0.1"
    with pytest.raises(InvalidArgument):
        await trail.list(since="next week")
    assert abs(since_time("2h") - (time.time() - 7200)) < 5
