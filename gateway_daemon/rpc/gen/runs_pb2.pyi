from . import common_pb2 as _common_pb2
from . import services_pb2 as _services_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Run(_message.Message):
    __slots__ = ("id", "service", "service_type", "inputs_json", "started_by", "status", "reason", "created_at", "started_at", "ended_at", "exit_code", "commit", "runner", "output_lines", "output_dropped", "owner", "output_bytes", "output_pruned")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LINES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DROPPED_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PRUNED_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    service_type: str
    inputs_json: str
    started_by: str
    status: str
    reason: str
    created_at: float
    started_at: float
    ended_at: float
    exit_code: int
    commit: str
    runner: str
    output_lines: int
    output_dropped: int
    owner: str
    output_bytes: int
    output_pruned: str
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., service_type: _Optional[str] = ..., inputs_json: _Optional[str] = ..., started_by: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., created_at: _Optional[float] = ..., started_at: _Optional[float] = ..., ended_at: _Optional[float] = ..., exit_code: _Optional[int] = ..., commit: _Optional[str] = ..., runner: _Optional[str] = ..., output_lines: _Optional[int] = ..., output_dropped: _Optional[int] = ..., owner: _Optional[str] = ..., output_bytes: _Optional[int] = ..., output_pruned: _Optional[str] = ...) -> None: ...

class OutputLine(_message.Message):
    __slots__ = ("stream", "text")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    text: str
    def __init__(self, stream: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("kind", "run", "lines", "same_inputs", "state")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    SAME_INPUTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    run: Run
    lines: _containers.RepeatedCompositeFieldContainer[OutputLine]
    same_inputs: bool
    state: str
    def __init__(self, kind: _Optional[str] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[OutputLine, _Mapping]]] = ..., same_inputs: _Optional[bool] = ..., state: _Optional[str] = ...) -> None: ...

class RunServiceRequest(_message.Message):
    __slots__ = ("name", "inputs_json", "secrets", "timeout", "options", "action", "state", "state_out")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_OUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    inputs_json: str
    secrets: _containers.RepeatedCompositeFieldContainer[_services_pb2.SecretRef]
    timeout: int
    options: _containers.ScalarMap[str, str]
    action: str
    state: str
    state_out: bool
    def __init__(self, name: _Optional[str] = ..., inputs_json: _Optional[str] = ..., secrets: _Optional[_Iterable[_Union[_services_pb2.SecretRef, _Mapping]]] = ..., timeout: _Optional[int] = ..., options: _Optional[_Mapping[str, str]] = ..., action: _Optional[str] = ..., state: _Optional[str] = ..., state_out: _Optional[bool] = ...) -> None: ...

class RunIdRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("service", "status", "limit", "runner")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    service: str
    status: str
    limit: int
    runner: str
    def __init__(self, service: _Optional[str] = ..., status: _Optional[str] = ..., limit: _Optional[int] = ..., runner: _Optional[str] = ...) -> None: ...

class PruneRunsRequest(_message.Message):
    __slots__ = ("before", "service")
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    before: str
    service: str
    def __init__(self, before: _Optional[str] = ..., service: _Optional[str] = ...) -> None: ...

class PruneRunsReply(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class RunList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, items: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class RunOutput(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[OutputLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[OutputLine, _Mapping]]] = ...) -> None: ...
