from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NameRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Info(_message.Message):
    __slots__ = ("mode", "data_dir", "store", "cluster_id", "version", "user", "tls", "distributed")
    MODE_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTED_FIELD_NUMBER: _ClassVar[int]
    mode: str
    data_dir: str
    store: str
    cluster_id: str
    version: str
    user: str
    tls: bool
    distributed: bool
    def __init__(self, mode: _Optional[str] = ..., data_dir: _Optional[str] = ..., store: _Optional[str] = ..., cluster_id: _Optional[str] = ..., version: _Optional[str] = ..., user: _Optional[str] = ..., tls: _Optional[bool] = ..., distributed: _Optional[bool] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("action", "name")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    action: str
    name: str
    def __init__(self, action: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: str
    def __init__(self, kind: _Optional[str] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportReply(_message.Message):
    __slots__ = ("document_json",)
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    document_json: str
    def __init__(self, document_json: _Optional[str] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("document_json", "dry_run", "strict")
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    document_json: str
    dry_run: bool
    strict: bool
    def __init__(self, document_json: _Optional[str] = ..., dry_run: _Optional[bool] = ..., strict: _Optional[bool] = ...) -> None: ...

class ImportReply(_message.Message):
    __slots__ = ("lines", "warnings", "dry_run")
    LINES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RepositoryFileRequest(_message.Message):
    __slots__ = ("url", "reference", "path", "private_key_name", "defaults")
    URL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    url: str
    reference: str
    path: str
    private_key_name: str
    defaults: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, url: _Optional[str] = ..., reference: _Optional[str] = ..., path: _Optional[str] = ..., private_key_name: _Optional[str] = ..., defaults: _Optional[_Iterable[str]] = ...) -> None: ...

class RepositoryFileReply(_message.Message):
    __slots__ = ("path", "text")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    path: str
    text: str
    def __init__(self, path: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...
