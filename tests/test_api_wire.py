"""What the API sends once: a server's list of services carries what a table shows (ServiceSummary), get and
`-o json` have every field; a run's stream sends its inputs with the first status event only.

Against a real gateway-daemon over TLS on loopback, with the admin logged in through the real `gateway login`.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway_daemon.core import Service
from gateway_daemon.rpc.client import Connection, Endpoint, RemoteGateway
from gateway_daemon.rpc.gen import common_pb2, runs_pb2

from gateway_server import ADMIN_PASSWORD
from gitutil import new_repo

SHOWN = ("name", "type", "repository", "decorator", "tags", "description")


@pytest.fixture(scope="module")
def stocked(admin, tmp_path_factory):
    origin = tmp_path_factory.mktemp("origin")
    new_repo(origin, {"main.py": "print('hi')\n"})
    admin.ok("create", "repository", "apps", "--url", str(origin))
    admin.ok("create", "decorator", "greet", "--schema", json.dumps({"type": "object"}))
    admin.ok("create", "service", "python-script", "full", "--repository", "apps", "--filename", "main.py",
             "--decorator", "greet", "--env", "A=1", "--runtime-arg", "-v", "--tag", "blue", "--runner-tag", "big",
             "--working-dir", "sub", "--timeout", "30", "--description", "every field")
    admin.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py")
    admin.ok("create", "service", "ansible-playbook", "play", "--repository", "apps", "--filename", "site.yml",
             "--inventory", "hosts", "--extra-vars", "a=b")
    return admin


def test_a_list_carries_what_a_table_shows_and_get_the_rest(stocked, daemon, certs) -> None:
    async def scenario() -> None:
        gateway = RemoteGateway(Connection(Endpoint((f"127.0.0.1:{daemon.port}",), True, str(certs["ca"]))))
        try:
            await gateway.login("admin", ADMIN_PASSWORD)
            listed = {s.name: s for s in await gateway.list("service")}
            full = {s.name: s for s in await gateway.list("service", full=True)}
            assert set(listed) == set(full) >= {"full", "play"}
            whole = await gateway.get("service", "full")
            assert full["full"] == whole and whole.env == {"A": "1"} and whole.working_dir == "sub"
            for name, service in listed.items():
                assert isinstance(service, Service)
                assert [getattr(service, f) for f in SHOWN] == [getattr(full[name], f) for f in SHOWN]
            summary = listed["full"]  # the rest is not sent: the defaults, the times empty
            assert (summary.env, summary.runtime_args, summary.runner_tags, summary.timeout, summary.filename,
                    summary.created_at) == ({}, [], [], None, "", "")
            # On the wire: the summaries take a fraction of the full list's bytes.
            call = gateway.connection.call
            summaries = await call(lambda s: s.services.ListServiceSummaries, common_pb2.Empty())
            everything = await call(lambda s: s.services.ListServices, common_pb2.Empty())
            assert len(summaries.SerializeToString()) * 2 < len(everything.SerializeToString())
        finally:
            await gateway.close()

    asyncio.run(scenario())


def test_the_cli_still_shows_every_field_as_json_and_the_table_from_summaries(stocked) -> None:
    records = {r["name"]: r for r in stocked.ok("get", "services", "-o", "json").json()}
    assert records["full"]["env"] == {"A": "1"} and records["full"]["runner_tags"] == ["big"]
    assert records["full"]["timeout"] == 30 and records["play"]["inventories"] == ["hosts"]
    assert records["full"]["created_at"]
    described = stocked.ok("describe", "service", "full", "-o", "json").json()
    assert records["full"] == described
    table = stocked.ok("get", "services").stdout
    assert "every field" in table and "ansible-playbook" in table and "greet" in table
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["full", "hello", "play"]
    tagged = stocked.ok("get", "services", "--tag", "blue").stdout
    assert "full" in tagged and "play" not in tagged


def test_a_run_stream_sends_its_inputs_once(stocked, daemon, certs) -> None:
    inputs = {"who": "x" * 2000, "n": 3, "deep": {"list": [1, 2, 3]}}

    async def scenario() -> None:
        gateway = RemoteGateway(Connection(Endpoint((f"127.0.0.1:{daemon.port}",), True, str(certs["ca"]))))
        try:
            await gateway.login("admin", ADMIN_PASSWORD)
            request = runs_pb2.RunServiceRequest(name="hello", inputs_json=json.dumps(inputs))
            statuses = [m async for m in gateway.connection.stream(lambda s: s.runs.RunService, request)
                        if m.HasField("run")]
            assert len(statuses) >= 3 and statuses[-1].run.status == "succeeded"  # queued, running, succeeded
            first, *later = statuses
            assert json.loads(first.run.inputs_json) == inputs and not first.same_inputs
            assert all(m.same_inputs and m.run.inputs_json == "" for m in later)
            # The client puts them back: every status it yields has the run's inputs.
            runs = [e.run async for e in gateway.run_service("hello", inputs) if e.run is not None]
            assert len(runs) >= 3 and all(run.inputs == inputs for run in runs)
            followed = [e.run async for e in gateway.follow_run(runs[-1].id) if e.run is not None]
            assert followed and all(run.inputs == inputs for run in followed)
        finally:
            await gateway.close()

    asyncio.run(scenario())
