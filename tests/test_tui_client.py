"""The terminal UI in client mode, driven by its pilot against a REAL `gateway-daemon` on 127.0.0.1 with TLS
certificates made here, its API keys in a real keyring backend (keyrings.alt's file keyring in a temp home that
the TUI in this process and the `gateway` commands it is checked against share)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input

from gateway_tui.credentials import Credentials
from gateway_tui.screens.confirm import ConfirmScreen
from gateway_tui.screens.login import LoginScreen
from gateway_tui.screens.repositories import RepositoriesScreen
from gateway_tui.screens.run import RunScreen
from gateway_tui.screens.services import ServicesScreen
from gateway_tui.screens.users import UserFormScreen, UserListScreen
from gateway_tui.widgets.output_view import OutputView
from gateway_tui.widgets.resource_table import ResourceTable

from gateway_server import ADMIN_PASSWORD, SCRIPT, Client, Daemon
from gitutil import new_repo
from pilot import client_app, table_keys, type_into, until

SIZE = (120, 36)


@pytest.fixture(scope="module")
def admin(admin, tmp_path_factory) -> Client:
    """conftest's admin (a password of their own, logged in from the command line), and a service to run."""
    client = admin
    origin = tmp_path_factory.mktemp("origin")
    new_repo(origin, {"main.py": SCRIPT})
    client.ok("create", "repository", "apps", "--url", str(origin))
    client.ok("create", "secret", "token", "--value-file", "-", stdin="t0ken-value")
    client.ok("create", "decorator", "form", "--schema", "-", stdin=json.dumps(
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}))
    client.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py",
              "--decorator", "form", "--secret", "name=token,type=env,target=TOKEN")
    return client


def header(app) -> str:
    return app.sub_title


async def log_in(pilot, username: str, password: str) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, LoginScreen), what="the Login screen")
    await type_into(pilot, "#username", username)
    await type_into(pilot, "#password", password)
    await pilot.press("enter")


async def test_first_login_must_set_a_new_password_and_a_wrong_one_is_an_inline_error(tmp_path, certs, home):
    daemon = Daemon(tmp_path / "fresh", certs)
    daemon.start()
    try:
        client = Client(tmp_path / "operator", daemon.port, certs["ca"])
        home(client)
        app = client_app(client)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, LoginScreen))
            assert header(app) == f"127.0.0.1:{daemon.port} · TLS on · not logged in"

            # A wrong password: one line on the form, nothing else happens.
            await log_in(pilot, "admin", "not-the-password")
            await until(pilot, lambda: app.screen.error, what="the inline error")
            assert app.screen.error == "wrong username or password"
            assert isinstance(app.screen, LoginScreen) and not app._notifications
            assert app.screen.query_one("#password", Input).value == ""
            assert Credentials().load(f"127.0.0.1:{daemon.port}") is None

            # The temporary password: a new one is asked for before anything else.
            await type_into(pilot, "#password", daemon.admin_password)
            await pilot.press("enter")
            await until(pilot, lambda: app.screen.must_change, what="the new-password fields")
            assert isinstance(app.screen, LoginScreen)
            await type_into(pilot, "#new-password", ADMIN_PASSWORD)
            await type_into(pilot, "#new-again", ADMIN_PASSWORD + "x")
            await pilot.press("enter")
            await until(pilot, lambda: app.screen.error == "the two new passwords differ")
            await type_into(pilot, "#new-again", ADMIN_PASSWORD)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen), what="the services screen")
            assert header(app) == f"127.0.0.1:{daemon.port} · TLS on · admin"
            kept = Credentials().load(f"127.0.0.1:{daemon.port}")
            assert kept is not None and kept.username == "admin" and not kept.expired
        # The key in the keyring is the real thing: the command line uses it, with the new password set.
        assert json.loads(client.ok("whoami", "-o", "json").stdout)["user"] == "admin"
        assert client("login", "--username", "admin", "--password-stdin",
                      stdin=daemon.admin_password + "\n").returncode == 1
    finally:
        daemon.stop()


async def test_services_from_the_server_and_a_run_streamed_through_it(admin, home):
    home(admin)
    app = client_app(admin)
    async with app.run_test(size=SIZE) as pilot:
        # A key in the keyring already: no login.
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and "hello" in table_keys(app))
        assert header(app).endswith("· TLS on · admin")
        app.screen.query_one(ResourceTable).move_to("hello")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.phase == "form")
        await type_into(pilot, "#input-name", "ops")
        await pilot.press("ctrl+s")
        screen = app.screen
        await until(pilot, lambda: screen.run is not None and screen.run.finished, what="the run to end")
        await pilot.pause(0.3)
        texts = [line.text for line in screen.query_one(OutputView).output_lines]
        assert "hello ops token ******" in texts and "t0ken-value" not in " ".join(texts)
        assert screen.run.status == "succeeded"
    runs = json.loads(admin.ok("get", "runs", "--service", "hello", "-o", "json").stdout)
    assert runs[0]["id"] == screen.run.id and runs[0]["started_by"] == "admin"


