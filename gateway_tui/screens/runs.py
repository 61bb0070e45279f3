"""Runs: the history, filtered by service and status; open one's output, or run it again."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup
from textual.content import Content
from textual.widgets import Label, Select, Static

from gateway_daemon.core import GatewayError

from ..widgets.resource_table import ResourceTable
from ..widgets.run_table import RunTable
from .base import SectionScreen

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "timed-out", "interrupted")
HISTORY_LIMIT = 1000
REFRESH_SECONDS = 2.0


class RunsScreen(SectionScreen):
    SECTION = "runs"
    AUTO_FOCUS = "ResourceTable"
    BINDINGS = [
        Binding("enter", "open", "Output", tooltip="Show the selected run's output"),
        Binding("r", "again", "Run again", tooltip="Run the selected run's service again with the same inputs"),
        Binding("c", "cancel_run", "Cancel", tooltip="Cancel the selected run"),
        Binding("f", "focus_filter", "Filter", tooltip="Filter the runs by service and status"),
        Binding("s", "sort", "Sort", show=False, tooltip="Sort by the next column (again: reverse)"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, tooltip="Reload the run history"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        with HorizontalGroup(id="runs-filters"):
            yield Label("Service", classes="filter-label")
            yield Select([], id="service-filter", compact=True, prompt="all services")
            yield Label("Status", classes="filter-label")
            yield Select([(s, s) for s in STATUSES], id="status-filter", compact=True, prompt="all statuses")
            yield Label("", id="count")
        # The runner column is for a server's runs (local mode runs everything in this process).
        local = getattr(self.app, "gateway_mode", "local") == "local"
        yield RunTable(["id", "service", "status", "when", "duration", "exit", "by",
                        *(() if local else ("runner",)), "reason"], id="table")
        yield Static(Content("No runs yet. Run a service from 1 Services (select it, press r)."), id="empty",
                     classes="empty-hint")

    @property
    def table(self) -> RunTable:
        return self.query_one(RunTable)

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._refresh_now)

    async def on_screen_resume(self) -> None:
        await self.reload()

    async def _refresh_now(self) -> None:
        if self.is_current:
            await self.reload(quiet=True)

    async def reload(self, quiet: bool = False) -> None:
        if not self.showing:
            return
        service = self.query_one("#service-filter", Select).value
        status = self.query_one("#status-filter", Select).value
        try:
            runs = await self.gateway.list_runs(service=service if isinstance(service, str) else None,
                                                status=status if isinstance(status, str) else None,
                                                limit=HISTORY_LIMIT)
            services = sorted(s.name for s in await self.gateway.list("service"))
        except GatewayError as exc:
            if not quiet:
                self.report(exc, "Cannot read the run history")
            return
        if not self.showing:  # the screen went while the history was read
            return
        self._set_service_options(services, service if isinstance(service, str) else None)
        app: Any = self.app
        self.runs = {r.id: r for r in runs}
        self.table.set_runs(runs, app.tz, app.clock())
        filtered = isinstance(service, str) or isinstance(status, str)
        self.query_one("#count", Label).update(f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
                                               + (" (filtered)" if filtered else ""))
        self.query_one("#empty").display = not runs
        self.table.display = bool(runs)
        if not runs and filtered:
            self.query_one("#empty", Static).update(Content("No runs match these filters."))

    def _set_service_options(self, services: list[str], current: str | None) -> None:
        select = self.query_one("#service-filter", Select)
        if getattr(self, "_services", None) == services:
            return
        self._services = services
        with select.prevent(Select.Changed):
            select.set_options([(s, s) for s in services])
            if current in services:
                select.value = current

    @on(Select.Changed)
    async def _filter_changed(self) -> None:
        await self.reload()

    @property
    def selected(self) -> Any | None:
        key = self.table.cursor_key
        return self.runs.get(key) if key else None

    def _need_selection(self) -> Any | None:
        run = self.selected
        if run is None:
            self.notify("No run selected", severity="warning", timeout=3)
        return run

    def action_open(self) -> None:
        run = self._need_selection()
        if run is not None:
            self.app.open_run_output(run.id)  # type: ignore[attr-defined]

    @on(ResourceTable.Selected)
    def _selected(self) -> None:
        self.action_open()

    def action_again(self) -> None:
        run = self._need_selection()
        if run is not None:
            self.app.open_run(run.service, inputs=run.inputs)  # type: ignore[attr-defined]

    async def action_cancel_run(self) -> None:
        run = self._need_selection()
        if run is None:
            return
        try:
            await self.gateway.cancel_run(run.id)
        except GatewayError as exc:
            self.report(exc, "Cannot cancel the run")
            return
        self.notify(f"Cancelling {run.id}…", timeout=2)
        await self.reload()

    def action_focus_filter(self) -> None:
        self.query_one("#service-filter", Select).focus()

    def action_sort(self) -> None:
        label = self.table.cycle_sort()
        self.notify(f"sorted by {label.lower()}", timeout=2)

    async def action_refresh(self) -> None:
        await self.reload()

    def key_escape(self) -> None:
        self.table.focus()
