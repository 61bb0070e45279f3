from google.protobuf import field_mask_pb2 as _field_mask_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutableObject(_message.Message):
    __slots__ = ("name", "exec_command", "arg_format", "description", "created_at", "updated_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXEC_COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARG_FORMAT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    exec_command: str
    arg_format: str
    description: str
    created_at: str
    updated_at: str
    def __init__(self, name: _Optional[str] = ..., exec_command: _Optional[str] = ..., arg_format: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class ExecutableObjectList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ExecutableObject]
    def __init__(self, items: _Optional[_Iterable[_Union[ExecutableObject, _Mapping]]] = ...) -> None: ...

class UpdateExecutableObjectRequest(_message.Message):
    __slots__ = ("executable_object", "update_mask")
    EXECUTABLE_OBJECT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    executable_object: ExecutableObject
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, executable_object: _Optional[_Union[ExecutableObject, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...
