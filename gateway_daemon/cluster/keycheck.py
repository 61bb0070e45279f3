"""One secrets key per cluster: a server or runner whose key is not the cluster's finds out when it starts.

Secrets are sealed with the key of whoever stored them, so every server and
runner on one store must hold the same key file.  The store keeps a sealed
check value under ``cluster/secrets-check``, made with the key of the first
process to start; every later one must be able to open it.  In a store made
before the check existed, an existing secret plays that part first.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..core.errors import FailedPrecondition
from ..core.resources.secrets import CHECK_KEY, Secret, SecretBox
from ..store import KeyExists, Store

__all__ = ["CHECK_KEY", "check_secrets_key"]
CHECK_NAME = "cluster-secrets-check"
ADVICE = ("every server and runner of a cluster must use the same key: set [secrets] encrypt_key_file to the "
          "cluster's key file")


LOCAL_ADVICE = ("its secrets are sealed with the key this store was first used with: put that key file back, or "
                "set [secrets] encrypt_key_file to it")


def _mismatch(box: Any, what: str, local: bool = False) -> FailedPrecondition:
    if local:
        return FailedPrecondition(f"the secrets key in {box.key_file} is not this store's ({what}); {LOCAL_ADVICE}")
    return FailedPrecondition(f"the secrets key in {box.key_file} is not this cluster's ({what}); {ADVICE}")


async def check_secrets_key(box: SecretBox, store: Store, local: bool = False) -> None:
    """Raise FailedPrecondition (saying which key file and what to do) when this process cannot open the
    cluster's secrets; StoreError when the store cannot be reached.  `local`: `gateway` in local mode, whose
    store is its own (it asks before its first seal or open, and says so in its own words)."""
    entry = await store.get(CHECK_KEY)
    if entry is None:
        for stored in (await store.list(f"{Secret.PLURAL}/"))[:1]:
            secret = Secret.decode(stored.value)
            try:
                box.check()
                box.open(secret.name, secret.sealed)
            except FailedPrecondition as exc:
                detail = "" if local else f": {exc}"
                raise _mismatch(box, f"it cannot open the stored secret {secret.name}{detail}", local) from None
        try:
            await store.create(CHECK_KEY, json.dumps(box.seal(CHECK_NAME, secrets.token_urlsafe(16))).encode())
            return
        except KeyExists:  # another server or runner made it first: theirs must open with this key too
            entry = await store.get(CHECK_KEY)
            assert entry is not None
    try:
        box.check()
    except FailedPrecondition as exc:
        if local:
            raise
        raise FailedPrecondition(f"{exc}; this cluster's secrets are sealed with a key it does not have: "
                                 f"{ADVICE}") from None
    try:
        box.open(CHECK_NAME, json.loads(entry.value))
    except (FailedPrecondition, ValueError):
        what = ("it cannot open the check value sealed with the store's first key" if local
                else "it cannot open the check value the cluster's first server or runner sealed")
        raise _mismatch(box, what, local) from None
