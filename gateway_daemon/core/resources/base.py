"""What every resource kind shares: names, safe relative paths, timestamps, (de)serialisation."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any, ClassVar

from ..errors import InvalidArgument

NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TAG_RE = re.compile(r"[A-Za-z0-9_.:=/-]{1,64}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def field_error(field: str, message: str) -> InvalidArgument:
    """An InvalidArgument about one field: `message` is both str(error) and the field's own message."""
    return InvalidArgument(message, {field: message})


def check_name(kind: str, name: Any, field: str = "name", key: str | None = None) -> None:
    """`field` is how the message names the field; `key` the field it marks (default: `field` with '_')."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise field_error(
            key or field.replace("-", "_"),
            f"{kind} {field} {name!r} is not valid: use 1-64 letters, digits, '-', '_' or '.'",
        )


def check_relative_path(kind: str, field: str, value: str) -> None:
    """A path inside the repository: relative, no '..', no NUL."""
    key = field.replace("-", "_")
    if "\x00" in value:
        raise field_error(key, f"{kind} {field} {value!r} contains a NUL byte")
    if value.startswith(("/", "~")) or (len(value) > 1 and value[1] == ":") or os.path.isabs(value):
        raise field_error(key, f"{kind} {field} {value!r} must be a path relative to the repository, not absolute")
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise field_error(key, f"{kind} {field} {value!r} must stay inside the repository ('..' is not allowed)")


def check_tags(kind: str, tags: Any, key: str = "tags") -> None:
    if not isinstance(tags, list) or not all(isinstance(t, str) and TAG_RE.fullmatch(t) for t in tags):
        bad = [t for t in tags if not (isinstance(t, str) and TAG_RE.fullmatch(t))] if isinstance(tags, list) else tags
        raise field_error(key, f"{kind} tags {bad!r} are not valid: 1-64 letters, digits and - _ . : = /")


def check_text(kind: str, field: str, value: Any, limit: int = 4096) -> None:
    if not isinstance(value, str):
        raise field_error(field, f"{kind} {field} must be text")
    if len(value) > limit:
        raise field_error(field, f"{kind} {field} is {len(value)} characters long; at most {limit} are allowed")


_FIELDS: dict[type, frozenset[str]] = {}  # each kind's field names, read once


def from_fields(cls: type, data: dict[str, Any]) -> Any:
    """An instance of the dataclass `cls` from `data`, keys it does not know (newer or older records) ignored."""
    known = _FIELDS.get(cls)
    if known is None:
        known = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return cls(**{k: v for k, v in data.items() if k in known})


def plain(value: Any) -> Any:
    """What `dataclasses.asdict` gives for the values resources hold (text, numbers, lists, dicts,
    nested dataclasses), without its deep copies: listing thousands of resources pays for this."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return copy.deepcopy(value)


@dataclasses.dataclass
class Resource:
    """Base of Repository, Decorator, Service and Secret."""

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""

    name: str

    def validate(self) -> None:
        check_name(self.KIND, self.name)

    def references(self) -> list[tuple[str, str]]:
        """The (kind, name) of every resource this one names, which must exist while it does."""
        return []

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Resource":
        return from_fields(cls, data)

    def encode(self) -> bytes:
        # In field order, with the order of what was given kept (a decorator's schema: its fields' order)
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "Resource":
        return cls.from_dict(json.loads(raw))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]
