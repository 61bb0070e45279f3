"""Forms that fit the thing being made: a service form with only its type's fields, errors that name the form's
fields, a repository checked when it is created (git's own reason kept), focus that shows, the schema editor's
usual select-all, and a schema that keeps the order it was written in."""

from __future__ import annotations

import subprocess

import pytest
from textual.widgets import Input, Select, TextArea

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Decorator, InvalidArgument, Repository, Service
from gateway_tui.app import GatewayApp
from gateway_tui.screens.decorators import DecoratorFormScreen
from gateway_tui.screens.repositories import RepositoryFormScreen
from gateway_tui.screens.services import ServiceFormScreen
from gateway_tui.widgets.form import FormField
from gateway_tui.widgets.json_editor import JsonEditor

from gitutil import new_repo
from pilot import type_into, until

SIZE = (120, 36)
ANSIBLE_ONLY = ("playbooks", "inventories", "extra_vars", "extra_vars_files", "config_file", "galaxy_registry")


@pytest.fixture
def engine(tmp_path):
    return open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                       announce=lambda _text: None)


@pytest.fixture
async def seeded(engine, tmp_path):
    new_repo(tmp_path / "origin", {"main.py": "print('hi')\n"})
    await engine.create(Repository(name="origin", url=str(tmp_path / "origin"), reference="main"))
    await engine.create(Service(name="hello", type="python-script", repository="origin", filename="main.py",
                                description="says hi"))
    return engine


def shown(app, field: str) -> bool:
    widget = app.screen.query_one(f"#field-{field}", FormField)
    return widget.display and not widget.control.disabled


async def _new_service_form(pilot):
    await until(pilot, lambda: pilot.app.screen.query("ResourceTable"))
    await pilot.press("n")
    await until(pilot, lambda: isinstance(pilot.app.screen, ServiceFormScreen))
    await pilot.pause(0.1)


async def test_service_form_shows_only_the_fields_of_its_type(seeded):
    app = GatewayApp(seeded, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await _new_service_form(pilot)
        type_select = app.screen.query_one("#type", Select)
        expected = {
            "python-script": ({"pypi_registry"}, {*ANSIBLE_ONLY, "executable", "tofu_action"}),
            "executable": ({"executable"}, {*ANSIBLE_ONLY, "pypi_registry", "tofu_action"}),
            "ansible-playbook": ({*ANSIBLE_ONLY, "pypi_registry"}, {"executable", "tofu_action"}),
            "opentofu-plan": ({"tofu_action", "tofu_vars"}, {*ANSIBLE_ONLY, "executable", "pypi_registry"}),
        }
        for kind, (present, absent) in expected.items():
            type_select.value = kind
            await until(pilot, lambda: app.screen.shown_type == kind and app.screen.settled)
            for field in present:
                assert shown(app, field), f"{kind}: {field} hidden"
            for field in absent:  # another type's field is hidden, or not built before its type is chosen
                assert not any(f.display for f in app.screen.query(f"#field-{field}")), f"{kind}: {field} shown"


async def test_moving_between_types_keeps_the_shared_fields(seeded):
    app = GatewayApp(seeded, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await _new_service_form(pilot)
        await type_into(pilot, "#name", "sweep")
        await type_into(pilot, "#filename", "sweep.sh")
        await type_into(pilot, "#working_dir", "tools")
        app.screen.query_one("#env", TextArea).text = "MODE=fast"
        for kind in ("ansible-playbook", "executable", "opentofu-plan", "python-script", "executable"):
            app.screen.query_one("#type", Select).value = kind
            await until(pilot, lambda: app.screen.shown_type == kind and app.screen.settled)
        assert app.screen.query_one("#name", Input).value == "sweep"
        assert app.screen.query_one("#filename", Input).value == "sweep.sh"
        assert app.screen.query_one("#working_dir", Input).value == "tools"
        assert app.screen.query_one("#env", TextArea).text == "MODE=fast"


async def test_form_errors_name_the_forms_fields_not_cli_flags(seeded):
    app = GatewayApp(seeded, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await _new_service_form(pilot)
        await type_into(pilot, "#name", "sweep")
        app.screen.query_one("#type", Select).value = "executable"
        await until(pilot, lambda: app.screen.shown_type == "executable" and app.screen.settled)
        await type_into(pilot, "#executable", "bash")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.query_one("#field-filename", FormField).error)
        error = app.screen.query_one("#field-filename", FormField).error
        assert "--" not in error and "Filename" in error, error
        app.screen.query_one("#type", Select).value = "opentofu-plan"
        await until(pilot, lambda: app.screen.shown_type == "opentofu-plan" and app.screen.settled)
        app.screen.query_one("#tofu_vars", TextArea).text = "bad key=x"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.query_one("#field-tofu_vars", FormField).error)
        error = app.screen.query_one("#field-tofu_vars", FormField).error
        assert "--var" not in error, error


async def test_edit_form_opens_on_its_first_field_and_focus_shows(seeded):
    app = GatewayApp(seeded, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pilot.app.screen.query("ResourceTable"))
        await until(pilot, lambda: pilot.app.screen.query_one("ResourceTable").row_count == 1)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen))
        await pilot.pause(0.2)
        form = app.screen.query_one("#form")
        assert form.scroll_y == 0
        first = next(f for f in app.screen.query(FormField) if f.display and not f.control.disabled)
        assert app.focused is first.control, f"focus on {app.focused}, not on the first field {first.field}"
        # The focused field stands out: its label and its control are unlike the others'.
        other = app.screen.query_one("#field-working_dir", FormField)
        label = lambda field: field.query_one(".field-label")  # noqa: E731
        assert label(first).styles.color != label(other).styles.color or \
            label(first).styles.text_style != label(other).styles.text_style
        focused_bg = first.control.styles.background
        other_bg = other.control.styles.background
        contrast = sum(abs(a - b) for a, b in zip(focused_bg.rgb, other_bg.rgb))
        assert contrast >= 40, f"focused {focused_bg} vs {other_bg}: too alike to see"


