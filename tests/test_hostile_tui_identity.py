"""Who is logged in to the terminal UI, and what it shows them: log out, switch user and change password from the
palette (client mode only), and after any change of identity (those, or a key revoked under the TUI) no screen
keeps what the previous user saw. Driven by Textual's pilot against a REAL `gateway-daemon` on 127.0.0.1 (TLS),
API keys in a real file keyring shared with the `gateway` commands the TUI is checked against."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from gateway_daemon.bootstrap import remote_gateway
from gateway_daemon.config import load_config
from gateway_daemon.core import Unauthenticated
from gateway_tui.app import GatewayApp
from gateway_tui.commands import GatewayCommands
from gateway_tui.credentials import Credentials
from gateway_tui.screens.audit import AuditEventScreen, AuditScreen
from gateway_tui.screens.login import LoginScreen
from gateway_tui.screens.repositories import RepositoriesScreen
from gateway_tui.screens.services import ServicesScreen
from gateway_tui.screens.users import UserFormScreen, UserListScreen
from gateway_tui.widgets.navigation import NavItem
from gateway_tui.widgets.resource_table import ResourceTable

from gateway_server import ADMIN_PASSWORD, Client
from gitutil import new_repo
from pilot import client_app, table_keys, type_into, until

SIZE = (120, 36)
VIEWER, VIEWER_PASSWORD = "vera", "vera-password-1"
EDITOR, EDITOR_PASSWORD = "eddie", "eddie-password-1"


@pytest.fixture(scope="module")
def admin(daemon, tmp_path_factory, certs) -> Client:
    """The admin with a password of their own, a viewer and an editor, and a repository to list."""
    client = Client(tmp_path_factory.mktemp("admin"), daemon.port, certs["ca"])
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    client.ok("create", "user", VIEWER, "--role", "viewer", "--password-stdin", stdin=VIEWER_PASSWORD + "\n")
    client.ok("create", "user", EDITOR, "--role", "editor", "--password-stdin", stdin=EDITOR_PASSWORD + "\n")
    origin = tmp_path_factory.mktemp("origin")
    new_repo(origin, {"main.py": "print('hi')\n"})
    client.ok("create", "repository", "apps", "--url", str(origin))
    return client


def address(client: Client) -> str:
    return f"127.0.0.1:{port_of(client)}"


def port_of(client: Client) -> int:
    return int(client.config.read_text().split("port = ")[1].split()[0])


def keys_shown(app) -> list[str]:
    """The row keys of the table on screen (none while the screen is still being put together)."""
    tables = app.screen.query(ResourceTable)
    return list(tables.first().shown_keys) if tables else []


def every_table(app: GatewayApp) -> list[tuple[str, list[str]]]:
    """Every table of every screen the app holds, in any section, shown or not: its screen and its row keys."""
    found = []
    for stack in app._screen_stacks.values():
        for screen in stack:
            for table in screen.query(ResourceTable):
                found.append((type(screen).__name__, list(table.shown_keys)))
    return found


def admin_rows(app: GatewayApp) -> list[tuple[str, list[str]]]:
    """Tables still holding what only an admin may read: the users and the audit trail."""
    return [(screen, keys) for screen, keys in every_table(app)
            if keys and screen in ("UserListScreen", "AuditScreen")]


async def palette(pilot, command: str) -> None:
    """Run a palette command (ctrl+p) by typing its name."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.3)
    await pilot.press(*command)
    await pilot.pause(0.5)
    await pilot.press("enter")


async def open_users_and_audit_as_admin(pilot) -> None:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and app.role == "admin")
    await pilot.press("6")
    await until(pilot, lambda: isinstance(app.screen, UserListScreen) and "admin" in keys_shown(app),
                what="the users")
    assert {VIEWER, EDITOR} <= set(table_keys(app))
    await pilot.press("8")
    await until(pilot, lambda: isinstance(app.screen, AuditScreen) and keys_shown(app), what="the audit trail")
    assert admin_rows(app)


