"""Runs: the record of one execution of a service, its events, and its inputs."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets as random
import time
from datetime import datetime, timezone
from itertools import repeat
from typing import Any, Iterable, NamedTuple

from ..resources.decorators import input_problems
from ..errors import InvalidArgument
from ..resources.base import field_error, from_fields, plain
from ..resources.secrets import MASK, MIN_MASKED
from ..resources.services import MAX_TIMEOUT

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, INTERRUPTED = "succeeded", "failed", "cancelled", "timed-out", "interrupted"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, INTERRUPTED)
FINAL = (SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, INTERRUPTED)
RUN_ID_RE = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{random.token_hex(3)}"


def check_run_id(run_id: str) -> None:
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise InvalidArgument(f"run id {run_id!r} is not valid (it looks like 20260101-120000-a1b2c3)")


@dataclasses.dataclass
class Run:
    id: str
    service: str
    service_type: str = ""
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)  # secret values masked
    started_by: str = ""
    status: str = QUEUED
    reason: str = ""  # why it waits, or why it failed
    created_at: float = dataclasses.field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    commit: str = ""
    runner: str = ""
    output_lines: int = 0  # lines produced in all
    output_dropped: int = 0  # lines cut from the stored output (the tail is kept)
    owner: str = ""  # the gateway process that keeps this record (core.owners)
    output_bytes: int = 0  # what its stored output takes (core.retention's output budget counts it)
    output_pruned: str = ""  # why its stored output is gone, when it is (core.retention); the record stays
    # The id of the service it ran for (Service.id): a run belongs to that service, not to its name, which a later
    # service may take.  Empty: recorded before services had ids (such a run is shown to unscoped users only).
    service_id: str = ""

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    def to_dict(self) -> dict[str, Any]:
        data = plain(self)
        data["duration"] = None if self.duration is None else round(self.duration, 3)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Run":
        return from_fields(cls, data)

    def encode(self) -> bytes:
        return json.dumps(plain(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "Run":
        return cls.from_dict(json.loads(raw))


class OutputLine(NamedTuple):
    """One line of a run's output (a tuple: made a million times for 100 MB of output)."""

    stream: str  # "stdout", "stderr" or "gateway" (the gateway's own progress notes)
    text: str


def output_lines(stream: str, texts: Iterable[str]) -> list[OutputLine]:
    """The lines of one stream, made in one pass in C (a third of the cost of OutputLine(stream, t) a line)."""
    return list(map(tuple.__new__, repeat(OutputLine), zip(repeat(stream), texts)))  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class RunEvent:
    """What a run tells whoever follows it.

    kind: "status" (run holds the record as it is now: queued with a reason,
    running, or final) or "output" (lines holds new output lines).
    """

    kind: str
    run: Run | None = None
    lines: tuple[OutputLine, ...] = ()
    state: str | None = dataclasses.field(default=None, repr=False)  # final, when asked: the opentofu state after


# ---------------------------------------------------------------- inputs
def parse_set(items: list[str]) -> dict[str, str]:
    """--set key=value ... -> {key: value}; values stay text until coerced by the schema."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise field_error("inputs", f"--set {item!r} is not key=value")
        result[key.strip()] = value
    return result


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def coerce_input(value: Any, schema: dict[str, Any]) -> Any:
    """Text from --set or a form field -> the type the schema asks for; unchanged when it can't."""
    if not isinstance(value, str):
        return value
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    text = value.strip()
    for kind in kinds:
        try:
            if kind == "integer" and re.fullmatch(r"[+-]?\d+", text):
                return int(text)
            if kind == "number":
                return float(text) if any(c in text for c in ".eE") else int(text)
            if kind == "boolean" and text.lower() in _BOOLS:
                return _BOOLS[text.lower()]
            if kind in ("array", "object"):
                parsed = json.loads(text)
                if isinstance(parsed, list if kind == "array" else dict):
                    return parsed
            if kind == "null" and text.lower() in ("null", ""):
                return None
        except ValueError:
            continue
    return value


