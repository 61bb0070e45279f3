"""How both programs print to a terminal: tables for people, JSON and YAML for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence


FORMATS = ("table", "json", "yaml")


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
    text = str(value).replace("\n", " ")
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
            lines.extend(f"{pad}  {line}" for line in block.splitlines())
        elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
            lines.append(f"{pad}{label}")
            lines.extend(f"{pad}  - {item}" for item in value)
        else:
            lines.append(f"{pad}{label} {_cell(value) if not isinstance(value, str) or not value else value}")
    return "\n".join(lines) + "\n"
