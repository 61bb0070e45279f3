"""Every incoming call passes here before a servicer sees it: who is calling, may they, and how it ends.

`AccessInterceptor` is a grpc.aio server interceptor.  For each call it
  1. looks the method up in the policy table (rpc/policy.py); a method the
     table does not name is refused;
  2. admits the caller from the call's metadata alone, through a `Gate`
     (users and API keys on the server, the cluster's token on a runner),
     and asks core/policy.py whether the user's role allows the method's
     action, before a byte of the request is read: a refused call is
     answered with a handler that never reads its request, so an
     unauthenticated caller's big message costs the server no memory;
  3. hands the admitted Session to the servicer through core.access.auth.current_session(),
     and the caller's role, scope and address to core (core.policy's grant,
     core.audit's actor);
  4. turns a request that does not parse into INVALID_ARGUMENT with one log
     line (grpc.aio alone answers UNKNOWN and logs a traceback per message);
  5. ends a failed call through the one error mapper (rpc/errors.py), so
     servicers just raise domain errors;
  6. with an audit trail, records the calls rpc/policy.py's AUDITED names,
     and every refusal, with how they ended (core/audit.py); a user refused
     for their role has their request read (bounded) so that the event names
     its target;
  7. bounds the calls anyone may make without logging in (PUBLIC: Login,
     ChangePassword, health, reflection): at most `PublicLimits` of them in
     flight, in all and per address, the rest answered RESOURCE_EXHAUSTED
     unread; their requests are read one address at a time and at most
     PUBLIC_READS_AT_ONCE at once, each within PUBLIC_READ_SECONDS and at most
     PUBLIC_MAX_REQUEST bytes.  The server's receive limit is one for every
     method (imports need tens of MiB), and gRPC takes a whole message in
     before anyone can look at its size: reading public requests a few at a
     time is what keeps a flood of huge ones to a few messages' memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

import grpc

from ..core.access import roles
from ..core.access.audit import Actor, AuditTrail, acting, mask_values, peer_address
from ..core.access.auth import Auth, Session, in_session
from ..core.errors import (GatewayError, InvalidArgument, NoSuchUser, OutOfScope, PermissionDenied,
                           ResourceExhausted)
from . import errors
from .policy import AUDITED, AUDITED_ON_FAILURE, PUBLIC, Rule, access_for

log = logging.getLogger("gateway.rpc")

PUBLIC_MAX_REQUEST = 16 * 1024   # bytes: a login is a name and two passwords
PUBLIC_READS_AT_ONCE = 2         # public requests being read at one time (one per address)
PUBLIC_READ_SECONDS = 2.0        # a small request is in the server's buffers already; a slow one is cut off
REFUSED_READ_MAX = 64 * 1024     # bytes of a refused user's request read to name its target
OVER_LIMIT_LOG_EVERY = 60.0      # seconds between two log lines about calls refused over the limits


@dataclasses.dataclass(frozen=True)
class PublicLimits:
    """How many calls without a login may be in flight: in all, and from one address."""

    at_once: int = 64
    per_address: int = 8


class PublicCalls:
    """The public calls in flight, and the turns to read their requests."""

    def __init__(self, limits: PublicLimits | None = None):
        self.limits = limits or PublicLimits()
        self.total = 0
        self.by_address: dict[str, int] = {}
        self._reads: asyncio.Semaphore | None = None
        self._turns: dict[str, list] = {}  # address -> [lock, calls waiting for it]
        self.refused = 0
        self._logged = 0.0

    def enter(self, address: str, service: str) -> bool:
        """Count a call to `service` in, or False when a limit is reached (then nothing is counted).  An
        address's calls are counted per service: a flood of logins does not refuse its health checks."""
        key = f"{address} {service}"
        if self.total >= self.limits.at_once or self.by_address.get(key, 0) >= self.limits.per_address:
            self.refused += 1
            return False
        self.total += 1
        self.by_address[key] = self.by_address.get(key, 0) + 1
        return True

    def leave(self, address: str, service: str) -> None:
        key = f"{address} {service}"
        self.total -= 1
        left = self.by_address.get(key, 1) - 1
        if left:
            self.by_address[key] = left
        else:
            self.by_address.pop(key, None)

    def over_limit(self, method: str, address: str) -> ResourceExhausted:
        now = time.monotonic()
        if now - self._logged >= OVER_LIMIT_LOG_EVERY:
            self._logged = now
            log.warning("refused %d calls without a login over the limits (%d in flight, %d per address); the "
                        "last: %s from %s", self.refused, self.limits.at_once, self.limits.per_address, method,
                        address)
            self.refused = 0
        return ResourceExhausted(f"too many calls without a login in flight (at most {self.limits.at_once}, "
                                 f"{self.limits.per_address} to one service from one address): try again shortly")

    @contextlib.asynccontextmanager
    async def reading(self, address: str):
        """A turn to read one request: one address at a time each, PUBLIC_READS_AT_ONCE in all."""
        if self._reads is None:
            self._reads = asyncio.Semaphore(PUBLIC_READS_AT_ONCE)
        turn = self._turns.get(address)
        if turn is None:
            turn = self._turns[address] = [asyncio.Lock(), 0]
        turn[1] += 1
        try:
            async with turn[0], self._reads:
                yield
        finally:
            turn[1] -= 1
            if not turn[1]:
                self._turns.pop(address, None)


