"""Scope that holds, against a real `gateway-daemon` with real logins: an editor scoped to site-a tried to reach
site-b's secrets and runs every way she could think of.

- repoint a repository that a site-b service uses to her own code (refused: only someone whose scope covers every
  service that uses it may change it);
- attach site-b's secret to her own service, to a repository of hers, or to a run (refused: not found to her), or
  through a registry that holds it (refused);
- recreate the name of a deleted site-b service and read its old runs (runs belong to the service they ran for,
  by its id, not to a name);
- watch site-b names appear through Watch (filtered by scope);
- a repository's (and a registry's) credentials are bound to its URL's scheme, host and port: moving it to another
  host drops them, and the new host never gets the password;
- --state-out (the whole OpenTofu state, secrets and all) needs the right to reveal secrets.
"""

from __future__ import annotations

import base64
import http.server
import json
import queue
import threading
import time
from pathlib import Path

import grpc
import pytest

from gateway_daemon.rpc.gen import auth_pb2, auth_pb2_grpc, common_pb2, common_pb2_grpc

from cli_helpers import one_error_line
from gateway_server import SCRIPT, Client
from gitutil import new_repo

B_VALUE = "site-b-db-password-93kq"
GIT_PASSWORD = "git-pw-Qx7-never-elsewhere"


@pytest.fixture(scope="module")
def world(admin, tmp_path_factory) -> Path:
    """site-b's service with its secret, on a repository shared with site-a; repositories and secrets of each site,
    and an untagged one of each (for unscoped users only)."""
    folder = tmp_path_factory.mktemp("world")
    new_repo(folder / "origin", {"main.py": SCRIPT})
    new_repo(folder / "evil", {"main.py": "import os\nprint('stolen', os.environ.get('TOKEN'))\n"})
    admin.ok("create", "secret", "b-secret", "--value-file", "-", "--tag", "site-b", stdin=B_VALUE)
    admin.ok("create", "secret", "a-secret", "--value", "a-value-123", "--tag", "site-a")
    admin.ok("create", "secret", "loose-secret", "--value", "loose-value-1")
    admin.ok("create", "repository", "shared", "--url", str(folder / "origin"), "--tag", "site-a", "--tag", "site-b")
    admin.ok("create", "repository", "b-repo", "--url", str(folder / "origin"), "--tag", "site-b")
    admin.ok("create", "repository", "a-repo", "--url", str(folder / "origin"), "--tag", "site-a")
    admin.ok("create", "repository", "loose-repo", "--url", str(folder / "origin"))
    admin.ok("create", "service", "python-script", "b-svc", "--repository", "shared", "--filename", "main.py",
             "--secret", "name=b-secret,type=env,target=TOKEN", "--tag", "site-b")
    return folder


def _user(admin: Client, daemon, certs, folder: Path, name: str, role: str, scope: str = "tag=site-a") -> Client:
    admin.ok("create", "user", name, "--role", role, "--scope", scope, "--password-stdin",
             stdin=f"{name}-password-1\n")
    client = Client(folder / name, daemon.port, certs["ca"])
    client.login(name, f"{name}-password-1")
    return client


@pytest.fixture(scope="module")
def edna(admin, world, daemon, certs, tmp_path_factory) -> Client:
    """An editor scoped to site-a."""
    return _user(admin, daemon, certs, tmp_path_factory.mktemp("users"), "edna", "editor")


@pytest.fixture(scope="module")
def opal(admin, world, daemon, certs, tmp_path_factory) -> Client:
    """An operator scoped to site-a."""
    return _user(admin, daemon, certs, tmp_path_factory.mktemp("users"), "opal", "operator")


def _names(client: Client, kind: str) -> set[str]:
    return {r["name"] for r in json.loads(client.ok("get", kind, "-o", "json").stdout)}


