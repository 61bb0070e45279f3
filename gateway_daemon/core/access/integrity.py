"""Nothing in the store is trusted for being there: security records carry a MAC.

Users (with their roles and scopes), API keys and runner announcements are JSON
records that carry a ``mac`` field: HMAC-SHA256 under a key derived from the
secrets key file (which runs never see), over the store's namespace, the
record's key and the record's canonical JSON.  A record written straight into
the store (etcd reachable without client certificates) has no valid MAC, and a
valid record copied to another name or another cluster has none there either;
such a record is refused, said once in the log and recorded in the audit trail.

The cluster's runner token is not stored at all: every server and runner
derives it from the same key file.

A store made before MACs existed holds unsigned users and API keys.  The first
server to start on it signs those once (`seal_unsigned`) and leaves a signed
``cluster/records-sealed`` marker; from then on an unsigned record is refused
like a forged one.  A marker that is there but does not verify is never
replaced: nothing is signed on its word.  A marker that is gone while the store
holds signed users or keys was deleted outside the gateway: it is made again,
and nothing is signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ...store import KeyExists, RevisionMismatch, Store
from .audit import Actor
from ..errors import FailedPrecondition

if TYPE_CHECKING:
    from .audit import AuditTrail
    from ..resources.secrets import SecretBox

log = logging.getLogger("gateway.integrity")

MAC_FIELD = "mac"
VERSION = "v1"
SEALED_KEY = "cluster/records-sealed"
SIGNED_PREFIXES = ("users/", "apikeys/")  # what a store from before MACs holds that seal_unsigned signs
OLD_TOKEN_KEY = "cluster/runner-token"  # where the runner token was kept, in clear, before it was derived
_REMEMBERED = 4096  # refusals said already (bounded, so a flood of forgeries cannot grow it without end)
TRUSTED_KEEP = 4096  # records found trusted, remembered (bounded: forgotten all at once when full)


class Untrusted(Exception):
    """A record without a valid MAC; the message says what is wrong with it."""


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class RecordMacs:
    """Signs and checks the store's security records with the key material of one secrets key file."""

    def __init__(self, box: "SecretBox", namespace: str, audit: "AuditTrail | None" = None):
        self.box = box
        self.namespace = namespace
        self.audit = audit
        self._keys: dict[str, bytes] = {}
        self._said: dict[tuple[str, str, str], None] = {}
        # Records found trusted, by (key, stored bytes): the same bytes under the same key, checked with the same
        # derived key, are trusted again without a second MAC (every API call reads its key's and user's).
        self._trusted: dict[tuple[str, bytes], dict[str, Any]] = {}

    def _key(self, purpose: str) -> bytes:
        """FailedPrecondition when the key file cannot be read."""
        key = self._keys.get(purpose)
        if key is None:
            key = self._keys[purpose] = self.box.derived_key(f"automation-gateway {purpose} {VERSION}")
        return key

    def available(self) -> bool:
        try:
            self._key("record-mac")
        except FailedPrecondition:
            return False
        return True

    def _mac(self, key: str, body: dict[str, Any]) -> str:
        message = b"\x00".join([VERSION.encode(), (self.namespace + key).encode(), canonical(body)])
        return hmac.new(self._key("record-mac"), message, hashlib.sha256).hexdigest()

    def sign(self, key: str, data: dict[str, Any]) -> bytes:
        """The record to store under `key`: `data` with its MAC."""
        body = {k: v for k, v in data.items() if k != MAC_FIELD}
        return json.dumps({**body, MAC_FIELD: self._mac(key, body)}, sort_keys=True).encode()

    def open(self, key: str, raw: bytes) -> dict[str, Any]:
        """The record stored under `key` without its MAC; Untrusted when it has no valid one."""
        known = self._trusted.get((key, raw))
        if known is not None:
            return dict(known)
        data = self._open(key, raw)
        if len(self._trusted) >= TRUSTED_KEEP:
            self._trusted.clear()
        self._trusted[(key, bytes(raw))] = dict(data)
        return data

    def _open(self, key: str, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Untrusted("it is not a record the gateway wrote") from None
        if not isinstance(data, dict):
            raise Untrusted("it is not a record the gateway wrote")
        mac = data.pop(MAC_FIELD, None)
        if not isinstance(mac, str) or not mac:
            raise Untrusted("it carries no MAC")
        try:
            expected = self._mac(key, data)
        except FailedPrecondition as exc:
            raise Untrusted(f"it cannot be checked: {exc}") from None
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            raise Untrusted("its MAC does not match (written outside the gateway, moved from another name, "
                            "or made with another secrets key)")
        return data

    def token(self, purpose: str) -> str:
        """A secret every holder of the key file derives alike for this store (FailedPrecondition without one)."""
        return hmac.new(self._key("token"), f"{purpose}\x00{self.namespace}".encode(), hashlib.sha256).hexdigest()

    async def refused(self, key: str, why: str, fingerprint: str = "") -> None:
        """Say once in the log and once in the audit trail that the record under `key` was refused.  The
        same refusal (key, reason, `fingerprint`) is said once only."""
        said = (key, why, fingerprint)
        if said in self._said:
            return
        if len(self._said) >= _REMEMBERED:
            self._said.pop(next(iter(self._said)))
        self._said[said] = None
        log.warning("refused the record %s%s: %s", self.namespace, key, why)
        if self.audit is not None:
            await self.audit.record("integrity.refused", key, "refused", why, actor=Actor("", ""))


def fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


async def seal_unsigned(store: Store, macs: RecordMacs) -> list[str]:
    """Sign, once, the users and API keys a store made before MACs holds, and mark the store sealed.
    Returns the keys signed ([] when the store was sealed already).  FailedPrecondition without the key."""
    marker = await store.get(SEALED_KEY)
    if marker is not None:
        try:
            macs.open(SEALED_KEY, marker.value)
        except Untrusted as exc:
            await macs.refused(SEALED_KEY, f"{exc}; records without a MAC stay refused")
        return []
    macs.sign(SEALED_KEY, {})  # FailedPrecondition now, before anything is written, when there is no key
    entries = [entry for prefix in SIGNED_PREFIXES for entry in await store.list(prefix)]
    for entry in entries:
        try:
            macs.open(entry.key, entry.value)
        except Untrusted:
            continue
        # A record signed by a gateway: this store was sealed, and its marker deleted since.
        await macs.refused(SEALED_KEY, "the store's sealed marker is gone, though it holds signed records: "
                                       "it was deleted outside the gateway; made again, nothing signed")
        try:
            await store.create(SEALED_KEY, macs.sign(SEALED_KEY, {"sealed_at": time.time(), "signed": 0}))
        except KeyExists:
            pass
        return []
    signed: list[str] = []
    for entry in entries:
        try:
            data = json.loads(entry.value)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and MAC_FIELD not in data:  # a forgery that claims a MAC is left as it is
            try:
                await store.update(entry.key, macs.sign(entry.key, data), entry.revision)
            except RevisionMismatch:
                continue  # another server signed it meanwhile, or it went
            signed.append(entry.key)
    try:
        await store.create(SEALED_KEY, macs.sign(SEALED_KEY, {"sealed_at": time.time(), "signed": len(signed)}))
    except KeyExists:
        pass  # another server sealed it at the same time
    await store.delete(OLD_TOKEN_KEY)
    if signed:
        log.warning("this store was made before its records carried MACs: signed %d of them once (%s); from now "
                    "on a record without a valid MAC is refused", len(signed), ", ".join(signed))
        if macs.audit is not None:
            await macs.audit.record("integrity.sealed", "store", "ok", f"signed {', '.join(signed)}",
                                    actor=Actor("", ""))
    return signed
