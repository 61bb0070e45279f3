"""The domain: resources, validation, secrets, runs. No grpc, no textual, no etcd here."""

from .api import Gateway
from .decorators import Decorator
from .engine import KINDS, Engine, EngineInfo
from .errors import (AlreadyExists, Conflict, FailedPrecondition, GatewayError, InvalidArgument, NotFound,
                     PermissionDenied, Unauthenticated, Unavailable)
from .repositories import Repository
from .secrets import Secret
from .services import SERVICE_TYPES, SecretRef, Service

__all__ = [
    "Gateway", "Engine", "EngineInfo", "KINDS", "Repository", "Decorator", "Service", "SecretRef", "Secret",
    "SERVICE_TYPES", "GatewayError", "NotFound", "AlreadyExists", "InvalidArgument", "FailedPrecondition",
    "Unauthenticated", "PermissionDenied", "Unavailable", "Conflict",
]