# ---------------------------------------------------------------- what a scoped user sees
def test_a_scoped_user_sees_only_repositories_and_secrets_of_her_scope(admin, edna, world):
    assert _names(edna, "repositories") == {"shared", "a-repo"}
    assert _names(edna, "secrets") == {"a-secret"}
    for kind, name in (("repository", "b-repo"), ("repository", "loose-repo"), ("secret", "b-secret"),
                       ("secret", "loose-secret")):
        assert one_error_line(edna("describe", kind, name), 1) == f"gateway: {kind} {name!r} not found"
    assert one_error_line(edna("edit", "secret", "b-secret", "--value", "mine-now"), 1) == \
        "gateway: secret 'b-secret' not found"
    assert one_error_line(edna("delete", "repository", "b-repo"), 1) == "gateway: repository 'b-repo' not found"
    # the tags show, and an admin sees everything
    secrets = {s["name"]: s for s in json.loads(admin.ok("get", "secrets", "-o", "json").stdout)}
    assert secrets["b-secret"]["tags"] == ["site-b"] and secrets["loose-secret"]["tags"] == []
    assert {"shared", "a-repo", "b-repo", "loose-repo"} <= _names(admin, "repositories")


def test_what_a_scoped_editor_makes_keeps_a_tag_of_her_scope(edna, admin):
    line = one_error_line(edna("create", "secret", "untagged", "--value", "v4lue-1"), 1)
    assert line == "gateway: edna may only have secrets tagged tag=site-a: give secret untagged one of those tags"
    line = one_error_line(edna("create", "repository", "r-b", "--url", "/srv/x", "--tag", "site-b"), 1)
    assert "edna may only have repositories tagged tag=site-a" in line
    edna.ok("create", "secret", "mine", "--value", "v4lue-1", "--tag", "site-a")
    assert "may only have secrets tagged tag=site-a" in one_error_line(
        edna("edit", "secret", "mine", "--tag", "site-b"), 1)
    edna.ok("edit", "secret", "mine", "--tag", "site-a", "--tag", "lab", "--description", "mine")
    described = json.loads(admin.ok("describe", "secret", "mine", "-o", "json").stdout)
    assert (described["tags"], described["description"]) == (["site-a", "lab"], "mine")
    edna.ok("delete", "secret", "mine")


# ---------------------------------------------------------------- way 1: repointing a shared repository
def test_a_repository_a_site_b_service_uses_cannot_be_repointed_by_site_a(admin, edna, world):
    before = json.loads(admin.ok("describe", "repository", "shared", "-o", "json").stdout)
    line = one_error_line(edna("edit", "repository", "shared", "--url", str(world / "evil")), 1)
    assert line == ("gateway: edna may not change repository shared: it is used by a service outside tag=site-a; "
                    "only a user whose scope covers every service that uses it, or an unscoped user, may"), line
    assert "b-svc" not in line  # what she cannot see is not named
    assert "may not change" in one_error_line(edna("edit", "repository", "shared", "--reference", "evil"), 1)
    assert "may not" in one_error_line(edna("delete", "repository", "shared"), 1)
    after = json.loads(admin.ok("describe", "repository", "shared", "-o", "json").stdout)
    assert after == before
    # site-b's run still runs site-b's code, with its secret (masked)
    out = admin.ok("run", "service", "b-svc", "--set", "name=b").stdout
    assert "hello b token ******" in out and "stolen" not in out
    # a repository that only her services use is hers to change
    edna.ok("create", "service", "python-script", "a-svc", "--repository", "a-repo", "--filename", "main.py",
            "--tag", "site-a")
    edna.ok("edit", "repository", "a-repo", "--description", "ours")
    edna.ok("delete", "service", "a-svc")


