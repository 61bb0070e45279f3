"""Users: there in the navigation, but managed only against a server."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from .base import SectionScreen


class UsersScreen(SectionScreen):
    SECTION = "users"

    def compose_body(self) -> ComposeResult:
        app = self.app
        reason = getattr(app, "unavailable_sections", {}).get("users", "")
        yield Static(Content.styled("Users", "bold"), id="users-title")
        yield Static(Content(reason or "User management arrives with client mode."), id="users-reason",
                     classes="unavailable")
