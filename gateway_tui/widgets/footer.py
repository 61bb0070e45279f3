"""The footer: the keys of the screen in front, drawn with its first frame and composed again only when they
change."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer


class GatewayFooter(Footer):
    """Textual's footer, with two differences.  Textual's draws no key until the screen tells it its bindings
    changed, after the first frame (so a screen first shows with an empty footer), and composes all its keys
    again at every such change: every focus move, every resume, every refresh of the bindings, most of which
    change none of the keys it shows (in a form, a `tab` from one field to the next).  This one has its keys in
    the frame it is first drawn in, and composes them again only when what it shows differs."""

    def __init__(self) -> None:
        super().__init__()
        self.set_reactive(Footer._bindings_ready, True)
        self._shown: Any = None

    def shown_keys(self) -> Any:
        """What the footer shows: each shown binding of the screen's active ones, enabled or not, with its
        tooltip, in order, and the command palette's key; None while it is not on a screen."""
        try:
            active = self.screen.active_bindings
        except Exception:  # noqa: BLE001 - not on a screen (yet, or any more): nothing to compare
            return None
        keys = tuple((binding, enabled, tooltip) for _node, binding, enabled, tooltip in active.values()
                     if binding.show)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING) if self.show_command_palette else None
        return keys, palette, self.compact, self.app.ENABLE_COMMAND_PALETTE

    def compose(self) -> ComposeResult:
        self._shown = self.shown_keys()
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if self.is_attached and self.shown_keys() != self._shown:  # (compose keeps what it shows)
            await self.recompose()