async def test_a_revoked_key_brings_login_back_then_the_same_screen(admin, home):
    home(admin)
    admin.login("admin", ADMIN_PASSWORD)
    app = client_app(admin)
    changed = []  # the password changed below goes back even when the test fails: the next tests log in with it
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app))
            await pilot.press("3")
            await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen) and table_keys(app) == ["apps"])

            admin.ok("logout")  # from another terminal: the key is revoked on the server
            await pilot.press("ctrl+r")
            await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="the Login screen")
            assert "not valid" in app.screen.reason
            assert app.screen.query_one("#username", Input).value == "admin"
            await until(pilot, lambda: app.focused is not None, what="the Login screen taking keys")
            assert not [n for n in app._notifications if n.severity == "error"]  # the Login screen says it all

            await type_into(pilot, "#password", ADMIN_PASSWORD)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen), what="the repositories again")
            await until(pilot, lambda: table_keys(app) == ["apps"])

            # A new password set from the command line revokes this key too: Login again, then back. (On Services
            # first: the header's poll may meet the revoked key before any key does, and the Login leads back to the
            # screen that was in front then.)
            await pilot.press("1")
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
            admin.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                     stdin=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}-2\n")
            changed.append(True)
            await pilot.press("ctrl+r")
            await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="the Login screen")
            await until(pilot, lambda: app.focused is not None, what="the Login screen taking keys")
            await type_into(pilot, "#password", f"{ADMIN_PASSWORD}-2")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
    finally:
        if changed:
            admin.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                     stdin=f"{ADMIN_PASSWORD}-2\n{ADMIN_PASSWORD}\n")


async def test_users_screen_creates_a_user_makes_them_admin_and_refuses_deleting_yourself(admin, home):
    home(admin)
    admin.login("admin", ADMIN_PASSWORD)
    app = client_app(admin)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, UserListScreen) and "admin" in table_keys(app))

        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, UserFormScreen))
        await type_into(pilot, "#name", "frank")
        await type_into(pilot, "#password", "short")
        await type_into(pilot, "#again", "short")
        await pilot.press("ctrl+s")  # the server's rule, inline at its field
        await until(pilot, lambda: app.screen.query_one("#field-password").error)
        assert app.screen.query_one("#field-password").error == "a password needs at least 8 characters"
        await type_into(pilot, "#password", "frank-password-1")
        await type_into(pilot, "#again", "frank-password-1")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, UserListScreen) and "frank" in table_keys(app))
        row = app.screen.query_one(ResourceTable).row("frank")
        assert row.cells[1] == "viewer" and row.cells[4] == "never"  # role viewer, never logged in

        # Grant admin.
        app.screen.query_one(ResourceTable).move_to("frank")
        await pilot.press("a")
        await until(pilot, lambda: app.screen.query_one(ResourceTable).row("frank").cells[1] == "admin")
        users = {u["name"]: u["admin"] for u in json.loads(admin.ok("get", "users", "-o", "json").stdout)}
        assert users["frank"] is True

        # Not yourself: the server says no, as a notification; nothing is deleted.
        app.screen.query_one(ResourceTable).move_to("admin")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app._notifications, what="a notification")
        assert "you cannot delete yourself" in [n.message for n in app._notifications]
        assert "admin" in table_keys(app)

        # frank's password, then frank deleted, with a confirm.
        app.screen.query_one(ResourceTable).move_to("frank")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, UserFormScreen))
        await type_into(pilot, "#password", "frank-password-2")
        await type_into(pilot, "#again", "frank-password-2")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, UserListScreen))
        app.screen.query_one(ResourceTable).move_to("frank")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: "frank" not in table_keys(app))
    assert "frank" not in admin.ok("get", "users").stdout


def test_gateway_profile_with_no_verb_is_accepted_by_the_parser():
    from gateway_tui.cli.parser import parse

    args = parse(["--profile", "lab"])
    assert args.verb is None and args.profile == "lab"


async def test_switch_server_profile_from_the_palette(admin, daemon, certs, home, tmp_path):
    """A [client:lab] profile naming the same server by another address (localhost): its own key, its own
    login; switching back to the default needs none."""
    home(admin)
    admin.login("admin", ADMIN_PASSWORD)
    config_path = Path(admin.config)
    original = config_path.read_text()
    config_path.write_text(original + f"[client:lab]\nhost = localhost\nport = {daemon.port}\n")
    try:
        app = client_app(admin)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app))
            await pilot.press("ctrl+p")
            await pilot.press(*"switch server")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause(0.5)
            await pilot.press(*"lab")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="the lab profile's login")
            assert app.screen.connection.address == f"localhost:{daemon.port}"
            await type_into(pilot, "#password", ADMIN_PASSWORD)
            await pilot.press("enter")
            await until(pilot, lambda: header(app).startswith("localhost"), what="the lab profile's header")
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
            assert header(app) == f"localhost:{daemon.port} · TLS on · admin · profile lab"
            assert Credentials().load(f"localhost:{daemon.port}") is not None
    finally:
        config_path.write_text(original)
