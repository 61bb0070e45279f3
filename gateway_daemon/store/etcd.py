"""The shared backend: etcd v3, so servers and runners see one state.

Revisions are etcd's own: an entry's revision is the key's ``mod_revision``,
and every write returns the cluster revision it made.  ``create`` is a
transaction on ``create_revision == 0``; ``update`` and ``delete(revision=)``
are transactions on ``mod_revision``.

The client (``pyetcd``) is synchronous, so every call runs on a small thread
pool.  Each call is bounded by ``timeout``: while no endpoint answers, reads
are retried, and writes only when gRPC reports that no connection could be
made (so the request was never sent), so a write is never applied twice.  When the time is up the call raises StoreUnavailable with one line
naming the endpoints.  Nothing has to be reopened when etcd comes back: the
gRPC channels reconnect by themselves (backoff capped at one second).

All subscriptions share one etcd watch on the namespace.  It starts right
after the newest revision this store has seen, so it misses nothing written
after ``watch()`` returned.  (A store that has not talked to etcd yet first
asks for the current revision; its own writes wait until the watch is in
place, other clients' writes in that first moment are not seen.)  When the
watch breaks (etcd restarted, endpoint failed over) it is re-created from the
last revision delivered + 1, so no event is lost or repeated; while that fails
it is retried every second in the background.  When a compaction took the
history after that revision, the watch starts again from the current state:
every key changed since comes as a put of its value now (deletes in the lost
history are not told), then the watch goes on from there.

etcd keeps every revision until it is compacted and refuses writes once its
quota is full, so the store compacts the history itself (`compact`), and a
full etcd is StoreFull: one line saying what to do.  `space` asks every member
how large its database is (the maintenance Status call) against the quota it
was told (``[store] etcd_quota_bytes``, etcd's ``--quota-backend-bytes``), and
`reclaim` compacts to the current revision, defragments each member and lifts
the NOSPACE alarm once every member is under the quota again (what
`etcdctl compact`, `etcdctl defrag` and `etcdctl alarm disarm` do); the server
decides when (core.retention).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

import grpc
import pyetcd
from pyetcd import etcdrpc
from pyetcd import exceptions as etcd_exceptions
from pyetcd.events import DeleteEvent
from pyetcd.utils import prefix_range_end

from .base import (
    Entry,
    KeyExists,
    RevisionMismatch,
    Store,
    StoreError,
    StoreFull,
    StoreSpace,
    StoreUnavailable,
    WatchEvent,
)
from .watchers import Subscription, Watchers

T = TypeVar("T")
log = logging.getLogger("gateway.store")

LIST_PAGE = 1000
# etcd keeps every revision until it is compacted, and refuses writes once its quota is full. So every
# COMPACT_BYTES written (or COMPACT_SECONDS after a write), and at close after COMPACT_AT_CLOSE_BYTES,
# a store compacts the history up to the revision the previous compaction marked under COMPACTION_KEY:
# one period of history stays for watchers that are behind.
COMPACT_BYTES = 2 * 1024 * 1024
COMPACT_SECONDS = 60.0
COMPACT_AT_CLOSE_BYTES = 64 * 1024
COMPACTION_KEY = "store/compaction"
_FULL = ("database space exceeded", "nospace")
DEFAULT_QUOTA = 2 * 1024 * 1024 * 1024  # etcd's own default --quota-backend-bytes
DISARM_BELOW = 0.9  # the NOSPACE alarm is lifted once every member's database is under this part of the quota
DEFRAG_SECONDS = 120.0  # a defragmentation of a large database takes a while
REWATCH_SECONDS = 1.0
_ENDPOINT_RETRY_SECONDS = 30.0  # how long a failed endpoint is passed over while others answer
_GRPC_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),  # etcd refuses pings more often than every 5 s
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
_CONNECTION_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Phrases gRPC uses when the request could not be sent at all.
_NOT_SENT = ("failed to connect", "connection refused", "connections to all backends failing", "handshake")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def _varints(raw: bytes) -> dict[int, int]:
    """The varint fields of a protobuf message (field number -> value); the other fields are passed over."""
    fields: dict[int, int] = {}
    index, end = 0, len(raw)

    def varint() -> int:
        nonlocal index
        value, shift = 0, 0
        while True:
            byte = raw[index]
            index += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    try:
        while index < end:
            tag = varint()
            number, kind = tag >> 3, tag & 7
            if kind == 0:
                fields[number] = varint()
            elif kind == 1:
                index += 8
            elif kind == 2:
                length = varint()  # read first: `index += varint()` would add to the index before it moved
                index += length
            elif kind == 5:
                index += 4
            else:
                break
    except IndexError:
        pass
    return fields


def split_hosts(hosts: Iterable[str] | str) -> list[tuple[str, int]]:
    """'host:port' items (or one string of them, by spaces or commas) -> [(host, port)].

    IPv6 hosts keep their brackets ('[::1]', 2379) so that 'host:port' is a valid gRPC target.
    """
    items = re.split(r"[\s,]+", hosts.strip()) if isinstance(hosts, str) else [h.strip() for h in hosts]
    result = []
    for item in items:
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise StoreError(f"etcd host '{item}' is not host:port")
        result.append((host, int(port)))
    if not result:
        raise StoreError("no etcd hosts given")
    return result


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise StoreError(f"etcd {what} {path}: {exc.strerror or exc}") from None


class _Watchers(Watchers):
    """Watchers where a subscription only gets revisions newer than the one current when it subscribed.

    The shared etcd watch may still be delivering events written before a new
    subscription was made; those are not "from now on" for it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._floors: dict[Subscription, int] = {}

    def subscribe(self, prefix: str, on_close: Callable[[Subscription], None] | None = None,
                  floor: int = 0) -> Subscription:
        def closed(sub: Subscription) -> None:
            with self._lock:
                self._floors.pop(sub, None)
            if on_close:
                on_close(sub)

        with self._lock:
            sub = super().subscribe(prefix, closed)
            self._floors[sub] = floor
        return sub

    def publish(self, event: WatchEvent) -> None:
        with self._lock:
            targets = [
                s for s in self._subs if event.key.startswith(s.prefix) and event.revision > self._floors.get(s, 0)
            ]
        for sub in targets:
            sub.deliver(event)

    def close(self) -> None:
        with self._lock:
            self._floors.clear()
        super().close()


