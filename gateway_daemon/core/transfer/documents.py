"""Reading an import document: where each entry is, the problems met, building resources from fields.

Shared by the two formats an import reads: our own (transfer.py) and the IAG 5 export (iag5.py).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ..errors import InvalidArgument
from ..resources.base import Resource


class Problems:
    """Warnings and errors met while reading a document; errors are raised together, at the end."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def unknown(self, where: str, keys: Any, note: str = "") -> None:
        for key in sorted(str(k) for k in keys):
            if self.strict:
                self.errors.append(f"{where}: unknown key {key!r}{note} (refused by --strict)")
            else:
                self.warnings.append(f"{where}: unknown key {key!r} ignored{note}")

    def raise_if_any(self) -> None:
        if self.errors:
            first = self.errors[0]
            more = len(self.errors) - 1
            if more:
                first += f" (and {more} more problem{'s' if more > 1 else ''})"
            # Every problem travels with the error (to a client too), for a check to list them all.
            raise InvalidArgument(first, {f"{PROBLEM_FIELD}{index}": text
                                          for index, text in enumerate(self.errors, 1)})


PROBLEM_FIELD = "problem."  # InvalidArgument.fields keys of an import's problems: problem.1, problem.2, ...


def problems_of(error: InvalidArgument) -> list[str]:
    """The problems an import found, in order (empty for another error)."""
    numbered = [(int(key[len(PROBLEM_FIELD):]), text) for key, text in error.fields.items()
                if key.startswith(PROBLEM_FIELD) and key[len(PROBLEM_FIELD):].isdigit()]
    return [text for _, text in sorted(numbered)]


def plain_values(value: Any) -> Any:
    """YAML dates and times as ISO text; everything else as it is."""
    if isinstance(value, dict):
        return {k: plain_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_values(v) for v in value]
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


def _where(plural: str, item: Any, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{plural}[{name}]" if isinstance(name, str) and name else f"{plural} item {index + 1}"


def entries(document: dict[str, Any], plural: str, problems: Problems) -> list[tuple[str, dict[str, Any]]]:
    """The entries of one top-level list, each with where it is; entries that are not mappings are errors."""
    items = document.get(plural)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.errors.append(f"{plural}: expected a list, not {type(items).__name__}")
        return []
    result = []
    for index, item in enumerate(items):
        where = _where(plural, item, index)
        if not isinstance(item, dict):
            problems.errors.append(f"{where}: expected a mapping of fields, not {type(item).__name__}")
            continue
        result.append((where, {k: v for k, v in item.items() if v is not None}))
    return result


def build_resource(cls: type[Resource], where: str, fields: dict[str, Any], problems: Problems) -> Resource | None:
    try:
        return cls.from_dict(fields)
    except (TypeError, ValueError) as exc:
        problems.errors.append(f"{where}: {exc}")
        return None
