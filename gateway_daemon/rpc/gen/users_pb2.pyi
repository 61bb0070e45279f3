from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("name", "admin", "created_at", "last_login_at", "must_change_password")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_LOGIN_AT_FIELD_NUMBER: _ClassVar[int]
    MUST_CHANGE_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    created_at: str
    last_login_at: str
    must_change_password: bool
    def __init__(self, name: _Optional[str] = ..., admin: _Optional[bool] = ..., created_at: _Optional[str] = ..., last_login_at: _Optional[str] = ..., must_change_password: _Optional[bool] = ...) -> None: ...

class UserList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, items: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("name", "password", "admin", "temporary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    TEMPORARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    password: str
    admin: bool
    temporary: bool
    def __init__(self, name: _Optional[str] = ..., password: _Optional[str] = ..., admin: _Optional[bool] = ..., temporary: _Optional[bool] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("name", "admin", "password")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    password: str
    def __init__(self, name: _Optional[str] = ..., admin: _Optional[bool] = ..., password: _Optional[str] = ...) -> None: ...
