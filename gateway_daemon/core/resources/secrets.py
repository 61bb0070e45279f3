"""Secrets: values encrypted at rest with AES-256-GCM.

Each secret has its own random salt and its own AES key.  The key file's content
goes through PBKDF2-HMAC-SHA256 (310,000 rounds, with a random salt a process keeps
for what it seals: a guess at the key file costs those rounds, as a password's
would), and each secret's key is derived from that with HKDF-SHA256 and the
secret's salt.  A seal costs microseconds, not the ~80 ms of PBKDF2; opening costs
PBKDF2 once per process and salt.  (Values sealed before, `pbkdf2-sha256`, one
PBKDF2 per secret, still open.)  The secret's name is bound to the ciphertext as
associated data, so a stored value cannot be moved to another name unseen.
Values never appear in lists, logs, exports or error messages.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets as random
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable

from ..errors import FailedPrecondition
from .base import Resource, check_name, check_tags, check_text, field_error, now

KDF = "pbkdf2-hkdf-sha256"  # PBKDF2 of the key file (salt `master_salt`), then HKDF per secret (salt `salt`)
PER_SECRET_KDF = "pbkdf2-sha256"  # earlier seals: PBKDF2 per secret (opened, never made)
ITERATIONS = 310_000
SEALED_FIELDS = {KDF: ("kdf", "iterations", "master_salt", "salt", "nonce", "ciphertext"),
                 PER_SECRET_KDF: ("kdf", "iterations", "salt", "nonce", "ciphertext")}
MAX_VALUE_BYTES = 64 * 1024
MASK = "******"  # what is shown in place of a secret value (run output, a run's recorded inputs)
MIN_MASKED = 4  # shorter values are not masked in run output: masking them would hide every such letter
MASKING = (f"runs show the value as {MASK} in their output, each line of a multi-line value too; "
           f"values shorter than {MIN_MASKED} characters are not masked")
# A value sealed with the key of whoever first used the store (cluster.keycheck): every later key must open it.
CHECK_KEY = "cluster/secrets-check"


@dataclasses.dataclass
class Secret(Resource):
    KIND = "secret"
    PLURAL = "secrets"

    description: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)  # a user scoped to tags sees it when one matches
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)
    # The sealed value: {"kdf", "iterations", "salt", "nonce", "ciphertext"}, base64 fields.
    sealed: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    # An alias (core.resources.secret_providers): its value lives at `path` (field `key`) of the secret provider `provider`,
    # fetched when a run is prepared; nothing is sealed here.
    provider: str = ""
    path: str = ""
    key: str = ""

    @property
    def alias(self) -> bool:
        return bool(self.provider)

    def validate(self) -> None:
        super().validate()
        check_text("secret", "description", self.description)
        check_tags("secret", self.tags)
        if self.provider or self.path or self.key:
            check_alias(self.name, self.provider, self.path, self.key)

    def public(self) -> dict[str, Any]:
        """What may be shown: everything but the sealed value."""
        return {k: v for k, v in self.to_dict().items() if k != "sealed"}

    def references(self) -> list[tuple[str, str]]:
        return [("secret-provider", self.provider)] if self.provider else []


def check_value(name: str, value: str) -> None:
    if not isinstance(value, str) or value == "":
        raise field_error("value", f"secret {name}: the value is empty")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise field_error("value", f"secret {name}: the value is larger than {MAX_VALUE_BYTES // 1024} KiB")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@lru_cache(maxsize=1024)
def _derive(material: bytes, salt: bytes, iterations: int) -> bytes:
    # cryptography is imported where a value is sealed or opened: a command that only lists does without it.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations).derive(material)


def _secret_key(master: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"automation-gateway secret").derive(master)


class SecretBox:
    """Seals and opens secret values with the key material of one key file."""

    def __init__(self, key_file: Path | None, reason_missing: str = "",
                 create_missing: Callable[[Path], None] | None = None):
        """`create_missing(path)`, when given, is called to make the key file on the first seal."""
        self.key_file = key_file
        self._reason_missing = reason_missing
        self._create_missing = create_missing
        self._material: bytes | None = None
        # The PBKDF2 salt of what this process seals: that of the first value it opened (its PBKDF2 is done), or a
        # random one.
        self._master_salt: bytes | None = None
        # Whether this key is the store's (cluster.keycheck), asked once before the first seal or open; None: the
        # process checked it when it started (a server, a runner).
        self.verify: Callable[[], Awaitable[None]] | None = None
        self._verified = False
        self._verifying = False  # the check itself opens a stored secret

    async def ready(self) -> None:
        """Raise FailedPrecondition when this key is not the one the store's secrets are sealed with."""
        if self.verify is not None and not self._verified and not self._verifying:
            self._verifying = True
            try:
                await self.verify()
            finally:
                self._verifying = False
            self._verified = True

    def _key_material(self, sealing: bool = False) -> bytes:
        if self._material is None:
            if self.key_file is None:
                raise FailedPrecondition(self._reason_missing or "no secrets key: set [secrets] encrypt_key_file")
            if sealing and self._create_missing is not None and not self.key_file.exists():
                try:
                    self._create_missing(self.key_file)
                except FileExistsError:
                    pass  # another process made it first: use theirs
            try:
                material = self.key_file.read_bytes().strip()
            except OSError as exc:
                raise FailedPrecondition(
                    f"cannot read the secrets key file {self.key_file}: {exc.strerror or exc}"
                ) from None
            if len(material) < 16:
                raise FailedPrecondition(
                    f"the secrets key file {self.key_file} holds {len(material)} bytes; at least 16 are needed"
                )
            self._material = material
        return self._material

    def makes_key(self) -> bool:
        """True when the next seal would make a new key file (none is there yet)."""
        return (self._material is None and self.key_file is not None and self._create_missing is not None
                and not self.key_file.exists())

    def derived_key(self, purpose: str) -> bytes:
        """A key for `purpose` (a label) derived from the key file with HMAC-SHA256, never the secrets' own
        keys (FailedPrecondition when the key file cannot be read; it is never made here)."""
        import hashlib
        import hmac

        return hmac.new(self._key_material(), purpose.encode(), hashlib.sha256).digest()

    def lost(self) -> FailedPrecondition:
        """The store holds secrets, but the key file they were sealed with is gone: making a new one would
        leave them sealed under two keys."""
        return FailedPrecondition(
            f"the secrets key file {self.key_file} is missing, but this store holds secrets sealed with it; "
            "restore the file from a copy, or set [secrets] encrypt_key_file to where the key is now "
            "(no new key is made while the store holds secrets)"
        )

    def check(self) -> None:
        """Raise FailedPrecondition, saying why, when the key cannot be used."""
        self._key_material()

    def seal(self, name: str, value: str) -> dict[str, Any]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        material = self._key_material(sealing=True)
        if self._master_salt is None:
            self._master_salt = random.token_bytes(16)
        salt = random.token_bytes(16)
        nonce = random.token_bytes(12)
        key = _secret_key(_derive(material, self._master_salt, ITERATIONS), salt)
        ciphertext = AESGCM(key).encrypt(nonce, value.encode(), name.encode())
        return {"kdf": KDF, "iterations": ITERATIONS, "master_salt": _b64(self._master_salt), "salt": _b64(salt),
                "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}

    def open(self, name: str, sealed: dict[str, Any]) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            kdf, salt, iterations = sealed.get("kdf"), base64.b64decode(sealed["salt"]), int(sealed["iterations"])
            if kdf == KDF:
                master_salt = base64.b64decode(sealed["master_salt"])
                key = _secret_key(_derive(self._key_material(), master_salt, iterations), salt)
                if self._master_salt is None and iterations == ITERATIONS:
                    self._master_salt = master_salt  # what this process seals next costs no second PBKDF2
            elif kdf == PER_SECRET_KDF:
                key = _derive(self._key_material(), salt, iterations)
            else:
                raise ValueError
            plain = AESGCM(key).decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]),
                                        name.encode())
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise FailedPrecondition(
                f"secret {name} cannot be decrypted with the key in {self.key_file}: "
                "it was sealed with another key file, or it is damaged"
            ) from None
        return plain.decode()


def create_key_file(path: Path) -> None:
    """A new random key, readable by its owner only. Never overwrites; raises FileExistsError if one is there.

    The key is written to a temporary file first and then linked into place, so
    another process never reads a half-written key.
    """
    import tempfile  # only when a key file is made

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(random.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


MAX_PATH = 1024  # an alias's path at its provider, and a provider's file paths


def check_alias(name: str, provider: Any, path: Any, key: Any) -> None:
    """The provider, path and key of the alias `name` (raised as field errors of the secret)."""
    check_name("secret", provider, "provider")
    if not isinstance(path, str) or not path or len(path) > MAX_PATH or any(ord(ch) < 32 for ch in path):
        raise field_error("path", f"secret {name}: --secret must be the secret's path at the provider (one line, "
                                  f"at most {MAX_PATH} characters)")
    if not isinstance(key, str) or len(key) > 256 or any(ord(ch) < 32 for ch in key):
        raise field_error("key", f"secret {name}: --key must be a field name of at most 256 characters")
