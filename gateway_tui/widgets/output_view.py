"""A run's output: stdout plain, stderr marked in the error colour, the gateway's own notes dimmed.

Lines arrive one event at a time; they are drawn ten times a second in a batch,
so a script that floods its output does not slow the interface.  The view
follows the tail while `follow` is on (scrolling up turns it off); long lines
scroll sideways, or wrap while `wrap` is on; `search` shows only matching lines.
"""

from __future__ import annotations

from typing import Any, Iterable

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import RichLog

GUTTERS = {"stdout": "  ", "stderr": "▌ ", "gateway": "› "}
MAX_LINES = 200_000  # kept for scrolling and search; older lines drop off


class OutputView(RichLog):
    COMPONENT_CLASSES = {"output-view--stderr", "output-view--stderr-gutter", "output-view--gateway",
                         "output-view--match"}
    DEFAULT_CSS = """
    OutputView {
        height: 1fr;
        background: $surface;
        & > .output-view--stderr { color: $text-error; }
        & > .output-view--stderr-gutter { color: $error; text-style: bold; }
        & > .output-view--gateway { color: $foreground-muted; text-style: italic; }
        & > .output-view--match { background: $warning; color: $background; text-style: bold; }
    }
    """

    follow: reactive[bool] = reactive(True, init=False)
    wrapped: reactive[bool] = reactive(False, init=False)

    def __init__(self, id: str | None = None):
        super().__init__(highlight=False, markup=False, wrap=False, auto_scroll=False, id=id,
                         max_lines=MAX_LINES)
        self.output_lines: list[Any] = []  # OutputLine
        self._pending: list[Any] = []
        self.search = ""
        self.matches = 0
        self._styles: dict[str, Style] = {}

    def on_mount(self) -> None:
        self._load_styles()
        self.set_interval(0.1, self.flush)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: (self._load_styles(), self.redraw()))

    def _load_styles(self) -> None:
        def style(name: str) -> Style:
            return self.get_component_rich_style(f"output-view--{name}", partial=True)

        self._styles = {"stdout": Style(), "stderr": style("stderr"), "gateway": style("gateway"),
                        "gutter-stderr": style("stderr-gutter"), "match": style("match")}

    # ------------------------------------------------------------ lines in
    def add(self, lines: Iterable[Any]) -> None:
        lines = list(lines)
        self.output_lines.extend(lines)
        if len(self.output_lines) > MAX_LINES:
            del self.output_lines[: len(self.output_lines) - MAX_LINES]
        self._pending.extend(lines)

    def reset(self) -> None:
        self.output_lines = []
        self._pending = []
        self.matches = 0
        self.clear()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        follow = self.follow
        for line in pending:
            if self._matches(line):
                self.matches += 1
                self.write(self._render(line), scroll_end=False)
        if follow:
            self.scroll_end(animate=False, immediate=True)

    # ------------------------------------------------------------ follow and wrap
    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.scroll_end(animate=False, immediate=True)

    def watch_wrapped(self, wrapped: bool) -> None:
        self.wrap = wrapped
        self.redraw()

    def _stop_following(self) -> None:
        self.follow = False

    def action_scroll_up(self) -> None:
        self._stop_following()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._stop_following()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._stop_following()
        super().action_scroll_home()

    def _on_mouse_scroll_up(self, event) -> None:  # type: ignore[no-untyped-def]
        self._stop_following()
        super()._on_mouse_scroll_up(event)

    # ------------------------------------------------------------ search
    def set_search(self, text: str) -> None:
        self.search = text
        self.redraw()

    def redraw(self) -> None:
        self._pending = []
        self.clear()
        self.matches = 0
        for line in self.output_lines:
            if self._matches(line):
                self.matches += 1
                self.write(self._render(line), scroll_end=False)
        if self.follow:
            self.scroll_end(animate=False, immediate=True)

    def _matches(self, line: Any) -> bool:
        return not self.search or self.search.lower() in line.text.lower()

    def _render(self, line: Any) -> Text:
        styles = self._styles
        gutter_style = styles["gutter-stderr"] if line.stream == "stderr" else styles.get(line.stream, Style())
        text = Text.assemble((GUTTERS.get(line.stream, "  "), gutter_style),
                             (line.text, styles.get(line.stream, Style())), end="")
        if self.search:
            text.highlight_words([self.search], styles["match"], case_sensitive=False)
        return text
