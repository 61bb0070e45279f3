"""Runners: the `gateway-daemon`s in runner mode that a server sends runs to, as the cluster's registry has them.

The registry has no watch through the API, so the list reloads every few
seconds (which also keeps "last seen" honest).  A runner's details list the
runs it ran, newest first; enter opens one's output.  Local mode runs
everything in its own process, so there the section only says why it is empty.
"""

from __future__ import annotations

from typing import Any, Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Label, Static

from gateway_daemon.core import GatewayError

from ..formatting import ago as time_ago, duration, full_time
from ..widgets.resource_table import Column, ResourceTable, TableRow
from ..widgets.run_table import RunTable
from .base import SectionScreen
from .details import field_lines
from .resource_list import ResourceListScreen

REFRESH_SECONDS = 2.0
HISTORY_LIMIT = 200  # a runner's details show its newest runs


def state(runner: Any) -> tuple[str, str]:
    """(what the runner does now, its table style)."""
    if runner.problem:
        return f"refuses work: {runner.problem}", "error"
    if runner.draining:
        return "draining", "warning"
    if runner.load >= runner.capacity:
        return "busy", "warning"
    return "ready", "success"


def ago(moment: float, now: float) -> str:
    return time_ago(moment, now)


def load(runner: Any) -> str:
    return f"{runner.load}/{runner.capacity}"


def load_style(runner: Any) -> str | None:
    return "muted" if not runner.load else "warning" if runner.load >= runner.capacity else "accent"


def name(runner: Any) -> str:
    """Its id (host:port, as runs name it), and where servers reach it when that is elsewhere."""
    return runner.id if runner.target == runner.id else f"{runner.id} → {runner.target}"


class RunnersScreen(ResourceListScreen):
    SECTION = "runners"
    KIND, NOUN, PLURAL = "runner", "runner", "runners"
    COLUMNS = [
        Column("id", "Runner", min_width=12, max_width=40, whole=True, priority=0),
        Column("tags", "Tags", min_width=4, max_width=24, priority=2),
        Column("load", "Load", min_width=4, max_width=6, whole=True),
        Column("seen", "Last seen", min_width=8, max_width=12, whole=True),
        Column("up", "Up", min_width=0, max_width=10, priority=3),
        Column("version", "Version", min_width=0, max_width=10, priority=3),
        Column("state", "State", min_width=5, max_width=24, grow=True, whole=True, priority=0),
    ]
    DEFAULT_SORT = "id"
    EMPTY = ("No runners in this cluster.\n\nA runner is [b]gateway-daemon[/b] with [b]mode = runner[/b] on the "
             "same etcd and [b]cluster_id[/b]; it shows here as soon as it starts, and a server with "
             "[b]distributed_execution = true[/b] sends it runs.")
    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="Filter the runners as you type (id, address, tags, state)"),
        Binding("enter", "details", "Details", tooltip="Show the selected runner and the runs it ran"),
        Binding("s", "sort", "Sort", show=False, tooltip="Sort by the next column (again: reverse)"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, tooltip="Reload the runners"),
    ]

    def compose_body(self) -> ComposeResult:
        if self.unavailable:
            yield from self.compose_unavailable("Runners")
        else:
            yield from super().compose_body()

    def on_mount(self) -> None:  # (Textual runs the base class's on_mount too, and its on_screen_resume)
        if not self.unavailable:
            self.set_interval(REFRESH_SECONDS, self._refresh_now)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.role_allows(action):
            return None
        return not self.unavailable or action not in {b.action for b in self.BINDINGS}

    def watch_changes(self) -> None:  # the registry is not watched through the API: the list refreshes itself
        pass

    async def _refresh_now(self) -> None:
        if self.is_current:
            await self.reload()

    async def fetch(self) -> list[Any]:
        return await self.gateway.list_runners()

    @staticmethod
    def key_of(resource: Any) -> str:
        return resource.id

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        now = self.app.clock()  # type: ignore[attr-defined]
        for r in resources:
            text, style = state(r)
            yield TableRow(r.id, (name(r), ", ".join(r.tags), load(r), ago(r.last_seen, now),
                                  duration(max(0.0, now - r.started_at)), r.version, text),
                           (None, None, load_style(r), "muted", "muted", "muted", style))

    def _update_counts(self) -> None:
        super()._update_counts()
        runners = list(self.resources.values())
        if runners:
            busy, slots = sum(r.load for r in runners), sum(r.capacity for r in runners)
            label = self.query_one("#count", Label)
            label.update(f"{label.render()} · {busy} of {slots} slots in use")

    def action_details(self) -> None:
        runner = self._need_selection()
        if runner is not None:
            self.app.push_screen(RunnerDetailsScreen(runner))


