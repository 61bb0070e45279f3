"""The inputs of a run: a form generated from the decorator's JSON Schema, or free key=value rows.

Both take what is typed as it is; the gateway's own coercion (core.runs.coerce_inputs) turns it into
values and says what is wrong, by field (`inputs.<name>`), exactly as it will when the run starts.
"""

from __future__ import annotations

import json
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import HorizontalGroup, VerticalGroup
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from gateway_daemon.core.runs.records import coerce_inputs
from gateway_daemon.core.resources.secrets import MASK

from .form import FormField


def _types(prop: dict[str, Any]) -> list[str]:
    kind = prop.get("type")
    return kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []


def _hint(prop: dict[str, Any]) -> str:
    """The description, then the rules a person should know before typing."""
    parts = [prop.get("description", "")] if prop.get("description") else []
    rules = []
    if "minimum" in prop and "maximum" in prop:
        rules.append(f"{prop['minimum']}–{prop['maximum']}")
    elif "minimum" in prop:
        rules.append(f"at least {prop['minimum']}")
    elif "maximum" in prop:
        rules.append(f"at most {prop['maximum']}")
    if "minLength" in prop:
        rules.append(f"at least {prop['minLength']} characters")
    if "maxLength" in prop:
        rules.append(f"at most {prop['maxLength']} characters")
    if "pattern" in prop:
        rules.append(f"matches {prop['pattern']}")
    kinds = _types(prop)
    if "array" in kinds:
        rules.append('JSON list, e.g. ["a", "b"]')
    elif "object" in kinds:
        rules.append('JSON object, e.g. {"key": "value"}')
    if "default" in prop:
        rules.append(f"default {json.dumps(prop['default'])}")
    if rules:
        parts.append("(" + "; ".join(rules) + ")")
    return " ".join(parts)


