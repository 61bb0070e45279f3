"""Domain errors. Each maps to one gRPC status code and carries a message fit for a user."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every domain error; str(error) is one line for the user."""

    code = "UNKNOWN"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class OutOfScope(NotFound):
    """A resource outside the caller's scope (core/policy.py): answered as not found, so that it stays hidden,
    and recorded in the audit trail as a refusal naming `target` (kind/name)."""

    def __init__(self, message: str, target: str):
        super().__init__(message)
        self.target = target


class AlreadyExists(GatewayError):
    code = "ALREADY_EXISTS"


class InvalidArgument(GatewayError):
    """A request that cannot be taken as it is.

    `fields` maps a field (a resource field such as ``url``, or an input as
    ``inputs.<name>``) to the one-line message for that field, so a form can
    mark the field itself; str(error) stays the one line for a terminal.
    """

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})


class FailedPrecondition(GatewayError):
    """The request is well formed but the state forbids it (in use, not configured)."""

    code = "FAILED_PRECONDITION"


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class NoSuchUser(Unauthenticated):
    """A login refused for a name that no user has: to the caller the same as any other refused login; the
    audit trail counts these per address (target user/*), not per made-up name."""


class PermissionDenied(GatewayError):
    code = "PERMISSION_DENIED"


class Unavailable(GatewayError):
    """A dependency (the store, a server, a runner) cannot be reached."""

    code = "UNAVAILABLE"


class ResourceExhausted(GatewayError):
    """Too much at once, or too big: a bound of the server's, not a fault of the request's meaning."""

    code = "RESOURCE_EXHAUSTED"


class Conflict(GatewayError):
    """Someone else changed the resource meanwhile; try again."""

    code = "ABORTED"


ERRORS_BY_CODE = {
    cls.code: cls
    for cls in (NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Unauthenticated,
                PermissionDenied, Unavailable, Conflict, ResourceExhausted)
}
