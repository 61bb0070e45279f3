from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("name", "admin", "created_at", "last_login_at", "must_change_password", "role", "scope", "locked_until")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_LOGIN_AT_FIELD_NUMBER: _ClassVar[int]
    MUST_CHANGE_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LOCKED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    created_at: str
    last_login_at: str
    must_change_password: bool
    role: str
    scope: _containers.RepeatedScalarFieldContainer[str]
    locked_until: str
    def __init__(self, name: _Optional[str] = ..., admin: _Optional[bool] = ..., created_at: _Optional[str] = ..., last_login_at: _Optional[str] = ..., must_change_password: _Optional[bool] = ..., role: _Optional[str] = ..., scope: _Optional[_Iterable[str]] = ..., locked_until: _Optional[str] = ...) -> None: ...

class UserList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, items: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("name", "password", "admin", "temporary", "role", "scope")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    TEMPORARY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    password: str
    admin: bool
    temporary: bool
    role: str
    scope: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., password: _Optional[str] = ..., admin: _Optional[bool] = ..., temporary: _Optional[bool] = ..., role: _Optional[str] = ..., scope: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("name", "admin", "password", "role", "set_scope", "scope", "unlock")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SET_SCOPE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    UNLOCK_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    password: str
    role: str
    set_scope: bool
    scope: _containers.RepeatedScalarFieldContainer[str]
    unlock: bool
    def __init__(self, name: _Optional[str] = ..., admin: _Optional[bool] = ..., password: _Optional[str] = ..., role: _Optional[str] = ..., set_scope: _Optional[bool] = ..., scope: _Optional[_Iterable[str]] = ..., unlock: _Optional[bool] = ...) -> None: ...
