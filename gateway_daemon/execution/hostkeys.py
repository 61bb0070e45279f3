"""The SSH host keys the gateway trusts for git over ssh: ``data_dir/known_hosts``.

The file is in OpenSSH's known_hosts format, so ``ssh -o UserKnownHostsFile``
reads it as is.  Keys get there only by an operator's explicit
``gateway hostkeys add HOST`` (or ``scan HOST``), which shows each key's SHA256
fingerprint, or ``gateway hostkeys add HOST TYPE KEY`` with the key itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..core.errors import FailedPrecondition, InvalidArgument, NotFound

_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^[0-9a-fA-F:]+$")
_SCP_RE = re.compile(r"^(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+):(?!//)")


def ssh_host(url: str) -> tuple[str, int] | None:
    """(host, port) of an ssh URL (ssh://, git+ssh:// or user@host:path); None for any other URL."""
    lower = url.lower()
    if lower.startswith(("ssh://", "git+ssh://")):
        parts = urlsplit(url.split("+", 1)[1] if lower.startswith("git+") else url)
        return (parts.hostname or "", parts.port or 22)
    if "://" in url or url.startswith("/"):
        return None
    match = _SCP_RE.match(url)
    if match:
        return (match.group(1).strip("[]"), 22)
    return None


def check_host(host: str) -> None:
    if not _HOST_RE.match(host or "") or len(host) > 253:
        raise InvalidArgument(f"host {host!r} is not a host name or IP address")


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key_base64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


def check_key(key_type: str, key: str) -> None:
    """A public key as ssh writes it: a known type, and base64 whose blob names that same type."""
    if key_type not in KEY_TYPES:
        raise InvalidArgument(f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    try:
        blob = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidArgument("the key is not base64 (copy it from a line of ssh-keyscan HOST)") from None
    length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if length < 0 or blob[4:4 + length] != key_type.encode() or len(blob) <= 4 + length:
        raise InvalidArgument(f"the key is not an {key_type} public key (copy it from a line of ssh-keyscan HOST)")


@dataclass(frozen=True)
class HostKey:
    host: str
    key_type: str
    key: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    def line(self) -> str:
        return f"{self.host} {self.key_type} {self.key}"

    def as_dict(self) -> dict[str, str]:
        return {"host": self.host, "type": self.key_type, "fingerprint": self.fingerprint}


def _parse(text: str) -> list[HostKey]:
    keys = []
    for raw in text.splitlines():
        fields = raw.split()
        if len(fields) >= 3 and not raw.lstrip().startswith("#"):
            keys.append(HostKey(fields[0], fields[1], fields[2]))
    return keys


class HostKeys:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "known_hosts"

    def list(self) -> list[HostKey]:
        try:
            return _parse(self.path.read_text())
        except FileNotFoundError:
            return []

    def _write(self, keys: list[HostKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(key.line() + "\n" for key in keys))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)

    def scan(self, host: str, port: int = 22, timeout: int = 10) -> list[HostKey]:
        """The keys a host offers now (ssh-keyscan)."""
        check_host(host)
        if not 1 <= port <= 65535:
            raise InvalidArgument(f"port {port} is not between 1 and 65535")
        try:
            done = subprocess.run(["ssh-keyscan", "-T", str(timeout), "-p", str(port), "--", host],
                                  capture_output=True, text=True, timeout=timeout + 5)
        except FileNotFoundError:
            raise FailedPrecondition("ssh-keyscan is not installed (Debian package openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise FailedPrecondition(f"{host} port {port} did not answer within {timeout} s") from None
        keys = [HostKey(known_hosts_name(host, port), k.key_type, k.key) for k in _parse(done.stdout)]
        if not keys:
            raise FailedPrecondition(f"no ssh host keys from {host} port {port}: is an ssh server listening there?")
        return keys

    def add(self, host: str, port: int = 22) -> list[HostKey]:
        """Trust the keys `host` offers now; returns them (those already trusted included)."""
        offered = self.scan(host, port)
        keys = self.list()
        known = {(k.host, k.key_type, k.key) for k in keys}
        keys += [k for k in offered if (k.host, k.key_type, k.key) not in known]
        self._write(keys)
        return offered

    def add_key(self, host: str, key_type: str, key: str, port: int = 22, replace: bool = False) -> tuple[HostKey, str]:
        """Trust one key given by the operator (a line of ssh-keyscan or known_hosts). Returns it and what was
        done: "added", "already trusted" or "replaced". A host whose trusted key of that type differs is
        refused unless `replace`."""
        check_host(host)
        if not 1 <= port <= 65535:
            raise InvalidArgument(f"port {port} is not between 1 and 65535")
        check_key(key_type, key)
        new = HostKey(known_hosts_name(host, port), key_type, key)
        keys = self.list()
        same_type = [k for k in keys if k.host == new.host and k.key_type == key_type]
        if any(k.key == key for k in same_type):
            return new, "already trusted"
        if same_type and not replace:
            raise FailedPrecondition(
                f"{new.host} already has a trusted {key_type} key ({same_type[0].fingerprint}); "
                "give --replace to trust this one instead")
        kept = [k for k in keys if not (k.host == new.host and k.key_type == key_type)]
        self._write(kept + [new])
        return new, "replaced" if same_type else "added"

    def clear(self) -> int:
        """Trust no host key any more; returns how many there were."""
        count = len(self.list())
        if self.path.exists():
            self._write([])
        return count

    def delete(self, host: str, port: int = 22) -> int:
        names = {host, known_hosts_name(host, port)}
        keys = self.list()
        kept = [k for k in keys if k.host not in names]
        if len(kept) == len(keys):
            raise NotFound(f"no trusted host keys for {known_hosts_name(host, port)}")
        self._write(kept)
        return len(keys) - len(kept)
