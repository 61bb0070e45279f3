from google.protobuf import field_mask_pb2 as _field_mask_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Registry(_message.Message):
    __slots__ = ("name", "type", "url", "username", "password_name", "token_name", "insecure", "default", "description", "created_at", "updated_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_NAME_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    url: str
    username: str
    password_name: str
    token_name: str
    insecure: bool
    default: bool
    description: str
    created_at: str
    updated_at: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., url: _Optional[str] = ..., username: _Optional[str] = ..., password_name: _Optional[str] = ..., token_name: _Optional[str] = ..., insecure: _Optional[bool] = ..., default: _Optional[bool] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class RegistryList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Registry]
    def __init__(self, items: _Optional[_Iterable[_Union[Registry, _Mapping]]] = ...) -> None: ...

class UpdateRegistryRequest(_message.Message):
    __slots__ = ("registry", "update_mask")
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    registry: Registry
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, registry: _Optional[_Union[Registry, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...
