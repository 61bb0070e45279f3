"""A section's list of resources: filter, sort, and new/edit/delete/details on the selected one."""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from gateway_daemon.core import GatewayError, PermissionDenied

from ..widgets.resource_table import Column, ResourceTable, TableRow
from .base import SectionScreen
from .confirm import ask_to_delete


def list_bindings(noun: str) -> list[Binding]:
    return [
        Binding("slash", "filter", "Filter", tooltip=f"Filter the {noun} list as you type"),
        Binding("n", "new", "New", tooltip=f"New {noun}"),
        Binding("e", "edit", "Edit", tooltip=f"Edit the selected {noun}"),
        Binding("d", "delete", "Delete", tooltip=f"Delete the selected {noun}"),
        Binding("enter", "details", "Details", tooltip=f"Show the selected {noun}"),
        Binding("s", "sort", "Sort", show=False, tooltip="Sort by the next column (again: reverse)"),
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
        self.refused = ""  # the server's refusal to list these for this user ('' when it lists them)
        self.opening = False  # a form of this list was closed and the list is not yet read again: keys wait
        self.reading = False  # the first list is read once local mode's engine is open: keys wait (q quits)

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.unavailable and any(b.action == action for bs in self._bindings.key_to_bindings.values() for b in bs):
            return False  # a section this mode does not have: nothing of the list's to do
        return super().check_action(action, parameters)

    def on_mount(self) -> None:
        self._watching = getattr(self.app, "generation", 0)
        self.watch_changes()

    async def on_screen_resume(self) -> None:
        # A new login (client mode) or a watch the server ended: follow the changes again.
        generation = getattr(self.app, "generation", 0)
        if self._watching is not None and self._watching != generation:
            self._watching = generation
            self.watch_changes()
        if self.gateway_opening:  # the first screen: drawn while the engine opens, read once it is; keys wait
            self.reading = True
            self.run_worker(self._first_read(), group="first-read", exit_on_error=False)
            return
        await self.reload()

    async def _first_read(self) -> None:
        try:
            await self.gateway.opened()  # type: ignore[attr-defined]
            await self.reload()
        except Exception:  # noqa: BLE001 - the engine did not open: the app ends and says why
            return
        finally:
            self.reading = False

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
        if self.unavailable or not self.showing:
            return
        try:
            resources = await self.fetch()
        except PermissionDenied as exc:  # not this user's to see: nothing stays on screen, the reason does
            self.report_once(exc, f"Cannot list {self.PLURAL}")
            self._show_refused(str(exc))
            return
        except GatewayError as exc:
            self.report_once(exc, f"Cannot list {self.PLURAL}")
            return
        if not self.showing:  # the screen went while the list was read
            return
        self.failing = False
        if self.refused:
            self._show_refused("")
        self.resources = {self.key_of(r): r for r in resources}
        self.table.set_rows(self.rows(resources))
        self._update_counts()

    def _show_refused(self, reason: str) -> None:
        """The list refused (`reason`): no rows, the refusal where they were; '' puts the usual hint back."""
        self.refused = reason
        self.resources = {}
        self.table.set_rows([])
        self.query_one("#empty", Static).update(Content(reason) if reason else Content.from_markup(self.EMPTY))
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
        if self.unavailable:
            return
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
        self.opening = True
        self.app.push_screen(self.form(None), self._saved)

    def action_edit(self) -> None:
        resource = self._need_selection()
        if resource is not None:
            self.opening = True
            self.app.push_screen(self.form(resource), self._saved)

    def action_details(self) -> None:
        resource = self._need_selection()
        if resource is not None:
            self.app.push_screen(self.details(resource))

    async def _saved(self, name: str | None) -> None:
        """The form closed: the list shows what it saved, selected (a key typed at once is about it)."""
        try:
            if name:
                await self.reload()
                self.select(name)
        finally:
            self.opening = False

    def action_delete(self) -> None:
        resource = self._need_selection()
        if resource is not None and self.may_delete(resource):
            ask_to_delete(self, self.KIND, self.NOUN, resource.name, self.reload)

    def may_delete(self, resource: Any) -> bool:
        """Whether `resource` can be deleted at all (else say why); asked before the question is put."""
        return True
