"""The command palette (ctrl+p, or the header's icon): every key binding of the current screen, the sections,
each service, and in client mode the switch to another server profile, log out, switch user and change
password."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.system_commands import SystemCommandsProvider

from gateway_daemon.core import GatewayError

from .widgets.navigation import PALETTE_SECTIONS, SECTIONS


def _key_label(key: str) -> str:
    return key.split(",")[0].replace("ctrl+", "^")


def one_line(display: Any, help_text: str | None) -> Content:
    """A palette item on one line: what it does, then (dimmed) its key or what it opens."""
    shown = display if isinstance(display, Content) else Content(str(display))
    return Content.assemble(shown, ("  " + help_text, "not bold dim")) if help_text else shown


class OneLineSystemCommands(SystemCommandsProvider):
    """Textual's own commands (theme, keys, screenshot, quit), each on one line like the gateway's."""

    async def discover(self) -> Hits:
        async for hit in super().discover():
            yield DiscoveryHit(one_line(hit.prompt, hit.help), hit.command, text=hit.text)

    async def search(self, query: str) -> Hits:
        async for hit in super().search(query):
            yield Hit(hit.score, one_line(hit.prompt, hit.help), hit.command, text=hit.text)


class GatewayCommands(Provider):
    """Commands from the active bindings (so nothing is only a key away), plus jumps to any service."""

    async def startup(self) -> None:
        self._services: list[str] = []
        try:
            self._services = sorted(s.name for s in await self.app.gateway.list("service"))  # type: ignore[attr-defined]
        except GatewayError:
            pass

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        screen = self.screen
        commands: list[tuple[str, str, Callable[[], Any]]] = []
        seen: set[str] = set()
        for mode, key, label in SECTIONS + PALETTE_SECTIONS:
            name = f"Go to {label}"
            seen.add(f"section('{mode}')")
            commands.append((name, f"key {key}", partial(app.action_section, mode)))  # type: ignore[attr-defined]
        if getattr(app, "connection", None) is not None:
            commands.append(("Switch server profile", "client mode: another [client:NAME] server",
                             app.action_switch_profile))  # type: ignore[attr-defined]
        if getattr(app, "logged_in", False):  # client mode: who is logged in (local mode has no login)
            user = app.user  # type: ignore[attr-defined]
            commands += [
                ("Log out", f"end {user}'s session: its API key is revoked", app.action_logout),  # type: ignore[attr-defined]
                ("Switch user", "log in as another user of this server", app.action_switch_user),  # type: ignore[attr-defined]
                ("Change password", f"set a new password for {user}", app.action_change_password),  # type: ignore[attr-defined]
            ]
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or not active.enabled:
                continue
            seen.add(binding.action)
            name = binding.tooltip or binding.description
            commands.append((name, f"key {_key_label(key)}",
                             partial(app.run_action, binding.action, active.node)))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(one_line(name, help_text), callback, text=name)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, one_line(matcher.highlight(name), help_text), callback, text=name)
        open_service = getattr(self.app, "open_run", None)
        for service in self._services:
            name = f"Run service {service}"
            score = matcher.match(name)
            if score > 0 and open_service is not None:
                yield Hit(score * 0.9, one_line(matcher.highlight(name), "open its run form"),
                          partial(open_service, service), text=name)
