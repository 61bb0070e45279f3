"""Domain errors <-> gRPC status, both ways, for the server, the runner and the clients.

Server side: a domain error (core.errors) leaves as its status code with its
one-line message; an `InvalidArgument` with field messages adds them as a
``google.rpc.BadRequest`` in the status details (grpcio-status), so a form can
mark each field.  A store that cannot be reached is UNAVAILABLE.  Anything
else is a bug: logged once with its traceback, INTERNAL without details.

Client side: `error_from_rpc` turns a failed call back into the domain error
the server raised, with its fields, or into Unavailable naming the server.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..core.errors import ERRORS_BY_CODE, GatewayError, InvalidArgument, Unavailable
from ..store import StoreError

log = logging.getLogger("gateway.rpc")

STATUS_BY_CODE = {name: getattr(grpc.StatusCode, name) for name in ERRORS_BY_CODE}
CODE_BY_STATUS = {status: name for name, status in STATUS_BY_CODE.items()}
INTERNAL = "internal error in the gateway {who}; see its log"


# ------------------------------------------------------------ server side
def status_for(exc: BaseException, method: str = "", who: str = "server") -> grpc.Status:
    """The status a call that failed with `exc` ends with (an unexpected `exc` is logged here, once)."""
    if isinstance(exc, StoreError):
        exc = Unavailable(str(exc))
    if isinstance(exc, GatewayError):
        code = getattr(grpc.StatusCode, exc.code, grpc.StatusCode.UNKNOWN)
        fields = exc.fields if isinstance(exc, InvalidArgument) else {}
        return _status(code, str(exc), fields)
    if isinstance(exc, NotImplementedError):  # a generated base servicer's method nobody wrote (Health/List)
        return _status(grpc.StatusCode.UNIMPLEMENTED, f"{method or 'this method'} is not implemented here")
    log.error("internal error in %s", method or "a call", exc_info=exc)
    return _status(grpc.StatusCode.INTERNAL, INTERNAL.format(who=who))


async def abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str = "",
                who: str = "server") -> NoReturn:
    """End the call as `exc` says (raises grpc.aio.AbortError, as context.abort does)."""
    status = status_for(exc, method, who)
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def _status(code: grpc.StatusCode, message: str, fields: dict[str, str] | None = None) -> grpc.Status:
    if not fields:
        return _PlainStatus(code, message)
    bad_request = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=field, description=text) for field, text in fields.items()])
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=[detail]))


class _PlainStatus(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str):
        self.code = code
        self.details = details
        self.trailing_metadata = ()


# ------------------------------------------------------------ client side
def error_from_rpc(error: grpc.RpcError, where: str) -> GatewayError:
    """A gRPC failure as the domain error the server raised, or Unavailable naming the server at `where`."""
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else "") or ""
    name = CODE_BY_STATUS.get(code)
    if name and code != grpc.StatusCode.UNAVAILABLE:
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidArgument(details, _fields(error))
        return ERRORS_BY_CODE[name](details)
    if code == grpc.StatusCode.UNAVAILABLE:
        reason = details.splitlines()[0] if details else "no answer"
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            why = reason.split("CERTIFICATE_VERIFY_FAILED:")[-1].strip().removesuffix(": OK").strip()
            return Unavailable(f"cannot talk TLS with the gateway server at {where}: its certificate is not trusted "
                               f"({why}); check [application] ca_certificate_file (the CA that signed it)")
        if "ssl" in reason.lower() or "handshake" in reason.lower():
            return Unavailable(f"cannot talk TLS with the gateway server at {where}: {reason}")
        if "Socket closed" in reason or "Connection reset" in reason:
            reason += " (does the server use TLS? check [client] use_tls)"
        return Unavailable(f"the gateway server at {where} is unreachable: {reason}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable(f"the gateway server at {where} did not answer in time")
    return GatewayError(f"the gateway server at {where} failed: {code.name if code else 'error'}: {details}")


def _fields(error: grpc.RpcError) -> dict[str, str]:
    """The field messages of a BadRequest in the status details; none when there is none (or it does not parse)."""
    if not hasattr(error, "trailing_metadata"):
        return {}
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # details that disagree with the status itself: not ours, ignored
        return {}
    fields: dict[str, str] = {}
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields.update((v.field, v.description) for v in bad_request.field_violations)
    return fields
