from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoginRequest(_message.Message):
    __slots__ = ("username", "password", "new_password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    new_password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class LoginReply(_message.Message):
    __slots__ = ("api_key", "expires_at", "username", "admin", "role", "scope")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    expires_at: float
    username: str
    admin: bool
    role: str
    scope: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, api_key: _Optional[str] = ..., expires_at: _Optional[float] = ..., username: _Optional[str] = ..., admin: _Optional[bool] = ..., role: _Optional[str] = ..., scope: _Optional[_Iterable[str]] = ...) -> None: ...

class ChangePasswordRequest(_message.Message):
    __slots__ = ("username", "password", "new_password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    new_password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class WhoAmIReply(_message.Message):
    __slots__ = ("username", "admin", "expires_at", "role", "scope")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    username: str
    admin: bool
    expires_at: float
    role: str
    scope: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, username: _Optional[str] = ..., admin: _Optional[bool] = ..., expires_at: _Optional[float] = ..., role: _Optional[str] = ..., scope: _Optional[_Iterable[str]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "user", "created_at", "last_used_at", "expires_at", "current")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    user: str
    created_at: str
    last_used_at: str
    expires_at: float
    current: bool
    def __init__(self, id: _Optional[str] = ..., user: _Optional[str] = ..., created_at: _Optional[str] = ..., last_used_at: _Optional[str] = ..., expires_at: _Optional[float] = ..., current: _Optional[bool] = ...) -> None: ...

class ApiKeyList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, items: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class ApiKeyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
