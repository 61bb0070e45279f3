"""A form for one resource: its fields, each with its own error line, and a banner above for the rest."""

from __future__ import annotations

import asyncio
import re
from typing import Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static, TextArea

from gateway_daemon.core import AlreadyExists, GatewayError, InvalidArgument

from ..widgets.form import FormField
from .base import SectionScreen
from .confirm import UnsavedScreen


# The rows around a form's fields: header, navigation, the title and its margin, the form's top padding, the
# hint and the footer (app.tcss). What is below the rest of the screen is built once the screen is drawn.
CHROME_ROWS = 8


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

    A form first builds the fields a screenful shows; the rest are mounted after that is drawn (`_later`).
    Until its first field has the focus and every field is there, the form is `opening`: the keys typed meanwhile
    wait for it (the app's KeyOrder), so a fast tab never runs past the fields built so far. What it shows once
    built and loaded is its starting point: leaving with changes asks first.
    """

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", tooltip="Save this form"),
        Binding("escape", "cancel", "Cancel", tooltip="Leave without saving"),
    ]
    NOUN: ClassVar[str] = ""
    typed_into = True  # (SectionScreen)
    # CLI flags the gateway's messages use that are not `--` and the field's name with dashes: flag -> field
    FLAG_FIELDS: ClassVar[dict[str, str]] = {}

    def __init__(self, resource: Any | None = None):
        super().__init__()
        self.resource = resource
        self.editing = resource is not None
        self.errors: dict[str, str] = {}
        self.general = ""  # an error about no one field
        self._builds = 1  # fields being built: the first screenful and what is below it, or a type's own (services)
        self.loaded = asyncio.Event()  # set once every on_mount (a form's lists read from the gateway) is done
        self._started: dict[str, Any] | None = None  # the values the form started with, by control
        self._saving = False
        self._set_up = False
        self._resumed = False
        self._later: list[Widget] = []  # fields below the first screenful, mounted once it is drawn
        self.built = asyncio.Event()  # set once the fields after the first screenful are there too
        self.building = asyncio.Lock()  # held while fields are mounted (a save waits for them)

    def compose_body(self) -> ComposeResult:
        title = f"Edit {self.NOUN} {self.resource.name}" if self.editing else f"New {self.NOUN}"
        yield Label(Content(title), id="form-title")
        yield Static("", id="form-error")
        with VerticalScroll(id="form", can_focus=False):
            yield from self._first_fields()
        yield Static(Content.from_markup("[b]ctrl+s[/b] save   [b]esc[/b] cancel   [$text-error]*[/] required"),
                     id="form-hint")

    def fields(self) -> ComposeResult:
        yield from ()

    def _first_fields(self) -> ComposeResult:
        """The fields a screenful shows; what comes after them waits in `_later`."""
        rows = 0
        for widget in self.fields():
            if rows < self.app.size.height - CHROME_ROWS and not self._later:
                rows += widget.estimated_rows if isinstance(widget, FormField) else 1
                yield widget
            else:
                self._later.append(widget)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        """A form resumed for the first time was styled as it was built: of Textual's restyling of every widget
        at a resume (a fifth of a form's opening) only the focused field's is needed, for its `:focus-within`."""
        if self._resumed:
            return
        self._resumed = True
        event.refresh_styles = False
        field = next((w for w in self.focused.ancestors_with_self if isinstance(w, FormField)), None) \
            if self.focused is not None else None
        if field is not None:
            field.update_node_styles(animate=False)

    def on_mount(self) -> None:
        if self._set_up:  # once (a form's own on_mount calls it, and Textual calls it too)
            return
        self._set_up = True
        first = next((w for w in self.query("#form Input, #form Select, #form TextArea") if not w.disabled), None)
        if first is not None:
            self.set_focus(first)
        if not self._later:  # (else nothing can be typed before the later fields are there: see _mount_later)
            self.started_with(self.values())
            self._builds -= 1
            self.built.set()
        self.run_worker(self._load(), group="form-load")  # the form shows, then its lists fill in

    async def _load(self) -> None:
        try:
            if self._later:
                await self._mount_later()
            if self.showing:
                await self.load()
        finally:
            if self.showing:
                self._loaded()
            self.loaded.set()

    async def _mount_later(self) -> None:
        """The fields after the first screenful, once that is drawn; then the form takes keys."""
        drawn = asyncio.get_running_loop().create_future()
        self.call_after_refresh(lambda: drawn.done() or drawn.set_result(None))
        await drawn
        async with self.building:
            if self.showing:
                later, self._later = self._later, []
                await self.query_one("#form").mount_all(later)
            self.started_with(self.values())  # what every field starts with
        self._builds -= 1
        self.built.set()

    @property
    def opening(self) -> bool:
        """Fields are being built: the keys typed meanwhile wait (the app's KeyOrder), so none goes past them."""
        return self._builds > 0

    @property
    def settled(self) -> bool:
        """Every field is built and none is being built now."""
        return self._builds == 0 and not self.building.locked()

    async def load(self) -> None:
        """What a form reads from the gateway (its dropdowns' choices), once it shows with all its fields."""

    def started_with(self, values: dict[str, Any]) -> None:
        """The values controls start with (a control's first value counts; later ones are typed)."""
        self._started = {**values, **(self._started or {})}

    def _loaded(self) -> None:
        """The lists a form reads have filled its dropdowns: what they show now is where it starts."""
        started = self._started or {}
        now = self.values()
        for key, control in self._controls().items():
            if isinstance(control, Select) and started.get(key, Select.NULL) is Select.NULL:
                started[key] = now[key]
        self.loaded.set()

    # ------------------------------------------------------------ changes
    def _controls(self) -> dict[str, Widget]:
        return {w.id or f"#{i}": w for i, w in enumerate(self.query("#form Input, #form TextArea, #form Select, "
                                                                    "#form Checkbox"))}

    def values(self) -> dict[str, Any]:
        """What each control holds now."""
        values: dict[str, Any] = {}
        for key, control in self._controls().items():
            if isinstance(control, TextArea):
                values[key] = control.text
            elif isinstance(control, (Input, Select, Checkbox)):
                values[key] = control.value
        return values

    @property
    def changed(self) -> bool:
        """Whether anything was typed or chosen since the form opened (and not saved)."""
        if self._started is None:
            return False
        now = self.values()
        if not self.loaded.is_set():  # a dropdown still waiting for its choices was not chosen from yet
            now = {k: v for k, v in now.items() if not (v is not Select.NULL and self._started.get(k) is Select.NULL
                                                        and isinstance(self._controls().get(k), Select))}
        return any(self._started.get(k, v) != v for k, v in now.items())

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
        if self._saving:
            return
        self._saving = True
        try:
            await self.loaded.wait()  # ctrl+s typed before the lists were read: their choices count
            async with self.building:  # and before the fields being mounted are there
                pass
            await self._save()
        finally:
            self._saving = False

    async def _save(self) -> None:
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
        """Leave; with changes, ask first: save, discard them, or keep editing."""
        if not self.changed:
            self.dismiss(None)
            return

        async def answered(answer: str | None) -> None:
            if answer == "save":
                await self.action_save()
            elif answer == "discard" and self.is_current:
                self.dismiss(None)

        title = f"{self.NOUN} {self.resource.name}" if self.editing else f"the new {self.NOUN}"
        self.app.push_screen(UnsavedScreen(f"Leave {title}?"), answered)


def split_words(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text.strip()) if part]
