"""Domain objects <-> protobuf messages (domain errors <-> gRPC status: rpc/errors.py)."""

from __future__ import annotations

import json
from typing import Any

from ..core.decorators import Decorator
from ..core.repositories import Repository
from ..core.runners import RunnerInfo
from ..core.runs import OutputLine, Run, RunEvent
from ..core.secrets import Secret
from ..core.services import SecretRef, Service
from .gen import decorators_pb2, repositories_pb2, runner_pb2, runs_pb2, secrets_pb2, services_pb2, users_pb2

MESSAGES = {
    "repository": repositories_pb2.Repository,
    "decorator": decorators_pb2.Decorator,
    "service": services_pb2.Service,
    "secret": secrets_pb2.Secret,
}


def _to_message(data: dict[str, Any], message_class):
    """A message from a dict of its fields (unknown keys and None values skipped), field by field:
    the protos hold only scalars, lists, maps and nested messages, and this is several times
    cheaper than going through JSON, which matters for lists of thousands."""
    message = message_class()
    _fill(message, data)
    return message


SCALAR, LIST, MAP, MESSAGES_LIST, MESSAGE = range(5)
_LAYOUTS: dict[Any, dict[str, tuple[int, bool]]] = {}


def _layout(descriptor) -> dict[str, tuple[int, bool]]:
    """Each field of a message type: how it is held, and whether an unset value is told apart."""
    layout = _LAYOUTS.get(descriptor)
    if layout is None:
        layout = {}
        for field in descriptor.fields:
            nested = field.message_type
            if nested is not None and nested.GetOptions().map_entry:
                shape = MAP
            elif field.is_repeated:
                shape = MESSAGES_LIST if nested is not None else LIST
            else:
                shape = MESSAGE if nested is not None else SCALAR
            layout[field.name] = (shape, field.has_presence)
        _LAYOUTS[descriptor] = layout
    return layout


def _fill(message, data: dict[str, Any]) -> None:
    layout = _layout(message.DESCRIPTOR)
    for name, value in data.items():
        found = layout.get(name)
        if found is None or value is None:
            continue
        shape = found[0]
        if shape == SCALAR:
            setattr(message, name, value)
        elif shape == LIST:
            getattr(message, name).extend(value)
        elif shape == MAP:
            getattr(message, name).update(value)
        elif shape == MESSAGES_LIST:
            target = getattr(message, name)
            for item in value:
                _fill(target.add(), item)
        else:
            _fill(getattr(message, name), value)


def _to_dict(message) -> dict[str, Any]:
    """Every field of a message, by its proto name; an unset optional field or message is left out."""
    data: dict[str, Any] = {}
    for name, (shape, presence) in _layout(message.DESCRIPTOR).items():
        if presence and not message.HasField(name):
            continue
        value = getattr(message, name)
        if shape == SCALAR:
            data[name] = value
        elif shape == LIST:
            data[name] = list(value)
        elif shape == MAP:
            data[name] = dict(value)
        elif shape == MESSAGES_LIST:
            data[name] = [_to_dict(v) for v in value]
        else:
            data[name] = _to_dict(value)
    return data


# ------------------------------------------------------------ resources
def resource_message(resource):
    data = resource.public() if isinstance(resource, Secret) else resource.to_dict()
    if isinstance(resource, Decorator):
        data = {**data, "schema_json": json.dumps(data.pop("schema"))}
    if isinstance(resource, Service) and data.get("timeout") is None:
        data.pop("timeout", None)
    return _to_message(data, MESSAGES[resource.KIND])


def resource_from_message(kind: str, message):
    data = _to_dict(message)
    if kind == "decorator":
        data["schema"] = json_field(data.pop("schema_json", ""), "decorator schema", {"type": "object"})
        return Decorator.from_dict(data)
    if kind == "service":
        data.setdefault("timeout", None)
        data["secrets"] = [SecretRef(**ref) for ref in data.get("secrets", [])]
        return Service.from_dict(data)
    if kind == "repository":
        return Repository.from_dict(data)
    return Secret.from_dict(data)


def changes_from_message(kind: str, message, paths: list[str]) -> dict[str, Any]:
    """The fields named by an update mask, as the engine's update() takes them (a name the resource does not
    have is kept, for update() to refuse with the list of editable fields)."""
    resource = resource_from_message(kind, message)
    names = {"schema_json": "schema"}
    return {names.get(p, p): getattr(resource, names.get(p, p), None) for p in paths}


def json_field(text: str, what: str, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        from ..core.errors import InvalidArgument

        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from None


# ------------------------------------------------------------ runs
def run_message(run: Run) -> runs_pb2.Run:
    data = {k: v for k, v in run.to_dict().items() if v is not None and k != "duration"}
    data["inputs_json"] = json.dumps(data.pop("inputs", {}))
    return _to_message(data, runs_pb2.Run)


def run_from_message(message: runs_pb2.Run) -> Run:
    data = _to_dict(message)
    data["inputs"] = json_field(data.pop("inputs_json", ""), "run inputs", {})
    for name in ("started_at", "ended_at", "exit_code"):
        data.setdefault(name, None)
    for name in ("output_lines", "output_dropped"):
        data[name] = int(data.get(name, 0))
    return Run.from_dict(data)


def event_message(event: RunEvent) -> runs_pb2.RunEvent:
    message = runs_pb2.RunEvent(kind=event.kind,
                                lines=[runs_pb2.OutputLine(stream=l.stream, text=l.text) for l in event.lines])
    if event.run is not None:
        message.run.CopyFrom(run_message(event.run))
    return message


def event_from_message(message: runs_pb2.RunEvent) -> RunEvent:
    run = run_from_message(message.run) if message.HasField("run") else None
    return RunEvent(message.kind, run=run, lines=tuple(OutputLine(l.stream, l.text) for l in message.lines))


def line_message(line: OutputLine) -> runs_pb2.OutputLine:
    return runs_pb2.OutputLine(stream=line.stream, text=line.text)


def runner_message(runner: RunnerInfo) -> runner_pb2.Runner:
    return _to_message(runner.to_dict(), runner_pb2.Runner)


def runner_from_message(message: runner_pb2.Runner) -> RunnerInfo:
    return RunnerInfo.from_dict(_to_dict(message))


def user_message(user) -> users_pb2.User:
    return _to_message(user.public(), users_pb2.User)
