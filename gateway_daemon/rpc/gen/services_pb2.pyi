from google.protobuf import field_mask_pb2 as _field_mask_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SecretRef(_message.Message):
    __slots__ = ("name", "type", "target")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    target: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("name", "type", "repository", "working_dir", "filename", "decorator", "env", "secrets", "runtime_args", "requirements_file", "tags", "arg_format", "timeout", "description", "created_at", "updated_at", "runner_tags", "playbooks", "inventories", "extra_vars", "extra_vars_files", "config_file", "pypi_registry", "galaxy_registry", "executable", "tofu_action", "tofu_vars", "tofu_var_files", "tofu_backend_config", "id")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TofuVarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DECORATOR_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_ARGS_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FILE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ARG_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RUNNER_TAGS_FIELD_NUMBER: _ClassVar[int]
    PLAYBOOKS_FIELD_NUMBER: _ClassVar[int]
    INVENTORIES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_VARS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_VARS_FILES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FILE_FIELD_NUMBER: _ClassVar[int]
    PYPI_REGISTRY_FIELD_NUMBER: _ClassVar[int]
    GALAXY_REGISTRY_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    TOFU_ACTION_FIELD_NUMBER: _ClassVar[int]
    TOFU_VARS_FIELD_NUMBER: _ClassVar[int]
    TOFU_VAR_FILES_FIELD_NUMBER: _ClassVar[int]
    TOFU_BACKEND_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    repository: str
    working_dir: str
    filename: str
    decorator: str
    env: _containers.ScalarMap[str, str]
    secrets: _containers.RepeatedCompositeFieldContainer[SecretRef]
    runtime_args: _containers.RepeatedScalarFieldContainer[str]
    requirements_file: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    arg_format: str
    timeout: int
    description: str
    created_at: str
    updated_at: str
    runner_tags: _containers.RepeatedScalarFieldContainer[str]
    playbooks: _containers.RepeatedScalarFieldContainer[str]
    inventories: _containers.RepeatedScalarFieldContainer[str]
    extra_vars: _containers.RepeatedScalarFieldContainer[str]
    extra_vars_files: _containers.RepeatedScalarFieldContainer[str]
    config_file: str
    pypi_registry: str
    galaxy_registry: str
    executable: str
    tofu_action: str
    tofu_vars: _containers.ScalarMap[str, str]
    tofu_var_files: _containers.RepeatedScalarFieldContainer[str]
    tofu_backend_config: _containers.RepeatedScalarFieldContainer[str]
    id: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., repository: _Optional[str] = ..., working_dir: _Optional[str] = ..., filename: _Optional[str] = ..., decorator: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., secrets: _Optional[_Iterable[_Union[SecretRef, _Mapping]]] = ..., runtime_args: _Optional[_Iterable[str]] = ..., requirements_file: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., arg_format: _Optional[str] = ..., timeout: _Optional[int] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., runner_tags: _Optional[_Iterable[str]] = ..., playbooks: _Optional[_Iterable[str]] = ..., inventories: _Optional[_Iterable[str]] = ..., extra_vars: _Optional[_Iterable[str]] = ..., extra_vars_files: _Optional[_Iterable[str]] = ..., config_file: _Optional[str] = ..., pypi_registry: _Optional[str] = ..., galaxy_registry: _Optional[str] = ..., executable: _Optional[str] = ..., tofu_action: _Optional[str] = ..., tofu_vars: _Optional[_Mapping[str, str]] = ..., tofu_var_files: _Optional[_Iterable[str]] = ..., tofu_backend_config: _Optional[_Iterable[str]] = ..., id: _Optional[str] = ...) -> None: ...

class ServiceState(_message.Message):
    __slots__ = ("service", "resources", "serial", "lineage", "terraform_version", "updated_at", "run", "present")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    TERRAFORM_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    service: str
    resources: _containers.RepeatedScalarFieldContainer[str]
    serial: int
    lineage: str
    terraform_version: str
    updated_at: str
    run: str
    present: bool
    def __init__(self, service: _Optional[str] = ..., resources: _Optional[_Iterable[str]] = ..., serial: _Optional[int] = ..., lineage: _Optional[str] = ..., terraform_version: _Optional[str] = ..., updated_at: _Optional[str] = ..., run: _Optional[str] = ..., present: _Optional[bool] = ...) -> None: ...

class ServiceList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Service]
    def __init__(self, items: _Optional[_Iterable[_Union[Service, _Mapping]]] = ...) -> None: ...

class ServiceSummary(_message.Message):
    __slots__ = ("name", "type", "repository", "decorator", "tags", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DECORATOR_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    repository: str
    decorator: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., repository: _Optional[str] = ..., decorator: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ...) -> None: ...

class ServiceSummaryList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ServiceSummary]
    def __init__(self, items: _Optional[_Iterable[_Union[ServiceSummary, _Mapping]]] = ...) -> None: ...

class UpdateServiceRequest(_message.Message):
    __slots__ = ("service", "update_mask")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    service: Service
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...
