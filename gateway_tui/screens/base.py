"""What every section shares: the header, the navigation strip, the footer, and the list of resources."""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Static

from gateway_daemon.core import Gateway, GatewayError

from ..widgets.form import FormField
from ..widgets.navigation import NavBar
from ..widgets.resource_table import Column, ResourceTable, TableRow
from .confirm import ConfirmScreen


class SectionScreen(Screen):
    """A screen of one section: header, navigation, body, footer."""

    SECTION: ClassVar[str] = ""

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        yield NavBar(self.SECTION)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def gateway(self) -> Gateway:
        return self.app.gateway  # type: ignore[attr-defined]

    def report(self, error: BaseException, title: str = "") -> None:
        self.app.report(error, title)  # type: ignore[attr-defined]

    failing = False  # the last refresh failed, and said so

    def report_once(self, error: BaseException, title: str = "") -> None:
        """An error of a reload: said once, and not again until a reload has worked (reset `failing`)."""
        if not self.failing:
            self.report(error, title)
        self.failing = True

    @property
    def unavailable(self) -> str:
        """Why this section has nothing to show in this mode ('' when it has)."""
        return getattr(self.app, "unavailable_sections", {}).get(self.SECTION, "")

    def compose_unavailable(self, title: str) -> ComposeResult:
        yield Static(Content.styled(title, "bold"), classes="unavailable-title")
        yield Static(Content(self.unavailable), classes="unavailable")


def list_bindings(noun: str) -> list[Binding]:
    return [
        Binding("slash", "filter", "Filter", tooltip=f"Filter the {noun} list as you type"),
        Binding("n", "new", "New", tooltip=f"New {noun}"),
        Binding("e", "edit", "Edit", tooltip=f"Edit the selected {noun}"),
        Binding("d", "delete", "Delete", tooltip=f"Delete the selected {noun}"),
        Binding("enter", "details", "Details", tooltip=f"Show the selected {noun}"),
        Binding("s", "sort", "Sort", tooltip="Sort by the next column (again: reverse)"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, tooltip=f"Reload the {noun} list"),
    ]


