from . import common_pb2 as _common_pb2
from . import runs_pb2 as _runs_pb2
from . import services_pb2 as _services_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Runner(_message.Message):
    __slots__ = ("id", "address", "port", "tags", "capacity", "load", "last_seen", "started_at", "use_tls", "draining", "problem", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    USE_TLS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    port: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    load: int
    last_seen: float
    started_at: float
    use_tls: bool
    draining: bool
    problem: str
    version: str
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., load: _Optional[int] = ..., last_seen: _Optional[float] = ..., started_at: _Optional[float] = ..., use_tls: _Optional[bool] = ..., draining: _Optional[bool] = ..., problem: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class RunnerList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Runner]
    def __init__(self, items: _Optional[_Iterable[_Union[Runner, _Mapping]]] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("run_id", "service", "inputs_json", "secrets", "timeout")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    service: str
    inputs_json: str
    secrets: _containers.RepeatedCompositeFieldContainer[_services_pb2.SecretRef]
    timeout: int
    def __init__(self, run_id: _Optional[str] = ..., service: _Optional[str] = ..., inputs_json: _Optional[str] = ..., secrets: _Optional[_Iterable[_Union[_services_pb2.SecretRef, _Mapping]]] = ..., timeout: _Optional[int] = ...) -> None: ...

class ExecuteEvent(_message.Message):
    __slots__ = ("kind", "runner", "commit", "lines", "status", "reason", "exit_code")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    runner: str
    commit: str
    lines: _containers.RepeatedCompositeFieldContainer[_runs_pb2.OutputLine]
    status: str
    reason: str
    exit_code: int
    def __init__(self, kind: _Optional[str] = ..., runner: _Optional[str] = ..., commit: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[_runs_pb2.OutputLine, _Mapping]]] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., exit_code: _Optional[int] = ...) -> None: ...

class CancelExecutionRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...