async def settled_login(pilot) -> LoginScreen:
    """The Login screen, once it takes keys (a field has the focus)."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, LoginScreen) and app.focused is not None,
                what="the Login screen taking keys")
    return app.screen


async def check_nothing_of_the_admin_is_left(pilot, viewer: str) -> None:
    app = pilot.app
    assert app.user == viewer and app.sub_title.endswith(f"· {viewer}")
    await until(pilot, lambda: app.role == "viewer", what="the viewer's role")
    assert admin_rows(app) == [], admin_rows(app)
    # The Users section: greyed in the strip, refused by the server, its actions greyed; no rows.
    await until(pilot, lambda: [i for i in app.screen.query(NavItem) if i.mode == "users"], what="the strip")
    items = {item.mode: item for item in app.screen.query(NavItem)}
    assert items["users"].has_class("-unavailable") and "you are a viewer" in str(items["users"].tooltip)
    await pilot.press("6")
    await until(pilot, lambda: isinstance(app.screen, UserListScreen) and app.screen.refused, what="the refusal")
    assert table_keys(app) == [] and "user management" in app.screen.refused
    assert app.screen.check_action("new", ()) is None and app.screen.check_action("delete", ()) is None
    await pilot.press("8")
    await until(pilot, lambda: isinstance(app.screen, AuditScreen) and app.screen.refused, what="the refusal")
    assert table_keys(app) == []
    assert admin_rows(app) == [], admin_rows(app)
    # What a viewer may read, they read.
    await pilot.press("3")
    await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen) and keys_shown(app) == ["apps"])


async def test_a_viewer_logging_in_after_a_revoked_admin_key_sees_none_of_the_admins_rows(admin, home):
    """The key is revoked under the TUI (a logout from the command line); a viewer logs in at the Login screen
    that comes up: no screen keeps the admin's users or audit trail."""
    home(admin)
    admin.login("admin", ADMIN_PASSWORD)
    app = client_app(admin)
    async with app.run_test(size=SIZE) as pilot:
        await open_users_and_audit_as_admin(pilot)
        await pilot.press("enter")  # one event in full, over the trail
        await until(pilot, lambda: isinstance(app.screen, AuditEventScreen))
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, UserListScreen))
        app.screen.query_one(ResourceTable).move_to(EDITOR)
        await pilot.press("e")  # a user's form, open when the key is revoked
        await until(pilot, lambda: isinstance(app.screen, UserFormScreen))
        admin.ok("logout")
        await pilot.press("ctrl+s")
        login = await settled_login(pilot)
        assert login.query_one("#username", Input).value == "admin"
        assert [type(s).__name__ for stack in app._screen_stacks.values() for s in stack
                if isinstance(s, (AuditEventScreen, UserFormScreen, UserListScreen, AuditScreen))] == []
        await type_into(pilot, "#username", VIEWER)
        await type_into(pilot, "#password", VIEWER_PASSWORD)
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, LoginScreen) and app.user == VIEWER)
        assert isinstance(app.screen, UserListScreen)  # back in the section, made anew: no form, no rows
        assert not [s for stack in app._screen_stacks.values() for s in stack
                    if isinstance(s, (AuditEventScreen, UserFormScreen))]
        await check_nothing_of_the_admin_is_left(pilot, VIEWER)


def logged_in_app(admin: Client, home) -> tuple:
    """The TUI of `admin`'s client with the admin logged in, and the API key it holds."""
    home(admin)
    admin.login("admin", ADMIN_PASSWORD)
    return client_app(admin), Credentials().load(address(admin)).api_key


async def test_log_out_from_the_palette_then_a_viewer_logs_in(admin, home):
    app, old_key = logged_in_app(admin, home)
    async with app.run_test(size=SIZE) as pilot:
        await open_users_and_audit_as_admin(pilot)
        await palette(pilot, "Log out")
        login = await settled_login(pilot)
        # Logged out: the key is forgotten here and revoked on the server; nothing of the admin's is held.
        assert app.user is None and app.sub_title.endswith("· not logged in")
        assert Credentials().load(address(admin)) is None
        assert admin_rows(app) == [] and every_table(app) == []
        assert login.query_one("#username", Input).value == "" and app.focused.id == "username"
        await type_into(pilot, "#username", VIEWER)
        await type_into(pilot, "#password", VIEWER_PASSWORD)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and app.user == VIEWER)
        await check_nothing_of_the_admin_is_left(pilot, VIEWER)
    with pytest.raises(Unauthenticated):
        await whoami_with(admin, old_key)


async def whoami_with(client: Client, api_key: str):
    gateway = remote_gateway(load_config(str(client.config), environ={}), None, api_key)
    try:
        return await gateway.whoami()
    finally:
        await gateway.close()


async def test_switch_user_from_the_palette_cancelled_keeps_the_session_done_drops_it(admin, home):
    app, old_key = logged_in_app(admin, home)
    async with app.run_test(size=SIZE) as pilot:
        await open_users_and_audit_as_admin(pilot)
        await palette(pilot, "Switch user")
        await settled_login(pilot)
        assert app.focused.id == "username" and app.screen.query_one("#username", Input).value == ""
        await pilot.press("escape")  # changed my mind: still the admin, on the audit trail
        await until(pilot, lambda: isinstance(app.screen, AuditScreen))
        assert app.user == "admin" and table_keys(app)
        assert (await whoami_with(admin, old_key)).username == "admin"

        await palette(pilot, "Switch user")
        await settled_login(pilot)
        await type_into(pilot, "#username", VIEWER)
        await type_into(pilot, "#password", VIEWER_PASSWORD)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and app.user == VIEWER)
        await check_nothing_of_the_admin_is_left(pilot, VIEWER)
        assert Credentials().load(address(admin)).username == VIEWER
    with pytest.raises(Unauthenticated):  # the admin's session ended with the switch
        await whoami_with(admin, old_key)