class ResourceListScreen(SectionScreen):
    """A filterable, sortable table of one kind of resource, with new/edit/delete/details."""

    KIND: ClassVar[str] = ""
    NOUN: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""
    COLUMNS: ClassVar[list[Column]] = []
    EMPTY: ClassVar[str] = ""
    DEFAULT_SORT: ClassVar[str | None] = "name"
    AUTO_FOCUS = "ResourceTable"

    def __init__(self) -> None:
        super().__init__()
        self.resources: dict[str, Any] = {}
        self._reload_pending = False
        self._watching: int | None = None  # the app's login generation the watch follows; -1: it stopped
        self._last_sort: tuple[str | None, bool] | None = None

    def compose_body(self) -> ComposeResult:
        with HorizontalGroup(id="filter-bar"):
            yield Label("/", id="filter-key")
            yield Input(placeholder=f"filter {self.PLURAL}", id="filter", compact=True)
            yield Label("", id="count")
        table = ResourceTable([Column(**vars(c)) for c in self.COLUMNS], id="table")
        table.sort_key = self.DEFAULT_SORT
        yield table
        yield Static(Content.from_markup(self.EMPTY), id="empty", classes="empty-hint")

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    def on_mount(self) -> None:
        self._watching = getattr(self.app, "generation", 0)
        self.watch_changes()

    async def on_screen_resume(self) -> None:
        # A new login (client mode) or a watch the server ended: follow the changes again.
        generation = getattr(self.app, "generation", 0)
        if self._watching is not None and self._watching != generation:
            self._watching = generation
            self.watch_changes()
        await self.reload()

    @work(group="watch", exclusive=True)
    async def watch_changes(self) -> None:
        """Reload when anyone (this app or another `gateway` process) changes this kind."""
        try:
            async for _event, _name in self.gateway.watch(self.KIND):
                if not self._reload_pending:
                    self._reload_pending = True
                    self.set_timer(0.2, self._reload_from_watch)
        except GatewayError:
            self._watching = -1  # restarted on the next resume
            return

    async def _reload_from_watch(self) -> None:
        self._reload_pending = False
        await self.reload()

    # ------------------------------------------------------------ data
    async def fetch(self) -> list[Any]:
        return await self.gateway.list(self.KIND)

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        raise NotImplementedError

    @staticmethod
    def key_of(resource: Any) -> str:
        """The row key of a resource (its name)."""
        return resource.name

    async def reload(self) -> None:
        if self.unavailable:
            return
        try:
            resources = await self.fetch()
        except GatewayError as exc:
            self.report_once(exc, f"Cannot list {self.PLURAL}")
            return
        self.failing = False
        self.resources = {self.key_of(r): r for r in resources}
        self.table.set_rows(self.rows(resources))
        self._update_counts()

    def _update_counts(self) -> None:
        table = self.table
        shown, total = table.row_count, table.total_count
        noun = self.NOUN if total == 1 else self.PLURAL
        text = f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}"
        self.query_one("#count", Label).update(text)
        empty = self.query_one("#empty", Static)
        empty.display = total == 0
        table.display = total > 0

    @property
    def selected(self) -> Any | None:
        key = self.table.cursor_key
        return self.resources.get(key) if key is not None else None

    def select(self, name: str | None) -> None:
        if name:
            self.table.move_to(name)

    # ------------------------------------------------------------ filter and sort
    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)
        self._update_counts()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def key_escape(self) -> None:
        field = self.query_one("#filter", Input)
        if field.value or field.has_focus:
            field.value = ""
            self.table.focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_sort(self) -> None:
        table = self.table
        if self._last_sort == (table.sort_key, table.sort_reverse) and table.sort_key and not table.sort_reverse:
            table.sort_by(table.sort_key, reverse=True)
        else:
            table.cycle_sort()
        self._last_sort = (table.sort_key, table.sort_reverse)
        label = next(c.label for c in table.columns if c.key == table.sort_key)
        self.notify(f"sorted by {label.lower()}{', reversed' if table.sort_reverse else ''}", timeout=2)

    async def action_refresh(self) -> None:
        self.failing = False  # asked for: say it again if it still fails
        await self.reload()

    @on(ResourceTable.Selected)
    def _selected(self) -> None:
        self.action_details()

    # ------------------------------------------------------------ actions
    def form(self, resource: Any | None) -> Screen:
        raise NotImplementedError

    def details(self, resource: Any) -> Screen:
        raise NotImplementedError

    def _need_selection(self) -> Any | None:
        resource = self.selected
        if resource is None:
            self.notify(f"No {self.NOUN} selected", severity="warning", timeout=3)
        return resource

    def action_new(self) -> None:
        self.app.push_screen(self.form(None), self._saved)

    def action_edit(self) -> None:
        resource = self._need_selection()
        if resource is not None:
            self.app.push_screen(self.form(resource), self._saved)

    def action_details(self) -> None:
        resource = self._need_selection()
        if resource is not None:
            self.app.push_screen(self.details(resource))

    async def _saved(self, name: str | None) -> None:
        if name:
            await self.reload()
            self.select(name)

    @work
    async def action_delete(self) -> None:
        resource = self._need_selection()
        if resource is None:
            return
        await self.delete(resource)

    async def delete(self, resource: Any) -> bool:
        """Ask, then delete; True when it was deleted."""
        deleted = await confirm_and_delete(self, self.KIND, self.NOUN, resource.name)
        if deleted:
            await self.reload()
        return deleted


async def confirm_and_delete(screen: Screen, kind: str, noun: str, name: str) -> bool:
    """Ask for a yes, then delete; errors become notifications. True when deleted. Call from a worker."""
    confirmed = await screen.app.push_screen_wait(
        ConfirmScreen(f"Delete {noun} {name}?", f"The {noun} '{name}' will be deleted. This cannot be undone.")
    )
    if not confirmed:
        return False
    try:
        await screen.app.gateway.delete(kind, name)  # type: ignore[attr-defined]
    except GatewayError as exc:
        screen.app.report(exc, f"Cannot delete {noun} {name}")  # type: ignore[attr-defined]
        return False
    screen.notify(f"Deleted {noun} {name}", timeout=3)
    return True


