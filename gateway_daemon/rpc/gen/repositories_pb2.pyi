from google.protobuf import field_mask_pb2 as _field_mask_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Repository(_message.Message):
    __slots__ = ("name", "url", "reference", "private_key_name", "description", "tags", "created_at", "updated_at", "username", "password_name", "token_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    reference: str
    private_key_name: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    created_at: str
    updated_at: str
    username: str
    password_name: str
    token_name: str
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., reference: _Optional[str] = ..., private_key_name: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., username: _Optional[str] = ..., password_name: _Optional[str] = ..., token_name: _Optional[str] = ...) -> None: ...

class RepositoryList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Repository]
    def __init__(self, items: _Optional[_Iterable[_Union[Repository, _Mapping]]] = ...) -> None: ...

class UpdateRepositoryRequest(_message.Message):
    __slots__ = ("repository", "update_mask")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    repository: Repository
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, repository: _Optional[_Union[Repository, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...