async def test_schema_editor_selects_all_with_ctrl_a(seeded):
    app = GatewayApp(seeded, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pilot.app.screen.query("ResourceTable"))
        await pilot.press("4")
        await until(pilot, lambda: app.current_mode == "decorators")
        await pilot.pause(0.2)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, DecoratorFormScreen))
        editor = app.screen.query_one("#schema", JsonEditor)
        editor.focus()
        await pilot.pause(0.05)
        await pilot.press("ctrl+a")
        assert editor.selected_text == editor.text
        await pilot.press("x")
        assert editor.text == "x"


async def test_a_saved_schema_keeps_its_key_order(engine):
    schema = {"type": "object", "properties": {"zone": {"type": "string"}, "address": {"type": "string"},
                                               "mode": {"enum": ["b", "a"]}},
              "required": ["zone"]}
    await engine.create(Decorator(name="ordered", schema=schema))
    stored = (await engine.get("decorator", "ordered")).schema
    assert list(stored) == list(schema)
    assert list(stored["properties"]) == ["zone", "address", "mode"]
    await engine.update("decorator", "ordered", {"schema": {"properties": {"b": {}, "a": {}}, "type": "object"}})
    assert list((await engine.get("decorator", "ordered")).schema["properties"]) == ["b", "a"]


async def test_repository_create_checks_a_local_path_and_keeps_gits_reason(engine, tmp_path):
    with pytest.raises(InvalidArgument) as missing:
        await engine.create(Repository(name="gone", url=str(tmp_path / "nowhere")))
    assert "url" in missing.value.fields
    assert "does not appear to be a git repository" in str(missing.value), str(missing.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidArgument) as plain:
        await engine.create(Repository(name="plain", url=f"file://{tmp_path / 'plain'}"))
    assert "not" in str(plain.value) and "git" in str(plain.value)
    new_repo(tmp_path / "real", {"main.py": "print(1)\n"})
    await engine.create(Repository(name="real", url=f"file://{tmp_path / 'real'}"))
    with pytest.raises(InvalidArgument) as branch:
        await engine.create(Repository(name="nobranch", url=str(tmp_path / "real"), reference="no-such-branch"))
    assert "no-such-branch" in str(branch.value)
    assert [r.name for r in await engine.list("repository")] == ["real"]


async def test_repository_create_warns_when_a_remote_cannot_be_reached(engine):
    """The network away (an address nothing listens on): created, with git's reason as a warning."""
    created = await engine.create(Repository(name="far", url="http://127.0.0.1:9/nobody/repo.git"))
    assert created.name == "far"
    assert "127.0.0.1" in created.warning and "not checked" in created.warning, created.warning
    assert (await engine.get("repository", "far")).url == "http://127.0.0.1:9/nobody/repo.git"


async def test_repository_form_says_gits_reason_at_the_url(engine, tmp_path):
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pilot.app.screen.query("ResourceTable"))
        await pilot.press("3")
        await until(pilot, lambda: app.current_mode == "repositories")
        await pilot.pause(0.2)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RepositoryFormScreen))
        await type_into(pilot, "#name", "gone")
        await type_into(pilot, "#url", str(tmp_path / "nowhere"))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.query_one("#field-url", FormField).error)
        assert "does not appear to be a git repository" in app.screen.query_one("#field-url", FormField).error
        assert isinstance(app.screen, RepositoryFormScreen)


def test_git_is_here():
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0