async def test_change_password_from_the_palette(admin, home, tmp_path):
    """The editor changes their password in the TUI: a wrong current one is said inline, then the new one
    works from the command line, the old one no longer does, and the TUI goes on with its new key."""
    editor = Client(tmp_path / "editor", port_of(admin), None)
    editor.config.write_text(admin.config.read_text())  # the same server, and its CA
    home(editor)
    editor.login(EDITOR, EDITOR_PASSWORD)
    new_password = EDITOR_PASSWORD + "-new"
    app = client_app(editor)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and app.role == "editor")
            await pilot.press("3")
            await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen) and keys_shown(app) == ["apps"])
            await palette(pilot, "Change password")
            form = await settled_login(pilot)
            assert form.query_one("#username", Input).value == EDITOR and form.query_one("#username").disabled
            assert app.focused.id == "password"
            await type_into(pilot, "#password", "not-my-password")
            await type_into(pilot, "#new-password", new_password)
            await type_into(pilot, "#new-again", new_password)
            await pilot.press("enter")
            await until(pilot, lambda: form.error, what="the inline error")
            assert form.error == "wrong username or password" and form.query_one("#password", Input).value == ""
            await type_into(pilot, "#password", EDITOR_PASSWORD)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen), what="back on the section")
            await until(pilot, lambda: any("Password changed" in n.message for n in app._notifications),
                        what="the notification")
            assert app.user == EDITOR
            kept = Credentials().load(address(editor))
            assert kept is not None and kept.username == EDITOR
            assert (await whoami_with(editor, kept.api_key)).username == EDITOR
            # The TUI goes on with its new key.
            await pilot.press("ctrl+r")
            await pilot.pause(0.5)
            assert isinstance(app.screen, RepositoriesScreen) and table_keys(app) == ["apps"]
        assert editor("login", "--username", EDITOR, "--password-stdin",
                      stdin=EDITOR_PASSWORD + "\n").returncode == 1
        editor.login(EDITOR, new_password)
    finally:
        editor.ok("login", "--username", EDITOR, "--password-stdin", "--change-password",
                  stdin=f"{new_password}\n{EDITOR_PASSWORD}\n")


async def test_a_cli_password_change_sends_the_tui_to_login_and_keys_in_flight_go_nowhere(admin, home,
                                                                                          monkeypatch):
    """The password changed from the command line revokes the TUI's key: the Login screen comes back with the
    username filled in and an empty password field; keys typed as it appears land nowhere (not in the
    password, not on a binding: `q` does not quit). (Its settling time is made longer here, so that the keys
    are sure to come while it lasts on a loaded machine.)"""
    monkeypatch.setattr("gateway_tui.screens.login.SETTLE_SECONDS", 3.0)
    home(admin)
    admin.login("admin", ADMIN_PASSWORD)
    app = client_app(admin)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and app.role == "admin")
            await pilot.press("3")
            await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen) and keys_shown(app) == ["apps"])
            admin.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                     stdin=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}-2\n")
            await pilot.press("ctrl+r")
            await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="the Login screen")
            login = app.screen
            assert login.settling
            await pilot.press(*"2dq", "enter")  # typed as the screen came up
            assert login.settling
            await pilot.pause(0.1)
            assert app.is_running and app.screen is login
            assert login.query_one("#password", Input).value == ""
            assert login.query_one("#username", Input).value == "admin"
            assert login.error == ""
            await settled_login(pilot)
            assert app.focused.id == "password" and login.query_one("#password", Input).value == ""
            await type_into(pilot, "#password", f"{ADMIN_PASSWORD}-2")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen) and keys_shown(app) == ["apps"])
    finally:
        admin.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                 stdin=f"{ADMIN_PASSWORD}-2\n{ADMIN_PASSWORD}\n")


async def test_a_revoked_configured_key_asks_for_the_username_first(admin, home, tmp_path):
    """With the key from [client] api_key the TUI does not know the username: once that key is refused, the
    Login screen takes keys at the username field."""
    home(admin)
    admin.login("admin", ADMIN_PASSWORD)
    key = Credentials().load(address(admin)).api_key
    original = admin.config.read_text()
    admin.config.write_text(original.replace("[client]\n", f"[client]\napi_key = {key}\n"))
    try:
        app = client_app(admin)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and app.role == "admin")
            admin.ok("logout")  # the same key: revoked on the server
            await pilot.press("ctrl+r")
            login = await settled_login(pilot)
            assert app.focused.id == "username" and login.query_one("#username", Input).value == ""
    finally:
        admin.config.write_text(original)


async def test_local_mode_has_no_identity_actions(tmp_path):
    from gateway_daemon.bootstrap import open_engine

    engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                         announce=lambda _text: None)
    app = GatewayApp(engine, "local")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        provider = GatewayCommands(app.screen)
        await provider.startup()
        names = [hit.text for hit in [h async for h in provider.discover()]]
        assert "Go to Runs" in names
        assert not {"Log out", "Change password", "Switch user"} & set(names), names
