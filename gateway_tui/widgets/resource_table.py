"""A fast table of resources: filter as you type, sort by column, one row under the cursor.

Textual's DataTable measures every cell it is given, which takes seconds for
ten thousand rows.  This table draws only the lines on screen, so filtering
and sorting cost a pass over plain strings and one repaint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

GAP = 2  # spaces between columns
LEFT = 1  # space before the first column
CELL_STYLES = ("success", "error", "warning", "accent", "muted")


@dataclass
class Column:
    key: str
    label: str
    min_width: int = 4
    max_width: int = 40
    grow: bool = False  # takes the space left over
    width: int = 0  # set by the layout
    # Too narrow a table drops its columns of the highest priority number first (0: never dropped), before
    # cutting the others below `min_width`.
    priority: int = 1
    whole: bool = False  # never cut while shown: its min_width is its longest cell (up to max_width)
    keep_end: bool = False  # cut from the start, keeping the end ("…-5e1f0a": what tells run ids apart)


class TableRow(NamedTuple):
    key: str
    cells: tuple[str, ...]
    styles: tuple[str | None, ...] | None = None  # per cell: one of CELL_STYLES, or None
    sort: tuple[str | None, ...] | None = None  # per cell: what it sorts by, when not its text ("3m ago")


def _width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


def _fit(text: str, width: int, keep_end: bool = False) -> str:
    if width <= 0:
        return ""
    if _width(text) <= width:
        return set_cell_size(text, width) if not text.isascii() else text.ljust(width)
    if keep_end:
        tail = text[-(width - 1):]
        while _width(tail) > width - 1:
            tail = tail[1:]
        return set_cell_size("…" + tail, width)
    return set_cell_size(text, width - 1) + "…"


class ResourceTable(ScrollView, can_focus=True):
    """Rows of plain text under a header; `filter` and `sort_by` reorder what is shown."""

    COMPONENT_CLASSES = {
        "resource-table--header",
        "resource-table--cursor",
        "resource-table--cursor-blurred",
        "resource-table--odd",
        *(f"resource-table--{name}" for name in CELL_STYLES),
    }

    DEFAULT_CSS = """
    ResourceTable {
        background: $surface;
        height: 1fr;
        margin: 1 0 0 0;
        scrollbar-gutter: stable;
        overflow-x: hidden;
        & > .resource-table--header { background: $panel; color: $text; text-style: bold; }
        & > .resource-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground;
                                      text-style: $block-cursor-text-style; }
        & > .resource-table--cursor-blurred { background: $block-cursor-blurred-background;
                                              color: $block-cursor-blurred-foreground; }
        & > .resource-table--odd { background: $surface-lighten-1 40%; }
        & > .resource-table--success { color: $text-success; }
        & > .resource-table--error { color: $text-error; }
        & > .resource-table--warning { color: $text-warning; }
        & > .resource-table--accent { color: $text-accent; }
        & > .resource-table--muted { color: $foreground-muted; }
    }
    """

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Highlighted(Message):
        def __init__(self, table: "ResourceTable", key: str | None):
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> "ResourceTable":
            return self.table

    class Selected(Message):
        def __init__(self, table: "ResourceTable", key: str):
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> "ResourceTable":
            return self.table

    def __init__(self, columns: Iterable[Column], *, name: str | None = None, id: str | None = None,
                 classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self._rows: list[TableRow] = []  # every row, in sort order
        self._haystacks: dict[str, str] = {}  # row key -> its cells, lower case, for the filter
        self._shown: list[TableRow] = []  # the rows that pass the filter, in sort order
        self._natural: list[int] = [len(c.label) + 2 for c in self.columns]
        self._longest: list[int] = [0 for _ in self.columns]
        self.filter_text = ""
        self.sort_key: str | None = None
        self.sort_reverse = False
        self._laid_out_for = -1

    # ------------------------------------------------------------ data
    @property
    def row_count(self) -> int:
        return len(self._shown)

    @property
    def total_count(self) -> int:
        return len(self._rows)

    @property
    def shown_keys(self) -> list[str]:
        return [row.key for row in self._shown]

    @property
    def cursor_key(self) -> str | None:
        if 0 <= self.cursor < len(self._shown):
            return self._shown[self.cursor].key
        return None

    def row(self, key: str) -> TableRow | None:
        return next((r for r in self._rows if r.key == key), None)

    def set_rows(self, rows: Iterable[TableRow]) -> None:
        """Replace every row; the cursor stays on the same key when it is still there."""
        keep = self.cursor_key
        self._rows = list(rows)
        self._haystacks = {r.key: "\x00".join(r.cells).lower() for r in self._rows}
        natural = [_width(c.label) + 2 for c in self.columns]
        for index in range(len(self.columns)):
            longest = max((_width(r.cells[index]) for r in self._rows if index < len(r.cells)), default=0)
            natural[index] = max(natural[index], longest)
        self._natural = natural
        self._longest = [max((_width(r.cells[i]) for r in self._rows if i < len(r.cells)), default=0)
                         for i in range(len(self.columns))]
        self._laid_out_for = -1
        self._sort()
        self._apply_filter(keep)

    def set_filter(self, text: str) -> None:
        keep = self.cursor_key
        narrowing = bool(self.filter_text.strip()) and text.lower().startswith(self.filter_text.lower())
        self.filter_text = text
        self._apply_filter(keep, narrowing)

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by the column `key`; sorting by the same column again reverses the order."""
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key, self.sort_reverse = key, reverse
        keep = self.cursor_key
        self._sort()
        self._apply_filter(keep)

    def cycle_sort(self) -> str:
        """Sort by the next column (ascending); returns its label."""
        keys = [c.key for c in self.columns]
        index = (keys.index(self.sort_key) + 1) % len(keys) if self.sort_key in keys else 0
        self.sort_by(keys[index], reverse=False)
        return self.columns[index].label

    def _sort(self) -> None:
        if self.sort_key is None:
            return
        index = next(i for i, c in enumerate(self.columns) if c.key == self.sort_key)
        # Empty cells last, whichever the direction.
        def value(row: TableRow) -> str:
            if row.sort is not None and index < len(row.sort) and row.sort[index] is not None:
                return row.sort[index] or ""
            return row.cells[index].lower()

        filled = [r for r in self._rows if r.cells[index]]
        empty = [r for r in self._rows if not r.cells[index]]
        filled.sort(key=lambda r: (value(r), r.key), reverse=self.sort_reverse)
        self._rows = filled + empty

    def _apply_filter(self, keep: str | None, narrowing: bool = False) -> None:
        """`narrowing`: the filter only grew longer, so only the rows shown now can still match."""
        words = self.filter_text.lower().split()
        if words:
            haystacks = self._haystacks
            candidates = self._shown if narrowing else self._rows
            if len(words) == 1:
                word = words[0]
                self._shown = [r for r in candidates if word in haystacks[r.key]]
            else:
                self._shown = [r for r in candidates if all(w in haystacks[r.key] for w in words)]
        else:
            self._shown = list(self._rows)
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._shown) + 1)
        position = 0
        if keep is not None:
            position = next((i for i, r in enumerate(self._shown) if r.key == keep), 0)
        self.cursor = position
        self.refresh()

    def move_to(self, key: str) -> bool:
        for index, row in enumerate(self._shown):
            if row.key == key:
                self.cursor = index
                return True
        return False

    # ------------------------------------------------------------ cursor
    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._shown) - 1)) if self._shown else 0

    def watch_cursor(self, value: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.Highlighted(self, self.cursor_key))

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor > top + visible - 1:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_jump(self, where: int) -> None:
        self.cursor = 0 if where == 0 else len(self._shown) - 1

    def action_select(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.Selected(self, key))

    def on_resize(self, event: events.Resize) -> None:
        self._laid_out_for = -1
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._shown) + 1)
        self._scroll_cursor_into_view()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # ------------------------------------------------------------ mouse
    def _column_at(self, x: int) -> Column | None:
        position = LEFT
        for column in self.columns:
            if column.width and position <= x < position + column.width + GAP:
                return column
            position += column.width + GAP
        return None

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x)
            if column is not None:
                self.sort_by(column.key)
            return
        index = self.scroll_offset.y + offset.y - 1
        if 0 <= index < len(self._shown):
            self.cursor = index
            if event.chain >= 2:
                self.action_select()

    # ------------------------------------------------------------ drawing
    def _layout(self, width: int) -> None:
        if self._laid_out_for == width:
            return
        self._laid_out_for = width
        columns = self.columns
        widths = [max(c.min_width, min(c.max_width, n)) for c, n in zip(columns, self._natural)]
        # The least a shown column takes: its min_width, or all of it for a column kept whole.
        least = [max(c.min_width, min(c.max_width, max(longest, _width(c.label)))) if c.whole and longest
                 else c.min_width for c, longest in zip(columns, self._longest)]
        shown = [True] * len(columns)

        def needed() -> int:
            return sum(least[i] for i in range(len(columns)) if shown[i] and least[i]) + GAP * max(
                0, sum(1 for i in range(len(columns)) if shown[i] and widths[i]) - 1)

        space = width - LEFT
        # Too narrow even with every column at its least: the columns of the highest priority number go first
        # (the rightmost of them first), never one of priority 0.
        while needed() > space:
            candidates = [i for i, c in enumerate(columns) if shown[i] and widths[i] and c.priority > 0]
            if not candidates:
                break
            drop = max(candidates, key=lambda i: (columns[i].priority, i))
            shown[drop] = False
        widths = [w if shown[i] else 0 for i, w in enumerate(widths)]
        space -= GAP * max(0, sum(1 for w in widths if w) - 1)
        deficit = sum(widths) - space
        while deficit > 0:
            # the column of the highest priority number with room to give, the widest of them
            index = max(range(len(widths)), key=lambda i: (widths[i] > least[i], columns[i].priority,
                                                           widths[i] - least[i]) if widths[i] else (False, -1, 0))
            if not widths[index] or widths[index] <= least[index]:
                break
            widths[index] -= 1
            deficit -= 1
            if widths[index] == 0:
                deficit -= GAP
        while deficit > 0 and any(widths):  # still too wide: the rightmost columns go
            last = max(i for i, w in enumerate(widths) if w)
            deficit -= widths[last] + GAP
            widths[last] = 0
        if deficit < 0:
            grow = next((i for i, c in enumerate(columns) if c.grow and widths[i]), None)
            if grow is not None:
                widths[grow] += -deficit
        for column, w in zip(columns, widths):
            column.width = w

    def _header_label(self, column: Column) -> str:
        if column.key == self.sort_key:
            return f"{column.label} {'▼' if self.sort_reverse else '▲'}"
        return column.label

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        self._layout(width)
        if y == 0:
            style = self.get_component_rich_style("resource-table--header")
            segments = [Segment(" " * LEFT, style)]
            used = LEFT
            for column in self.columns:
                if column.width:
                    if used > LEFT:
                        segments.append(Segment(" " * GAP, style))
                        used += GAP
                    segments.append(Segment(_fit(self._header_label(column), column.width), style))
                    used += column.width
            segments.append(Segment(" " * max(0, width - used), style))
            return Strip(segments).crop(0, width)
        index = self.scroll_offset.y + y - 1
        base = self.rich_style
        if index >= len(self._shown):
            return Strip.blank(width, base)
        row = self._shown[index]
        if index == self.cursor:
            name = "resource-table--cursor" if self.has_focus else "resource-table--cursor-blurred"
            row_style = base + self.get_component_rich_style(name)
        elif index % 2:
            row_style = base + self.get_component_rich_style("resource-table--odd")
        else:
            row_style = base
        segments = [Segment(" " * LEFT, row_style)]
        used = LEFT
        first = True
        for i, column in enumerate(self.columns):
            if not column.width:
                continue
            if not first:
                segments.append(Segment(" " * GAP, row_style))
                used += GAP
            first = False
            text = row.cells[i] if i < len(row.cells) else ""
            style = row_style
            cell_style = row.styles[i] if row.styles and i < len(row.styles) else None
            if cell_style and index != self.cursor:
                style = row_style + self.get_component_rich_style(f"resource-table--{cell_style}", partial=True)
            segments.append(Segment(_fit(text, column.width, column.keep_end), style))
            used += column.width
        if used < width:
            segments.append(Segment(" " * (width - used), row_style))
        return Strip(segments).crop(0, width)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.refresh()
