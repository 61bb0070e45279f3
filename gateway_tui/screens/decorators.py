"""Decorators: the JSON Schema of a service's inputs, with an editor that checks it as you type."""

from __future__ import annotations

import json
from typing import Any, Iterable

from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Input, Static, TextArea

from gateway_daemon.core import Decorator, InvalidArgument

from ..formatting import full_time
from ..widgets.form import FormField
from ..widgets.json_editor import JsonEditor, json_error
from ..widgets.resource_table import Column, TableRow
from .details import DetailsScreen
from .form import FormScreen
from .resource_list import ResourceListScreen, list_bindings

TEMPLATE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "what the script is called with"},
    },
    "required": ["name"],
}


def schema_summary(schema: dict[str, Any]) -> str:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [k for k in schema.get("required") or [] if k in properties]
    return ", ".join([f"{k}*" for k in required] + [k for k in properties if k not in required])


class DecoratorsScreen(ResourceListScreen):
    SECTION = "decorators"
    KIND, NOUN, PLURAL = "decorator", "decorator", "decorators"
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=28),
        Column("fields", "Fields (* required)", min_width=10, max_width=60),
        Column("description", "Description", min_width=0, max_width=60, grow=True),
    ]
    EMPTY = ("No decorators yet.\n\nA decorator is a JSON Schema: the form a service's inputs must fill. "
             "Press [b]n[/b] to write one.")
    BINDINGS = list_bindings("decorator")

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        for d in resources:
            yield TableRow(d.name, (d.name, schema_summary(d.schema),
                                    d.description.splitlines()[0] if d.description else ""),
                           (None, None, "muted"))

    def form(self, resource: Any | None) -> "DecoratorFormScreen":
        return DecoratorFormScreen(resource)

    def details(self, resource: Any) -> "DecoratorDetailsScreen":
        return DecoratorDetailsScreen(resource.name)


class DecoratorFormScreen(FormScreen):
    SECTION = "decorators"
    NOUN = "decorator"

    def fields(self) -> ComposeResult:
        d: Decorator = self.resource or Decorator(name="", schema=TEMPLATE)
        yield FormField("name", "Name", Input(d.name, id="name", placeholder="vlan-form", compact=True,
                                              disabled=self.editing), "letters, digits, - _ . (1-64)",
                        required=True)
        yield FormField("description", "Description", Input(d.description, id="description", compact=True))
        editor = JsonEditor(json.dumps(d.schema, indent=2), id="schema")
        yield FormField("schema", "Schema", editor, " ", required=True)

    def on_mount(self) -> None:
        super().on_mount()
        self._check_live()

    @on(TextArea.Changed, "#schema")
    def _check_live(self) -> None:
        """The line under the editor says at once whether the schema is valid."""
        text = self.query_one("#schema", JsonEditor).text
        status = self.query_one("#field-schema .field-help", Static)
        problem = self._schema_problem(text)
        if problem is None:
            schema = json.loads(text)
            fields = schema_summary(schema)
            status.update(Content.styled("✔ valid JSON Schema", "$text-success") +
                          Content(f" · fields: {fields}" if fields else " · no fields"))
        else:
            status.update(Content.styled(f"✖ {problem}", "$text-warning"))

    def _schema_problem(self, text: str) -> str | None:
        error = json_error(text)
        if error is not None:
            message, line, column = error
            return f"line {line}, column {column}: {message}"
        try:
            Decorator(name="check", schema=json.loads(text)).validate()
        except InvalidArgument as exc:
            return str(exc).removeprefix("decorator check: ")
        return None

    def collect(self) -> dict[str, Any]:
        name = self.query_one("#name", Input).value.strip()
        description = self.query_one("#description", Input).value
        editor = self.query_one("#schema", JsonEditor)
        schema: Any = None
        error = json_error(editor.text)
        if error is not None:
            message, line, column = error
            self.fail("schema", f"not valid JSON at line {line}, column {column}: {message}")
            editor.move_cursor((line - 1, max(0, column - 1)))
        else:
            schema = json.loads(editor.text)
        if not name:
            self.fail("name", "a name is required")
        if not self.errors:
            try:
                Decorator(name=name, schema=schema, description=description).validate()
            except InvalidArgument as exc:
                self.fail_with(exc)
        return dict(name=name, description=description, schema=schema)

    async def save(self, values: dict[str, Any]) -> str:
        if self.editing:
            await self.gateway.update("decorator", self.resource.name,
                                      {"schema": values["schema"], "description": values["description"]})
            return self.resource.name
        return (await self.gateway.create(Decorator(**values))).name


class DecoratorDetailsScreen(DetailsScreen):
    SECTION = "decorators"
    KIND, NOUN = "decorator", "decorator"

    def compose_extra(self) -> ComposeResult:
        yield JsonEditor("", id="schema-view", read_only=True)

    def pairs(self, d: Any) -> Iterable[tuple[str, Any]]:
        app: Any = self.app
        return [("fields", schema_summary(d.schema)), ("description", d.description),
                ("created", full_time(d.created_at, app.tz)), ("updated", full_time(d.updated_at, app.tz))]

    async def load_extra(self) -> None:
        self.query_one("#schema-view", JsonEditor).load_text(json.dumps(self.resource.schema, indent=2))

    def form(self) -> DecoratorFormScreen:
        return DecoratorFormScreen(self.resource)
