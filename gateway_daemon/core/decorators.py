"""Decorators: a JSON Schema (draft 2020-12) that a service's inputs must satisfy."""

from __future__ import annotations

import dataclasses
from typing import Any

from .resources import Resource, check_text, field_error, now


def _validator_class(schema: dict[str, Any]):
    # jsonschema is imported on first use: it is most of the start-up time of a short `gateway` command.
    import jsonschema
    from jsonschema.validators import validator_for

    return validator_for(schema, default=jsonschema.Draft202012Validator)


def check_schema(name: str, schema: Any) -> None:
    if not isinstance(schema, dict):
        raise field_error("schema", f"decorator {name}: the schema must be a JSON object, not {type(schema).__name__}")
    declared = schema.get("$schema")
    if declared is not None and not isinstance(declared, str):
        raise field_error("schema", f"decorator {name}: $schema must be a URI string")
    import jsonschema

    try:
        _validator_class(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise field_error("schema", f"decorator {name}: invalid JSON Schema at {where}: {exc.message}") from None
    root_type = schema.get("type", "object")
    if root_type != "object":
        raise field_error(
            "schema",
            f"decorator {name}: the schema must describe an object (type: object), not {root_type!r}; "
            "a service's inputs are named fields"
        )


def input_problems(schema: dict[str, Any], inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """Every way `inputs` fails `schema` as (field path, message), sorted; the path is '' for the inputs
    as a whole, else dotted from the top field ('vlan', 'ports.0')."""
    import jsonschema

    validator = _validator_class(schema)(schema, format_checker=jsonschema.FormatChecker())
    problems = set()
    for error in validator.iter_errors(inputs):
        field = ".".join(str(p) for p in error.absolute_path)
        if not field and error.validator == "required":
            field = error.message.split("'")[1] if "'" in error.message else ""
        problems.add((field, error.message))
    return sorted(problems, key=lambda p: f"{p[0] or '(inputs)'}: {p[1]}")  # as the lines of the message read



@dataclasses.dataclass
class Decorator(Resource):
    KIND = "decorator"
    PLURAL = "decorators"

    schema: dict[str, Any] = dataclasses.field(default_factory=lambda: {"type": "object"})
    description: str = ""
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)

    def validate(self) -> None:
        super().validate()
        check_schema(self.name, self.schema)
        check_text("decorator", "description", self.description)

    def references(self) -> list[tuple[str, str]]:
        return []
