from . import common_pb2 as _common_pb2
from . import repositories_pb2 as _repositories_pb2
from . import runs_pb2 as _runs_pb2
from . import services_pb2 as _services_pb2
from . import executables_pb2 as _executables_pb2
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
    __slots__ = ("run_id", "inputs_json", "timeout", "service", "repository", "booleans", "env", "repository_key", "options", "registries", "executable", "repository_password", "action", "state", "referenced")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    BOOLEANS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_KEY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REGISTRIES_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REFERENCED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    inputs_json: str
    timeout: int
    service: _services_pb2.Service
    repository: _repositories_pb2.Repository
    booleans: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    repository_key: str
    options: _containers.ScalarMap[str, str]
    registries: _containers.RepeatedCompositeFieldContainer[RegistryAccess]
    executable: _executables_pb2.ExecutableObject
    repository_password: str
    action: str
    state: str
    referenced: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_id: _Optional[str] = ..., inputs_json: _Optional[str] = ..., timeout: _Optional[int] = ..., service: _Optional[_Union[_services_pb2.Service, _Mapping]] = ..., repository: _Optional[_Union[_repositories_pb2.Repository, _Mapping]] = ..., booleans: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., repository_key: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., registries: _Optional[_Iterable[_Union[RegistryAccess, _Mapping]]] = ..., executable: _Optional[_Union[_executables_pb2.ExecutableObject, _Mapping]] = ..., repository_password: _Optional[str] = ..., action: _Optional[str] = ..., state: _Optional[str] = ..., referenced: _Optional[_Iterable[str]] = ...) -> None: ...

class RegistryAccess(_message.Message):
    __slots__ = ("type", "name", "url", "username", "password", "token", "insecure", "built_in")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    BUILT_IN_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    url: str
    username: str
    password: str
    token: str
    insecure: bool
    built_in: bool
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., url: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., token: _Optional[str] = ..., insecure: _Optional[bool] = ..., built_in: _Optional[bool] = ...) -> None: ...

class ExecuteEvent(_message.Message):
    __slots__ = ("kind", "runner", "commit", "lines", "status", "reason", "exit_code", "state")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    runner: str
    commit: str
    lines: _containers.RepeatedCompositeFieldContainer[_runs_pb2.OutputLine]
    status: str
    reason: str
    exit_code: int
    state: str
    def __init__(self, kind: _Optional[str] = ..., runner: _Optional[str] = ..., commit: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[_runs_pb2.OutputLine, _Mapping]]] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., exit_code: _Optional[int] = ..., state: _Optional[str] = ...) -> None: ...

class CancelExecutionRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...