class FormScreen(SectionScreen):
    """A form for one resource. Dismisses with the saved resource's name, or None when cancelled."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", tooltip="Save this form"),
        Binding("escape", "cancel", "Cancel", tooltip="Leave without saving"),
    ]
    NOUN: ClassVar[str] = ""
    # (word in an error message, field it is about), most specific first.
    FIELD_WORDS: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, resource: Any | None = None):
        super().__init__()
        self.resource = resource
        self.editing = resource is not None
        self.errors: dict[str, str] = {}

    def compose_body(self) -> ComposeResult:
        from textual.containers import VerticalScroll

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
        self.errors.setdefault(field, message)

    def field_for(self, message: str) -> str | None:
        lowered = message.lower()
        return next((field for word, field in self.FIELD_WORDS if word in lowered), None)

    def show_errors(self, general: str = "") -> None:
        for field in self.query(FormField):
            field.set_error(self.errors.get(field.field))
        banner = self.query_one("#form-error", Static)
        count = len(self.errors)
        text = general or (f"{count} field{'s' if count > 1 else ''} need{'' if count > 1 else 's'} attention"
                           if count else "")
        banner.update(Content(text))
        banner.display = bool(text)
        if self.errors:
            first = next((f for f in self.query(FormField) if f.field in self.errors), None)
            if first is not None:
                first.scroll_visible()

    def gateway_error(self, error: GatewayError) -> None:
        """An error from the gateway: inline at the field it names, else above the form."""
        message = str(error)
        field = self.field_for(message)
        if field is not None and self.query(f"#field-{field}"):
            self.errors = {field: message}
            self.show_errors()
        else:
            self.errors = {}
            self.show_errors(message)

    # ------------------------------------------------------------ actions
    def collect(self) -> dict[str, Any]:
        raise NotImplementedError

    async def save(self, values: dict[str, Any]) -> str:
        raise NotImplementedError

    async def action_save(self) -> None:
        self.errors = {}
        values = self.collect()
        if self.errors:
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
    import re

    return [part for part in re.split(r"[\s,]+", text.strip()) if part]



def field_lines(pairs: Iterable[tuple[str, Any]], width: int = 16) -> Content:
    """`key  value` lines, keys muted and aligned."""
    lines = []
    for key, value in pairs:
        text = value if isinstance(value, str) else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        lines.append(Content.styled(key.ljust(width), "$foreground-muted") + Content(text or "—"))
    return Content("\n").join(lines)


class DetailsScreen(SectionScreen):
    """One resource, read only: its fields, and what to do with it."""

    BINDINGS = [
        Binding("e", "edit", "Edit", tooltip="Edit this resource"),
        Binding("d", "delete", "Delete", tooltip="Delete this resource"),
        Binding("escape", "back", "Back", tooltip="Back to the list"),
    ]
    KIND: ClassVar[str] = ""
    NOUN: ClassVar[str] = ""

    def __init__(self, name: str):
        super().__init__()
        self.name_ = name
        self.resource: Any = None

    def compose_body(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        yield Label(Content(f"{self.NOUN.capitalize()} {self.name_}"), id="details-title")
        with VerticalScroll(id="details"):
            yield Static("", id="fields")
            yield from self.compose_extra()

    def compose_extra(self) -> ComposeResult:
        yield from ()

    def pairs(self, resource: Any) -> Iterable[tuple[str, Any]]:
        raise NotImplementedError

    async def on_screen_resume(self) -> None:
        await self.load()

    async def load(self) -> None:
        try:
            self.resource = await self.gateway.get(self.KIND, self.name_)
        except GatewayError as exc:
            self.report(exc, f"Cannot show {self.NOUN} {self.name_}")
            self.dismiss()
            return
        self.query_one("#fields", Static).update(field_lines(self.pairs(self.resource)))
        await self.load_extra()

    async def load_extra(self) -> None:
        pass

    def form(self) -> Screen:
        raise NotImplementedError

    def action_edit(self) -> None:
        if self.resource is not None:
            self.app.push_screen(self.form())

    @work
    async def action_delete(self) -> None:
        if await confirm_and_delete(self, self.KIND, self.NOUN, self.name_):
            self.dismiss()

    def action_back(self) -> None:
        self.dismiss()