# ---------------------------------------------------------------- way 2: attaching site-b's secret
def test_site_b_secret_cannot_be_attached_by_site_a(admin, edna, opal, world):
    ref = "name=b-secret,type=env,target=TOKEN"
    line = one_error_line(edna("create", "service", "python-script", "grab", "--repository", "a-repo",
                               "--filename", "main.py", "--secret", ref, "--tag", "site-a"), 1)
    assert line == "gateway: service grab: secret 'b-secret' does not exist"
    line = one_error_line(edna("create", "service", "python-script", "grab", "--repository", "b-repo",
                               "--filename", "main.py", "--tag", "site-a"), 1)
    assert line == "gateway: service grab: repository 'b-repo' does not exist"
    edna.ok("create", "service", "python-script", "grab", "--repository", "a-repo", "--filename", "main.py",
            "--tag", "site-a")
    for secret in ("b-secret", "loose-secret"):
        line = one_error_line(edna("edit", "service", "grab", "--secret", f"name={secret},type=env,target=TOKEN"), 1)
        assert line == f"gateway: service grab: secret {secret!r} does not exist"
    line = one_error_line(edna("create", "repository", "grab-repo", "--url", "https://git.example.test/x.git",
                               "--username", "u", "--password-name", "b-secret", "--tag", "site-a"), 1)
    assert line == "gateway: repository grab-repo: secret 'b-secret' does not exist"
    line = one_error_line(edna("edit", "repository", "a-repo", "--url", "ssh://git@git.example.test/x.git",
                               "--private-key-name", "b-secret"), 1)
    assert line == "gateway: repository a-repo: secret 'b-secret' does not exist"
    # at run time too: a secret given to a run is one the caller may see
    for client in (edna, opal):
        result = client("run", "service", "grab", "--set-secret", ref)
        assert one_error_line(result, 1) == "gateway: secret 'b-secret' not found"
        assert B_VALUE not in result.stdout + result.stderr
    assert "grab" in _names(admin, "services")
    assert json.loads(admin.ok("describe", "service", "grab", "-o", "json").stdout)["secrets"] == []
    # nor through a registry whose credentials are site-b's (pip hands them to whatever it installs)
    admin.ok("create", "registry", "pypi", "b-pypi", "--url", "https://pypi.site-b.example/simple", "--username", "ci",
             "--password-name", "b-secret")
    line = one_error_line(edna("edit", "service", "grab", "--pypi-registry", "b-pypi"), 1)
    assert line == ("gateway: edna may not give service grab registry b-pypi: its credentials are a secret outside "
                    "the scope (tag=site-a)")
    admin.ok("delete", "registry", "b-pypi")
    # her own scope's secret attaches fine
    edna.ok("edit", "service", "grab", "--secret", "name=a-secret,type=env,target=TOKEN")
    assert "token ******" in opal.ok("run", "service", "grab", "--set", "name=a").stdout
    edna.ok("delete", "service", "grab")


# ---------------------------------------------------------------- way 3: a recreated name
def test_a_recreated_name_is_another_service_without_the_old_runs(admin, edna, opal, world):
    admin.ok("create", "service", "python-script", "doomed", "--repository", "b-repo", "--filename", "main.py",
             "--secret", "name=b-secret,type=env,target=TOKEN", "--tag", "site-b")
    admin.ok("run", "service", "doomed", "--set", "name=old")
    old = [r for r in json.loads(admin.ok("get", "runs", "-o", "json").stdout) if r["service"] == "doomed"]
    assert len(old) == 1
    admin.ok("delete", "service", "doomed")
    edna.ok("create", "service", "python-script", "doomed", "--repository", "a-repo", "--filename", "main.py",
            "--tag", "site-a")
    for client in (edna, opal):
        assert old[0]["id"] not in {r["id"] for r in json.loads(client.ok("get", "runs", "-o", "json").stdout)}
        assert json.loads(client.ok("get", "runs", "--service", "doomed", "-o", "json").stdout) == []
        for verb in (("logs", old[0]["id"]), ("describe", "run", old[0]["id"])):
            assert one_error_line(client(*verb), 1) == f"gateway: run {old[0]['id']!r} not found"
    # her own runs of the new service are hers
    opal.ok("run", "service", "doomed", "--set", "name=new")
    mine = json.loads(opal.ok("get", "runs", "--service", "doomed", "-o", "json").stdout)
    assert len(mine) == 1 and mine[0]["id"] != old[0]["id"]
    assert "hello new" in opal.ok("logs", mine[0]["id"]).stdout
    # an unscoped reader still has the old record
    assert "hello old token ******" in admin.ok("logs", old[0]["id"]).stdout
    edna.ok("delete", "service", "doomed")