class RunnerDetailsScreen(SectionScreen):
    """One runner as the registry has it now, and the runs it ran (newest first)."""

    SECTION = "runners"
    BINDINGS = [
        Binding("enter", "open_run", "Output", tooltip="Show the selected run's output"),
        Binding("escape", "back", "Back", tooltip="Back to the runners"),
    ]

    def __init__(self, runner: Any):
        super().__init__()
        self.runner = runner
        self.gone = False

    def compose_body(self) -> ComposeResult:
        yield Label(Content(f"Runner {self.runner.id}"), id="details-title")
        with VerticalScroll(id="details"):
            yield Static("", id="fields")
            yield Label("Runs on this runner", classes="section-title")
            yield RunTable(["id", "service", "status", "when", "duration", "exit", "by", "reason"], id="runner-runs")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._refresh_now)

    async def on_screen_resume(self) -> None:
        await self.load()

    async def _refresh_now(self) -> None:
        if self.is_current:
            await self.load()

    def pairs(self) -> list[tuple[str, Any]]:
        r, now = self.runner, self.app.clock()  # type: ignore[attr-defined]
        tz = self.app.tz  # type: ignore[attr-defined]
        text, _ = state(r)
        if self.gone:
            text = "gone: no longer in the registry (it stopped, or its lease ran out)"
        elif r.draining:
            text = "draining: finishes the runs it has, takes no new ones"
        return [
            ("state", text),
            ("address", r.target), ("TLS", "on" if r.use_tls else "off"), ("tags", r.tags),
            ("load", f"{load(r)} runs at once"), ("last seen", ago(r.last_seen, now)),
            ("started", f"{full_time(r.started_at, tz)} (up {duration(max(0.0, now - r.started_at))})"),
            ("version", r.version),
        ]

    async def load(self) -> None:
        if not self.showing:
            return
        try:
            runners = {r.id: r for r in await self.gateway.list_runners()}
            runs = await self.gateway.list_runs(limit=HISTORY_LIMIT, runner=self.runner.id)
        except GatewayError as exc:
            self.report_once(exc, f"Cannot show runner {self.runner.id}")
            return
        if not self.showing:
            return
        self.failing = False
        self.gone = self.runner.id not in runners
        self.runner = runners.get(self.runner.id, self.runner)
        self.query_one("#fields", Static).update(field_lines(self.pairs()))
        app: Any = self.app
        table = self.query_one("#runner-runs", RunTable)
        table.set_runs(runs, app.tz, app.clock())
        table.display = bool(runs)
        self.query_one(".section-title", Label).update(Content(
            f"Runs on this runner ({len(runs)})" if runs else "No runs on this runner yet"))

    def action_open_run(self) -> None:
        key = self.query_one("#runner-runs", RunTable).cursor_key
        if key:
            self.app.open_run_output(key)  # type: ignore[attr-defined]

    @on(ResourceTable.Selected, "#runner-runs")
    def _run_selected(self, event: ResourceTable.Selected) -> None:
        event.stop()
        self.app.open_run_output(event.key)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.dismiss()