def bearer(metadata) -> str | None:
    """The key in ``authorization: Bearer <key>``, if the call carries one."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return None


class Gate(Protocol):
    async def admit(self, access: Rule, method: str, key: str | None) -> Session | None:
        """The caller's session (None where the access needs no user), or a domain error refusing the call.
        Whether the session's role allows the action is the interceptor's question (core/policy.py)."""


class UserGate:
    """The server's gate: users and their API keys."""

    def __init__(self, auth: Auth):
        self.auth = auth

    async def admit(self, access: Rule, method: str, key: str | None) -> Session | None:
        if access is PUBLIC:
            return None
        if isinstance(access, roles.Action):
            return await self.auth.authenticate(key)
        raise PermissionDenied(f"{method} is not served to users")


def grant_of(session: Session | None) -> roles.Grant | None:
    if session is None:
        return None
    return roles.Grant(session.user.name, session.user.role, tuple(session.user.scope))


def _target(kind: str, request: Any) -> str:
    """kind/name of what a request is about: its name or id, or the name of the resource it carries."""
    if request is None or isinstance(request, Malformed):
        return kind
    for field in ("name", "id", "username"):
        value = getattr(request, field, None)
        if isinstance(value, str) and value:
            return f"{kind}/{value}"
    for field in ("repository", "decorator", "service", "secret", "registry", "executable_object", "secret_provider"):
        inner = getattr(request, field, None)
        value = getattr(inner, "name", None)
        if isinstance(value, str) and value:
            return f"{kind}/{value}"
    return kind


