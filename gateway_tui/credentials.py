"""Where client mode keeps its API keys: the OS keyring, one entry per server address.

When the machine has no keyring backend (a server shell with no desktop
session, say), keys go to ``~/.config/gateway/credentials.json`` with mode
0600 instead, and the user is told so.  Nothing is ever kept in clear
anywhere else.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SERVICE = "automation-gateway"


@dataclass
class Credential:
    api_key: str
    username: str
    expires_at: float

    @property
    def expired(self) -> bool:
        return self.expires_at <= time.time()


def _keyring():
    """The keyring module when a real backend is there, else None."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring setup is the same as none
        return None
    if isinstance(backend, fail.Keyring) or type(backend).__name__ == "ChainerBackend" and not backend.backends:
        return None
    return keyring


def fallback_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gateway" / "credentials.json"


class Credentials:
    def __init__(self, announce=None):
        self._keyring = _keyring()
        self._announce = announce or (lambda text: None)

    @property
    def where(self) -> str:
        if self._keyring is not None:
            return f"the OS keyring ({type(self._keyring.get_keyring()).__name__})"
        return f"{fallback_file()} (mode 0600; this machine has no OS keyring backend)"

    def load(self, address: str) -> Credential | None:
        if self._keyring is not None:
            try:
                raw = self._keyring.get_password(SERVICE, address)
            except Exception:  # noqa: BLE001
                raw = None
        else:
            raw = self._read_file().get(address)
        if not raw:
            return None
        try:
            return Credential(**json.loads(raw))
        except (ValueError, TypeError):
            return None

    def save(self, address: str, credential: Credential) -> None:
        raw = json.dumps(asdict(credential))
        if self._keyring is not None:
            self._keyring.set_password(SERVICE, address, raw)
            return
        self._announce(f"no OS keyring backend here: the API key is kept in {fallback_file()} (mode 0600)")
        entries = self._read_file()
        entries[address] = raw
        self._write_file(entries)

    def delete(self, address: str) -> None:
        if self._keyring is not None:
            try:
                self._keyring.delete_password(SERVICE, address)
            except Exception:  # noqa: BLE001 - nothing stored is fine
                pass
            return
        entries = self._read_file()
        if entries.pop(address, None) is not None:
            self._write_file(entries)

    # ------------------------------------------------------------ the 0600 file
    def _read_file(self) -> dict[str, str]:
        try:
            return json.loads(fallback_file().read_text())
        except (OSError, ValueError):
            return {}

    def _write_file(self, entries: dict[str, str]) -> None:
        path = fallback_file()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(entries, handle)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