def _display(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class SchemaForm(VerticalGroup):
    """One field per property of `schema`; `collect()` returns inputs and problems by field."""

    DEFAULT_CSS = """
    SchemaForm > .field-help { color: $text-muted; height: auto; }
    """

    def __init__(self, schema: dict[str, Any], values: dict[str, Any] | None = None, id: str | None = None):
        super().__init__(id=id, classes="schema-form")
        self.schema = schema
        self.values = values or {}
        properties = schema.get("properties")
        properties = {k: v for k, v in (properties.items() if isinstance(properties, dict) else [])
                      if isinstance(v, dict)}
        required = [k for k in schema.get("required") or [] if k in properties]
        self.required = set(required)
        # Stored schemas keep no key order: the required fields first, as the schema lists them, then the rest.
        self.properties: dict[str, dict[str, Any]] = {
            **{k: properties[k] for k in required}, **{k: v for k, v in properties.items() if k not in self.required}
        }

    def compose(self) -> ComposeResult:
        if not self.properties:
            yield Static(Content("This service's decorator declares no fields: it runs without inputs."),
                         classes="field-help")
        for key, prop in self.properties.items():
            yield FormField(key, prop.get("title") or key, self._control(key, prop), _hint(prop),
                            required=key in self.required)

    def _control(self, key: str, prop: dict[str, Any]) -> Widget:
        given = self.values.get(key, prop.get("default"))
        if given == MASK:
            given = None
        kinds = _types(prop)
        widget_id = f"input-{key}"
        if isinstance(prop.get("enum"), list):
            options = [(_display(v), i) for i, v in enumerate(prop["enum"])]
            value = prop["enum"].index(given) if given in prop["enum"] else Select.NULL
            return Select(options, value=value, id=widget_id, compact=True, prompt="choose",
                          allow_blank=value is Select.NULL or key not in self.required)
        if kinds == ["boolean"]:
            return Checkbox("yes", bool(given), id=widget_id, compact=True)
        secret = bool(prop.get("writeOnly")) or prop.get("format") == "password"
        text = "" if given is None else _display(given)
        if kinds == ["integer"]:
            return Input(text, id=widget_id, type="integer", compact=True)
        if kinds == ["number"]:
            return Input(text, id=widget_id, type="number", compact=True)
        placeholder = {"array": '["a", "b"]', "object": '{"key": "value"}'}.get(kinds[0] if kinds else "", "")
        return Input(text, id=widget_id, password=secret, compact=True, placeholder=placeholder)

    def typed(self) -> dict[str, Any]:
        """What is filled in, as typed: text (trimmed, but for a secret), a choice, a tick; empty is not given."""
        typed: dict[str, Any] = {}
        for key, prop in self.properties.items():
            control = self.query_one(f"#input-{key}")
            if isinstance(control, Select):
                if control.value is not Select.NULL:
                    typed[key] = prop["enum"][control.value]  # type: ignore[index]
                continue
            if isinstance(control, Checkbox):
                typed[key] = control.value
                continue
            assert isinstance(control, Input)
            text = control.value if prop.get("writeOnly") or prop.get("format") == "password" \
                else control.value.strip()
            if text != "":
                typed[key] = text
        return typed

    def collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(inputs, problems by field): the gateway's own coercion, defaults and checks."""
        return coerce_inputs(self.schema, self.typed())

    def show_errors(self, problems: dict[str, str]) -> dict[str, str]:
        """Marks the fields `problems` names (`inputs.<name>`); returns the problems about fields not shown."""
        for field in self.query(FormField):
            field.set_error(problems.get(f"inputs.{field.field}"))
        shown = {f"inputs.{key}" for key in self.properties}
        return {field: message for field, message in problems.items() if field not in shown}


class KeyValueRows(VerticalGroup):
    """Free inputs, for a service without a decorator: key = value rows; a new row appears as you type."""

    DEFAULT_CSS = """
    KeyValueRows {
        & > .field-help { color: $text-muted; height: auto; }
        & > .field-error { color: $text-error; height: auto; }
        & .kv-row { height: 1; margin: 0 0 1 0; }
        & .kv-key { width: 24; }
        & .kv-equals { width: 3; color: $text-muted; }
        & .kv-value { width: 1fr; max-width: 60; }
    }
    """

    def __init__(self, values: dict[str, Any] | None = None, id: str | None = None):
        super().__init__(id=id, classes="key-value-rows")
        self.initial = [(k, _display(v)) for k, v in (values or {}).items()]

    def compose(self) -> ComposeResult:
        yield Static(Content("No decorator: inputs are free key=value pairs, passed as text."),
                     classes="field-help")
        for key, value in [*self.initial, ("", "")]:
            yield self._row(key, value)
        yield Static("", classes="field-error", id="rows-error")

    def _row(self, key: str, value: str) -> HorizontalGroup:
        return HorizontalGroup(
            Input(key, placeholder="key", classes="kv-key", compact=True),
            Label(" = ", classes="kv-equals"),
            Input(value, placeholder="value", classes="kv-value", compact=True),
            classes="kv-row",
        )

    def on_mount(self) -> None:
        self.query_one("#rows-error").display = False

    @on(Input.Changed, ".kv-key")
    def _grow(self, event: Input.Changed) -> None:
        rows = list(self.query(".kv-row"))
        if event.value and event.input.parent is rows[-1]:
            self.mount(self._row("", ""), before=self.query_one("#rows-error"))

    def collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(inputs, problems): the rows as text; a row without a key, or a key twice, is a problem of `inputs`."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for number, row in enumerate(self.query(".kv-row"), 1):
            key = row.query_one(".kv-key", Input).value.strip()
            value = row.query_one(".kv-value", Input).value
            if not key:
                if value:
                    problems.append(f"row {number}: a value without a key")
                continue
            if key in values:
                problems.append(f"row {number}: {key!r} is given twice")
            values[key] = value
        return values, {"inputs": "; ".join(problems)} if problems else {}

    def show_errors(self, problems: dict[str, str]) -> dict[str, str]:
        """Every problem under the rows (they are about the inputs as a whole); none is left for elsewhere."""
        error = self.query_one("#rows-error", Static)
        error.update(Content("; ".join(problems.values())))
        error.display = bool(problems)
        return {}