def _inputs(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


def _outcome(exc: BaseException | None) -> tuple[str, str]:
    if exc is None:
        return "ok", ""
    if isinstance(exc, PermissionDenied):
        return "refused", str(exc)
    if isinstance(exc, GatewayError):
        return "failed", str(exc)
    if isinstance(exc, grpc.aio.AbortError):
        return "failed", "aborted"
    return "failed", "internal error"


class Malformed:
    """What a request that does not parse becomes, so the call can answer INVALID_ARGUMENT itself."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception as exc:  # noqa: BLE001 - DecodeError and whatever a parser may raise
            return Malformed(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return parse


def _ignore(raw: bytes) -> None:
    return None


class TooLarge:
    """What a request over its size limit becomes (its bytes are dropped at once)."""

    __slots__ = ("size",)

    def __init__(self, size: int):
        self.size = size


def _bounded(deserialize: Callable[[bytes], Any] | None, limit: int) -> Callable[[bytes], Any]:
    tolerant = _tolerant(deserialize) or (lambda raw: raw)

    def parse(raw: bytes) -> Any:
        return TooLarge(len(raw)) if len(raw) > limit else tolerant(raw)
    return parse


def _size_text(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KiB"


class AccessInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, gate: Gate, table: dict[str, Rule] | None = None, who: str = "server",
                 audit: AuditTrail | None = None, public: PublicCalls | None = None):
        self.gate = gate
        self.table = table
        self.who = who  # "server" or "runner", in the message of an internal error
        self.audit = audit
        self.public = public or PublicCalls()
        self._unlisted: set[str] = set()

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # no such method: grpc answers UNIMPLEMENTED
        method = handler_call_details.method
        access = access_for(method, self.table)
        if access is None:
            if method not in self._unlisted:
                self._unlisted.add(method)
                log.error("%s has no line in the access policy table (rpc/policy.py): every call to it is refused",
                          method)
            return self._refusal(handler, method, PermissionDenied(f"{method} is open to no one"))
        if access is PUBLIC:
            return self._public(handler, method)
        session = None
        try:
            session = await self.gate.admit(access, method, bearer(handler_call_details.invocation_metadata))
            if session is not None and isinstance(access, roles.Action):
                roles.check(grant_of(session), access)
        except Exception as exc:  # noqa: BLE001 - a domain error refuses the call; the mapper logs the rest
            return self._refusal(handler, method, exc, session)
        return self._admitted(handler, method, session)

    # ------------------------------------------------------------ the audit trail
    async def _record(self, method: str, session: Session | None, context, request: Any,
                      exc: BaseException | None, refused: bool = False) -> None:
        """One event for an audited call, or for any refusal."""
        if self.audit is None:
            return
        audited = AUDITED.get(method)
        hidden = exc.target if isinstance(exc, OutOfScope) else ""  # outside the caller's scope: refused, quietly
        if audited is None and not (refused or hidden or isinstance(exc, PermissionDenied)):
            return
        if exc is None and method in AUDITED_ON_FAILURE:
            return
        word, kind = audited or (("read", "") if hidden else (method.rsplit("/", 1)[-1], ""))
        outcome, detail = _outcome(exc)
        if hidden:
            outcome = "refused"
            detail = f"{hidden} is outside the scope of {session.user.name if session else 'the caller'}"
        if word == "run" and exc is not None and request is not None and not isinstance(request, Malformed):
            detail = mask_values(detail, _inputs(getattr(request, "inputs_json", "")))  # an error may quote one
        user = session.user.name if session is not None else ""
        if not user and word in ("login", "password") and request is not None and not isinstance(request, Malformed):
            user = getattr(request, "username", "") or ""
        if isinstance(exc, NoSuchUser):  # made-up names: one event per address (core/audit.py)
            user = "*"
        target = hidden or (_target(kind, request) if kind else method)
        if word == "login":
            target = f"user/{user}" if user else "user"
        elif word in ("logout", "password") and user:
            target = f"user/{user}"
        if user == "*":
            user = ""
        try:
            await self.audit.record(word, target, outcome, detail, actor=Actor(user, peer_address(context.peer())))
        except Exception:  # noqa: BLE001 - the trail must never fail the call
            log.exception("cannot record the audit event of %s", method)

    # ------------------------------------------------------------ the handlers the server gets instead
    def _refusal(self, handler, method: str, exc: BaseException, session: Session | None = None):
        """A handler that ends the call with `exc` without reading its request: it has the shape of a request
        stream, which grpc.aio reads only when the handler asks, so a refused caller's message (up to the
        server's receive limit) is never taken into memory.  A logged-in user refused for their role has
        their request read (REFUSED_READ_MAX bytes at most are kept) so that the audit event names its target."""
        named = isinstance(exc, PermissionDenied) and session is not None and not handler.request_streaming

        async def refuse(requests, context):
            if isinstance(exc, PermissionDenied):
                request = None
                if named:
                    with contextlib.suppress(Exception):  # a request that does not come: the kind alone
                        request = await asyncio.wait_for(context.read(), PUBLIC_READ_SECONDS)
                    if request is grpc.aio.EOF or isinstance(request, (TooLarge, Malformed)):
                        request = None
                await self._record(method, session, context, request, exc, refused=True)
            await errors.abort(context, exc, method, self.who)
        if handler.response_streaming:
            make = grpc.stream_stream_rpc_method_handler
        else:
            make = grpc.stream_unary_rpc_method_handler
        return make(refuse, request_deserializer=_bounded(handler.request_deserializer, REFUSED_READ_MAX)
                    if named else _ignore, response_serializer=handler.response_serializer)

    def _public(self, handler, method: str):
        """A handler for a call without a login, of the shape of a request stream so that nothing is read before
        it asks: counted in (or refused RESOURCE_EXHAUSTED unread), its request read in its turn, within
        PUBLIC_READ_SECONDS and PUBLIC_MAX_REQUEST bytes, then served as any admitted call."""
        calls, who = self.public, self.who
        service = method.rsplit("/", 1)[0]
        behavior = _behavior(self._admitted(handler, method, None))
        request_streaming = handler.request_streaming

        async def read(context, address: str) -> Any:
            async with calls.reading(address):
                try:
                    request = await asyncio.wait_for(context.read(), PUBLIC_READ_SECONDS)
                except asyncio.TimeoutError:
                    raise ResourceExhausted(f"the request to {method} did not arrive within "
                                            f"{PUBLIC_READ_SECONDS:.0f} s") from None
            if isinstance(request, TooLarge):
                raise ResourceExhausted(f"a request to {method} without a login may have at most "
                                        f"{_size_text(PUBLIC_MAX_REQUEST)}: this one has {_size_text(request.size)}")
            return request

        async def first(context, address: str) -> Any:
            try:
                request = await read(context, address)
                if request is grpc.aio.EOF:
                    raise InvalidArgument(f"a call to {method} needs a request")
                return request
            except GatewayError as exc:
                await errors.abort(context, exc, method, who)

        async def stream_of(context, address: str) -> AsyncIterator[Any]:
            while True:
                try:
                    request = await read(context, address)
                except GatewayError as exc:
                    await errors.abort(context, exc, method, who)
                if request is grpc.aio.EOF:
                    return
                yield request

        async def enter(context) -> str:
            address = peer_address(context.peer())
            if not calls.enter(address, service):
                await errors.abort(context, calls.over_limit(method, address), method, who)
            return address

        if handler.response_streaming:
            async def serve_stream(requests, context) -> AsyncIterator[Any]:
                address = await enter(context)
                try:
                    source = stream_of(context, address) if request_streaming else await first(context, address)
                    replies = behavior(source, context)
                    if inspect.isawaitable(replies):  # a servicer that returns its replies
                        replies = await replies
                    if hasattr(replies, "__aiter__"):
                        async for reply in replies:
                            yield reply
                    else:
                        for reply in replies or ():
                            yield reply
                finally:
                    calls.leave(address, service)
            make, serve = grpc.stream_stream_rpc_method_handler, serve_stream
        else:
            async def serve_unary(requests, context):
                address = await enter(context)
                try:
                    source = stream_of(context, address) if request_streaming else await first(context, address)
                    return await behavior(source, context)
                finally:
                    calls.leave(address, service)
            make, serve = grpc.stream_unary_rpc_method_handler, serve_unary
        return make(serve, request_deserializer=_bounded(handler.request_deserializer, PUBLIC_MAX_REQUEST),
                    response_serializer=handler.response_serializer)

    def _admitted(self, handler, method: str, session: Session | None):
        behavior = _behavior(handler)
        who = self.who
        grant = grant_of(session)
        record = self._record

        def check(request, context) -> None:
            if isinstance(request, Malformed):
                log.warning("refused a malformed request to %s from %s: %s", method, context.peer(), request.reason)
                raise InvalidArgument(f"malformed request to {method}: {request.reason}")

        if handler.request_streaming:
            # The messages of a request stream are checked as the servicer reads them.
            def prepare(requests, context):
                return _checked(requests, context, check)
        else:
            def prepare(request, context):
                check(request, context)
                return request

        if inspect.isasyncgenfunction(behavior):
            async def stream(request, context) -> AsyncIterator[Any]:
                actor = Actor(session.user.name if session else "", peer_address(context.peer()))
                try:
                    with in_session(session), roles.acting_as(grant), acting(actor):
                        async for reply in behavior(prepare(request, context), context):
                            yield reply
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                    await record(method, session, context, None if handler.request_streaming else request, exc)
                    await errors.abort(context, exc, method, who)
            return _handler_like(handler, stream, _tolerant(handler.request_deserializer))

        async def call(request, context):
            actor = Actor(session.user.name if session else "", peer_address(context.peer()))
            seen = None if handler.request_streaming else request
            try:
                with in_session(session), roles.acting_as(grant), acting(actor):
                    result = behavior(prepare(request, context), context)
                    reply = await result if inspect.isawaitable(result) else result
                await record(method, session, context, seen, None)
                return reply
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                await record(method, session, context, seen, exc)
                await errors.abort(context, exc, method, who)
        return _handler_like(handler, call, _tolerant(handler.request_deserializer))


async def _checked(requests, context, check) -> AsyncIterator[Any]:
    async for request in requests:
        check(request, context)
        yield request


def _behavior(handler) -> Callable:
    return handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream


def _handler_like(handler, behavior: Callable, deserialize: Callable[[bytes], Any] | None):
    """A method handler of the same shape as `handler`, calling `behavior`, its response serializer kept."""
    if handler.request_streaming and handler.response_streaming:
        make = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        make = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        make = grpc.unary_stream_rpc_method_handler
    else:
        make = grpc.unary_unary_rpc_method_handler
    return make(behavior, request_deserializer=deserialize, response_serializer=handler.response_serializer)
