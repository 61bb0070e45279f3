"""Runner mode and distributed execution, for real: one etcd, two `gateway-daemon` servers and three runners on
127.0.0.1 (TLS everywhere, certificates made here), driven by the real `gateway` command in client mode."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway_daemon.core.runs.keepers import start_time
from gateway_daemon.store import LeasesUnsupported, RevisionMismatch, namespace_for
from gateway_daemon.store.etcd import EtcdStore
from gateway_daemon.store.memory import MemoryStore
from gateway_daemon.store.sqlite import SQLiteStore
from cluster import SCRIPT, TTL, Node, new_site, start_all, wait_for
from gateway_server import ADMIN_PASSWORD, Client
from cli_helpers import BIN, DAEMON, clean_environ, gateway_env, one_error_line, run_command
from gitutil import new_repo


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    site = new_site(tmp_path_factory.mktemp("cluster"), "runners")
    root, certs, key_file, etcd, name = site.root, site.certs, site.key_file, site.etcd, site.name
    servers = [site.node(f"server-{i}", "server") for i in (1, 2)]
    runners = [site.node("runner-1", "runner", "site-a"), site.node("runner-2", "runner", "site-a,zone-x"),
               site.node("runner-3", "runner", "site-b")]
    servers[0].start()  # the first one makes the admin user and prints its temporary password
    start_all([servers[1], *runners])
    origin = root / "origin"
    new_repo(origin, {"main.py": SCRIPT})
    client = Client(root / "client", servers[0].port, certs["ca"])
    # Both servers, the first first: when it is gone the client goes on with the second.
    client.config.write_text(client.config.read_text().replace(
        "host = 127.0.0.1\n", f"host = 127.0.0.1:{servers[0].port}, 127.0.0.1:{servers[1].port}\n"))
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{servers[0].admin_password}\n{ADMIN_PASSWORD}\n")
    client.ok("create", "repository", "apps", "--url", str(origin))
    client.ok("create", "secret", "token", "--value-file", "-", stdin="t0ken-value")
    client.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py",
              "--secret", "name=token,type=env,target=TOKEN")
    yield {"etcd": etcd, "servers": servers, "runners": runners, "client": client, "certs": certs, "root": root,
           "cluster": name, "key_file": key_file}
    for node in [*servers, *runners]:
        if node.process is not None:
            node.kill()
    etcd.kill()
    etcd.remove_data()


def runners_listed(client: Client) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(client.ok("get", "runners", "-o", "json").stdout)}


def last_run(client: Client, service: str) -> dict:
    runs = json.loads(client.ok("get", "runs", "--service", service, "-o", "json").stdout)
    return runs[0] if runs else {}


def test_runs_go_through_runners_and_output_arrives(cluster):
    client, runners = cluster["client"], cluster["runners"]
    listed = wait_for("three runners", lambda: (r := runners_listed(client)) and len(r) == 3 and r)
    assert {r.id for r in runners} == set(listed)
    assert listed[runners[1].id]["tags"] == ["site-a", "zone-x"]
    assert all(r["capacity"] == 2 and r["use_tls"] and not r["problem"] for r in listed.values())
    table = client.ok("get", "runners").stdout
    assert runners[2].id in table and "site-b" in table and "ready" in table

    for index in range(3):
        result = client.ok("run", "service", "hello", "--set", f"name=n{index}")
        assert f"hello n{index} token ******" in result.stdout  # the runner decrypted it; masked on the way
        run = last_run(client, "hello")
        assert run["status"] == "succeeded" and run["runner"] in listed and run["commit"]
    logs = client.ok("logs", run["id"]).stdout
    assert "hello n2 token ******" in logs and "t0ken-value" not in logs
    described = client.ok("describe", "run", run["id"]).stdout
    assert run["runner"] in described

    # a cancel reaches the runner that has the run
    slow = subprocess.Popen([str(BIN / "gateway"), "run", "service", "hello", "--set", "name=c", "--set", "sleep=60"],
                            env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = wait_for("the slow run", lambda: (r := last_run(client, "hello")) and r["status"] == "running" and
                   r["inputs"]["name"] == "c" and r)
    client.ok("cancel", "run", run["id"])
    slow.communicate(timeout=30)
    run = last_run(client, "hello")
    assert run["status"] == "cancelled" and run["duration"] < 30, run


def test_runner_tags_route_and_a_run_nobody_can_take_waits_then_fails(cluster):
    client, runners = cluster["client"], cluster["runners"]
    client.ok("create", "service", "python-script", "on-b", "--repository", "apps", "--filename", "main.py",
              "--runner-tag", "site-b")
    for _ in range(2):
        assert "hello b" in client.ok("run", "service", "on-b", "--set", "name=b").stdout
        assert last_run(client, "on-b")["runner"] == runners[2].id
    assert json.loads(client.ok("describe", "service", "on-b", "-o", "json").stdout)["runner_tags"] == ["site-b"]
    # site-b has one runner, for two runs at once: a third waits, and says so
    slow = [subprocess.Popen([str(BIN / "gateway"), "run", "service", "on-b", "--set", f"name=s{i}", "--set", "sleep=3"],
                             env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    waiting = wait_for("a run waiting for the busy runner", lambda: [
        r for r in json.loads(client.ok("get", "runs", "--service", "on-b", "-o", "json").stdout)
        if r["status"] == "queued" and r["reason"]])
    assert waiting[0]["reason"] == "waiting: the one runner with the tags site-b is busy (position 1 in the queue)"
    for process in slow:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    runs = json.loads(client.ok("get", "runs", "--service", "on-b", "-o", "json").stdout)
    assert [r["status"] for r in runs] == ["succeeded"] * 5 and {r["runner"] for r in runs} == {runners[2].id}

    client.ok("create", "service", "python-script", "on-mars", "--repository", "apps", "--filename", "main.py",
              "--runner-tag", "mars", "--runner-tag", "site-a", "--timeout", "4")
    waiting = subprocess.Popen([str(BIN / "gateway"), "run", "service", "on-mars", "--set", "name=m"],
                               env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = wait_for("the waiting reason", lambda: (r := last_run(client, "on-mars")) and r["reason"] and r)
    assert run["status"] == "queued"
    assert run["reason"] == "waiting: no live runner with the tags mars, site-a (position 1 in the queue)"
    assert "no live runner with the tags mars" in client.ok("get", "runs", "--service", "on-mars").stdout
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 1
    run = last_run(client, "on-mars")
    assert run["status"] == "failed" and not run["runner"] and run["started_at"] is None
    assert run["reason"] == ("no runner took the run within its 4 s time limit "
                             "(no live runner with the tags mars, site-a (position 1 in the queue))")
    assert "failed (no runner took the run" in err


def test_a_runner_without_the_secrets_key_refuses_work(cluster, tmp_path):
    client = cluster["client"]
    keyless = Node(tmp_path / "keyless", cluster["certs"], cluster["etcd"], cluster["cluster"], "runner", None, "nokey")
    keyless.start()
    try:
        listed = wait_for("the keyless runner", lambda: runners_listed(client).get(keyless.id))
        assert "no secrets key" in listed["problem"]
        client.ok("create", "service", "python-script", "on-nokey", "--repository", "apps", "--filename", "main.py",
                  "--runner-tag", "nokey")
        result = client("run", "service", "on-nokey", "--set", "name=k")
        assert result.returncode == 1
        run = last_run(client, "on-nokey")
        assert run["status"] == "failed"
        assert run["reason"] == (f"runner {keyless.id} refuses work: this runner has no secrets key: "
                                 "set [secrets] encrypt_key_file to the cluster's key")
        assert "Traceback" not in result.stderr
    finally:
        keyless.stop()
    # SIGTERM revoked its lease: it left the registry at once, not after the TTL
    assert keyless.id not in runners_listed(client)


def test_a_server_or_runner_with_another_secrets_key_is_told_so_when_it_starts(cluster, tmp_path):
    client, etcd, name = cluster["client"], cluster["etcd"], cluster["cluster"]
    other_key = tmp_path / "other.key"
    other_key.write_text(secrets.token_hex(32))
    other_key.chmod(0o600)
    before = client.ok("get", "secrets", "-o", "json").stdout

    # A server: it does not start, and says which key and what to do. (Without a key file of its own it
    # would make one, with the same result: that is why the message names the setting.)
    server = Node(tmp_path / "server", cluster["certs"], etcd, name, "server", other_key)
    result = run_command(DAEMON, ["--config", str(server.config)], clean_environ(None))
    assert result.returncode != 0
    line = one_error_line(result)
    assert f"the secrets key in {other_key} is not this cluster's" in line, line
    assert line.endswith("set [secrets] encrypt_key_file to the cluster's key file"), line

    # A runner: it starts, and refuses work with that reason for all to see.
    runner = Node(tmp_path / "runner", cluster["certs"], etcd, name, "runner", other_key, "otherkey")
    runner.start()
    try:
        listed = wait_for("the runner", lambda: runners_listed(client).get(runner.id))
        assert f"the secrets key in {other_key} is not this cluster's" in listed["problem"]
        assert "refuses work: the secrets key" in client.ok("get", "runners").stdout
    finally:
        runner.stop()
    assert client.ok("get", "secrets", "-o", "json").stdout == before  # nothing stored was touched


def running_hello(client: Client, name: str) -> dict | None:
    """The newest run of hello when it is the one with this name and its script has begun."""
    run = last_run(client, "hello")
    if run.get("inputs", {}).get("name") == name and run["status"] == "running":
        if f"begin {name}" in client.ok("logs", run["id"]).stdout:
            return run
    return None


def scripts_with(argument: str) -> list[int]:
    """The live processes of this machine with `argument` on their command line."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if argument.encode() in handle.read().split(b"\0") and start_time(int(entry)):  # not a zombie
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def test_a_runner_killed_mid_run_fails_the_run_as_runner_lost(cluster):
    client, runners = cluster["client"], cluster["runners"]
    client.ok("create", "service", "python-script", "on-x", "--repository", "apps", "--filename", "main.py",
              "--runner-tag", "zone-x")
    victim = runners[1]  # the only one with zone-x
    running = subprocess.Popen([str(BIN / "gateway"), "run", "service", "on-x", "--set", "name=x", "--set", "sleep=60"],
                               env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for("the run to start on the runner", lambda: "begin x" in client.ok(
        "logs", r["id"]).stdout if (r := last_run(client, "on-x")) and r["status"] == "running" else False)
    assert last_run(client, "on-x")["runner"] == victim.id
    victim.kill()
    killed = time.monotonic()
    run = wait_for("the run to end", lambda: (r := last_run(client, "on-x")) and r["status"] != "running" and r,
                   timeout=TTL + 10)
    assert time.monotonic() - killed < TTL + 3
    assert run["status"] == "failed" and run["reason"].startswith("runner lost"), run
    out, err = running.communicate(timeout=30)
    assert running.returncode == 1 and "runner lost" in err
    # never run twice: nobody else picked it up, and the runner is gone from the registry within the TTL
    time.sleep(1)
    assert client.ok("logs", run["id"]).stdout.count("begin x") == 1
    wait_for("the dead runner to leave the registry", lambda: victim.id not in runners_listed(client), timeout=TTL + 5)
    # its script ends with it (bwrap dies with its parent; without a sandbox the supervisor's control pipe closes)
    wait_for("the killed runner's script to end", lambda: not scripts_with("--name=x"), timeout=10)
    victim.start()
    wait_for("the runner to come back", lambda: victim.id in runners_listed(client))
    assert not scripts_with("--name=x"), "the restarted runner left its predecessor's script running"
    assert "hello y" in client.ok("run", "service", "on-x", "--set", "name=y").stdout


def test_sigterm_lets_a_runner_finish_its_run_then_leave(cluster):
    client, runner = cluster["client"], cluster["runners"][2]  # the only one with site-b
    running = subprocess.Popen([str(BIN / "gateway"), "run", "service", "on-b", "--set", "name=t", "--set", "sleep=2"],
                               env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for("the run on site-b", lambda: (r := last_run(client, "on-b")) and r["status"] == "running" and
             r["inputs"]["name"] == "t")
    runner.process.send_signal(signal.SIGTERM)
    # draining: still listed (its run goes on), but marked so that nothing new is sent to it
    assert wait_for("the runner to say it drains", lambda: runners_listed(client).get(runner.id, {}).get("draining"))
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0, err
    assert "hello t" in out
    assert runner.process.wait(timeout=30) == 0
    runner.process = None
    assert runner.id not in runners_listed(client)  # the lease went with it, not TTL seconds later
    runner.start()
    wait_for("the runner to come back", lambda: runner.id in runners_listed(client))


def test_the_cluster_recovers_after_etcd_was_down(cluster):
    client, etcd = cluster["client"], cluster["etcd"]
    etcd.stop()
    down = client("get", "services")
    assert down.returncode == 1 and "etcd" in one_error_line(down)
    time.sleep(TTL + 1)  # longer than the runners' leases
    etcd.start()
    wait_for("every runner back in the registry",
             lambda: (r := client("get", "runners", "-o", "json")).returncode == 0 and len(json.loads(r.stdout)) == 3,
             timeout=30, step=0.5)
    result = wait_for("a run through a runner", lambda: (r := client("run", "service", "hello", "--set", "name=e"))
                      .returncode == 0 and r, timeout=30, step=0.5)
    assert "hello e token ******" in result.stdout


def test_a_run_outlives_an_etcd_outage_and_its_record_and_output_are_kept(cluster):
    client, etcd = cluster["client"], cluster["etcd"]
    running = subprocess.Popen([str(BIN / "gateway"), "run", "service", "hello", "--set", "name=outage",
                                "--set", "sleep=4"], env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    run = wait_for("the run to start on a runner", lambda: running_hello(client, "outage"))
    etcd.stop()
    try:  # it ends while the store is down: the caller hears why the result waits, and gets it once stored
        seen, deadline = "", time.monotonic() + 60
        while "does not take its record" not in seen and time.monotonic() < deadline:
            seen += running.stderr.readline()
        assert "does not take its record" in seen, seen
        assert running.poll() is None, "a result the store does not hold was reported"
    finally:
        etcd.start()
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0, seen + err
    assert "succeeded" in err.strip().splitlines()[-1]
    assert "hello outage token ******" in out
    ended = wait_for("the record to be final", lambda: (r := client("describe", "run", run["id"], "-o", "json"))
                     .returncode == 0 and json.loads(r.stdout)["status"] != "running" and json.loads(r.stdout),
                     timeout=30, step=0.5)
    assert ended["status"] == "succeeded" and ended["exit_code"] == 0, ended
    logs = client.ok("logs", run["id"]).stdout
    assert "begin outage" in logs and "hello outage token ******" in logs


def test_a_local_gateway_on_the_cluster_store_keeps_its_run_while_a_server_restarts(cluster, tmp_path):
    client, second, etcd = cluster["client"], cluster["servers"][1], cluster["etcd"]
    env = gateway_env(tmp_path)  # local mode on the cluster's etcd: it runs the work itself
    Path(env["GATEWAY_CONFIG"]).write_text(
        f"[application]\nmode = local\ncluster_id = {cluster['cluster']}\n[store]\nbackend = etcd\n"
        f"etcd_hosts = {etcd.hosts}\n[secrets]\nencrypt_key_file = {cluster['key_file']}\n")
    local = subprocess.Popen([str(BIN / "gateway"), "run", "service", "hello", "--set", "name=local",
                              "--set", "sleep=4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = wait_for("the local run to start", lambda: running_hello(client, "local"))
    assert not run["runner"] and run["owner"].split(":")[1] == str(local.pid)
    second.kill()
    second.start()  # a server looks at every unfinished run when it starts: this one's keeper lives
    assert json.loads(client.ok("describe", "run", run["id"], "-o", "json").stdout)["status"] == "running"
    out, err = local.communicate(timeout=60)
    assert local.returncode == 0, err
    assert json.loads(client.ok("describe", "run", run["id"], "-o", "json").stdout)["status"] == "succeeded"


def test_a_client_goes_on_while_a_server_dies_and_restarts(cluster):
    client, servers = cluster["client"], cluster["servers"]
    first = servers[0]
    first.kill()  # the first host the client lists is gone: it goes on with the second
    result = client.ok("run", "service", "hello", "--set", "name=failover")
    assert "hello failover token ******" in result.stdout
    assert last_run(client, "hello")["status"] == "succeeded"
    # restart it while the client keeps working through the other
    working = subprocess.Popen([str(BIN / "gateway"), "run", "service", "hello", "--set", "name=during",
                                "--set", "sleep=2"], env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    first.start()
    out, err = working.communicate(timeout=60)
    assert working.returncode == 0, err
    assert "hello during token ******" in out
    assert "hello again" in client.ok("run", "service", "hello", "--set", "name=again").stdout


def test_a_server_killed_mid_run_leaves_no_run_running(cluster):
    client, first = cluster["client"], cluster["servers"][0]
    running = subprocess.Popen([str(BIN / "gateway"), "run", "service", "hello", "--set", "name=orphan",
                                "--set", "sleep=60"], env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    run = wait_for("the run to start on a runner", lambda: running_hello(client, "orphan"))
    assert run["owner"].split(":")[1] == str(first.process.pid)  # the server the client asked keeps the record
    pid = first.process.pid
    first.kill()
    killed = time.monotonic()
    # the other server ends it once the dead one's lease is gone (TTL), after half a TTL more for a cut-off server
    ended = wait_for("the run to end", lambda: (r := client.ok("describe", "run", run["id"], "-o", "json").stdout)
                     and json.loads(r)["status"] != "running" and json.loads(r), timeout=TTL * 2 + 15)
    assert time.monotonic() - killed < TTL * 1.5 + 5
    assert ended["status"] == "interrupted" and f"pid {pid}" in ended["reason"], ended
    # the runner saw its server go and stopped the script: it has room again, and the run was not retried
    wait_for("the runner to be free", lambda: runners_listed(client)[run["runner"]]["load"] == 0)
    assert client.ok("logs", run["id"]).stdout.count("begin orphan") == 1
    running.kill()
    running.communicate()
    first.start()
    assert "hello back" in client.ok("run", "service", "hello", "--set", "name=back").stdout


# ---------------------------------------------------------------- leases, what the registry stands on
@pytest.fixture(params=["memory", "etcd"])
async def lease_store(request, tmp_path):
    namespace = namespace_for(f"leases-{secrets.token_hex(3)}")
    if request.param == "memory":
        store = MemoryStore(namespace)
    else:
        store = EtcdStore(namespace, hosts=[request.getfixturevalue("etcd_server").hosts])
    yield store
    await store.close()


async def test_a_leased_key_lives_while_kept_alive_and_goes_when_not(lease_store):
    store = lease_store
    lease = await store.grant_lease(2)
    await store.put_leased("runners/a", b"alive", lease)
    watch = store.watch("runners/")
    for _ in range(6):  # 3 s, longer than the TTL, kept alive all along
        assert await store.keep_alive(lease)
        await asyncio.sleep(0.5)
    assert (await store.get("runners/a")).value == b"alive"
    started = time.monotonic()
    event = await asyncio.wait_for(watch.__anext__(), 10)  # left alone: it expires
    assert (event.kind, event.key) == ("delete", "runners/a")
    assert time.monotonic() - started < 2 + 2
    assert await store.get("runners/a") is None
    assert not await store.keep_alive(lease)
    with pytest.raises(RevisionMismatch):
        await store.put_leased("runners/a", b"again", lease)
    other = await store.grant_lease(30)
    await store.put_leased("runners/b", b"x", other)
    event = await asyncio.wait_for(watch.__anext__(), 5)
    assert (event.kind, event.key) == ("put", "runners/b")
    await store.revoke_lease(other)  # at once, not after 30 s
    event = await asyncio.wait_for(watch.__anext__(), 5)
    assert (event.kind, event.key) == ("delete", "runners/b")
    assert await store.get("runners/b") is None
    await watch.aclose()


async def test_the_embedded_store_has_no_leases(tmp_path):
    store = SQLiteStore(namespace_for("x"), tmp_path / "gateway.db")
    try:
        with pytest.raises(LeasesUnsupported, match="has no leases; runners need etcd"):
            await store.grant_lease(5)
    finally:
        await store.close()
