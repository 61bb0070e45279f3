"""A form for one resource: its fields, each with its own error line, and a banner above for the rest."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Label, Static

from gateway_daemon.core import AlreadyExists, GatewayError, InvalidArgument

from ..widgets.form import FormField
from .base import SectionScreen


def error_fields(error: GatewayError, creating: bool) -> dict[str, str]:
    """The fields an error from the gateway is about, field -> message: an InvalidArgument's own fields;
    a name already taken when creating is about the name. Empty when it is about no one field."""
    if isinstance(error, InvalidArgument):
        return dict(error.fields)
    if isinstance(error, AlreadyExists) and creating:
        return {"name": str(error)}
    return {}


class FormScreen(SectionScreen):
    """A form for one resource. Dismisses with the saved resource's name, or None when cancelled.

    Errors are kept by field (`errors`, named as the gateway names them: `private_key_name`, `timeout`);
    a field the form shows gets its message inline, any other goes to the banner above the form.
    """

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", tooltip="Save this form"),
        Binding("escape", "cancel", "Cancel", tooltip="Leave without saving"),
    ]
    NOUN: ClassVar[str] = ""
    # CLI flags the gateway's messages use that are not `--` and the field's name with dashes: flag -> field
    FLAG_FIELDS: ClassVar[dict[str, str]] = {}

    def __init__(self, resource: Any | None = None):
        super().__init__()
        self.resource = resource
        self.editing = resource is not None
        self.errors: dict[str, str] = {}
        self.general = ""  # an error about no one field

    def compose_body(self) -> ComposeResult:
        title = f"Edit {self.NOUN} {self.resource.name}" if self.editing else f"New {self.NOUN}"
        yield Label(Content(title), id="form-title")
        yield Static("", id="form-error")
        with VerticalScroll(id="form"):
            yield from self.fields()
        yield Static(Content.from_markup("[b]ctrl+s[/b] save   [b]esc[/b] cancel   [$text-error]*[/] required"),
                     id="form-hint")

    def fields(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one("#form-error", Static).display = False
        for field in self.query(FormField):
            field.set_error(None)
        first = next((w for w in self.query("#form Input, #form Select, #form TextArea") if not w.disabled), None)
        if first is not None:
            first.focus()

    # ------------------------------------------------------------ errors
    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, self.in_form_words(message))

    _FLAG_RE = re.compile(r"--([a-z][a-z0-9-]*)")

    def in_form_words(self, message: str) -> str:
        """A message of the gateway (written for the CLI) as the form says it: a flag this form has a field for
        becomes that field's label ('needs --filename' -> 'needs "Filename"')."""
        labels = {field.field: field.label for field in self.query(FormField)}

        def label(match: re.Match) -> str:
            flag = match.group(0)
            field = self.FLAG_FIELDS.get(flag, match.group(1).replace("-", "_"))
            return f'"{labels[field]}"' if field in labels else flag

        return self._FLAG_RE.sub(label, message)

    def fail_with(self, error: GatewayError) -> None:
        """The fields `error` names become this form's errors; an error naming none goes above the form."""
        fields = error_fields(error, creating=not self.editing)
        for field, message in fields.items():
            self.fail(field, message)
        if not fields:
            self.general = self.in_form_words(str(error))

    def show_errors(self) -> None:
        shown = {field.field: field for field in self.query(FormField)}
        for field in shown.values():
            field.set_error(self.errors.get(field.field))
        marked = [name for name in self.errors if name in shown]
        count = len(marked)
        lines = [f"{count} field{'s' if count > 1 else ''} need{'' if count > 1 else 's'} attention"] if count else []
        lines += [message for name, message in self.errors.items() if name not in shown]
        if self.general:
            lines.append(self.general)
        banner = self.query_one("#form-error", Static)
        banner.update(Content("\n".join(lines)))
        banner.display = bool(lines)
        if marked:
            shown[next(name for name in shown if name in self.errors)].scroll_visible()

    def gateway_error(self, error: GatewayError) -> None:
        """An error from the gateway: inline at the fields it names, else above the form."""
        self.errors, self.general = {}, ""
        self.fail_with(error)
        self.show_errors()

    # ------------------------------------------------------------ actions
    def collect(self) -> dict[str, Any]:
        raise NotImplementedError

    async def save(self, values: dict[str, Any]) -> str:
        raise NotImplementedError

    async def action_save(self) -> None:
        self.errors, self.general = {}, ""
        values = self.collect()
        if self.errors or self.general:
            self.show_errors()
            return
        try:
            name = await self.save(values)
        except GatewayError as exc:
            self.gateway_error(exc)
            return
        self.notify(f"Saved {self.NOUN} {name}", timeout=3)
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)


def split_words(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text.strip()) if part]