def test_runs_recorded_before_services_had_ids_are_for_unscoped_users_only(admin, opal, daemon):
    """A record without a service id (written before ids existed) names its service by name alone: a scoped user
    cannot tell whose it was, so it is not hers."""
    # made through the server: a run of a site-a service, then its record stripped of the id as an old one was
    admin.ok("create", "service", "python-script", "legacy", "--repository", "a-repo", "--filename", "main.py",
             "--tag", "site-a")
    admin.ok("run", "service", "legacy", "--set", "name=l")
    run = json.loads(admin.ok("get", "runs", "--service", "legacy", "-o", "json").stdout)[0]
    assert json.loads(opal.ok("get", "runs", "--service", "legacy", "-o", "json").stdout)[0]["id"] == run["id"]
    _strip_service_id(daemon, run["id"])
    assert json.loads(opal.ok("get", "runs", "--service", "legacy", "-o", "json").stdout) == []
    assert one_error_line(opal("logs", run["id"]), 1) == f"gateway: run {run['id']!r} not found"
    assert "hello l" in admin.ok("logs", run["id"]).stdout
    admin.ok("delete", "service", "legacy")


def _strip_service_id(daemon, run_id: str) -> None:
    """Rewrite a run record in the server's store (SQLite: data_dir/gateway.db) as it was before service ids."""
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(daemon.folder / "data" / "gateway.db", timeout=30)) as db, db:
        rows = db.execute("select key, value from kv where key like ?", (f"%runs/{run_id}",)).fetchall()
        assert len(rows) == 1, rows
        key, value = rows[0]
        record = json.loads(value)
        assert record.get("service_id"), "the run record carries its service's id"
        record.pop("service_id")
        db.execute("update kv set value = ? where key = ?", (json.dumps(record).encode(), key))


# ---------------------------------------------------------------- way 4: Watch
def _login_key(daemon, certs, user: str, password: str) -> str:
    with _channel(daemon, certs) as channel:
        return auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username=user, password=password)).api_key


def _channel(daemon, certs) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    return grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials)


def _watch(daemon, certs, key: str, kind: str, seen: queue.Queue, stop: threading.Event) -> threading.Thread:
    def follow() -> None:
        with _channel(daemon, certs) as channel:
            stream = common_pb2_grpc.InfoServiceStub(channel).Watch(
                common_pb2.WatchRequest(kind=kind), metadata=(("authorization", f"Bearer {key}"),), timeout=30)
            seen.put(("ready", ""))
            try:
                for change in stream:
                    seen.put((change.action, change.name))
                    if stop.is_set():
                        stream.cancel()
            except grpc.RpcError:
                pass
    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread


