"""The header: the app's title and context, and on the right how many runs are running now."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Header, Static
from textual.widgets._header import HeaderIcon, HeaderTitle


class RunningCount(Static):
    """`● 2 running`, from the app's `running` count (nothing while none runs)."""

    DEFAULT_CSS = """
    RunningCount {
        dock: right;
        width: auto;
        padding: 0 1;
        color: $text-accent;
        text-style: bold;
    }
    """

    def on_mount(self) -> None:
        if hasattr(self.app, "running"):
            self.watch(self.app, "running", self._show)

    def _show(self, count: int) -> None:
        self.update(f"● {count} running" if count else "")
        self.display = bool(count)


class GatewayHeader(Header):
    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield RunningCount("", id="running")
        yield HeaderTitle()
