"""How both programs print to a terminal: tables for people, JSON and YAML for scripts."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
TYPE_CHECKING = False  # typing stays unloaded at run time: every `gateway` command loads this module
if TYPE_CHECKING:
    from typing import Any, Sequence


FORMATS = ("table", "json", "yaml")

# Terminal escape sequences (CSI, OSC, DCS/APC/PM/SOS strings, two-character escapes; 7-bit and C1 forms), then
# any control or bidirectional-override character left: what a name or description could use to rewrite the
# screen, the window title or the clipboard of whoever reads a table.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def printable(text: str, keep: str = "") -> str:
    """`text` fit for a terminal: escape sequences removed, other control characters dropped (but those in
    `keep`, such as a newline). JSON and YAML output never go through here: they stay exact."""
    text = _ESCAPES.sub("", text)
    return "".join(c for c in text
                   if c in keep or (unicodedata.category(c) != "Cc" and c not in _BIDI))


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def dump_yaml(data: Any) -> str:
    import yaml  # only -o yaml needs it

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def emit(data: Any, fmt: str, table: "Table | None" = None, out=None) -> None:
    out = out or sys.stdout
    if fmt == "json":
        out.write(dump_json(data) + "\n")
    elif fmt == "yaml":
        out.write(dump_yaml(data))
    elif table is not None:
        out.write(table.render())
    else:
        out.write(describe_text(data))


def _cell(value: Any, width: int | None = 60) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    text = printable(str(value).replace("\n", " ").replace("\t", " "))
    return text if width is None or len(text) <= width else text[:width - 3] + "..."


class Table:
    def __init__(self, columns: Sequence[str], width: int | None = 60):
        """`width`: longer cells are cut to it with '...'; None keeps them whole (paths, for example)."""
        self.columns = list(columns)
        self.width = width
        self.rows: list[list[str]] = []

    def add(self, *values: Any) -> None:
        self.rows.append([_cell(v, self.width) for v in values])

    def render(self) -> str:
        if not self.rows:
            return "(none)\n"
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.upper().ljust(w) for c, w in zip(self.columns, widths)).rstrip()]
        for row in self.rows:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        return "\n".join(lines) + "\n"


def describe_text(data: dict[str, Any], indent: int = 0) -> str:
    """Human 'key: value' lines, nested values indented."""
    pad = " " * indent
    width = max((len(k) for k in data), default=0) + 1
    lines = []
    for key, value in data.items():
        label = (key.replace("_", " ").capitalize() + ":").ljust(width + 1)
        if isinstance(value, dict) and value:
            if key == "schema":
                block = dump_json(value)
            else:
                block = dump_yaml(value).rstrip()
            lines.append(f"{pad}{label}")
            lines.extend(f"{pad}  {printable(line, keep=chr(9))}" for line in block.splitlines())
        elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
            lines.append(f"{pad}{label}")
            lines.extend(f"{pad}  - {printable(str(item))}" for item in value)
        else:
            shown = _cell(value) if not isinstance(value, str) or not value else printable(value, keep="\n\t")
            lines.append(f"{pad}{label} {shown}")
    return "\n".join(lines) + "\n"
