"""The terminal UI driven by its pilot against a real engine, a real store and a real git repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, Footer, Input, Select
from textual.widgets._footer import FooterKey

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Decorator, Repository, Service
from gateway_tui.app import GatewayApp
from gateway_tui.screens.confirm import ConfirmScreen, UnsavedScreen
from gateway_tui.screens.decorators import DecoratorFormScreen
from gateway_tui.screens.repositories import RepositoriesScreen
from gateway_tui.screens.run import RunScreen
from gateway_tui.screens.runs import RunsScreen
from gateway_tui.screens.secrets import SecretsScreen
from gateway_tui.screens.services import ServiceFormScreen, ServicesScreen
from gateway_tui.widgets.form import FormField
from gateway_tui.widgets.json_editor import JsonEditor
from gateway_tui.widgets.output_view import OutputView
from gateway_tui.widgets.resource_table import ResourceTable

from gitutil import new_repo
from pilot import cell, table_keys, type_into, until

SIZE = (120, 36)
SCRIPT = '''\
import sys
print("args " + " ".join(sys.argv[1:]))
print("a warning", file=sys.stderr)
'''
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "count": {"type": "integer", "minimum": 1, "maximum": 5},
        "loud": {"type": "boolean"},
    },
    "required": ["name"],
}


@pytest.fixture
def origin(tmp_path) -> Path:
    repo = tmp_path / "origin"
    new_repo(repo, {"hello/main.py": SCRIPT})
    return repo


@pytest.fixture
def engine(tmp_path):
    return open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                       announce=lambda _text: None)


def make_app(engine) -> GatewayApp:
    return GatewayApp(engine, "local mode · test")


def field_error(app, field: str) -> str:
    return app.screen.query_one(f"#field-{field}", FormField).error


async def test_create_repository_service_run_and_history(engine, origin):
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        assert "No services yet" in str(app.screen.query_one("#empty").render())

        # A repository, through its form.
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen))
        await pilot.press("n")
        await until(pilot, lambda: app.screen.query("#url"))
        await type_into(pilot, "#name", "automations")
        await type_into(pilot, "#url", str(origin))
        await type_into(pilot, "#reference", "main")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen) and table_keys(app) == ["automations"])
        assert (await engine.get("repository", "automations")).url == str(origin)

        # A decorator, through the schema editor.
        await pilot.press("4")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, DecoratorFormScreen))
        await type_into(pilot, "#name", "hello-form")
        import json

        app.screen.query_one("#schema", JsonEditor).load_text(json.dumps(SCHEMA, indent=2))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: table_keys(app) == ["hello-form"], what="the decorator in the list")

        # A service, through its form; the only repository is chosen already.
        await pilot.press("1")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen))
        await until(pilot, lambda: app.screen.query_one("#repository", Select).value == "automations")
        await type_into(pilot, "#name", "hello")
        await type_into(pilot, "#working_dir", "hello")
        app.screen.query_one("#decorator", Select).value = "hello-form"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
        service = await engine.get("service", "hello")
        assert (service.repository, service.working_dir, service.decorator) == ("automations", "hello", "hello-form")

        # Run it with inputs and watch the output.
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.phase == "form")
        await type_into(pilot, "#input-name", "ops")
        await type_into(pilot, "#input-count", "2")
        app.screen.query_one("#input-loud", Checkbox).value = True
        await pilot.press("ctrl+s")
        screen = app.screen
        await until(pilot, lambda: screen.run is not None and screen.run.finished, what="the run to end")
        output = screen.query_one(OutputView)
        await pilot.pause(0.3)
        texts = [(line.stream, line.text) for line in output.output_lines]
        assert ("stdout", "args --name=ops --count=2 --loud") in texts
        assert ("stderr", "a warning") in texts
        assert screen.run.status == "succeeded" and screen.run.exit_code == 0
        status = str(screen.query_one("#run-status").render())
        assert "succeeded" in status and "exit code 0" in status

        # Search the output: only matching lines stay.
        await pilot.press("slash")
        await pilot.press(*"warn")
        await pilot.pause(0.2)
        assert output.matches == 1

        # The history shows it; its output opens; it can be run again with the same inputs.
        await pilot.press("escape", "escape")
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(table_keys(app)) == 1)
        run_id = table_keys(app)[0]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run is not None)
        await until(pilot, lambda: any("args --name=ops" in l.text for l in app.screen.query_one(OutputView).output_lines))
        assert app.screen.run.id == run_id
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.phase == "form")
        assert app.screen.query_one("#input-name", Input).value == "ops"
        assert app.screen.query_one("#input-count", Input).value == "2"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.run is not None and app.screen.run.finished)
        assert len(await engine.list_runs()) == 2

        # The home screen shows the last run's status.
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("1")  # the section's own key goes back to its list
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await app.screen.reload()
        row = app.screen.query_one(ResourceTable).row("hello")
        assert row is not None and "succeeded" in row.cells[4]


async def _seed(engine, origin) -> None:
    await engine.create(Repository(name="automations", url=str(origin), reference="main"))
    await engine.create(Decorator(name="hello-form", schema=SCHEMA))
    await engine.create(Service(name="hello", repository="automations", working_dir="hello", filename="main.py",
                                decorator="hello-form"))


async def test_delete_asks_first_and_errors_are_notifications(engine, origin):
    await _seed(engine, origin)
    await engine.create(Service(name="spare", repository="automations", filename="main.py"))
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: sorted(table_keys(app)) == ["hello", "spare"])
        app.screen.query_one(ResourceTable).move_to("spare")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # no: nothing happens
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        assert len(await engine.list("service")) == 2
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # the focus is on Cancel: enter alone does not delete
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        assert len(await engine.list("service")) == 2
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: table_keys(app) == ["hello"])
        assert [s.name for s in await engine.list("service")] == ["hello"]

        # A repository in use cannot go: the gateway's message, as a notification.
        await pilot.press("3")
        await until(pilot, lambda: table_keys(app) == ["automations"])
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app._notifications, what="a notification")
        messages = [n.message for n in app._notifications]
        assert any("in use by service hello" in m for m in messages), messages
        assert len(await engine.list("repository")) == 1


async def test_validation_errors_are_shown_inline(engine, origin):
    await _seed(engine, origin)
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table_keys(app) == ["hello"])

        # The service form: a missing name, a bad path, then a name that exists.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen))
        await type_into(pilot, "#working_dir", "../outside")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert "required" in field_error(app, "name")
        await type_into(pilot, "#name", "hello2")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert "inside the repository" in field_error(app, "working_dir")
        await type_into(pilot, "#working_dir", "hello")
        await type_into(pilot, "#name", "hello")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: field_error(app, "name"), what="the name error")
        assert "already exists" in field_error(app, "name")
        await pilot.press("escape")  # the form has changes: leaving it asks first
        await until(pilot, lambda: isinstance(app.screen, UnsavedScreen), what="the question")
        await pilot.press("d")

        # The run form: the decorator's rules before anything runs.
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.phase == "form")
        await type_into(pilot, "#input-name", "x")
        await type_into(pilot, "#input-count", "9")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert "short" in field_error(app, "name")
        assert "maximum" in field_error(app, "count")
        assert app.screen.phase == "form"
        assert await engine.list_runs() == []

        # The schema editor: JSON that does not parse, and a schema that is not one.
        await pilot.press("escape")
        await pilot.press("4")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, DecoratorFormScreen))
        await type_into(pilot, "#name", "broken")
        editor = app.screen.query_one("#schema", JsonEditor)
        editor.load_text('{"type": "object", "properties": {"a": {"type": "strnig"}}')
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert "not valid JSON at line 1" in field_error(app, "schema")
        editor.load_text('{"type": "object", "properties": {"a": {"type": "strnig"}}}')
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert "invalid JSON Schema" in field_error(app, "schema")
        assert [d.name for d in await engine.list("decorator")] == ["hello-form"]


async def test_secret_is_revealed_on_purpose_and_hides_again(engine, monkeypatch):
    import gateway_tui.screens.secrets as secrets_screen

    monkeypatch.setattr(secrets_screen, "REVEAL_SECONDS", 1)
    await engine.create_secret("api-token", "s3cr3t-value", "a token")
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen) and table_keys(app) == ["api-token"])
        screen = app.screen

        def on_screen() -> str:
            return app.export_screenshot()

        assert "s3cr3t-value" not in on_screen()
        await pilot.press("v")
        await until(pilot, lambda: "s3cr3t-value" in on_screen(), what="the revealed value")
        await until(pilot, lambda: screen.revealed is None, timeout=5, what="the value to hide again")
        assert "s3cr3t-value" not in on_screen()


async def test_users_and_runners_are_disabled_in_local_mode_and_palette_lists_actions(engine):
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause(0.2)
        assert "exists only against a gateway server" in app.export_screenshot().replace("&#160;", " ")
        await pilot.press("7")
        await until(pilot, lambda: app.current_mode == "runners")
        await pilot.pause(0.2)
        assert "Local mode runs everything in this process" in str(app.screen.query_one(".unavailable").render())
        assert not app.screen.query("ResourceTable")
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert not shown & {"filter", "details", "sort"}, shown  # nothing to filter, open or sort here
        from gateway_tui.commands import GatewayCommands

        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        provider = GatewayCommands(app.screen)
        await provider.startup()
        names = [hit.text for hit in [h async for h in provider.discover()]]
        for expected in ("Go to Runs", "New service", "Delete the selected service", "Run the selected service",
                         "Filter the service list as you type"):
            assert expected in names, names


def _footer_fits(app) -> list[str]:
    """The footer's keys, after checking that all of them are inside the terminal's 80 columns."""
    footer = app.screen.query_one(Footer)
    shown = [key for key in footer.query(FooterKey) if key.display]
    assert footer.virtual_size.width <= footer.size.width, (app.screen, footer.virtual_size)
    for key in shown:
        assert key.region.right <= app.size.width, (app.screen, key.description, key.region)
    return [key.description for key in shown]


async def test_every_screen_shows_its_whole_footer_at_80_columns(engine, origin):
    await _seed(engine, origin)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: table_keys(app) == ["hello"])
        for section in "1234567":
            await pilot.press(section)
            await pilot.pause(0.2)
            assert "Quit" in _footer_fits(app), app.screen
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
        await pilot.press("enter")  # the service's details
        await until(pilot, lambda: not isinstance(app.screen, ServicesScreen))
        await pilot.pause(0.2)
        assert "Quit" in _footer_fits(app)
        await pilot.press("escape", "n")  # a form: its keys, not the ones typing would need
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen))
        await pilot.pause(0.2)
        assert {"Save", "Cancel"} <= set(_footer_fits(app))


async def test_theme_toggles_and_narrow_terminal(engine, origin):
    await _seed(engine, origin)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: table_keys(app) == ["hello"])
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"
        await pilot.press("slash", *"zzz")
        await pilot.pause(0.1)
        assert table_keys(app) == []
        assert "0 of 1 service" in str(app.screen.query_one("#count").render())


async def test_filter_as_you_type_and_sort(engine, origin):
    await engine.create(Repository(name="apps", url=str(origin)))
    await engine.create(Repository(name="books", url=str(origin)))
    for name, kind, repo in [("add-vlan", "python-script", "apps"), ("backup", "python-script", "books"),
                             ("certs", "ansible-playbook", "books"), ("lab", "executable", "apps"),
                             ("vlan-audit", "python-script", "apps")]:
        await engine.create(Service(name=name, type=kind, repository=repo, filename="main.py"))
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(table_keys(app)) == 5)
        await pilot.press("slash", *"vlan")
        await until(pilot, lambda: table_keys(app) == ["add-vlan", "vlan-audit"])
        await pilot.press(*" aud")  # every word must match, anywhere in the row
        await until(pilot, lambda: table_keys(app) == ["vlan-audit"])
        await pilot.press(*["backspace"] * 4)  # shorter again: the rows come back
        await until(pilot, lambda: table_keys(app) == ["add-vlan", "vlan-audit"])
        await pilot.press(*["backspace"] * 4, *"books python")  # a cell of another column
        await until(pilot, lambda: table_keys(app) == ["backup"])
        await pilot.press("escape")  # clears the filter
        await until(pilot, lambda: len(table_keys(app)) == 5)
        assert table_keys(app) == ["add-vlan", "backup", "certs", "lab", "vlan-audit"]
        app.screen.query_one(ResourceTable).focus()
        await pilot.press("s")  # the next column: type
        await until(pilot, lambda: table_keys(app)[0] == "certs")
        assert table_keys(app)[-3:] == ["add-vlan", "backup", "vlan-audit"]


async def test_registries_listed_with_built_ins_created_checked_and_deleted(engine):
    from gateway_tui.screens.registries import RegistriesScreen, RegistryFormScreen

    await engine.create_secret("pypi-token", "pypi-s3cret", "")
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("9")
        await until(pilot, lambda: isinstance(app.screen, RegistriesScreen)
                    and table_keys(app) == ["default-galaxy", "default-pypi"])
        assert cell(app, "default-pypi", "default") == "yes"
        assert "9 Registries" in str(app.screen.query_one("#nav").query("NavItem.-active").first().render())

        # A built-in one is refused before any form opens.
        app.screen.query_one(ResourceTable).move_to("default-pypi")
        await pilot.press("e")
        await until(pilot, lambda: any("built in" in n.message for n in app._notifications))
        assert isinstance(app.screen, RegistriesScreen)
        await pilot.press("enter")  # its details say so
        await until(pilot, lambda: app.screen.query("#fields")
                    and "pypi.org" in str(app.screen.query_one("#fields").render()))
        assert "built in" in str(app.screen.query_one("#fields").render())
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RegistriesScreen))

        # The form: a URL holding credentials is marked on its field; nothing is stored.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RegistryFormScreen))
        await type_into(pilot, "#name", "internal")
        await type_into(pilot, "#url", "https://bob:pw@pypi.example.com/simple")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: field_error(app, "url"), what="the url error")
        assert "holds credentials" in field_error(app, "url")
        assert len(await engine.list("registry")) == 2

        # Corrected, with a token from a secret and as the default: saved, listed, the default now.
        await type_into(pilot, "#url", "https://pypi.example.com/simple")
        app.screen.query_one("#token_name", Select).value = "pypi-token"
        app.screen.query_one("#default", Checkbox).value = True
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, RegistriesScreen) and "internal" in table_keys(app))
        stored = await engine.get("registry", "internal")
        assert (stored.type, stored.url, stored.token_name, stored.default) == (
            "pypi", "https://pypi.example.com/simple", "pypi-token", True)
        assert cell(app, "internal", "default") == "yes" and cell(app, "default-pypi", "default") == ""

        # Filter, then delete after the confirmation.
        await pilot.press("slash", *"intern")
        await until(pilot, lambda: table_keys(app) == ["internal"])
        await pilot.press("escape")
        app.screen.query_one(ResourceTable).move_to("internal")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: table_keys(app) == ["default-galaxy", "default-pypi"])
        assert sorted(r.name for r in await engine.list("registry")) == ["default-galaxy", "default-pypi"]


async def test_executable_objects_created_in_iag5_spelling_checked_and_deleted(engine):
    from gateway_tui.screens.executables import ExecutableFormScreen, ExecutablesScreen

    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("0")
        await until(pilot, lambda: isinstance(app.screen, ExecutablesScreen))
        await until(pilot, lambda: app.screen.query_one("#empty").display)
        assert "No executable objects yet" in str(app.screen.query_one("#empty").render())

        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ExecutableFormScreen))
        await type_into(pilot, "#name", "py311")
        await type_into(pilot, "#exec_command", "/usr/bin/python3 -u 'unclosed")
        await type_into(pilot, "#arg_format", "--{{.Key}} {{.Value}}")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: field_error(app, "exec_command"), what="the command error")
        assert "cannot be split" in field_error(app, "exec_command")
        await type_into(pilot, "#exec_command", "/usr/bin/python3 -u")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ExecutablesScreen) and table_keys(app) == ["py311"])
        stored = await engine.get("executable-object", "py311")
        assert (stored.exec_command, stored.arg_format) == ("/usr/bin/python3 -u", "--{key} {value}")

        # Its details, then deleted from there after the confirmation.
        await pilot.press("enter")
        await until(pilot, lambda: "python3" in str(app.screen.query_one("#fields").render()))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ExecutablesScreen) and table_keys(app) == [])
        assert await engine.list("executable-object") == []


async def test_registries_and_executables_are_in_the_palette_and_greyed_by_role(engine):
    from gateway_tui.commands import GatewayCommands
    from gateway_tui.screens.executables import ExecutablesScreen
    from gateway_tui.screens.registries import RegistriesScreen

    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        provider = GatewayCommands(app.screen)
        await provider.startup()
        hits = {hit.text: hit for hit in [h async for h in provider.discover()]}
        assert "Go to Registries" in hits and "Go to Executables" in hits, sorted(hits)
        hits["Go to Executables"].command()
        await until(pilot, lambda: isinstance(app.screen, ExecutablesScreen))

        # An editor may change registries but not define what services run; a viewer neither.
        def enabled(action: str) -> bool:
            return any(b.binding.action == action and b.enabled for b in app.screen.active_bindings.values())

        app.role = "editor"
        app.refresh_bindings()
        await pilot.pause(0.1)
        assert not enabled("new") and not enabled("delete") and enabled("filter")
        await pilot.press("9")
        await until(pilot, lambda: isinstance(app.screen, RegistriesScreen))
        assert enabled("new") and enabled("delete")
        app.role = "viewer"
        app.refresh_bindings()
        await pilot.pause(0.1)
        assert not enabled("new") and not enabled("edit")
