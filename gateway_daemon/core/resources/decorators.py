"""Decorators: a JSON Schema (draft 2020-12) that a service's inputs must satisfy.

A decorator is input from whoever may create one, so its schema is bounded before it is used:

* at most MAX_SCHEMA_BYTES (1 MiB) as compact JSON, and at most MAX_DEPTH (32) levels of nested objects and
  arrays, so that neither reading it nor jsonschema's recursive walk over it can exhaust memory or the stack;
* `$ref` (and `$dynamicRef`) point inside the document only (`#`, `#/$defs/name`, `#anchor`): nothing is ever
  fetched over the network or read from a file; validation uses a referencing.Registry that retrieves nothing;
* a chain of references that returns to where it started without descending into the inputs (`{"$ref": "#"}`)
  is refused, since validating with it never ends;
* `pattern` and `patternProperties` are matched with the `regex` module, each search bounded by
  PATTERN_SECONDS and all of one validation by VALIDATION_SECONDS. Python's `re` cannot be interrupted and
  holds the interpreter while it backtracks; `regex` takes a timeout and lets other threads run meanwhile
  (concurrent=True), so a pattern such as `^(a|a)+$` costs a bounded time and refuses the value, and
  validation can run in a worker thread while the server answers everyone else (validate_inputs).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
from typing import Any
from urllib.parse import unquote

from .base import Resource, check_text, field_error, now

MAX_SCHEMA_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_REF_CHAIN = 64  # references followed in place (without descending into the inputs) one after another
PATTERN_SECONDS = 0.25
VALIDATION_SECONDS = 5.0

# Keywords whose values are data, not subschemas: a "$ref" inside them is just text.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
# Keywords that apply their subschemas to the same instance (no descent into the inputs).
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_SCHEMAS = ("not", "if", "then", "else")
_IN_PLACE_MAPS = ("dependentSchemas", "dependencies")


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply objects and arrays nest in `value` (a scalar: 0), counted no further than limit + 1."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_bounds(what: str, value: Any, max_bytes: int = MAX_SCHEMA_BYTES, max_depth: int = MAX_DEPTH) -> None:
    """`value` nests at most `max_depth` levels and is at most `max_bytes` as compact JSON."""
    if nesting_depth(value, max_depth) > max_depth:
        raise field_error("schema", f"{what} nests objects or arrays more than {max_depth} levels deep; "
                              f"at most {max_depth} levels are allowed")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise field_error("schema", f"{what} is {size / 1048576:.1f} MiB; at most {max_bytes // 1048576} MiB is allowed")


# ---------------------------------------------------------------- references
def _subschemas(node: Any, path: tuple[str, ...] = ()):
    """(path, dict) for every object of the schema that may be a subschema; data keywords skipped."""
    stack = [(node, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            yield where, item
            stack.extend((child, (*where, key)) for key, child in item.items() if key not in _DATA_KEYWORDS)
        elif isinstance(item, list):
            stack.extend((child, (*where, str(index))) for index, child in enumerate(item))


def _pointer(text: str) -> tuple[str, ...]:
    return tuple(unquote(part).replace("~1", "/").replace("~0", "~") for part in text.split("/")[1:])


def _at(schema: Any, path: tuple[str, ...]) -> Any:
    node = schema
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def _target(name: str, schema: dict[str, Any], anchors: dict[str, tuple[str, ...]], ref: Any,
            where: tuple[str, ...]) -> tuple[str, ...]:
    """The path inside `schema` that `ref` points to; a ref that leaves the document is refused."""
    at = "/".join(where) or "(root)"
    if not isinstance(ref, str):
        raise field_error("schema", f"decorator {name}: $ref at {at} must be text")
    if not ref.startswith("#"):
        raise field_error("schema", f"decorator {name}: $ref {ref!r} at {at} points outside the schema; only references "
                              "inside the document are allowed (#, #/$defs/NAME, #ANCHOR)")
    fragment = ref[1:]
    if fragment == "" or fragment.startswith("/"):
        path = _pointer(fragment)
        try:
            _at(schema, path)
        except KeyError:
            raise field_error("schema", f"decorator {name}: $ref {ref!r} at {at} points to nothing inside the "
                                  "schema") from None
        return path
    if fragment in anchors:
        return anchors[fragment]
    raise field_error("schema", f"decorator {name}: $ref {ref!r} at {at} names no anchor inside the schema")


def check_references(name: str, schema: dict[str, Any]) -> None:
    """Every $ref stays inside the document, and none loops back without descending into the inputs."""
    anchors: dict[str, tuple[str, ...]] = {}
    refs: dict[tuple[str, ...], tuple[str, ...]] = {}
    nodes = list(_subschemas(schema))
    for where, node in nodes:
        if where and "$id" in node:
            raise field_error("schema", f"decorator {name}: $id at {'/'.join(where)}: only the root of a decorator's "
                                  "schema may have an $id")
        for keyword in ("$anchor", "$dynamicAnchor"):
            if isinstance(node.get(keyword), str):
                anchors[node[keyword]] = where
    for where, node in nodes:
        for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
            if keyword in node and not isinstance(node[keyword], (dict, list)):
                refs[(*where, keyword)] = _target(name, schema, anchors, node[keyword], where)

    # Follow what applies to the same instance; meeting a schema already on the way is a loop.
    done: set[tuple[str, ...]] = set()

    def visit(path: tuple[str, ...], trail: list[tuple[str, ...]]) -> None:
        if path in done:
            return
        if path in trail:
            raise field_error("schema", f"decorator {name}: $ref at {'/'.join(trail[-1]) or '(root)'} makes a loop "
                                  f"back to {'/'.join(path) or '(root)'} that validation would follow without end")
        if len(trail) > MAX_REF_CHAIN:
            raise field_error("schema", f"decorator {name}: references and in-place subschemas chain more than "
                                  f"{MAX_REF_CHAIN} deep at {'/'.join(path) or '(root)'}")
        node = _at(schema, path)
        if isinstance(node, dict):
            trail.append(path)
            for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
                if (*path, keyword) in refs:
                    visit(refs[(*path, keyword)], trail)
            for keyword in _IN_PLACE_LISTS:
                if isinstance(node.get(keyword), list):
                    for index in range(len(node[keyword])):
                        visit((*path, keyword, str(index)), trail)
            for keyword in _IN_PLACE_SCHEMAS:
                if isinstance(node.get(keyword), dict):
                    visit((*path, keyword), trail)
            for keyword in _IN_PLACE_MAPS:
                if isinstance(node.get(keyword), dict):
                    for key, value in node[keyword].items():
                        if isinstance(value, dict):
                            visit((*path, keyword, key), trail)
            trail.pop()
        done.add(path)

    for where, _ in nodes:
        visit(where, [])


# ---------------------------------------------------------------- patterns, bounded
_deadline = threading.local()


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str):
    import regex  # only a schema with patterns needs it

    return regex.compile(pattern)


def _search(pattern: str, text: str) -> bool | None:
    """Whether `pattern` matches somewhere in `text`; None when it cannot be told in the time allowed."""
    import regex

    remaining = getattr(_deadline, "at", time.monotonic() + VALIDATION_SECONDS) - time.monotonic()
    if remaining <= 0:
        return None
    try:
        return _compiled(pattern).search(text, timeout=min(PATTERN_SECONDS, remaining), concurrent=True) is not None
    except TimeoutError:
        return None
    except regex.error:
        return None


def _too_long(pattern: str, text: str):
    from jsonschema.exceptions import ValidationError

    shown = text if len(text) <= 40 else text[:37] + "..."
    return ValidationError(f"{shown!r}: matching the pattern {pattern!r} takes too long (over {PATTERN_SECONDS} s); "
                           "the value is refused")


def _pattern(validator, pattern, instance, schema):
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "string"):
        return
    found = _search(pattern, instance)
    if found is None:
        yield _too_long(pattern, instance)
    elif not found:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            found = _search(pattern, key)
            if found is None:
                yield _too_long(pattern, key)
            elif found:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [key for key in instance
            if key not in properties and not any(_search(pattern, key) for pattern in patterns)]


def _additional_properties(validator, additional, instance, schema):
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(repr(e) for e in sorted(extras))} "
                              f"{'was' if len(extras) == 1 else 'were'} unexpected)")


@functools.lru_cache(maxsize=16)
def _bounded(cls):
    from jsonschema.validators import extend

    keywords = {"pattern": _pattern, "patternProperties": _pattern_properties,
                "additionalProperties": _additional_properties}
    return extend(cls, {k: v for k, v in keywords.items() if k in cls.VALIDATORS})


def _validator_class(schema: dict[str, Any]):
    # jsonschema is imported on first use: it is most of the start-up time of a short `gateway` command.
    import jsonschema
    from jsonschema.validators import validator_for

    return validator_for(schema, default=jsonschema.Draft202012Validator)


def _uses(schema: Any, keyword: str) -> bool:
    return any(keyword in node for _, node in _subschemas(schema))


def check_schema(name: str, schema: Any) -> None:
    if not isinstance(schema, dict):
        raise field_error("schema", f"decorator {name}: the schema must be a JSON object, not {type(schema).__name__}")
    check_bounds(f"decorator {name}: the schema", schema)
    declared = schema.get("$schema")
    if declared is not None and not isinstance(declared, str):
        raise field_error("schema", f"decorator {name}: $schema must be a URI string")
    import jsonschema

    try:
        _validator_class(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise field_error("schema", f"decorator {name}: invalid JSON Schema at {where}: {exc.message}") from None
    check_references(name, schema)
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        # jsonschema matches patternProperties with re (unbounded) when it works out unevaluatedProperties.
        raise field_error("schema", f"decorator {name}: unevaluatedProperties together with patternProperties is "
                                    "not supported; use additionalProperties")
    root_type = schema.get("type", "object")
    if root_type != "object":
        raise field_error(
            "schema",
            f"decorator {name}: the schema must describe an object (type: object), not {root_type!r}; "
            "a service's inputs are named fields"
        )


def input_problems(schema: dict[str, Any], inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """Every way `inputs` fails `schema` as (field path, message), sorted; the path is '' for the inputs
    as a whole, else dotted from the top field ('vlan', 'ports.0').

    Bounded: the inputs nest at most MAX_DEPTH levels, every pattern search and the whole validation have a
    time limit, and nothing outside the schema is ever fetched."""
    import jsonschema
    import referencing
    import referencing.exceptions

    if nesting_depth(inputs, MAX_DEPTH) > MAX_DEPTH:
        return [("", f"objects and arrays nest more than {MAX_DEPTH} levels deep")]
    validator = _bounded(_validator_class(schema))(schema, format_checker=jsonschema.FormatChecker(),
                                                    registry=referencing.Registry())
    problems = set()
    _deadline.at = time.monotonic() + VALIDATION_SECONDS
    try:
        for error in validator.iter_errors(inputs):
            field = ".".join(str(p) for p in error.absolute_path)
            if not field and error.validator == "required":
                field = error.message.split("'")[1] if "'" in error.message else ""
            problems.add((field, error.message))
            if time.monotonic() > _deadline.at:
                problems.add(("", f"checking them took longer than {VALIDATION_SECONDS:.0f} s"))
                break
    except RecursionError:
        return [("", "the decorator's schema nests too deep to check these inputs")]
    except referencing.exceptions.Unresolvable as exc:
        return [("", f"the decorator's schema has a $ref that cannot be followed: {exc}")]
    finally:
        del _deadline.at
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
        """The secrets `$gateway_secret_(name)` references in the schema's defaults name (core.resources.secret_providers):
        runs get their values when a default fills an input."""
        from .secret_providers import referenced_aliases, texts_of

        names: dict[str, None] = {}
        for text in texts_of(_defaults(self.schema)):
            names.update(dict.fromkeys(referenced_aliases(text)))
        return [("secret", name) for name in names]


def _defaults(schema: Any, depth: int = 0) -> list[Any]:
    """Every `default` value in a schema, nested ones too (bounded: schemas are checked for depth elsewhere)."""
    found: list[Any] = []
    if depth > 64:
        return found
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "default":
                found.append(value)
            else:
                found.extend(_defaults(value, depth + 1))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_defaults(value, depth + 1))
    return found