def test_watch_shows_a_scoped_user_only_her_scope(admin, edna, daemon, certs, world):
    key = _login_key(daemon, certs, "edna", "edna-password-1")
    events: dict[str, queue.Queue] = {kind: queue.Queue() for kind in ("service", "secret", "repository")}
    stop = threading.Event()
    threads = [_watch(daemon, certs, key, kind, events[kind], stop) for kind in events]
    for kind in events:
        assert events[kind].get(timeout=10) == ("ready", "")
    time.sleep(0.5)  # the streams are open on the server
    admin.ok("create", "service", "python-script", "b-watched", "--repository", "b-repo", "--filename", "main.py",
             "--tag", "site-b")
    admin.ok("create", "secret", "b-watched-secret", "--value", "v4lue-b", "--tag", "site-b")
    admin.ok("create", "repository", "b-watched-repo", "--url", str(world / "origin"), "--tag", "site-b")
    admin.ok("delete", "service", "b-watched")
    admin.ok("create", "service", "python-script", "a-watched", "--repository", "a-repo", "--filename", "main.py",
             "--tag", "site-a")
    admin.ok("edit", "service", "a-watched", "--tag", "site-b")  # it leaves her scope: she hears it go
    admin.ok("create", "secret", "a-watched-secret", "--value", "v4lue-a", "--tag", "site-a")
    admin.ok("create", "repository", "a-watched-repo", "--url", str(world / "origin"), "--tag", "site-a")
    heard: dict[str, list[tuple[str, str]]] = {kind: [] for kind in events}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (("put", "a-watched-secret") in heard["secret"]
                                               and ("put", "a-watched-repo") in heard["repository"]
                                               and ("delete", "a-watched") in heard["service"]):
        for kind, found in events.items():
            while not found.empty():
                heard[kind].append(found.get())
        time.sleep(0.1)
    stop.set()
    names = {name for kind in heard for _, name in heard[kind]}
    assert not {"b-watched", "b-watched-secret", "b-watched-repo"} & names, heard
    assert ("put", "a-watched") in heard["service"] and ("delete", "a-watched") in heard["service"], heard
    assert ("put", "a-watched-secret") in heard["secret"] and ("put", "a-watched-repo") in heard["repository"]
    for name, kind in (("a-watched", "service"), ("a-watched-secret", "secret"), ("a-watched-repo", "repository"),
                       ("b-watched-secret", "secret"), ("b-watched-repo", "repository")):
        admin.ok("delete", kind, name)
    for thread in threads:
        thread.join(timeout=5)


# ---------------------------------------------------------------- credentials bound to a host
class _Recorder(http.server.BaseHTTPRequestHandler):
    """A git host that asks for a password and writes down every Authorization header it is sent."""

    authorizations: list[str] = []
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        if self.headers.get("Authorization"):
            type(self).authorizations.append(self.headers["Authorization"])
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def other_host():
    _Recorder.authorizations, _Recorder.requests = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}/git/main.git", _Recorder
    server.shutdown()
    server.server_close()


def test_moving_a_repository_to_another_host_drops_its_credentials(admin, other_host, world):
    url, recorder = other_host
    admin.ok("create", "secret", "git-pw", "--value", GIT_PASSWORD)
    admin.ok("create", "secret", "git-token", "--value", "tok-" + GIT_PASSWORD)
    admin.ok("create", "repository", "creds", "--url", "http://127.0.0.1:9/git/main.git", "--username", "alice",
             "--password-name", "git-pw")
    admin.ok("create", "service", "python-script", "creds-svc", "--repository", "creds", "--filename", "main.py")
    # the same host, port and scheme: the credentials stay
    admin.ok("edit", "repository", "creds", "--url", "http://127.0.0.1:9/git/other.git")
    assert json.loads(admin.ok("describe", "repository", "creds", "-o", "json").stdout)["password_name"] == "git-pw"
    moved = admin.ok("edit", "repository", "creds", "--url", url)
    run = admin("run", "service", "creds-svc", "--set", "name=x")
    assert run.returncode != 0
    assert recorder.requests, "the fetch went to the new host"
    sent = [base64.b64decode(a.split()[-1]).decode(errors="replace") for a in recorder.authorizations]
    assert not any(GIT_PASSWORD in text for text in sent), sent
    stored = json.loads(admin.ok("describe", "repository", "creds", "-o", "json").stdout)
    assert (stored["url"], stored["password_name"], stored["token_name"]) == (url, "", "")
    assert moved.stderr.startswith("note: repository creds moved to another host") and "git-pw" in moved.stderr, \
        moved.stderr
    # set again with the move: kept
    admin.ok("edit", "repository", "creds", "--url", "http://127.0.0.1:9/git/main.git", "--token-name", "git-token")
    stored = json.loads(admin.ok("describe", "repository", "creds", "-o", "json").stdout)
    assert stored["token_name"] == "git-token"
    admin.ok("delete", "service", "creds-svc")
    admin.ok("delete", "repository", "creds")
    # a registry's credentials go to its host the same way (pip's index, ansible-galaxy's server)
    admin.ok("create", "registry", "pypi", "corp", "--url", "https://pypi.corp.example/simple", "--username", "ci",
             "--password-name", "git-pw")
    moved = admin.ok("edit", "registry", "corp", "--url", "https://pypi.elsewhere.example/simple")
    assert moved.stderr.startswith("note: registry corp moved to another host") and "git-pw" in moved.stderr
    assert json.loads(admin.ok("describe", "registry", "corp", "-o", "json").stdout)["password_name"] == ""
    admin.ok("delete", "registry", "corp")
    for name in ("git-pw", "git-token"):
        admin.ok("delete", "secret", name)


