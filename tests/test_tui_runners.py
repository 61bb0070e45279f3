"""The TUI's Runners section and the runner of each run, against a REAL cluster on 127.0.0.1: etcd, a
`gateway-daemon` server with distributed execution and two runner processes, TLS everywhere with certificates
made here. The TUI runs in client mode with its API key in a real keyring backend; runs are started with the
real `gateway` command, and a runner is killed with kill -9."""

from __future__ import annotations

import json
import subprocess

import pytest

from gateway_tui.screens.run import RunScreen
from gateway_tui.screens.runners import RunnerDetailsScreen, RunnersScreen
from gateway_tui.screens.runs import RunsScreen
from gateway_tui.screens.services import ServicesScreen

from cluster import SCRIPT, TTL, new_site, start_all, wait_for
from gateway_server import ADMIN_PASSWORD, Client
from cli_helpers import BIN
from gitutil import new_repo
from pilot import cell, client_app, table_keys, until

SIZE = (120, 36)


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory):
    site = new_site(tmp_path_factory.mktemp("tui-cluster"), "tui")
    server = site.node("server", "server")
    runners = [site.node("runner-a", "runner", "site-a"), site.node("runner-b", "runner", "site-b,zone-x")]
    server.start()
    start_all(runners)
    origin = site.root / "origin"
    new_repo(origin, {"main.py": SCRIPT})
    client = Client(site.root / "client", server.port, site.certs["ca"])
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
    client.ok("create", "repository", "apps", "--url", str(origin))
    client.ok("create", "service", "python-script", "on-b", "--repository", "apps", "--filename", "main.py",
              "--runner-tag", "site-b")
    wait_for("both runners in the registry",
             lambda: all(r.id in client.ok("get", "runners").stdout for r in runners))
    yield {"server": server, "runners": runners, "client": client}
    for node in [server, *runners]:
        if node.process is not None:
            node.kill()
    site.etcd.kill()
    site.etcd.remove_data()


def status_line(app) -> str:
    return str(app.screen.query_one("#run-status").render())


async def test_the_runners_screen_follows_the_registry_and_each_run_names_its_runner(small_cluster, home):
    client, (runner_a, runner_b) = small_cluster["client"], small_cluster["runners"]
    home(client)
    app = client_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen), what="the services screen")
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, RunnersScreen) and
                    sorted(table_keys(app)) == sorted([runner_a.id, runner_b.id]), what="both runners")
        assert cell(app, runner_b.id, "tags") == "site-b, zone-x"
        assert cell(app, runner_b.id, "load") == "0/2" and cell(app, runner_b.id, "state") == "ready"
        assert cell(app, runner_a.id, "seen") == "just now" or cell(app, runner_a.id, "seen").endswith(" s ago")
        assert str(app.screen.query_one("#count").render()) == "2 runners · 0 of 4 slots in use"

        # A slow run for site-b: the list shows its runner's load without a key pressed.
        slow = subprocess.Popen([str(BIN / "gateway"), "run", "service", "on-b", "--set", "name=slow",
                                 "--set", "sleep=60"], env=client.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            await until(pilot, lambda: cell(app, runner_b.id, "load") == "1/2", timeout=30,
                        what="the runner's load to show the run")
            assert cell(app, runner_a.id, "load") == "0/2"
            assert str(app.screen.query_one("#count").render()) == "2 runners · 1 of 4 slots in use"

            # Its details: the runner's fields and the run it has, which opens with the runner named.
            app.screen.select(runner_b.id)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RunnerDetailsScreen) and
                        table_keys(app), what="the runner's runs")
            fields = str(app.screen.query_one("#fields").render())
            assert f"address         {runner_b.id}" in fields and "site-b, zone-x" in fields and "1/2" in fields
            [run_id] = table_keys(app)
            assert cell(app, run_id, "status") == "● running" and cell(app, run_id, "service") == "on-b"
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run is not None and
                        f"runner {runner_b.id}" in status_line(app), what="the run's status with its runner")
            await pilot.press("escape", "escape")

            # The Runs section has a runner column.
            await pilot.press("2")
            await until(pilot, lambda: isinstance(app.screen, RunsScreen) and
                        cell(app, run_id, "runner") == runner_b.id, what="the runner in the run list")
            # ... and follows the history by itself: a cancel from the command line shows up.
            client.ok("cancel", "run", run_id)
            await until(pilot, lambda: cell(app, run_id, "status") == "■ cancelled", timeout=30,
                        what="the cancelled run in the list")
        finally:
            for run in json.loads(client.ok("get", "runs", "--status", "running", "-o", "json").stdout):
                client("cancel", "run", run["id"])
            slow.communicate(timeout=30)

        # kill -9 a runner: it leaves the list within the lease's TTL, with nothing pressed.
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, RunnersScreen))
        runner_a.kill()
        await until(pilot, lambda: table_keys(app) == [runner_b.id], timeout=TTL + 15,
                    what="the dead runner to leave the list")
        assert str(app.screen.query_one("#count").render()) == "1 runner · 0 of 2 slots in use"

