"""A TextArea for JSON with syntax highlighting that needs no tree-sitter grammar."""

from __future__ import annotations

import json
import re

from textual.binding import Binding
from textual.widgets import TextArea

_TOKEN_RE = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*"?)(?P<label>\s*:)?'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<boolean>\btrue\b|\bfalse\b)"
    r"|(?P<null>\bnull\b)"
    r"|(?P<punct>[{}\[\],:])"
)
_NAMES = {"number": "number", "boolean": "boolean", "null": "json.null", "punct": "punctuation.delimiter"}


def json_highlights(line: str) -> list[tuple[int, int, str]]:
    """(start byte, end byte, highlight name) for one line of JSON."""
    found = []
    for match in _TOKEN_RE.finditer(line):
        kind = match.lastgroup if match.group("string") is None else "string"
        start, end = match.span("string") if kind == "string" else match.span()
        name = ("json.label" if match.group("label") else "string") if kind == "string" else _NAMES[kind or "punct"]
        found.append((len(line[:start].encode()), len(line[:end].encode()), name))
    return found


def json_error(text: str) -> tuple[str, int, int] | None:
    """None when `text` is valid JSON, else (message, line, column), counted from 1."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.msg, exc.lineno, exc.colno
    return None


class JsonEditor(TextArea):
    """Highlights JSON itself (so the `syntax` extra of Textual is not needed) and follows the app's theme.
    ctrl+a selects everything, as in other editors (home still goes to the start of the line)."""

    BINDINGS = [Binding("ctrl+a", "select_all", "Select all", show=False, tooltip="Select the whole schema")]

    def __init__(self, text: str = "", **kwargs):
        kwargs.setdefault("show_line_numbers", True)
        kwargs.setdefault("tab_behavior", "indent")
        kwargs.setdefault("soft_wrap", False)
        super().__init__(text, **kwargs)
        self.indent_width = 2

    def on_mount(self) -> None:
        self._follow_theme()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._follow_theme())

    def _follow_theme(self) -> None:
        self.theme = "vscode_dark" if self.app.current_theme.dark else "github_light"

    def _build_highlight_map(self) -> None:
        self._line_cache.clear()
        highlights = self._highlights
        highlights.clear()
        for index in range(self.document.line_count):
            spans = json_highlights(self.document.get_line(index))
            if spans:
                highlights[index].extend(spans)