# ---------------------------------------------------------------- OpenTofu state
def test_state_out_needs_the_right_to_reveal_secrets(admin, opal, edna, world, tmp_path):
    new_repo(world / "plans", {"box/main.tf": 'resource "terraform_data" "box" {}\n'})
    admin.ok("create", "repository", "plans", "--url", str(world / "plans"), "--tag", "site-a")
    admin.ok("create", "service", "opentofu-plan", "box", "--repository", "plans", "--working-dir", "box",
             "--tag", "site-a")
    before = json.loads(admin.ok("get", "runs", "-o", "json").stdout)
    for client, name in ((opal, "opal"), (edna, "edna")):
        out = tmp_path / f"{name}.tfstate"
        result = client("run", "service", "opentofu-plan", "apply", "box", "--state-out", str(out))
        line = one_error_line(result, 1)
        assert line.startswith(f"gateway: {name} is not an admin: --state-out (the OpenTofu state, its secrets "
                               "too) needs the right to reveal secret values"), line
        assert not out.exists()
    assert json.loads(admin.ok("get", "runs", "-o", "json").stdout) == before  # nothing ran
    admin.ok("delete", "service", "box")
    admin.ok("delete", "repository", "plans")


async def test_a_service_stored_before_ids_gets_one_at_its_first_run_and_keeps_it(tmp_path):
    """In the engine itself (the server's): a service record without an id (stored before services had them) gets
    one when it next runs; its new runs are its own to a scoped user, and the runs recorded before stay hidden from
    her while an unscoped reader still has them."""
    from gateway_daemon.bootstrap import open_engine
    from gateway_daemon.config import load_config
    from gateway_daemon.core import Repository, Service
    from gateway_daemon.core.errors import NotFound
    from gateway_daemon.core.access.roles import Grant, acting_as

    new_repo(tmp_path / "origin", {"main.py": SCRIPT})
    engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                         announce=lambda _text: None)
    try:
        await engine.create(Repository(name="apps", url=str(tmp_path / "origin"), tags=["site-a"]))
        await engine.create(Service(name="old", repository="apps", filename="main.py", tags=["site-a"]))

        async def run() -> str:
            events = [e async for e in engine.run_service("old", {"name": "x"})]
            return events[-1].run.id

        first = await run()
        for key, field in (("services/old", "id"), (f"runs/{first}", "service_id")):  # as stored before ids
            record = json.loads((await engine.store.get(key)).value)
            assert record.pop(field)
            await engine.store.put(key, json.dumps(record).encode())
        assert (await engine.get("service", "old")).id == ""
        opal = Grant("opal", "operator", ("site-a",))
        with acting_as(opal):
            second = await run()
        given = (await engine.get("service", "old")).id
        assert given and (await engine.get_run(second)).service_id == given
        with acting_as(opal):
            assert [r.id for r in await engine.list_runs("old")] == [second]
            with pytest.raises(NotFound):
                await engine.get_run(first)
        assert {r.id for r in await engine.list_runs("old")} == {first, second}
        with acting_as(opal):
            await run()
        assert (await engine.get("service", "old")).id == given  # kept
    finally:
        await engine.close()