def _coerced(schema: dict[str, Any], inputs: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    properties = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
    result = {key: coerce_input(value, properties.get(key) if isinstance(properties.get(key), dict) else {})
              for key, value in inputs.items()}
    for key, prop in properties.items():
        if key not in result and isinstance(prop, dict) and "default" in prop:
            result[key] = prop["default"]
    return result, input_problems(schema, result)


def _by_field(problems: list[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for path, message in problems:
        top = path.split(".")[0]
        fields.setdefault(f"inputs.{top}" if top else "inputs", message if path == top else f"{path}: {message}")
    return fields


def coerce_inputs(schema: dict[str, Any] | None,
                  inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Coerce text by the decorator's schema, fill defaults, and check: (values, problems by field).

    The gateway judges a run's inputs with this (prepare_inputs) and the run form as it is filled in, so
    both judge alike. A problem's field is `inputs.<name>` for the input it is about (the message names the
    path below it, if any: 'ports.0: ...'), or `inputs` for the inputs as a whole; a field's first problem
    is kept.
    """
    if schema is None:
        return dict(inputs), {}
    values, problems = _coerced(schema, inputs)
    return values, _by_field(problems)


def prepare_inputs(schema: dict[str, Any] | None, inputs: dict[str, Any]) -> dict[str, Any]:
    """Coerce by the decorator's schema, fill defaults, and check; every failing field in one error."""
    if schema is None:
        return dict(inputs)
    values, problems = _coerced(schema, inputs)
    if problems:
        lines = "; ".join(f"{path or '(inputs)'}: {message}" for path, message in problems)
        raise InvalidArgument(f"inputs do not match the decorator: {lines}", _by_field(problems))
    return values


def check_run_timeout(timeout: int | None) -> None:
    """A run's own time limit (None: the service's, else the default): 1 to 604800 seconds."""
    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT:
        raise field_error("timeout", f"timeout {timeout} is not valid: 1 to 604800 seconds")


def secret_fields(schema: dict[str, Any] | None) -> set[str]:
    """Decorator fields meant to be hidden (writeOnly, or format password)."""
    if not schema:
        return set()
    props = schema.get("properties", {})
    return {
        key for key, prop in props.items()
        if isinstance(prop, dict) and (prop.get("writeOnly") or prop.get("format") == "password")
    }


def masked_parts(values: list[str]) -> set[str]:
    """What output is masked for: each value, and each line of a multi-line one (an SSH key or a
    certificate printed as-is arrives line by line), and each as JSON spells it inside its quotes (a value with
    a quote, a backslash, a newline or a letter beyond ASCII printed by json.dumps, with or without
    ensure_ascii); nothing shorter than MIN_MASKED characters."""
    parts = set()
    for value in values:
        if not value:
            continue
        parts.add(value)
        if "\n" in value or "\r" in value:
            parts.update(line.strip() for line in value.splitlines())
        parts.add(json.dumps(value)[1:-1])
        parts.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return {part for part in parts if len(part) >= MIN_MASKED}


class Masker:
    """Replaces secret values with ****** in text. Longer values first, so no part of one leaks."""

    def __init__(self, values: list[str]):
        values = sorted(masked_parts(values), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None
        # The longest masked text in UTF-8 bytes: output cut into pieces must hold this much beyond a cut for a
        # value that straddles it to be masked whole.
        self.longest = max((len(v.encode("utf-8", errors="surrogatepass")) for v in values), default=0)

    @property
    def active(self) -> bool:
        """False when there is nothing to mask."""
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text

    def inputs(self, inputs: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
        masked = {}
        for key, value in inputs.items():
            if key in hidden:
                masked[key] = MASK
            elif isinstance(value, str):
                masked[key] = self(value)
            else:
                masked[key] = json.loads(self(json.dumps(value))) if self._pattern else value
        return masked


def run_key(run_id: str) -> str:
    """Where a run's record is stored."""
    return f"runs/{run_id}"


def cancel_key(run_id: str) -> str:
    """The key whose appearance cancels a run, from any process."""
    return f"run-cancel/{run_id}"
