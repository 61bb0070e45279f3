from . import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

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
    __slots__ = ("api_key", "expires_at", "username", "admin")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    expires_at: float
    username: str
    admin: bool
    def __init__(self, api_key: _Optional[str] = ..., expires_at: _Optional[float] = ..., username: _Optional[str] = ..., admin: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("username", "admin", "expires_at")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    username: str
    admin: bool
    expires_at: float
    def __init__(self, username: _Optional[str] = ..., admin: _Optional[bool] = ..., expires_at: _Optional[float] = ...) -> None: ...
