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
from ..core.secrets import CHECK_KEY
from ..store import KeyExists

__all__ = ["CHECK_KEY", "check_secrets_key"]
CHECK_NAME = "cluster-secrets-check"
ADVICE = ("every server and runner of a cluster must use the same key: set [secrets] encrypt_key_file to the "
          "cluster's key file")


def _mismatch(box: Any, what: str) -> FailedPrecondition:
    return FailedPrecondition(f"the secrets key in {box.key_file} is not this cluster's ({what}); {ADVICE}")


async def check_secrets_key(engine: Any) -> None:
    """Raise FailedPrecondition (saying which key file and what to do) when this process cannot open the
    cluster's secrets; StoreError when the store cannot be reached."""
    box, store = engine.secret_box, engine.store
    entry = await store.get(CHECK_KEY)
    if entry is None:
        for secret in (await engine.list("secret"))[:1]:
            try:
                box.check()
                await engine.reveal_secret(secret.name)
            except FailedPrecondition as exc:
                raise _mismatch(box, f"it cannot open the stored secret {secret.name}: {exc}") from None
        try:
            await store.create(CHECK_KEY, json.dumps(box.seal(CHECK_NAME, secrets.token_urlsafe(16))).encode())
            return
        except KeyExists:  # another server or runner made it first: theirs must open with this key too
            entry = await store.get(CHECK_KEY)
            assert entry is not None
    try:
        box.check()
    except FailedPrecondition as exc:
        raise FailedPrecondition(f"{exc}; this cluster's secrets are sealed with a key it does not have: "
                                 f"{ADVICE}") from None
    try:
        box.open(CHECK_NAME, json.loads(entry.value))
    except (FailedPrecondition, ValueError):
        raise _mismatch(box, "it cannot open the check value the cluster's first server or runner sealed") from None
