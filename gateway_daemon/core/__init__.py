"""The domain: resources, validation, secrets, runs. No grpc, no textual, no etcd here.

Rooms: `resources` (what operators create, and the catalog that stores them), `runs` (the life of a run),
`access` (users, roles, the audit trail), `transfer` (export and import).  At the top: `api` (the Gateway
interface every face talks to), `engine` (that interface in-process, composed from the rooms) and `errors`.

The errors are imported at once (every command needs them); the rest on first use, so that a command that
touches one part of the domain does not pay for all of it (the engine pulls asyncio and the lifecycle, a
secret the cryptography library).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (AlreadyExists, Conflict, FailedPrecondition, GatewayError, InvalidArgument, NotFound,
                     PermissionDenied, Unauthenticated, Unavailable)

if TYPE_CHECKING:
    from .api import Gateway
    from .resources.decorators import Decorator
    from .api import EngineInfo
    from .engine import Engine
    from .resources.catalog import KINDS
    from .resources.repositories import Repository
    from .resources.secrets import Secret
    from .resources.services import SERVICE_TYPES, SecretRef, Service

# name -> the module of this package that defines it
_LAZY = {
    "Gateway": "api", "Decorator": "resources.decorators", "KINDS": "resources.catalog", "Engine": "engine",
    "EngineInfo": "api", "Repository": "resources.repositories", "Secret": "resources.secrets",
    "SERVICE_TYPES": "resources.services", "SecretRef": "resources.services", "Service": "resources.services",
}

__all__ = [
    "Gateway", "Engine", "EngineInfo", "KINDS", "Repository", "Decorator", "Service", "SecretRef", "Secret",
    "SERVICE_TYPES", "GatewayError", "NotFound", "AlreadyExists", "InvalidArgument", "FailedPrecondition",
    "Unauthenticated", "PermissionDenied", "Unavailable", "Conflict",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
