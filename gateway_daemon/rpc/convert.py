"""Domain objects <-> protobuf messages (domain errors <-> gRPC status: rpc/errors.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
from itertools import repeat
from operator import attrgetter
from typing import Any, Iterator

from ..cluster.intake import ExecEvent
from ..core.api import ApiKeyInfo, Identity, Login, UserInfo
from ..core.access.audit import AuditEvent
from ..core.resources.decorators import MAX_SCHEMA_BYTES, Decorator
from ..core.api import EngineInfo
from ..core.resources.executables import ExecutableObject
from ..core.runs.jobs import Job
from ..core.resources.registries import Registry
from ..core.runs.installs import RegistryAccess
from ..core.resources.repositories import Repository
from ..core.resources.base import plain
from ..core.resources.runners import RunnerInfo
from ..core.runs.records import OutputLine, Run, RunEvent
from ..core.resources.secret_providers import SecretProvider
from ..core.resources.secrets import Secret
from ..core.resources.services import SecretRef, Service
from ..core.runs.tofu_state import StateSummary
from .gen import (audit_pb2, auth_pb2, common_pb2, decorators_pb2, executables_pb2, registries_pb2,
                  repositories_pb2, runner_pb2, runs_pb2, secrets_pb2, services_pb2, users_pb2)

MESSAGES = {
    "repository": repositories_pb2.Repository,
    "decorator": decorators_pb2.Decorator,
    "service": services_pb2.Service,
    "secret": secrets_pb2.Secret,
    "registry": registries_pb2.Registry,
    "executable-object": executables_pb2.ExecutableObject,
    "secret-provider": secrets_pb2.SecretProvider,
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
# Resources are converted attribute by attribute into the generated classes' own (C) constructors and
# back: a list of 10,000 services crosses the wire several times faster than through dicts.
_RESOURCE_CLASSES = {"repository": Repository, "decorator": Decorator, "service": Service, "secret": Secret,
                     "registry": Registry, "executable-object": ExecutableObject, "secret-provider": SecretProvider}
_PLANS: dict[str, tuple[list[str], list[str], list[str], list[str], list[str]]] = {}


def _plan(kind: str) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """The fields a resource kind and its message share: (scalars, optional scalars, lists, maps,
    message lists), each a list of names."""
    plan = _PLANS.get(kind)
    if plan is None:
        cls = _RESOURCE_CLASSES[kind]
        shared = {f.name for f in dataclasses.fields(cls)} - {"sealed"}
        layout = _layout(MESSAGES[kind].DESCRIPTOR)
        groups: tuple[list[str], ...] = ([], [], [], [], [])
        for name, (shape, presence) in layout.items():
            if name not in shared:
                continue
            if shape == SCALAR:
                groups[1 if presence else 0].append(name)
            else:
                groups[{LIST: 2, MAP: 3, MESSAGES_LIST: 4}[shape]].append(name)
        plan = _PLANS[kind] = groups  # type: ignore[assignment]
    return plan  # type: ignore[return-value]


def resource_message(resource):
    kind = resource.KIND
    scalars, optional, lists, maps, nested = _plan(kind)
    data = {name: getattr(resource, name) for name in scalars}
    for name in optional:
        value = getattr(resource, name)
        if value is not None:
            data[name] = value
    for name in (*lists, *maps):
        data[name] = getattr(resource, name)
    for name in nested:
        data[name] = [plain(item) for item in getattr(resource, name)]
    if kind == "decorator":
        data["schema_json"] = json.dumps(resource.schema, separators=(",", ":"), ensure_ascii=False)
    return MESSAGES[kind](**data)


# The summary of each service listed last, by the object's identity (the engine hands out the same object while
# the stored service is unchanged): listing 10,000 unchanged services makes no new summary.
_SUMMARIES: dict[int, tuple[Service, services_pb2.ServiceSummary]] = {}


def service_summaries_message(services: list[Service]) -> services_pb2.ServiceSummaryList:
    """What a table of services shows (ServiceSummary), for a list of them."""
    summary, known = services_pb2.ServiceSummary, _SUMMARIES
    if len(known) > 2 * len(services) + 1000:  # forget the services that changed or went
        known.clear()
    items = []
    for s in services:
        hit = known.get(id(s))
        if hit is None or hit[0] is not s:
            hit = known[id(s)] = (s, summary(name=s.name, type=s.type, repository=s.repository,
                                             decorator=s.decorator, tags=s.tags, description=s.description))
        items.append(hit[1])
    return services_pb2.ServiceSummaryList(items=items)


def services_from_summaries(message: services_pb2.ServiceSummaryList) -> list[Service]:
    """The services of a list of summaries: the fields a table shows; the others keep their defaults (GetService
    has them), the times left empty rather than made up."""
    with many_objects():
        return [Service(name=m.name, type=m.type, repository=m.repository, decorator=m.decorator, tags=list(m.tags),
                        description=m.description, created_at="", updated_at="") for m in message.items]


@contextlib.contextmanager
def many_objects() -> Iterator[None]:
    """Thousands of small objects made in one go (a list's resources): the cycle collector waits until they are
    made.  They hold no cycles, and run in the middle it walks every object of the process, again and again: with
    a few lists of 10,000 services held, that is most of the time a list takes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_READS: dict[str, tuple[list[tuple[str, int]], dict[str, int]]] = {}


def _reads(kind: str) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """How to read a kind's message: (the fields read always, with their shapes: those whose unset value on
    the wire differs from the resource's default), {every other shared field: its shape}."""
    reads = _READS.get(kind)
    if reads is None:
        fields = {f.name: f for f in dataclasses.fields(_RESOURCE_CLASSES[kind])}
        descriptor = MESSAGES[kind].DESCRIPTOR
        always, when_set = [], {}
        for name, (shape, presence) in _layout(descriptor).items():
            field = fields.get(name)
            if field is None or name == "sealed":
                continue
            if shape == SCALAR:
                unset = None if presence else descriptor.fields_by_name[name].default_value
                same = field.default is not dataclasses.MISSING and field.default == unset
            else:  # lists and maps: a resource's default is empty, as on the wire
                same = field.default_factory in (list, dict)  # type: ignore[comparison-overlap]
            if same:
                when_set[name] = shape
            else:
                always.append((name, shape))
        reads = _READS[kind] = (always, when_set)
    return reads


def _value(message, name: str, shape: int, value: Any = None) -> Any:
    if value is None:
        if shape == SCALAR and _layout(message.DESCRIPTOR)[name][1] and not message.HasField(name):
            return None
        value = getattr(message, name)
    if shape == LIST:
        return list(value)
    if shape == MAP:
        return dict(value)
    if shape == MESSAGES_LIST:
        return [SecretRef(name=ref.name, type=ref.type, target=ref.target) for ref in value]
    return value


def resource_from_message(kind: str, message):
    """The resource a message holds.  Only the fields the message sets are read (ListFields, in C), besides
    the few whose unset value is not the resource's default: a list of 10,000 costs little."""
    always, when_set = _reads(kind)
    data = {name: _value(message, name, shape) for name, shape in always}
    for field, value in message.ListFields():
        shape = when_set.get(field.name)
        if shape is not None:
            data[field.name] = value if shape == SCALAR else _value(message, field.name, shape, value)
    if kind == "decorator":
        data["schema"] = json_field(message.schema_json, "decorator schema", {"type": "object"},
                                    limit=MAX_SCHEMA_BYTES)
    return _RESOURCE_CLASSES[kind](**data)


def changes_from_message(kind: str, message, paths: list[str]) -> dict[str, Any]:
    """The fields named by an update mask, as the engine's update() takes them (a name the resource does not
    have is kept, for update() to refuse with the list of editable fields)."""
    resource = resource_from_message(kind, message)
    names = {"schema_json": "schema"}
    return {names.get(p, p): getattr(resource, names.get(p, p), None) for p in paths}


def changes_message(kind: str, name: str, changes: dict[str, Any]):
    """The message of an update that carries only `name` and the changed fields, and the mask naming them.

    The changes are as the engine's update() takes them (field -> new value; a decorator's schema as data,
    a service's secrets as SecretRefs or dicts, its timeout None to unset it)."""
    data: dict[str, Any] = {"name": name}
    paths = []
    for field, value in changes.items():
        if kind == "decorator" and field == "schema":
            field, value = "schema_json", json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        data[field] = plain(value)
        paths.append(field)
    return _to_message(data, MESSAGES[kind]), paths


def json_field(text: str, what: str, default: Any, limit: int = 4 * 1024 * 1024) -> Any:
    """JSON text from a request: at most `limit` bytes, and no nesting deeper than the parser's stack."""
    from ..core.errors import InvalidArgument

    if not text:
        return default
    if len(text) > limit:
        raise InvalidArgument(f"{what} is {len(text.encode()) / 1048576:.1f} MiB of JSON; at most "
                              f"{limit // 1048576} MiB is allowed")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidArgument(f"{what} nests objects or arrays too deep") from None


# ------------------------------------------------------------ runs
def run_message(run: Run, inputs: bool = True) -> runs_pb2.Run:
    """The run as a message; without `inputs`, its inputs left out (a stream that sent them already)."""
    data = {k: v for k, v in run.to_dict().items() if v is not None and k != "duration"}
    given = data.pop("inputs", {})
    if inputs:
        data["inputs_json"] = json.dumps(given)
    return _to_message(data, runs_pb2.Run)


def run_from_message(message: runs_pb2.Run, inputs: dict[str, Any] | None = None) -> Run:
    """The run a message holds; `inputs`: its inputs, when the message leaves them out."""
    data = _to_dict(message)
    text = data.pop("inputs_json", "")
    data["inputs"] = dict(inputs) if inputs is not None and not text else json_field(text, "run inputs", {})
    for name in ("started_at", "ended_at", "exit_code"):
        data.setdefault(name, None)
    for name in ("output_lines", "output_dropped", "output_bytes"):
        data[name] = int(data.get(name, 0))
    return Run.from_dict(data)


def event_message(event: RunEvent, inputs: bool = True) -> runs_pb2.RunEvent:
    message = runs_pb2.RunEvent(kind=event.kind,
                                lines=[runs_pb2.OutputLine(stream=l.stream, text=l.text) for l in event.lines])
    if event.run is not None:
        message.run.CopyFrom(run_message(event.run, inputs))
    if event.state is not None:
        message.state = event.state
    return message


def event_from_message(message: runs_pb2.RunEvent, inputs: dict[str, Any] | None = None) -> RunEvent:
    run = run_from_message(message.run, inputs if message.same_inputs else None) if message.HasField("run") else None
    return RunEvent(message.kind, run=run, lines=tuple(output_lines_of(message.lines)),
                    state=message.state if message.HasField("state") else None)


def output_lines_of(lines) -> list[OutputLine]:
    """OutputLine messages as the domain's lines, made in C."""
    return list(map(tuple.__new__, repeat(OutputLine), zip(map(_STREAM_OF, lines), map(_TEXT_OF, lines))))


_STREAM_OF, _TEXT_OF = attrgetter("stream"), attrgetter("text")


class EventStream:
    """The events of one run stream as messages and back: a run's inputs go with its first status event only
    (RunEvent.same_inputs after that), each side keeping what was sent."""

    def __init__(self) -> None:
        self.inputs: dict[str, Any] | None = None  # the inputs of the last status event, sent or received
        self.run_id = ""

    def message(self, event: RunEvent) -> runs_pb2.RunEvent:
        run = event.run
        same = run is not None and self.inputs is not None and run.id == self.run_id and run.inputs == self.inputs
        message = event_message(event, inputs=not same)
        if run is not None:
            message.same_inputs = same
            self.inputs, self.run_id = run.inputs, run.id
        return message

    def event(self, message: runs_pb2.RunEvent) -> RunEvent:
        event = event_from_message(message, self.inputs)
        if event.run is not None:
            self.inputs = event.run.inputs
        return event


def line_message(line: OutputLine) -> runs_pb2.OutputLine:
    return runs_pb2.OutputLine(stream=line.stream, text=line.text)


def runner_message(runner: RunnerInfo) -> runner_pb2.Runner:
    return _to_message(runner.to_dict(), runner_pb2.Runner)


def runner_from_message(message: runner_pb2.Runner) -> RunnerInfo:
    return RunnerInfo.from_dict(_to_dict(message))


def run_request(name: str, inputs: dict[str, Any] | None, secrets: list[SecretRef] | None,
                timeout: int | None, options: dict[str, Any] | None = None, action: str = "",
                state: str | None = None, state_out: bool = False) -> runs_pb2.RunServiceRequest:
    request = runs_pb2.RunServiceRequest(
        name=name, inputs_json=json.dumps(inputs or {}),
        secrets=[services_pb2.SecretRef(name=s.name, type=s.type, target=s.target) for s in secrets or []],
        options={k: "true" if v is True else "false" if v is False else str(v) for k, v in (options or {}).items()},
        action=action, state_out=state_out)
    if timeout is not None:
        request.timeout = timeout
    if state is not None:
        request.state = state
    return request


def state_message(summary: StateSummary | None, name: str) -> services_pb2.ServiceState:
    if summary is None:
        return services_pb2.ServiceState(service=name, present=False)
    return _to_message(dict(summary.to_dict(), present=True), services_pb2.ServiceState)


def state_from_message(message: services_pb2.ServiceState) -> StateSummary | None:
    if not message.present:
        return None
    data = _to_dict(message)
    data.pop("present", None)
    return StateSummary.from_dict(data)


def lines_from_message(message: runs_pb2.RunOutput) -> list[OutputLine]:
    return [OutputLine(line.stream, line.text) for line in message.lines]


# ------------------------------------------------------------ the server, users, logins
def info_from_message(message: common_pb2.Info, where: str) -> EngineInfo:
    """What a client shows of the server it talks to: its address and mode, its store and cluster."""
    return EngineInfo(mode="client", data_dir=f"{where} ({message.mode})", store=message.store,
                      cluster_id=message.cluster_id, distributed=message.distributed)


def user_message(user: UserInfo) -> users_pb2.User:
    return users_pb2.User(name=user.name, admin=user.admin, created_at=user.created_at,
                          last_login_at=user.last_login_at, must_change_password=user.must_change_password,
                          role=user.role, scope=list(user.scope), locked_until=user.locked_until)


def apikey_message(key: ApiKeyInfo) -> auth_pb2.ApiKey:
    return auth_pb2.ApiKey(id=key.id, user=key.user, created_at=key.created_at, last_used_at=key.last_used_at,
                           expires_at=key.expires_at, current=key.current)


def user_from_message(message: users_pb2.User) -> UserInfo:
    return UserInfo(name=message.name, admin=message.admin, created_at=message.created_at,
                    last_login_at=message.last_login_at, must_change_password=message.must_change_password,
                    role=message.role or ("admin" if message.admin else ""), scope=tuple(message.scope),
                    locked_until=message.locked_until)


def user_update_request(name: str, admin: bool | None, password: str | None, role: str | None = None,
                        scope: tuple[str, ...] | None = None, unlock: bool = False) -> users_pb2.UpdateUserRequest:
    """Only what changes: an unset admin, password, role or scope is left as it is."""
    request = users_pb2.UpdateUserRequest(name=name, unlock=unlock)
    if admin is not None:
        request.admin = admin
    if password is not None:
        request.password = password
    if role is not None:
        request.role = role
    if scope is not None:
        request.set_scope = True
        request.scope.extend(scope)
    return request


def identity_from_message(message: auth_pb2.WhoAmIReply) -> Identity:
    return Identity(username=message.username, admin=message.admin, expires_at=message.expires_at,
                    role=message.role or ("admin" if message.admin else ""), scope=tuple(message.scope))


def login_from_message(message: auth_pb2.LoginReply) -> Login:
    return Login(api_key=message.api_key, username=message.username, admin=message.admin,
                 expires_at=message.expires_at, role=message.role or ("admin" if message.admin else ""),
                 scope=tuple(message.scope))


def apikey_from_message(message: auth_pb2.ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(id=message.id, user=message.user, created_at=message.created_at,
                      last_used_at=message.last_used_at, expires_at=message.expires_at, current=message.current)


def audit_message(event: AuditEvent) -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(time=event.time, user=event.user, source=event.source, action=event.action,
                                target=event.target, outcome=event.outcome, detail=event.detail,
                                inputs_json=json.dumps(event.inputs) if event.inputs is not None else "",
                                count=event.count)


def audit_from_message(message: audit_pb2.AuditEvent) -> AuditEvent:
    inputs = json_field(message.inputs_json, "audit inputs", None) if message.inputs_json else None
    return AuditEvent(time=message.time, user=message.user, source=message.source, action=message.action,
                      target=message.target, outcome=message.outcome, detail=message.detail, inputs=inputs,
                      count=max(1, message.count))


# ------------------------------------------------------------ jobs (server -> runner)
def job_message(job: Job) -> runner_pb2.ExecuteRequest:
    message = runner_pb2.ExecuteRequest(run_id=job.run_id, inputs_json=json.dumps(job.inputs), timeout=job.timeout,
                                        booleans=sorted(job.booleans), env=job.env,
                                        repository_key=job.repository_key, options=job.options,
                                        registries=[runner_pb2.RegistryAccess(**a.to_dict()) for a in job.registries],
                                        repository_password=job.repository_password, action=job.action,
                                        referenced=job.referenced)
    if job.state is not None:
        message.state = job.state
    message.service.CopyFrom(resource_message(job.service))
    message.repository.CopyFrom(resource_message(job.repository))
    if job.executable is not None:
        message.executable.CopyFrom(resource_message(job.executable))
    return message


def job_from_message(message: runner_pb2.ExecuteRequest) -> Job:
    from ..core.errors import InvalidArgument

    inputs = json_field(message.inputs_json, "run inputs", {})
    if not isinstance(inputs, dict):
        raise InvalidArgument("run inputs must be a JSON object")
    return Job(run_id=message.run_id, service=resource_from_message("service", message.service),
               repository=resource_from_message("repository", message.repository), inputs=inputs,
               timeout=message.timeout or 3600, booleans=frozenset(message.booleans), env=dict(message.env),
               repository_key=message.repository_key, options=dict(message.options),
               registries=[RegistryAccess.from_dict(_to_dict(a)) for a in message.registries],
               executable=resource_from_message("executable-object", message.executable)  # type: ignore[arg-type]
               if message.HasField("executable") else None,
               repository_password=message.repository_password,
               action=message.action, state=message.state if message.HasField("state") else None,
               referenced=list(message.referenced))


def exec_event_message(event: ExecEvent, runner: str) -> runner_pb2.ExecuteEvent:
    message = runner_pb2.ExecuteEvent(kind=event.kind, runner=runner, commit=event.commit, status=event.status,
                                      reason=event.reason, lines=[line_message(l) for l in event.lines])
    if event.exit_code is not None:
        message.exit_code = event.exit_code
    if event.state is not None:
        message.state = event.state
    return message


def exec_event_from_message(message: runner_pb2.ExecuteEvent) -> ExecEvent:
    return ExecEvent(message.kind, lines=tuple(OutputLine(l.stream, l.text) for l in message.lines),
                     status=message.status, reason=message.reason,
                     exit_code=message.exit_code if message.HasField("exit_code") else None, commit=message.commit,
                     state=message.state if message.HasField("state") else None)
