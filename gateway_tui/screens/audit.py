"""Audit: the server's trail of who did what, from where, to what, and how it ended (admins only).

Local mode keeps no trail: the section says so.  A user who is no admin sees the server's refusal in one line.
The newest events first; / filters them (by user, action, target, outcome), enter shows one in full.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Label, Static

from ..formatting import ago, full_time, sort_value
from ..widgets.resource_table import Column, TableRow
from .base import SectionScreen
from .details import field_lines
from .resource_list import ResourceListScreen

OUTCOME_STYLES = {"ok": "success", "succeeded": "success", "started": "accent", "refused": "error",
                  "failed": "error"}


class AuditScreen(ResourceListScreen):
    SECTION = "audit"
    KIND, NOUN, PLURAL = "audit", "event", "events"
    COLUMNS = [
        Column("time", "Time", min_width=6, max_width=10, whole=True, priority=0),
        Column("user", "User", min_width=5, max_width=16, whole=True, priority=0),
        Column("source", "Source", min_width=6, max_width=16, whole=True, priority=2),
        Column("action", "Action", min_width=6, max_width=10, whole=True, priority=0),
        Column("target", "Target", min_width=8, max_width=32, whole=True),
        Column("outcome", "Outcome", min_width=7, max_width=10, whole=True, priority=0),
        Column("detail", "Detail", min_width=8, max_width=80, grow=True),
    ]
    DEFAULT_SORT = None  # as the server sends them: newest first
    EMPTY = "No events in the audit trail yet."
    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="Filter the events as you type"),
        Binding("enter", "details", "Details", tooltip="Show the selected event in full"),
        Binding("ctrl+r", "refresh", "Refresh", tooltip="Read the trail again"),
    ]
    LIMIT = 500

    def compose_body(self) -> ComposeResult:
        if self.unavailable:
            yield from SectionScreen.compose_unavailable(self, "Audit")
            return
        yield from super().compose_body()

    def watch_changes(self) -> None:  # the trail is not watched: ctrl+r reads it again
        pass

    async def fetch(self) -> list[Any]:
        return await self.gateway.list_audit(limit=self.LIMIT)  # type: ignore[attr-defined]

    @staticmethod
    def key_of(event: Any) -> str:
        return f"{event.time}|{event.action}|{event.target}|{event.user}"

    def rows(self, events: list[Any]) -> Iterable[TableRow]:
        now = self.app.clock()  # type: ignore[attr-defined]
        for event in events:
            yield TableRow(self.key_of(event),
                           (ago(event.time, now), event.user or "-", event.source or "-", event.action, event.target,
                            event.outcome, _detail(event)),
                           ("muted", None, "muted", "accent", None, OUTCOME_STYLES.get(event.outcome), "muted"),
                           (sort_value(event.time), None, None, None, None, None, None))

    def details(self, event: Any) -> "AuditEventScreen":
        return AuditEventScreen(event)


def _detail(event: Any) -> str:
    """The detail, led by how many times when repeated failures are one event."""
    count = getattr(event, "count", 1)
    return f"{count} times: {event.detail}" if count > 1 else event.detail


class AuditEventScreen(SectionScreen):
    """One event, every field of it."""

    SECTION = "audit"
    BINDINGS = [Binding("escape", "back", "Back", tooltip="Back to the audit trail")]

    def __init__(self, event: Any):
        super().__init__()
        self.event = event

    def compose_body(self) -> ComposeResult:
        event = self.event
        yield Label(Content(f"Event {event.action} {event.target}"), id="details-title")
        tz = self.app.tz  # type: ignore[attr-defined]
        pairs = [("time", full_time(event.time, tz)), ("user", event.user), ("source", event.source),
                 ("action", event.action), ("target", event.target), ("outcome", event.outcome),
                 ("detail", event.detail)]
        if getattr(event, "count", 1) > 1:  # repeated failed logins, one event
            pairs.append(("count", str(event.count)))
        if event.inputs is not None:
            pairs.append(("inputs", json.dumps(event.inputs, sort_keys=True)))
        with VerticalScroll(id="details"):
            yield Static(field_lines(pairs), id="fields")

    def action_back(self) -> None:
        self.dismiss()
