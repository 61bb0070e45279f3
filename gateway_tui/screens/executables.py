"""Executable objects: the interpreters and binaries services may run, defined by admins (the SYSTEM action)."""

from __future__ import annotations

import shlex
from typing import Any, Iterable

from textual.app import ComposeResult
from textual.widgets import Input

from gateway_daemon.core import InvalidArgument
from gateway_daemon.core.resources.executables import ExecutableObject
from gateway_daemon.core.transfer.iag5 import arg_format as iag5_arg_format
from gateway_daemon.core.access.roles import Action
from gateway_daemon.core.resources.services import DEFAULT_ARG_FORMAT

from ..formatting import full_time
from ..widgets.form import FormField
from ..widgets.resource_table import Column, TableRow
from .base import ROLE_ACTIONS
from .details import DetailsScreen
from .form import FormScreen
from .resource_list import ResourceListScreen, list_bindings

# Defining what services may run is for admins (core/policy.py): other roles see these keys greyed out.
SYSTEM_ACTIONS = {**ROLE_ACTIONS, "new": Action.SYSTEM, "edit": Action.SYSTEM, "delete": Action.SYSTEM}


class ExecutablesScreen(ResourceListScreen):
    SECTION = "executables"
    KIND, NOUN, PLURAL = "executable-object", "executable object", "executable objects"
    ROLE_ACTIONS = SYSTEM_ACTIONS
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=24),
        Column("command", "Command", min_width=12, max_width=48),
        Column("arg_format", "Arg format", min_width=8, max_width=24),
        Column("description", "Description", min_width=0, max_width=60, grow=True),
    ]
    EMPTY = ("No executable objects yet.\n\nAn executable object is an interpreter or binary (with its options) "
             "that executable services may name to run their file. Admins define them: press [b]n[/b] to add one.")
    BINDINGS = list_bindings("executable object")

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        for x in resources:
            default = x.arg_format == DEFAULT_ARG_FORMAT
            yield TableRow(x.name, (x.name, x.exec_command, x.arg_format,
                                    x.description.splitlines()[0] if x.description else ""),
                           (None, None, "muted" if default else None, "muted"))

    def form(self, resource: Any | None) -> "ExecutableFormScreen":
        return ExecutableFormScreen(resource)

    def details(self, resource: Any) -> "ExecutableDetailsScreen":
        return ExecutableDetailsScreen(resource.name)


class ExecutableFormScreen(FormScreen):
    SECTION = "executables"
    NOUN = "executable object"

    def fields(self) -> ComposeResult:
        x: ExecutableObject = self.resource or ExecutableObject(name="")
        yield FormField("name", "Name", Input(x.name, id="name", placeholder="python311", compact=True,
                                              disabled=self.editing), "letters, digits, - _ . (1-64)",
                        required=True)
        yield FormField("exec_command", "Command", Input(x.exec_command, id="exec_command", compact=True,
                                                         placeholder="/usr/bin/python3.11 -u"),
                        "the interpreter or binary and its options, split as a shell would (never run "
                        "through one)", required=True)
        yield FormField("arg_format", "Arg format", Input(x.arg_format, id="arg_format", compact=True,
                                                          placeholder=DEFAULT_ARG_FORMAT),
                        "each input as arguments: {key}, {value} or IAG 5's {{.Key}}, {{.Value}}; "
                        f"empty: {DEFAULT_ARG_FORMAT}")
        yield FormField("description", "Description", Input(x.description, id="description", compact=True))

    def collect(self) -> dict[str, Any]:
        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        values = dict(name=text("name"), exec_command=text("exec_command"),
                      arg_format=self.query_one("#arg_format", Input).value or DEFAULT_ARG_FORMAT,
                      description=self.query_one("#description", Input).value)
        try:
            values["arg_format"] = iag5_arg_format(values["arg_format"])  # IAG 5's spelling, as `create` takes it
        except InvalidArgument as exc:
            self.fail_with(exc)
        if not values["name"]:
            self.fail("name", "a name is required")
        if not values["exec_command"]:
            self.fail("exec_command", "a command is required")
        if not self.errors:
            try:
                ExecutableObject(**values).validate()
            except InvalidArgument as exc:
                self.fail_with(exc)
        return values

    async def save(self, values: dict[str, Any]) -> str:
        if self.editing:
            await self.gateway.update("executable-object", self.resource.name,
                                      {k: v for k, v in values.items() if k != "name"})
            return self.resource.name
        return (await self.gateway.create(ExecutableObject(**values))).name


def split_command(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return [command]


class ExecutableDetailsScreen(DetailsScreen):
    SECTION = "executables"
    KIND, NOUN = "executable-object", "executable object"
    ROLE_ACTIONS = SYSTEM_ACTIONS

    def pairs(self, x: Any) -> Iterable[tuple[str, Any]]:
        app: Any = self.app
        return [("command", x.exec_command), ("split as", split_command(x.exec_command)), ("arg format", x.arg_format),
                ("description", x.description), ("created", full_time(x.created_at, app.tz)),
                ("updated", full_time(x.updated_at, app.tz))]

    def form(self) -> ExecutableFormScreen:
        return ExecutableFormScreen(self.resource)
