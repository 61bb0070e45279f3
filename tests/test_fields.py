"""Structured field errors: every validation error names its field, forms mark exactly those fields, and the
run form judges inputs with the gateway's own coercion (core.runs.coerce_inputs)."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Checkbox, Input, Select, Static

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Decorator, InvalidArgument, Repository, Secret, SecretRef, Service
from gateway_daemon.core.access.auth import check_password
from gateway_daemon.core.runs.records import check_run_timeout, coerce_inputs, parse_set, prepare_inputs
from gateway_daemon.core.resources.secrets import check_value
from gateway_tui.app import GatewayApp
from gateway_tui.screens.repositories import RepositoriesScreen, RepositoryFormScreen
from gateway_tui.screens.run import RunScreen
from gateway_tui.screens.services import ServiceFormScreen, ServicesScreen
from gateway_tui.widgets.form import FormField
from gateway_tui.widgets.schema_form import SchemaForm

from gitutil import new_repo
from pilot import table_keys, type_into, until

SIZE = (120, 40)


def service(**fields: Any) -> Service:
    return Service(**{"name": "svc", "repository": "automations", **fields})


def repository(**fields: Any) -> Repository:
    return Repository(**{"name": "repo", "url": "https://git.example.com/a.git", **fields})


# (what is checked, the field its error must name)
VALIDATIONS: list[tuple[str, Callable[[], None], str]] = [
    ("repository name", lambda: repository(name="bad name").validate(), "name"),
    ("repository url: empty", lambda: repository(url="").validate(), "url"),
    ("repository url: command transport", lambda: repository(url="ext::sh -c x").validate(), "url"),
    ("repository url: scheme", lambda: repository(url="ftp://host/a").validate(), "url"),
    ("repository url: relative", lambda: repository(url="some/where").validate(), "url"),
    ("repository reference", lambda: repository(reference="a..b").validate(), "reference"),
    ("repository key name", lambda: repository(private_key_name="bad name").validate(), "private_key_name"),
    ("repository key on https", lambda: repository(private_key_name="key").validate(), "private_key_name"),
    ("repository description", lambda: repository(description="x" * 5000).validate(), "description"),
    ("repository tags", lambda: repository(tags=["bad tag"]).validate(), "tags"),
    ("service type", lambda: service(type="shell").validate(), "type"),
    ("service repository", lambda: service(repository="").validate(), "repository"),
    ("service decorator", lambda: service(decorator="bad name").validate(), "decorator"),
    ("service working dir", lambda: service(working_dir="../outside").validate(), "working_dir"),
    ("service filename", lambda: service(filename="/etc/passwd").validate(), "filename"),
    ("service filename needed", lambda: service(type="executable").validate(), "filename"),
    ("service requirements file", lambda: service(requirements_file="../r.txt").validate(), "requirements_file"),
    ("service env name", lambda: service(env={"1X": "v"}).validate(), "env"),
    ("service env value", lambda: service(env={"X": "a\x00b"}).validate(), "env"),
    ("service secret name", lambda: service(secrets=[SecretRef(name="bad name", target="X")]).validate(), "secrets"),
    ("service secret target", lambda: service(secrets=[SecretRef(name="s", target="1X")]).validate(), "secrets"),
    ("service secret type", lambda: service(secrets=[SecretRef(name="s", target="X", type="file")]).validate(),
     "secrets"),
    ("service two secrets, one target",
     lambda: service(secrets=[SecretRef(name="a", target="X"), SecretRef(name="b", target="X")]).validate(),
     "secrets"),
    ("secret reference text", lambda: SecretRef.parse("name=a"), "secrets"),
    ("secret reference key", lambda: SecretRef.parse("nom=a,target=X"), "secrets"),
    ("service runtime args", lambda: service(runtime_args=["a\x00"]).validate(), "runtime_args"),
    ("service tags", lambda: service(tags=["bad tag"]).validate(), "tags"),
    ("service runner tags", lambda: service(runner_tags=["bad tag"]).validate(), "runner_tags"),
    ("service arg format", lambda: service(arg_format="--{nope}").validate(), "arg_format"),
    ("service timeout", lambda: service(timeout=0).validate(), "timeout"),
    ("service timeout not a number", lambda: service(timeout=True).validate(), "timeout"),
    ("service description", lambda: service(description=3).validate(), "description"),
    ("decorator name", lambda: Decorator(name="").validate(), "name"),
    ("decorator schema: not an object", lambda: Decorator(name="d", schema=[]).validate(), "schema"),
    ("decorator schema: invalid", lambda: Decorator(name="d", schema={"type": "strnig"}).validate(), "schema"),
    ("decorator schema: an array", lambda: Decorator(name="d", schema={"type": "array"}).validate(), "schema"),
    ("decorator $schema", lambda: Decorator(name="d", schema={"$schema": 1}).validate(), "schema"),
    ("secret name", lambda: Secret(name="a/b").validate(), "name"),
    ("secret description", lambda: Secret(name="s", description="x" * 5000).validate(), "description"),
    ("secret value: empty", lambda: check_value("s", ""), "value"),
    ("secret value: too large", lambda: check_value("s", "x" * 70_000), "value"),
    ("password", lambda: check_password("short"), "password"),
    ("--set", lambda: parse_set(["novalue"]), "inputs"),
    ("run timeout", lambda: check_run_timeout(0), "timeout"),
]


@pytest.mark.parametrize("check, field", [(c, f) for _, c, f in VALIDATIONS], ids=[n for n, _, _ in VALIDATIONS])
def test_each_validation_error_names_its_field(check, field):
    with pytest.raises(InvalidArgument) as caught:
        check()
    error = caught.value
    assert error.fields == {field: str(error)}
    assert "\n" not in str(error)


def test_the_messages_read_as_before():
    """str(error) is the one line a terminal shows; the fields add to it and change nothing."""
    cases = [
        (lambda: service(working_dir="../x").validate(),
         "service working-dir '../x' must stay inside the repository ('..' is not allowed)"),
        (lambda: repository(private_key_name="bad name").validate(),
         "repository private-key-name 'bad name' is not valid: use 1-64 letters, digits, '-', '_' or '.'"),
        (lambda: service(timeout=0).validate(), "service timeout 0 is not valid: 1 to 604800 seconds"),
        (lambda: check_run_timeout(700000), "timeout 700000 is not valid: 1 to 604800 seconds"),
    ]
    for check, message in cases:
        with pytest.raises(InvalidArgument) as caught:
            check()
        assert str(caught.value) == message


SCHEMA = {
    "type": "object",
    "properties": {
        "vlan": {"type": "integer", "minimum": 1, "maximum": 4094},
        "ratio": {"type": "number"},
        "dry": {"type": "boolean"},
        "ports": {"type": "array", "items": {"type": "integer"}},
        "labels": {"type": "object"},
        "name": {"type": "string", "minLength": 2},
        "site": {"type": "string", "enum": ["dc1", "dc2"], "default": "dc1"},
        "token": {"type": "string", "writeOnly": True},
    },
    "required": ["vlan", "name"],
}


def test_run_inputs_name_their_fields():
    with pytest.raises(InvalidArgument) as caught:
        prepare_inputs(SCHEMA, {"vlan": "99999", "ports": '[1, "x"]', "extra": "1"})
    error = caught.value
    assert str(error) == (
        "inputs do not match the decorator: name: 'name' is a required property; "
        "ports.1: 'x' is not of type 'integer'; vlan: 99999 is greater than the maximum of 4094"
    )
    assert error.fields == {
        "inputs.name": "'name' is a required property",
        "inputs.ports": "ports.1: 'x' is not of type 'integer'",
        "inputs.vlan": "99999 is greater than the maximum of 4094",
    }
    closed = dict(SCHEMA, additionalProperties=False)
    with pytest.raises(InvalidArgument) as caught:
        prepare_inputs(closed, {"vlan": 1, "name": "ops", "extra": "1"})
    assert list(caught.value.fields) == ["inputs"]


# ---------------------------------------------------------------- the run form's coercion is the core's
# What a person fills in, field by field: text for an Input, the chosen value for a Select, a tick for a Checkbox.
TYPED: list[dict[str, Any]] = [
    {"vlan": "120", "name": "ops"},
    {"vlan": " 120 ", "name": " ops ", "ratio": "0.5", "dry": True, "ports": "[1, 2]", "labels": '{"a": "b"}'},
    {"vlan": "+7", "name": "ops", "ratio": "3", "site": "dc2", "token": " secret "},
    {"vlan": "1e3", "name": "ops", "ratio": "1e3"},
    {"vlan": "99999", "name": "x"},
    {"vlan": "12", "name": "ops", "ratio": "fast", "ports": "[1, \"x\"]", "labels": "[1]"},
    {"vlan": "12", "name": "ops", "ports": "not json", "labels": "{"},
    {"name": "ops"},
    {},
]


class FormHost(App):
    def __init__(self, schema: dict[str, Any]):
        super().__init__()
        self.schema = schema

    def compose(self) -> ComposeResult:
        yield SchemaForm(self.schema, id="inputs")


def fill(form: SchemaForm, typed: dict[str, Any]) -> None:
    for key in form.properties:
        control = form.query_one(f"#input-{key}")
        value = typed.get(key)
        if isinstance(control, Select):
            control.value = Select.NULL if value is None else form.properties[key]["enum"].index(value)
        elif isinstance(control, Checkbox):
            control.value = bool(value)
        else:
            assert isinstance(control, Input)
            control.value = "" if value is None else value


async def test_the_run_form_judges_inputs_as_the_gateway_does():
    app = FormHost(SCHEMA)
    async with app.run_test(size=SIZE) as pilot:
        form = app.query_one(SchemaForm)
        for typed in TYPED:
            fill(form, typed)
            await pilot.pause()
            values, problems = form.collect()
            # What the form hands on, trimmed as a person means it (a secret as typed); nothing empty.
            given = {k: (v if k == "token" or not isinstance(v, str) else v.strip()) for k, v in typed.items()}
            given.setdefault("dry", False)  # a checkbox always says yes or no
            assert form.typed() == given
            assert (values, problems) == coerce_inputs(SCHEMA, given)
            if problems:
                with pytest.raises(InvalidArgument) as caught:
                    prepare_inputs(SCHEMA, given)
                assert caught.value.fields == problems
            else:
                assert values == prepare_inputs(SCHEMA, given)
            form.show_errors(problems)
            await pilot.pause()
            marked = {f.field for f in form.query(FormField) if f.error}
            assert marked == {name.removeprefix("inputs.") for name in problems}


def test_coercion_table():
    """A few rows spelled out, so a change in coercion names what changed."""
    values, problems = coerce_inputs(SCHEMA, {"vlan": " 120 ", "name": "ops", "ratio": "0.5", "dry": "off",
                                              "ports": "[1, 2]"})
    assert problems == {}
    assert values == {"vlan": 120, "name": "ops", "ratio": 0.5, "dry": False, "ports": [1, 2], "site": "dc1"}
    values, problems = coerce_inputs(SCHEMA, {"vlan": "x", "name": "ops", "labels": "[1]"})
    assert values["vlan"] == "x" and values["labels"] == "[1]"  # left as text when it cannot be coerced
    assert problems == {"inputs.vlan": "'x' is not of type 'integer'", "inputs.labels": "'[1]' is not of type 'object'"}
    assert coerce_inputs(None, {"a": "1"}) == ({"a": "1"}, {})


# ---------------------------------------------------------------- forms against the real engine
@pytest.fixture
async def engine(tmp_path):
    origin = tmp_path / "origin"
    new_repo(origin, {"hello/main.py": "import sys\nprint(' '.join(sys.argv[1:]))\n"})
    engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                         announce=lambda _text: None)
    await engine.create(Repository(name="automations", url=str(origin)))
    await engine.create(Decorator(name="form", schema={
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 2},
                       "count": {"type": "integer", "minimum": 1, "maximum": 5}}}))
    await engine.create(Service(name="hello", repository="automations", working_dir="hello", decorator="form"))
    yield engine
    await engine.close()


def marked(app) -> dict[str, str]:
    return {f.field: f.error for f in app.screen.query(FormField) if f.error}


def banner(app) -> str:
    widget = app.screen.query_one("#form-error", Static)
    return str(widget.content) if widget.display else ""


async def test_a_form_marks_exactly_the_fields_the_error_names(engine):
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen))
        await until(pilot, lambda: app.screen.query_one("#repository", Select).value == "automations")

        # The engine's own rules, before a round trip: the field the error names, and only it.
        await type_into(pilot, "#name", "hello2")
        await type_into(pilot, "#working_dir", "../outside")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: marked(app), what="a marked field")
        assert marked(app) == {
            "working_dir": "service working-dir '../outside' must stay inside the repository ('..' is not allowed)"}
        assert banner(app) == "1 field needs attention"

        # The gateway's answer: a name taken is the name's.
        await type_into(pilot, "#working_dir", "hello")
        await type_into(pilot, "#name", "hello")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "name" in marked(app), what="the name marked")
        assert marked(app) == {"name": "service 'hello' already exists"}

        # An error naming no field of this form: above it, and no field marked.
        screen = app.screen
        screen.gateway_error(InvalidArgument("service runner tags ['a b'] are not valid",
                                             {"runner_tags": "service runner tags ['a b'] are not valid",
                                              "timeout": "too long"}))
        await pilot.pause()
        assert marked(app) == {"timeout": "too long"}
        assert banner(app) == "1 field needs attention\nservice runner tags ['a b'] are not valid"

        # A reference that does not exist is no field's: the message above the form.
        await type_into(pilot, "#name", "hello3")
        screen.query_one("#secrets").load_text("name=missing,target=TOKEN")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: banner(app) and not marked(app), what="the banner alone")
        assert banner(app) == "service hello3: secret 'missing' does not exist"
        assert [s.name for s in await engine.list("service")] == ["hello"]
        await pilot.press("escape")  # a changed form asks first: d leaves it without saving
        await until(pilot, lambda: type(app.screen).__name__ == "UnsavedScreen", what="the unsaved-form question")
        await pilot.press("d")

        # The repository form: the url the error names.
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RepositoriesScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RepositoryFormScreen))
        await type_into(pilot, "#name", "tools")
        await type_into(pilot, "#url", "ext::sh -c touch% /tmp/pwned")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: marked(app), what="a marked field")
        assert list(marked(app)) == ["url"]


async def test_the_run_form_marks_the_inputs_the_gateway_names(engine):
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.phase == "form")
        await type_into(pilot, "#input-name", "x")
        await type_into(pilot, "#input-count", "9")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: marked(app), what="marked inputs")
        assert marked(app) == {"name": "'x' is too short", "count": "9 is greater than the maximum of 5"}
        assert banner(app) == "2 fields need attention"

        # The decorator changes after the form was drawn: the gateway's own check, field by field.
        await engine.update("decorator", "form", {"schema": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 2},
                           "count": {"type": "integer", "minimum": 1, "maximum": 2}}}})
        await type_into(pilot, "#input-name", "ops")
        await type_into(pilot, "#input-count", "3")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: list(marked(app)) == ["count"], what="the count marked by the gateway")
        assert marked(app) == {"count": "3 is greater than the maximum of 2"}
        assert app.screen.phase == "form"
        assert await engine.list_runs() == []