class EtcdStore(Store):
    def __init__(
        self,
        namespace: str,
        hosts: list[str],
        use_tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        timeout: float = 5.0,
        quota: int = DEFAULT_QUOTA,
    ):
        super().__init__(namespace)
        self.timeout = float(timeout)
        self.quota = int(quota)
        addresses = split_hosts(hosts)
        self.hosts = [f"{host}:{port}" for host, port in addresses]
        credentials = None
        if use_tls:
            if bool(cert_file) != bool(key_file):
                raise StoreError("etcd client certificate auth needs both a certificate file and a private key file")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file, "CA certificate") if ca_file else None,
                private_key=_read(key_file, "private key") if key_file else None,
                certificate_chain=_read(cert_file, "certificate") if cert_file else None,
            )
        endpoints = [
            pyetcd.Endpoint(host, port, secure=credentials is not None, creds=credentials,
                            time_retry=_ENDPOINT_RETRY_SECONDS, opts=list(_GRPC_OPTIONS))
            for host, port in addresses
        ]
        self._client = pyetcd.MultiEndpointEtcd3Client(
            endpoints=endpoints, timeout=self.timeout, failover=len(endpoints) > 1
        )
        # Try the endpoints in the configured order rather than a random one first.
        self._client._current_endpoint_label = endpoints[0].netloc
        self._client_lock = threading.Lock()  # endpoint bookkeeping inside the client
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="etcd-store")
        self._closed = False
        self._revision_lock = threading.Lock()
        self._known_revision = 0  # the newest revision any answer told us about

        self._watchers = _Watchers()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch_task: asyncio.Task | None = None
        self._watch_wakeup: asyncio.Event | None = None
        self._watch_starting: asyncio.Event | None = None
        self._watch_generation = 0
        self._watch_id: int | None = None
        self._watch_revision: int | None = None  # the last revision the shared watch delivered
        self._watch_compacted = False  # the history after _watch_revision is gone: catch up from the keys

        self._written = 0  # bytes written since the last compaction
        self._compacted_at = time.monotonic()
        self._compacting: asyncio.Task | None = None

    # ------------------------------------------------------------ plumbing
    def _unavailable(self, reason: str) -> StoreUnavailable:
        return StoreUnavailable(f"etcd at {', '.join(self.hosts)} is unreachable: {reason}")

    def _out_of_space(self, details: str) -> StoreFull:
        self.refusals += 1
        return StoreFull(
            f"etcd at {', '.join(self.hosts)} is full and takes no more writes ({details}): free it with "
            "`etcdctl compact REVISION`, `etcdctl defrag` and `etcdctl alarm disarm`, or restart it with a larger "
            "--quota-backend-bytes"
        )

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, grpc.RpcError):
            code = exc.code()
            details = (exc.details() or "").strip()
            low = details.lower()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"no answer within {self.timeout:g} s"
            if "connection refused" in low:
                return "connection refused"
            if "certificate_verify_failed" in low:
                return "TLS handshake failed (server certificate not trusted)"
            if "tsi_data_corrupted" in low or "bad_certificate" in low:
                return "TLS connection refused by the server (client certificate missing or not accepted)"
            if "handshake" in low:
                return "TLS handshake failed"
            # "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:1.2.3.4:2379: Socket closed"
            last = re.sub(r"^.*last error: (?:[A-Z_]+: )?(?:ipv[46]:\S+?: )?", "", details, flags=re.DOTALL)
            return " ".join(last.split())[:200] or code.name.lower()
        if isinstance(exc, etcd_exceptions.WatchTimedOut):
            return f"no answer within {self.timeout:g} s"
        if isinstance(exc, etcd_exceptions.NoServerAvailableError):
            return "no endpoint available"
        return " ".join(str(exc).split())[:200] or type(exc).__name__

    def _note(self, header: etcdrpc.ResponseHeader) -> None:
        revision = header.revision
        if revision > self._known_revision:
            with self._revision_lock:
                self._known_revision = max(self._known_revision, revision)

    def _pick(self) -> pyetcd.Endpoint:
        """The endpoint to talk to now; when every endpoint has failed, all get another chance."""
        client = self._client
        with self._client_lock:
            if all(ep.is_failed() for ep in client.endpoints.values()):
                for ep in client.endpoints.values():
                    ep.last_failed = 0
            try:
                client.channel  # noqa: B018 - selects (and fails over to) a usable endpoint
            except ValueError:  # without failover: the one endpoint is marked failed
                raise etcd_exceptions.NoServerAvailableError() from None
            return client.endpoint_in_use

    def _call(self, fn: Callable[[Callable[[str], object], float], T], *, idempotent: bool, retry: bool = True,
              deadline: float | None = None) -> T:
        """Run `fn(stub, timeout)` against a live endpoint, within self.timeout. Worker thread only.

        `stub(name)` returns the named stub ("kv" or "watcher") of the endpoint in use.
        Endpoints that fail are passed over for the rest of the round; after a
        round in which none answered, wait a little (up to 1 s) and go again,
        unless `retry` is false.  Gives up at `deadline` (time.monotonic()), by
        default self.timeout from now.
        """
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        delay = 0.05
        count = len(self._client.endpoints)
        tried: set[str] = set()
        reason = f"no answer within {self.timeout:g} s"
        while True:
            if self._closed:
                raise self._unavailable("the store is closed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unavailable(reason)
            endpoint = None
            try:
                endpoint = self._pick()
                tried.add(endpoint.netloc)
                # Leave time for the endpoints not yet tried in this round.
                return fn(self._stub, remaining / max(1, count - len(tried) + 1))
            except grpc.RpcError as exc:
                if exc.code() not in _CONNECTION_CODES:
                    details = " ".join((exc.details() or exc.code().name).split())
                    if any(p in details.lower() for p in _FULL):
                        raise self._out_of_space(details) from None
                    raise StoreError(f"etcd: {details}") from None
                reason = self._reason(exc)
                self._failed(endpoint)
                never_sent = any(p in (exc.details() or "").lower() for p in _NOT_SENT)
                if not (idempotent or never_sent):
                    raise self._unavailable(reason) from None
            except etcd_exceptions.WatchTimedOut as exc:
                reason = self._reason(exc)
                self._failed(endpoint)
            except etcd_exceptions.NoServerAvailableError as exc:
                # no endpoint usable right now (another thread just marked the last one failed)
                reason = self._reason(exc)
                tried = set(self._client.endpoints)
            if len(tried) < count:
                continue  # fail over at once
            if not retry:
                raise self._unavailable(reason)
            tried.clear()
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)

    def _failed(self, endpoint: pyetcd.Endpoint | None) -> None:
        if endpoint is not None:
            with self._client_lock:
                endpoint.fail()

    def _stub(self, name: str):
        with self._client_lock:
            try:
                if name == "lease":
                    return self._client.leasestub
                return self._client.kvstub if name == "kv" else self._client.watcher
            except ValueError:  # another thread marked the endpoint failed just now
                raise etcd_exceptions.NoServerAvailableError() from None

    def _kv(self, method: str, request: object) -> Callable[[Callable[[str], object], float], object]:
        client = self._client

        def fn(stub: Callable[[str], object], timeout: float) -> object:
            response = getattr(stub("kv"), method)(
                request, timeout, credentials=client.call_credentials, metadata=client.metadata
            )
            self._note(response.header)
            return response

        return fn

    async def _run(self, fn: Callable[..., T], *, idempotent: bool) -> T:
        if self._closed:
            raise self._unavailable("the store is closed")
        deadline = time.monotonic() + self.timeout
        if not idempotent and self._watch_starting is not None and not self._watch_starting.is_set():
            # A watch made just before this write must be in place, or it would miss it.
            try:
                await asyncio.wait_for(self._watch_starting.wait(), self.timeout)
            except TimeoutError:
                pass
        call = functools.partial(self._call, fn, idempotent=idempotent, deadline=deadline)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except RuntimeError as exc:
            if self._closed:
                raise self._unavailable("the store is closed") from None
            raise StoreError(f"etcd: {exc}") from None

    @staticmethod
    def _txn(compare: etcdrpc.Compare, op: etcdrpc.RequestOp) -> etcdrpc.TxnRequest:
        return etcdrpc.TxnRequest(compare=[compare], success=[op], failure=[])

    # ------------------------------------------------------------ interface
    async def get(self, key: str) -> Entry | None:
        request = etcdrpc.RangeRequest(key=self._full(key).encode())
        response = await self._run(self._kv("Range", request), idempotent=True)
        if not response.kvs:
            return None
        kv = response.kvs[0]
        return Entry(key, bytes(kv.value), kv.mod_revision)

    async def put(self, key: str, value: bytes) -> int:
        request = etcdrpc.PutRequest(key=self._full(key).encode(), value=bytes(value))
        response = await self._run(self._kv("Put", request), idempotent=False)
        self._wrote(len(key) + len(value))
        return response.header.revision

    async def create(self, key: str, value: bytes) -> int:
        full = self._full(key).encode()
        request = self._txn(
            etcdrpc.Compare(key=full, target=etcdrpc.Compare.CREATE, result=etcdrpc.Compare.EQUAL, create_revision=0),
            etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=full, value=bytes(value))),
        )
        response = await self._run(self._kv("Txn", request), idempotent=False)
        if not response.succeeded:
            raise KeyExists(key)
        self._wrote(len(key) + len(value))
        return response.header.revision

    async def update(self, key: str, value: bytes, revision: int) -> int:
        full = self._full(key).encode()
        request = self._txn(
            etcdrpc.Compare(key=full, target=etcdrpc.Compare.MOD, result=etcdrpc.Compare.EQUAL, mod_revision=revision),
            etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=full, value=bytes(value))),
        )
        response = await self._run(self._kv("Txn", request), idempotent=False)
        if not response.succeeded:
            raise RevisionMismatch(key)
        self._wrote(len(key) + len(value))
        return response.header.revision

    async def delete(self, key: str, revision: int | None = None) -> bool:
        full = self._full(key).encode()
        if revision is None:
            response = await self._run(self._kv("DeleteRange", etcdrpc.DeleteRangeRequest(key=full)), idempotent=False)
            self._wrote(len(key))
            return response.deleted > 0
        request = self._txn(
            etcdrpc.Compare(key=full, target=etcdrpc.Compare.MOD, result=etcdrpc.Compare.EQUAL, mod_revision=revision),
            etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=full)),
        )
        response = await self._run(self._kv("Txn", request), idempotent=False)
        if not response.succeeded or response.responses[0].response_delete_range.deleted == 0:
            raise RevisionMismatch(key)
        self._wrote(len(key))
        return True

    async def list(self, prefix: str) -> list[Entry]:
        start = self._full(prefix).encode()
        end = prefix_range_end(start)
        entries: list[Entry] = []
        revision = 0  # every page is read at the revision of the first one
        while True:
            request = etcdrpc.RangeRequest(
                key=start, range_end=end, limit=LIST_PAGE, revision=revision,
                sort_order=etcdrpc.RangeRequest.ASCEND, sort_target=etcdrpc.RangeRequest.KEY,
            )
            response = await self._run(self._kv("Range", request), idempotent=True)
            revision = revision or response.header.revision
            for kv in response.kvs:
                entries.append(Entry(self._relative(kv.key.decode("utf-8", "replace")), bytes(kv.value), kv.mod_revision))
            if not response.more or not response.kvs:
                return entries
            start = response.kvs[-1].key + b"\x00"

    async def delete_prefix(self, prefix: str) -> int:
        start = self._full(prefix).encode()
        request = etcdrpc.DeleteRangeRequest(key=start, range_end=prefix_range_end(start))
        # Deleting twice (a retry after a lost answer) deletes nothing more: idempotent.
        response = await self._run(self._kv("DeleteRange", request), idempotent=True)
        self._wrote(len(prefix))
        return response.deleted

    # ------------------------------------------------------------ space
    def _members(self) -> list[pyetcd.Endpoint]:
        with self._client_lock:
            return list(self._client.endpoints.values())

    def _member_status(self, endpoint: pyetcd.Endpoint, timeout: float) -> tuple[int, int]:
        """(dbSize, dbSizeInUse) of one member (in use: its size, from an etcd that does not tell).  Worker thread."""
        call = endpoint.channel.unary_unary(
            "/etcdserverpb.Maintenance/Status",
            request_serializer=etcdrpc.StatusRequest.SerializeToString,
            response_deserializer=bytes,  # dbSizeInUse (field 9, etcd 3.4) is newer than pyetcd's messages
        )
        client = self._client
        fields = _varints(call(etcdrpc.StatusRequest(), timeout, credentials=client.call_credentials,
                               metadata=client.metadata))
        size = fields.get(3, 0)
        return size, fields.get(9, 0) or size

    def _space(self) -> StoreSpace:
        """Every member answering, the largest; worker thread."""
        sizes = []
        reason = "no member answered"
        for endpoint in self._members():
            try:
                sizes.append(self._member_status(endpoint, self.timeout))
            except grpc.RpcError as exc:
                reason = self._reason(exc)
        if not sizes:
            raise self._unavailable(reason)
        full = self._call(self._alarmed_call, idempotent=True)
        size = max(s for s, _ in sizes)
        return StoreSpace(size=size, in_use=max(u for _, u in sizes), quota=self.quota, full=full)

    def _alarmed_call(self, stub: Callable[[str], object], timeout: float) -> bool:
        with self._client_lock:
            try:
                channel = self._client.channel
            except ValueError:
                raise etcd_exceptions.NoServerAvailableError() from None
        client = self._client
        response = etcdrpc.MaintenanceStub(channel).Alarm(
            etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET, memberID=0, alarm=etcdrpc.NONE), timeout,
            credentials=client.call_credentials, metadata=client.metadata)
        return any(alarm.alarm == etcdrpc.NOSPACE for alarm in response.alarms)

    async def space(self) -> StoreSpace:
        if self._closed:
            raise self._unavailable("the store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._space)

    def _reclaim(self) -> None:
        """Compact to now, defragment every member, lift the NOSPACE alarm when every member is under the
        quota.  Worker thread."""
        client = self._client

        def compact(stub: Callable[[str], object], timeout: float) -> None:
            current = stub("kv").Range(etcdrpc.RangeRequest(key=self.namespace.encode(), count_only=True), timeout,
                                       credentials=client.call_credentials, metadata=client.metadata)
            self._note(current.header)
            try:
                stub("kv").Compact(etcdrpc.CompactionRequest(revision=current.header.revision, physical=True),
                                   timeout, credentials=client.call_credentials, metadata=client.metadata)
            except grpc.RpcError as exc:
                if "compacted" not in (exc.details() or ""):  # compacted to there already
                    raise

        self._call(compact, idempotent=True)
        for endpoint in self._members():
            try:
                etcdrpc.MaintenanceStub(endpoint.channel).Defragment(
                    etcdrpc.DefragmentRequest(), max(DEFRAG_SECONDS, self.timeout),
                    credentials=client.call_credentials, metadata=client.metadata)
            except grpc.RpcError as exc:  # a member away now: defragmented next time
                log.debug("etcd member %s not defragmented now: %s", endpoint.netloc, self._reason(exc))
        space = self._space()
        if space.full and space.size < self.quota * DISARM_BELOW:
            def disarm(stub: Callable[[str], object], timeout: float) -> None:
                with self._client_lock:
                    try:
                        channel = client.channel
                    except ValueError:
                        raise etcd_exceptions.NoServerAvailableError() from None
                stub = etcdrpc.MaintenanceStub(channel)
                raised = stub.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET, memberID=0,
                                                         alarm=etcdrpc.NONE),
                                    timeout, credentials=client.call_credentials, metadata=client.metadata)
                for alarm in raised.alarms:  # each member's own: etcd lifts nothing for member 0
                    if alarm.alarm == etcdrpc.NOSPACE:
                        stub.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.DEACTIVATE,
                                                        memberID=alarm.memberID, alarm=etcdrpc.NOSPACE),
                                   timeout, credentials=client.call_credentials, metadata=client.metadata)

            self._call(disarm, idempotent=True)
            log.warning("etcd at %s takes writes again: its database is %s of its %s quota after compaction and "
                        "defragmentation", ", ".join(self.hosts), _mib(space.size), _mib(self.quota))

    async def reclaim(self) -> None:
        if self._closed:
            raise self._unavailable("the store is closed")
        self._written, self._compacted_at = 0, time.monotonic()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._reclaim)

    # ------------------------------------------------------------ compaction
    def _wrote(self, size: int) -> None:
        """After a write: compact the history when enough was written, or long enough ago."""
        self._written += size
        self.bytes_written += size
        if self._written >= COMPACT_BYTES or time.monotonic() - self._compacted_at >= COMPACT_SECONDS:
            if self._compacting is None or self._compacting.done():
                self._compacting = asyncio.get_running_loop().create_task(self.compact())

    async def compact(self) -> None:
        """Compact etcd's history up to the revision the previous compaction marked, and mark the current
        one for the next.  Never raises: a compaction that cannot be made now is made a later time."""
        self._written, self._compacted_at = 0, time.monotonic()
        try:
            mark = await self.get(COMPACTION_KEY)
            revision = int(mark.value) if mark is not None and mark.value.isdigit() else 0
            if revision:
                request = etcdrpc.CompactionRequest(revision=revision, physical=False)
                try:
                    await self._run(self._kv("Compact", request), idempotent=True)
                except StoreError as exc:
                    if "compacted" not in str(exc):  # "required revision has been compacted": done already
                        raise
            current = self._known_revision
            if current > revision:
                request = etcdrpc.PutRequest(key=self._full(COMPACTION_KEY).encode(), value=str(current).encode())
                await self._run(self._kv("Put", request), idempotent=False)
        except StoreError as exc:
            log.debug("etcd history not compacted now: %s", exc)

    # ------------------------------------------------------------ leases
    def _lease(self, method: str, request: object, stream: bool = False):
        client = self._client

        def fn(stub: Callable[[str], object], timeout: float) -> object:
            call = getattr(stub("lease"), method)
            if stream:  # LeaseKeepAlive: one request, its one answer
                for response in call(iter([request]), timeout, credentials=client.call_credentials,
                                     metadata=client.metadata):
                    return response
                return None
            return call(request, timeout, credentials=client.call_credentials, metadata=client.metadata)

        return fn

    async def grant_lease(self, ttl: int) -> int:
        # Granting twice (a retry after a lost answer) only leaves an unused lease that expires.
        response = await self._run(self._lease("LeaseGrant", etcdrpc.LeaseGrantRequest(TTL=int(ttl))), idempotent=True)
        if response.error:
            raise StoreError(f"etcd: cannot grant a lease: {response.error}")
        return response.ID

    async def put_leased(self, key: str, value: bytes, lease: int) -> int:
        request = etcdrpc.PutRequest(key=self._full(key).encode(), value=bytes(value), lease=lease)
        try:
            response = await self._run(self._kv("Put", request), idempotent=False)
        except StoreError as exc:
            if "lease not found" in str(exc):
                raise RevisionMismatch(f"{key}: the lease is gone") from None
            raise
        return response.header.revision

    async def keep_alive(self, lease: int) -> bool:
        response = await self._run(self._lease("LeaseKeepAlive", etcdrpc.LeaseKeepAliveRequest(ID=lease), stream=True),
                                   idempotent=True)
        return response is not None and response.TTL > 0

    async def revoke_lease(self, lease: int) -> None:
        try:
            await self._run(self._lease("LeaseRevoke", etcdrpc.LeaseRevokeRequest(ID=lease)), idempotent=True)
        except StoreError as exc:
            if "lease not found" not in str(exc):
                raise

    # ------------------------------------------------------------ watching
    def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        if self._closed:
            raise self._unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        sub = self._watchers.subscribe(prefix, on_close=self._unsubscribed, floor=self._known_revision)
        if self._watch_task is None or self._watch_task.done():
            self._loop = loop
            self._watch_wakeup = asyncio.Event()
            self._watch_id = None
            # Start right after the newest revision this store has seen; with none
            # seen yet, the current revision is asked for first and writes wait.
            self._watch_revision = self._known_revision or None
            self._watch_starting = asyncio.Event()
            if self._watch_revision is not None:
                self._watch_starting.set()
            self._watch_task = loop.create_task(self._keep_watch())
        else:
            self._wake()
        return sub

    def _wake(self) -> None:
        if self._watch_wakeup is not None:
            self._watch_wakeup.set()

    def _unsubscribed(self, sub: Subscription) -> None:
        if not len(self._watchers):
            self._wake()

    async def _keep_watch(self) -> None:
        """Hold one etcd watch on the namespace while there are subscriptions."""
        assert self._watch_wakeup is not None and self._watch_starting is not None
        try:
            while not self._closed:
                if not len(self._watchers):
                    if self._watch_id is None:
                        return
                    await self._cancel_watch()
                    continue
                if self._watch_id is None:
                    try:
                        await self._start_watch()
                    except Exception:  # unreachable for now (StoreError), or closing: try again shortly
                        self._watch_starting.set()
                        await self._sleep(REWATCH_SECONDS)
                        continue
                    self._watch_starting.set()
                await self._watch_wakeup.wait()
                self._watch_wakeup.clear()
        finally:
            self._watch_starting.set()

    async def _sleep(self, seconds: float) -> None:
        assert self._watch_wakeup is not None
        try:
            await asyncio.wait_for(self._watch_wakeup.wait(), seconds)
        except TimeoutError:
            pass
        self._watch_wakeup.clear()

    async def _start_watch(self) -> None:
        self._watch_generation += 1
        generation = self._watch_generation
        callback = functools.partial(self._on_watch_response, generation)
        namespace = self.namespace.encode()
        client = self._client

        def establish(stub: Callable[[str], object], timeout: float) -> int:
            if self._watch_revision is None:
                response = stub("kv").Range(
                    etcdrpc.RangeRequest(key=namespace, count_only=True), timeout,
                    credentials=client.call_credentials, metadata=client.metadata,
                )
                self._note(response.header)
                self._watch_revision = response.header.revision
            while True:
                if self._watch_compacted:
                    self._catch_up(stub, timeout)
                try:
                    return stub("watcher").add_callback(
                        namespace, callback, range_end=prefix_range_end(namespace),
                        start_revision=self._watch_revision + 1,
                    )
                except etcd_exceptions.RevisionCompactedError:
                    self._watch_compacted = True

        loop = asyncio.get_running_loop()
        watch_id = await loop.run_in_executor(
            self._executor, functools.partial(self._call, establish, idempotent=True, retry=False)
        )
        if generation != self._watch_generation:  # broke or was dropped while being made
            return
        self._watch_id = watch_id

    def _catch_up(self, stub: Callable[[str], object], timeout: float) -> None:
        """The history after the last delivered revision is compacted away: deliver the keys changed since
        as they are now (a put each, oldest change first), and go on watching from there.  Keys deleted
        in the lost history are not told.  Worker thread."""
        client = self._client
        namespace = self.namespace.encode()
        since = self._watch_revision or 0
        start, end, revision = namespace, prefix_range_end(namespace), 0
        changed: list[tuple[int, bytes]] = []
        while True:  # the keys alone first, a page at a time, all read at one revision
            response = stub("kv").Range(
                etcdrpc.RangeRequest(key=start, range_end=end, limit=LIST_PAGE, revision=revision, keys_only=True),
                timeout, credentials=client.call_credentials, metadata=client.metadata,
            )
            revision = revision or response.header.revision
            changed.extend((kv.mod_revision, kv.key) for kv in response.kvs if kv.mod_revision > since)
            if not response.more or not response.kvs:
                break
            start = response.kvs[-1].key + b"\x00"
        for mod_revision, key in sorted(changed):
            response = stub("kv").Range(etcdrpc.RangeRequest(key=key, revision=revision), timeout,
                                        credentials=client.call_credentials, metadata=client.metadata)
            for kv in response.kvs:
                self._watchers.publish(WatchEvent("put", self._relative(kv.key.decode("utf-8", "replace")),
                                                  bytes(kv.value), kv.mod_revision))
        self._watch_revision = max(since, revision)
        self._watch_compacted = False

    async def _cancel_watch(self) -> None:
        watch_id, self._watch_id = self._watch_id, None
        self._watch_generation += 1
        if watch_id is None:
            return

        def cancel() -> None:
            try:
                self._stub("watcher").cancel(watch_id)
            except Exception:  # the stream is gone already: nothing to cancel
                pass

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, cancel)
        except RuntimeError:
            pass

    def _on_watch_response(self, generation: int, response: object) -> None:
        """pyetcd's watch thread: a batch of events, or an error / None when the stream ended."""
        if generation != self._watch_generation or self._closed:
            return
        events = getattr(response, "events", None)
        if events is None:
            if isinstance(response, etcd_exceptions.RevisionCompactedError):
                self._watch_compacted = True  # a compaction passed this watch: catch up from the keys
            loop = self._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._watch_broken, generation)
                except RuntimeError:  # the loop is closed
                    pass
            return
        for event in events:
            revision = event.mod_revision
            key = self._relative(event.key.decode("utf-8", "replace"))
            if isinstance(event, DeleteEvent):
                item = WatchEvent("delete", key, None, revision)
            else:
                item = WatchEvent("put", key, bytes(event.value), revision)
            self._watch_revision = max(self._watch_revision or 0, revision)
            self._watchers.publish(item)
        header = getattr(response, "header", None)
        if header is not None:
            self._note(header)

    def _watch_broken(self, generation: int) -> None:
        if generation == self._watch_generation:
            self._watch_generation += 1
            self._watch_id = None
            self._wake()

    # ------------------------------------------------------------ closing
    async def close(self) -> None:
        if self._closed:
            return
        if self._written >= COMPACT_AT_CLOSE_BYTES:  # a short-lived process (a `gateway run`) compacts too
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.compact(), self.timeout)
        compacting, self._compacting = self._compacting, None
        if compacting is not None and not compacting.done():
            compacting.cancel()
        self._closed = True
        self._watch_generation += 1
        self._watchers.close()
        task, self._watch_task = self._watch_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._client.close)
        except Exception:
            pass
        self._executor.shutdown(wait=False)
