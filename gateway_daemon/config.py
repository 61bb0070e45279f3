"""gateway.conf + GATEWAY_* environment variables -> one typed, checked Config.

Precedence for every key: environment variable, then the file, then the default.
The file is the one named by ``--config``, else ``$GATEWAY_CONFIG``, else the
first that exists of ``./gateway.conf``, ``~/.gateway.d/gateway.conf`` (where IAG 5
looks; its folder is then the default data_dir, IAG 5's working dir), ``~/.gateway/gateway.conf``
and ``/etc/gateway/gateway.conf``.  No file at all means defaults: local mode.

Any bad value or unknown key raises ConfigError whose message is one line that
names where the value came from, the section, the key, the value and what is
allowed.  The programs print it and exit with code 2.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path
from collections import namedtuple

TYPE_CHECKING = False  # typing stays unloaded at run time: every `gateway` command loads this module
if TYPE_CHECKING:
    from typing import Any, Callable

from .inputfiles import MIB, InputFileError, read_bytes, size_text

ENV_CONFIG = "GATEWAY_CONFIG"
CONFIG_FILE_LIMIT = MIB
ENV_PREFIX = "GATEWAY_"
# IAG 5 reads ~/.gateway.d/gateway.conf, then /etc/gateway/gateway.conf; ./gateway.conf and ~/.gateway are ours.
IAG5_HOME_FILE = "~/.gateway.d/gateway.conf"
SEARCH_PATHS = ("./gateway.conf", IAG5_HOME_FILE, "~/.gateway/gateway.conf", "/etc/gateway/gateway.conf")

MODES = ("local", "server", "client", "runner")
USER_ROLES = ("admin", "editor", "operator", "viewer")  # core.policy.ROLES
BACKENDS = ("local", "memory", "etcd")
SANDBOXES = ("auto", "bwrap", "none")
NETWORKS = ("isolated", "host")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "DISABLED")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)$")


class ConfigError(Exception):
    """A configuration problem, already phrased as one line for the user."""


# ---------------------------------------------------------------- value types
# Each parser takes the raw string and returns the typed value, or raises
# ValueError whose text says what is allowed.


def _text(raw: str) -> str:
    return raw


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected a boolean: true/false, yes/no, on/off, 1/0")


def _choice(*allowed: str, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return value

    return parse


_SIZE_RE = re.compile(r"^(\d{1,20})\s*(?:([kmgt])(?:i?b)?|b)?$")  # units of 1024: 512M, 2GiB, 64kb, 100b
_SIZE_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bytes(raw: str) -> int | None:
    """A size in bytes, or with a unit (K, M, G, T, as such or with B or iB after: powers of 1024); None when it
    is not a size."""
    found = _SIZE_RE.match(raw.strip().lower())
    return int(found.group(1)) * _SIZE_UNITS[found.group(2)] if found else None


def _memory_size(raw: str) -> int:
    """A size such as 512M, 2G, 2GiB or 1073741824 (bytes; K, M, G, T are powers of 1024) -> bytes; 0 or none:
    no limit (0)."""
    text = raw.strip().lower()
    if text in ("0", "none", "unlimited"):
        return 0
    value = _bytes(text)
    if value is None:
        raise ValueError("expected a size such as 512M or 2G (K, M, G, T), or 0/none for no limit")
    if value < 16 << 20:
        raise ValueError("expected at least 16M (or 0/none for no limit)")
    return value


_USER_RE = re.compile(r"^([a-z_][a-z0-9_.-]*\$?|\d+(:\d+)?)$", re.IGNORECASE)


def _run_as_user(raw: str) -> str:
    """A user name, a uid, or uid:gid (checked here for its form; looked up where runs execute)."""
    text = raw.strip()
    if not _USER_RE.match(text) or len(text) > 64:
        raise ValueError("expected a user name, a uid or uid:gid (such as nobody or 65534:65534)")
    return text


def _int_range(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected {what} ({low}-{high})") from None
        if not low <= value <= high:
            raise ValueError(f"expected {what} ({low}-{high})")
        return value

    return parse


def _minutes(raw: str) -> float:
    """Minutes, whole or with a fraction (0.5 is 30 seconds), from one second to a year."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected minutes (a number from 0.02 to 525600, for example 1440)") from None
    if not 1 / 60 <= value <= 525600:
        raise ValueError("expected minutes (a number from 0.02 to 525600, for example 1440)")
    return value


def _port(raw: str) -> int:
    return _int_range(1, 65535, "a port number")(raw)


def parse_host_port(item: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); ValueError when malformed."""
    host, sep, port = item.rpartition(":")
    if not sep or not host or not _HOST_RE.match(host):
        raise ValueError(f"'{item}' is not host:port")
    return host.strip("[]"), _port(port)


def _host_list(raw: str) -> tuple[str, ...]:
    items = [part for part in re.split(r"[\s,]+", raw.strip()) if part]
    if not items:
        raise ValueError("expected one or more host:port, separated by spaces or commas")
    for item in items:
        try:
            parse_host_port(item)
        except ValueError:
            raise ValueError(
                f"'{item}' is not host:port; expected one or more host:port, separated by spaces or commas"
            ) from None
    return tuple(items)


def _host(raw: str) -> str:
    value = raw.strip()
    if value and not _HOST_RE.match(value):
        raise ValueError("expected a host name or IP address")
    return value


def _client_hosts(raw: str) -> tuple[str, ...]:
    items = [part for part in re.split(r"[\s,]+", raw.strip()) if part]
    if not items:
        raise ValueError("expected a host name, or several separated by spaces or commas")
    for item in items:
        host = item.rpartition(":")[0] if item.count(":") == 1 else item
        if not _HOST_RE.match(host):
            raise ValueError(f"'{item}' is not a host name or host:port")
    return tuple(items)


def _path(raw: str) -> str:
    value = raw.strip()
    return os.path.expanduser(value) if value else ""


def _name(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise ValueError("expected 1-64 letters, digits, '-', '_' or '.'")
    return value


def _tags(raw: str) -> tuple[str, ...]:
    items = [part for part in re.split(r"[\s,]+", raw.strip()) if part]
    for item in items:
        if not re.fullmatch(r"[A-Za-z0-9_.:=-]{1,64}", item):
            raise ValueError(f"'{item}' is not a tag; tags are letters, digits and - _ . : =")
    return tuple(items)


# ---------------------------------------------------------------- IAG 5 value types
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_DURATION_HELP = "expected a duration like 30d, 720h, 12h or 1h30m (units d, h, m, s; at least 1m)"


def _duration(raw: str) -> float:
    """A duration as IAG 5 writes one (Go's 720h, 1h30m, or days: 30d) -> seconds."""
    text = raw.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(_DURATION_HELP)
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if not 60 <= seconds <= 100 * 365 * 86400:
        raise ValueError(_DURATION_HELP)
    return seconds


def _size(low: int, high: int, zero: bool = False) -> Callable[[str], int]:
    """Bytes, or with a unit: 512MiB, 2GiB, 64K (units of 1024); with `zero`, 0 turns the limit off."""
    allowed = f"a size from {low // 1024 ** 2} MiB to {high // 1024 ** 3} GiB, such as 256MiB or 2GiB" \
        + (" (0: no limit)" if zero else "")

    def parse(raw: str) -> int:
        value = _bytes(raw)
        if value is None or (not (zero and value == 0) and not low <= value <= high):
            raise ValueError(f"expected {allowed}")
        return value

    parse.as_written = True  # type: ignore[attr-defined]  # `config` shows 2GiB, not 2147483648
    return parse


def _age_or_never(raw: str) -> float:
    """A duration (90d, 720h, 30m, 10s) or 0 for none -> seconds (0.0: no limit)."""
    text = raw.strip().lower()
    if text in ("0", "never", "none"):
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError("expected an age like 90d, 720h or 30m (units d, h, m, s), or 0 for no age limit")
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if not 1 <= seconds <= 100 * 365 * 86400:
        raise ValueError("expected an age like 90d, 720h or 30m (units d, h, m, s), or 0 for no age limit")
    return seconds


_age_or_never.as_written = True  # type: ignore[attr-defined]


def _time_zone_name(raw: str) -> str:
    """UTC, Local (this machine's zone) or an IANA name such as America/New_York, as written."""
    value = raw.strip()
    if value.lower() in ("utc", "local"):
        return value.upper() if value.lower() == "utc" else "Local"
    try:
        time_zone(value)
    except ValueError:
        raise ValueError("expected UTC, Local or an IANA time zone name such as America/New_York") from None
    return value


def time_zone(name: str):
    """The tzinfo of a [log] or [terminal] timestamp_timezone value; None means this machine's zone."""
    import zoneinfo
    from datetime import timezone

    if name.lower() == "utc":
        return timezone.utc
    if name.lower() == "local":
        return None
    if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", name):
        raise ValueError(name)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(name) from None


def _backend(raw: str) -> str:
    value = raw.strip().lower()
    if value == "dynamodb":
        raise ValueError("DynamoDB is not supported by this gateway; use etcd (backend = etcd) for a shared store")
    return _choice(*BACKENDS)(value)


def _words(raw: str) -> tuple[str, ...]:
    return tuple(part for part in re.split(r"[\s,]+", raw.strip()) if part)


def _relative_file(raw: str) -> str:
    value = raw.strip()
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith(("/", "~")) or ".." in parts or "\x00" in value:
        raise ValueError("expected a file name relative to the service's working dir, such as requirements.txt")
    return value


def _secret_text(raw: str) -> str:
    value = raw.strip()
    if any(ch.isspace() for ch in value):
        raise ValueError("expected one API key, without spaces")
    return value


# A key's parser (the raw string -> its value, ValueError saying what is allowed), default and help.  Tuples, not
# dataclasses: every `gateway` command loads this module.
Key = namedtuple("Key", ["parse", "default", "help"])


# ---- roles, audit, logins (issue 14)
_RETENTION_HELP = ("expected an age and/or a count of events, such as '90d 10000' (age units d, h, m; "
                   "count 10 to 10000000)")


def _retention(raw: str) -> tuple[float, int]:
    """[audit] retention: how long events are kept and how many at most -> (seconds, count)."""
    age, count = 90 * 86400.0, 10000
    words = [w for w in re.split(r"[\s,]+", raw.strip().lower()) if w]
    if not words:
        raise ValueError(_RETENTION_HELP)
    for word in words:
        if word.isdigit():
            count = int(word)
            if not 10 <= count <= 10_000_000:
                raise ValueError(_RETENTION_HELP)
            continue
        parts = _DURATION_PART.findall(word)
        if "".join(n + u for n, u in parts) != word or any(u == "s" for _, u in parts):
            raise ValueError(_RETENTION_HELP)
        age = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
        if not 3600 <= age <= 100 * 365 * 86400:
            raise ValueError(_RETENTION_HELP + "; the age at least 1h")
    return age, count


AUDIT_SECTION = {
    "retention": Key(_retention, "90d 10000", "audit events are kept this long and at most this many "
                                             "(oldest first out): an age (90d, 720h) and a count"),
}
LOGIN_KEYS = {
    "login_failures_per_user": Key(_int_range(1, 1000, "a number of failed logins"), "5",
                                   "wrong passwords in a row for one user before logins are refused a while"),
    "login_failures_per_address": Key(_int_range(1, 100000, "a number of failed logins"), "20",
                                      "wrong passwords in a row from one address before its logins are refused"),
    "login_lock_seconds": Key(_int_range(1, 86400, "seconds"), "5",
                              "the first refusal's length; each further wrong password doubles it"),
    "login_lock_max_seconds": Key(_int_range(1, 604800, "seconds"), "900", "the longest refusal"),
    "public_calls_at_once": Key(_int_range(1, 100000, "a number of calls"), "64",
                                "calls without a login (login, password change, health) in flight at once; "
                                "more are refused RESOURCE_EXHAUSTED"),
    "public_calls_per_address": Key(_int_range(1, 100000, "a number of calls"), "8",
                                    "calls without a login in flight at once from one address (to each service: "
                                    "logins, health)"),
}
# ---- end roles, audit, logins


# ---------------------------------------------------------------- IAG 5 keys
# Keys and sections an IAG 5 gateway.conf has, with what they mean here.
IAG5_APPLICATION = {
    "working_dir": Key(_path, "", "IAG 5's name for data_dir (set one of them)"),
    "auto_accept_eula": Key(_bool, "false", "accepted from IAG 5; there is no EULA to accept"),
    "venv_retention_period": Key(_duration, "30d", "venvs unused this long are removed (30d, 720h)"),
    "venv_sweep_interval": Key(_duration, "24h", "how often unused venvs are looked for"),
}
IAG5_LOG = {
    "console_json": Key(_bool, "false", "log lines on the console as JSON"),
    "file_enabled": Key(_bool, "false", "also write gateway.log (rotated)"),
    "file_json": Key(_bool, "false", "gateway.log lines as JSON"),
    "server_dir": Key(_path, "", "where gateway-daemon writes gateway.log (default: data_dir)"),
    "timestamp_timezone": Key(_time_zone_name, "Local", "zone of log timestamps: UTC, Local or an IANA name"),
}
IAG5_SECTIONS: dict[str, dict[str, Key]] = {
    "terminal": {
        "no_color": Key(_bool, "false", "no colours in the terminal UI and the CLI (as NO_COLOR)"),
        "timestamp_timezone": Key(_time_zone_name, "Local", "zone of times the CLI and TUI show: UTC, Local or an "
                                                              "IANA name"),
    },
    "features": {
        "ansible_enabled": Key(_bool, "true", "ansible-playbook services can be created and run"),
        "python_enabled": Key(_bool, "true", "python-script services can be created and run"),
        "opentofu_enabled": Key(_bool, "true", "opentofu-plan services can be created and run"),
        "hostkeys_enabled": Key(_bool, "true", "the hostkeys commands work"),
        "mcp_enabled": Key(_bool, "true", "accepted from IAG 5 (FlowMCP tools); this gateway serves no MCP: "
                                          "warned about when set to true"),
    },
    "python-script": {
        "requirements_file": Key(_relative_file, "requirements.txt", "requirements file of python-script services"),
    },
    "registry": {
        "default_overridable": Key(_bool, "true", "a service may name the registry it installs from (false: always the default)"),
    },
    "connect": {
        "enabled": Key(_bool, "false", "accepted from IAG 5; this gateway does not connect to Itential Platform"),
        "hosts": Key(_words, "", "accepted from IAG 5 (Gateway Manager hosts)"),
        "certificate_file": Key(_path, "", "accepted from IAG 5"),
        "private_key_file": Key(_path, "", "accepted from IAG 5"),
        "insecure_tls": Key(_bool, "false", "accepted from IAG 5"),
        "server_ha_enabled": Key(_bool, "false", "accepted from IAG 5"),
        "server_ha_is_primary": Key(_bool, "false", "accepted from IAG 5"),
        "proxy_url": Key(_text, "", "accepted from IAG 5 (the proxy to Gateway Manager); warned about when set"),
        "proxy_username": Key(_text, "", "accepted from IAG 5"),
        "proxy_password": Key(_text, "", "accepted from IAG 5; never shown"),
    },
}
# Values `config` never shows.
HIDDEN_KEYS = {("client", "api_key"), ("connect", "proxy_password")}
FEATURE_KEYS = {"python-script": "python_enabled", "ansible-playbook": "ansible_enabled",
                "opentofu-plan": "opentofu_enabled"}

_server_tls = {
    "use_tls": Key(_bool, "false", "serve gRPC over TLS"),
    "certificate_file": Key(_path, "/etc/gateway/gateway.crt", "TLS certificate (PEM)"),
    "private_key_file": Key(_path, "/etc/gateway/gateway.key", "TLS private key (PEM)"),
}

SCHEMA: dict[str, dict[str, Key]] = {
    "application": {
        "mode": Key(_choice(*MODES), "local", "local, server, client or runner"),
        "data_dir": Key(_path, "~/.gateway", "embedded store, repository clones, venvs"),
        "cluster_id": Key(_name, "default", "every stored key lives under this id"),
        "ca_certificate_file": Key(_path, "", "the CA that servers, runners and clients trust"),
        **IAG5_APPLICATION,
    },
    "server": {
        "listen_address": Key(_host, "0.0.0.0", "address the gRPC server binds"),
        "port": Key(_port, "50051", "gRPC port"),
        "api_key_expiration": Key(_minutes, "1440", "API key lifetime in minutes"),
        **_server_tls,
        "distributed_execution": Key(_bool, "false", "send runs to runners"),
        "allow_plaintext_runners": Key(_bool, "false", "send jobs (secret values, the cluster's token) to runners "
                                       "without TLS; warned about at start"),
        **LOGIN_KEYS,
        "client_cert_auth": Key(_bool, "false", "mutual TLS: clients must present a certificate signed by "
                                                "[application] ca_certificate_file (needs use_tls)"),
        "grpc_max_recv_msg_size": Key(_int_range(4096, 2**31 - 1, "a message size in bytes"), str(32 * MIB),
                                      "the largest message the server accepts, in bytes"),
        "runtime_data_dir": Key(_path, "", "accepted from IAG 5; runtime data stays in data_dir (warned about "
                                           "when set)"),
        "default_user_role": Key(_choice(*USER_ROLES), "viewer",
                                 "the role of a user created without --role (IAG 5 makes every user a superuser)"),
    },
    "client": {
        "host": Key(_client_hosts, "localhost", "server host(s); several are tried in order"),
        "port": Key(_port, "50051", "server port"),
        "use_tls": Key(_bool, "false", "connect with TLS"),
        "certificate_file": Key(_path, "", "certificate to trust for the server (PEM)"),
        "private_key_file": Key(_path, "", "client private key (PEM)"),
        "api_key": Key(_secret_text, "", "an API key sent instead of logging in (IAG 5.4)"),
    },
    "runner": {
        "announcement_address": Key(_text, "", "address servers use to reach this runner"),
        "listen_address": Key(_host, "0.0.0.0", "address the runner binds"),
        "port": Key(_port, "50051", "runner gRPC port"),
        **_server_tls,
        "tags": Key(_tags, "", "tags this runner offers, separated by spaces or commas"),
        "lease_ttl": Key(_int_range(2, 300, "seconds"), "10",
                         "a dead runner leaves the registry, a dead server's runs end, within this time"),
        "runtime_data_dir": Key(_path, "", "accepted from IAG 5; runtime data stays in data_dir (warned about "
                                           "when set)"),
    },
    "store": {
        "backend": Key(_backend, "local", "local (SQLite), memory or etcd"),
        "etcd_hosts": Key(_host_list, "127.0.0.1:2379", "etcd endpoints host:port"),
        "etcd_use_tls": Key(_bool, "false", "connect to etcd with TLS"),
        "etcd_ca_certificate_file": Key(_path, "", "CA for etcd (PEM)"),
        "etcd_client_cert_auth": Key(_bool, "false", "present a client certificate to etcd"),
        "etcd_certificate_file": Key(_path, "", "client certificate for etcd (PEM)"),
        "etcd_private_key_file": Key(_path, "", "client key for etcd (PEM)"),
        "etcd_quota_bytes": Key(_size(1024 ** 2, 64 * 1024 ** 3), "2GiB",
                                "etcd's --quota-backend-bytes (set both alike): a server compacts and defragments "
                                "etcd, and prunes the oldest run output, to stay under it"),
        "dynamodb_table_name": Key(_text, "itential.gateway5.store", "accepted from IAG 5; DynamoDB is not supported"),
    },
    "secrets": {
        "encrypt_key_file": Key(_path, "", "key file secrets are encrypted with"),
        "provider_cache_seconds": Key(_int_range(0, 86400, "seconds"), "0",
                                      "how long a value fetched from a secret provider is reused (0: always fetch)"),
    },
    "execution": {
        "max_concurrent_runs": Key(_int_range(1, 1024, "a number of runs"), "4", "runs at once; more wait in a queue"),
        "default_timeout": Key(_int_range(1, 604800, "seconds"), "3600", "run time limit when a service sets none"),
        "output_limit": Key(_int_range(1024, 1073741824, "bytes"), "1048576", "stored output per run; the tail is kept"),
        "kill_grace_period": Key(_int_range(0, 600, "seconds"), "5", "between TERM and KILL on cancel or timeout"),
        "sandbox": Key(_choice(*SANDBOXES), "auto",
                       "runs in bubblewrap: auto (where bwrap works), bwrap (required) or none"),
        "run_as_user": Key(_run_as_user, "nobody",
                           "the user (name, uid or uid:gid) runs execute as when the gateway is root"),
        "network": Key(_choice(*NETWORKS), "isolated",
                       "isolated (runs reach the network but not this machine's loopback; needs slirp4netns) "
                       "or host"),
        "memory_limit": Key(_memory_size, "2G", "memory a run may use (512M, 2G ...; 0 or none: no limit)"),
    },
    "runs": {
        "retention_count": Key(_int_range(0, 10_000_000, "a number of runs (0: no count limit)"), "1000",
                               "finished runs kept per service, the newest (older ones go with their output)"),
        "retention_age": Key(_age_or_never, "90d",
                             "finished runs older than this go with their output (90d, 720h; 0: no age limit)"),
        "output_budget": Key(_size(1024 ** 2, 1024 ** 4, zero=True), "256MiB",
                             "stored output of all runs together; past it the oldest runs' output goes first "
                             "(their records stay, noted 'output pruned'; 0: no budget)"),
    },
    "log": {
        "level": Key(_choice(*LOG_LEVELS, upper=True), "INFO", "TRACE ... DISABLED"),
        **IAG5_LOG,
    },
    "audit": AUDIT_SECTION,
    **IAG5_SECTIONS,
}

PROFILE_SECTION = "client"


# A setting's typed value, its text, and where it came from: "default", a file path, or "env GATEWAY_...".
Value = namedtuple("Value", ["value", "raw", "source"])


PRIVATE_DIR_MODE = 0o700


def private_data_dir(path: Path) -> str:
    """Make `path` (the data dir) for its owner alone: created 0700 when missing, an existing one that
    others may enter tightened to 0700.  Returns a note for the user when an existing one was tightened
    (said once: afterwards it is private), else "".  Trouble (no permission, not a directory) is left to
    whoever uses the folder next, which names it in one line."""
    try:
        if not path.exists():
            path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            return ""
        if not path.is_dir():
            return ""
        mode = path.stat().st_mode & 0o777
        if mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(PRIVATE_DIR_MODE)
            return (f"the data dir {path} was open to other users (mode {mode:04o}); it is now 0700, "
                    "its database 0600")
    except OSError:
        pass
    return ""


class Config:
    def __init__(self, values: dict[str, dict[str, Value]], file: str | None,
                 profiles: dict[str, dict[str, Value]] | None = None, found: str = "",
                 warnings: list[str] | None = None):
        self.values = values
        self.file = file
        self.profiles = profiles if profiles is not None else {}
        self.found = found  # how the file was chosen: --config, $GATEWAY_CONFIG or the search
        self.warnings = warnings if warnings is not None else []  # IAG 5 settings accepted and not used, a line each

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key].value

    def __getitem__(self, section: str) -> "_Section":
        return _Section(self.values[section])

    @property
    def mode(self) -> str:
        return self.get("application", "mode")

    @property
    def data_dir(self) -> Path:
        return Path(self.get("application", "data_dir"))

    @property
    def cluster_id(self) -> str:
        return self.get("application", "cluster_id")

    def client(self, profile: str | None = None) -> "_Section":
        """The [client] section, or a [client:NAME] profile over it."""
        if not profile:
            return self["client"]
        if profile not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigError(f"no profile '{profile}' ([client:{profile}]); profiles in the config: {known}")
        merged = dict(self.values["client"])
        merged.update(self.profiles[profile])
        return _Section(merged)


class _Section:
    def __init__(self, values: dict[str, Value]):
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key].value
        except KeyError:
            raise AttributeError(key) from None


def find_config_file(explicit: str | None, environ: dict[str, str]) -> str | None:
    return locate_config_file(explicit, environ)[0]


def locate_config_file(explicit: str | None, environ: dict[str, str]) -> tuple[str | None, str]:
    """The file to read and how it was chosen (--config, $GATEWAY_CONFIG, or the first of SEARCH_PATHS)."""
    if explicit:
        return explicit, "--config"
    if environ.get(ENV_CONFIG):
        return environ[ENV_CONFIG], f"${ENV_CONFIG}"
    for candidate in SEARCH_PATHS:
        path = os.path.expanduser(candidate)
        if os.path.isfile(path):
            return path, "the first that exists of " + ", ".join(SEARCH_PATHS)
    return None, ""


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _read_file(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        interpolation=None,
        comment_prefixes=("#", ";"),
        # configparser starts an inline comment only where whitespace precedes the prefix: "a#b" stays a value.
        inline_comment_prefixes=("#", ";"),
        strict=True,
        empty_lines_in_values=False,
        default_section="\x00no-default-section",
    )
    try:
        text = read_bytes(path, CONFIG_FILE_LIMIT, "config file").decode("utf-8")
        parser.read_string(text, source=path)
    except InputFileError:
        raise ConfigError(f"{path}: the config file is larger than {size_text(CONFIG_FILE_LIMIT)}, the most that "
                          "is read") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read config file (permission denied)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno}: a key before any [section]: {exc.line.strip()!r}"
        ) from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: section [{exc.section}] appears twice") from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno}: [{exc.section}] {exc.option} is set twice"
        ) from None
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0] if exc.errors else (0, "")
        try:
            import ast  # only for this rare case

            line = ast.literal_eval(line)  # configparser keeps the line as its repr()
        except (ValueError, SyntaxError):
            pass
        raise ConfigError(f"{path}: line {lineno}: cannot parse {str(line).strip()!r}: expected key = value") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {exc.message.splitlines()[0]}") from None
    return parser


def _parse(source: str, section: str, key: str, raw: str, where: str) -> Value:
    spec = SCHEMA[section][key]
    try:
        value = spec.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: [{section}] {key} = {raw!r}: {exc}") from None
    return Value(value, raw, source)


def _did_you_mean(word: str, known) -> str:
    import difflib  # only when a key is misspelt

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _unknown_key(where: str, section: str, key: str, known: dict[str, Key]) -> ConfigError:
    return ConfigError(
        f"{where}: [{section}] unknown key '{key}'; {_did_you_mean(key, known)}known keys: {', '.join(known)}"
    )


def _env_section(rest: str) -> str | None:
    """The section a GATEWAY_<SECTION>_<KEY> variable names ([python-script]: PYTHON_SCRIPT or PYTHON-SCRIPT)."""
    return next((s for s in SCHEMA if rest.startswith(s + "_") or rest.startswith(s.replace("-", "_") + "_")), None)


def _working_dir(values: dict[str, dict[str, Value]]) -> None:
    """[application] working_dir is IAG 5's data_dir: it stands for data_dir; both set must agree."""
    working, data = values["application"]["working_dir"], values["application"]["data_dir"]
    if not working.value:
        return
    if data.source != "default" and os.path.abspath(data.value) != os.path.abspath(working.value):
        raise ConfigError(
            f"{_where(working)}: [application] working_dir = {working.raw!r} and {_where(data)}: data_dir = "
            f"{data.raw!r} differ: they name the same folder (working_dir is IAG 5's name); set one of them"
        )
    values["application"]["data_dir"] = working


def load_config(path: str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load, type and check the configuration. Raises ConfigError."""
    env = dict(os.environ if environ is None else environ)
    file, found = locate_config_file(path, env)
    values: dict[str, dict[str, Value]] = {
        section: {key: Value(spec.parse(spec.default), spec.default, "default") for key, spec in keys.items()}
        for section, keys in SCHEMA.items()
    }
    profiles: dict[str, dict[str, Value]] = {}

    if file:
        parser = _read_file(file)
        for section in parser.sections():
            base, _, profile = section.partition(":")
            if profile and base == PROFILE_SECTION and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", profile):
                target = profiles.setdefault(profile, {})
            elif section in SCHEMA:
                target = values[section]
            else:
                raise ConfigError(
                    f"{file}: unknown section [{section}]; {_did_you_mean(section, SCHEMA)}known sections: "
                    + ", ".join(f"[{name}]" for name in SCHEMA)
                    + ", [client:NAME]"
                )
            for key, raw in parser.items(section):
                if key not in SCHEMA[base]:
                    raise _unknown_key(file, section, key, SCHEMA[base])
                target[key] = _parse(file, base, key, _unquote(raw), file)

    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section = _env_section(rest)
        if section is None:
            continue  # not a config variable (GATEWAY_PASSWORD and the like)
        key = rest[len(section) + 1:]
        profile_key = _env_profile(section, key, profiles)
        if profile_key:  # IAG 5's GATEWAY_CLIENT_<PROFILE>_<SETTING>
            profile, setting = profile_key
            profiles.setdefault(profile, {})[setting] = _parse(f"env {name}", section, setting, _unquote(raw),
                                                               f"environment {name}")
            continue
        if key not in SCHEMA[section]:
            raise _unknown_key(f"environment {name}", section, key, SCHEMA[section])
        values[section][key] = _parse(f"env {name}", section, key, _unquote(raw), f"environment {name}")

    _working_dir(values)
    if file and os.path.abspath(file) == os.path.abspath(os.path.expanduser(IAG5_HOME_FILE)) \
            and values["application"]["data_dir"].source == "default":
        # IAG 5's default working dir is the folder of its ~/.gateway.d/gateway.conf
        folder = os.path.dirname(os.path.abspath(file))
        values["application"]["data_dir"] = Value(folder, "~/.gateway.d", "default")
    config = Config(values=values, file=file, profiles=profiles, found=found, warnings=_iag5_warnings(values))
    _check_files(config)
    return config


def _env_profile(section: str, key: str, profiles: dict[str, dict[str, Value]]) -> tuple[str, str] | None:
    """(profile, setting) of GATEWAY_CLIENT_<PROFILE>_<SETTING> (the longest setting that ends the name), or
    None for a plain [client] key or a name that ends in no setting (a typo: "did you mean")."""
    if section != PROFILE_SECTION or key in SCHEMA[section]:
        return None
    for setting in sorted(SCHEMA[section], key=len, reverse=True):
        profile = key[:-len(setting) - 1] if key.endswith("_" + setting) else ""
        if profile and re.fullmatch(r"[a-z0-9_.-]{1,64}", profile):
            known = next((name for name in profiles if name.lower() == profile), profile)
            return known, setting
    return None


def _iag5_warnings(values: dict[str, dict[str, Value]]) -> list[str]:
    """One line for each IAG 5 setting that is accepted here and does nothing, saying what IAG 5 does with it."""
    said = []
    mcp = values["features"]["mcp_enabled"]
    if mcp.source != "default" and mcp.value:
        said.append(f"{_where(mcp)}: [features] mcp_enabled = true: IAG 5 serves its services as MCP tools "
                    "(FlowMCP); this gateway has no MCP server, the setting is accepted and not used")
    runtime = [f"[{section}] runtime_data_dir = {values[section]['runtime_data_dir'].value}"
               for section in ("server", "runner") if values[section]["runtime_data_dir"].value]
    if runtime:
        said.append(f"{' and '.join(runtime)}: IAG 5 keeps the runtime data of runs there; this gateway keeps "
                    f"run folders, venvs and clones in [application] data_dir "
                    f"({values['application']['data_dir'].value}), the setting is accepted and not used")
    proxy = values["connect"]["proxy_url"]
    if proxy.value:
        said.append(f"{_where(proxy)}: [connect] proxy_url: IAG 5 reaches Gateway Manager through this proxy; this "
                    "gateway does not connect to Gateway Manager, proxy_url, proxy_username and proxy_password are "
                    "accepted and not used")
    return said


def _where(value: Value) -> str:
    if value.source == "default":
        return "default"
    if value.source.startswith("env "):
        return "environment " + value.source[4:]
    return value.source


def _require_file(config: Config, section: str, key: str, why: str, values: dict[str, Value] | None = None) -> None:
    entry = (values or config.values[section])[key]
    path = entry.value
    if not path:
        raise ConfigError(f"{_where(entry)}: [{section}] {key} is empty: {why} needs a readable file")
    if not os.path.isfile(path):
        raise ConfigError(f"{_where(entry)}: [{section}] {key} = {path!r}: no such file ({why} needs it)")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{_where(entry)}: [{section}] {key} = {path!r}: file is not readable ({why} needs it)")


def _check_files(config: Config) -> None:
    """Files that must exist and be readable for the features the mode uses."""
    mode = config.mode
    if mode == "server" and config.get("server", "use_tls"):
        _require_file(config, "server", "certificate_file", "[server] use_tls")
        _require_file(config, "server", "private_key_file", "[server] use_tls")
    if mode == "server" and config.get("server", "client_cert_auth"):
        entry = config.values["server"]["client_cert_auth"]
        if not config.get("server", "use_tls"):
            raise ConfigError(f"{_where(entry)}: [server] client_cert_auth = {entry.raw!r}: mutual TLS needs "
                              "[server] use_tls = true")
        _require_file(config, "application", "ca_certificate_file", "[server] client_cert_auth")
    if mode == "runner" and config.get("runner", "use_tls"):
        _require_file(config, "runner", "certificate_file", "[runner] use_tls")
        _require_file(config, "runner", "private_key_file", "[runner] use_tls")
    if mode != "client" and config.get("store", "backend") == "etcd" and config.get("store", "etcd_use_tls"):
        _require_file(config, "store", "etcd_ca_certificate_file", "[store] etcd_use_tls")
        if config.get("store", "etcd_client_cert_auth"):
            _require_file(config, "store", "etcd_certificate_file", "[store] etcd_client_cert_auth")
            _require_file(config, "store", "etcd_private_key_file", "[store] etcd_client_cert_auth")
    if config.get("secrets", "encrypt_key_file"):
        _require_file(config, "secrets", "encrypt_key_file", "[secrets] encrypt_key_file")
    if mode == "server" and config.get("server", "distributed_execution") and config.get("store", "backend") != "etcd":
        entry = config.values["server"]["distributed_execution"]
        raise ConfigError(
            f"{_where(entry)}: [server] distributed_execution = {entry.raw!r}: runners need [store] backend = etcd"
        )
    if mode == "runner" and config.get("store", "backend") != "etcd":
        entry = config.values["store"]["backend"]
        raise ConfigError(
            f"{_where(entry)}: [store] backend = {entry.raw!r}: runner mode needs etcd (backend = etcd)"
        )


def describe(config: Config) -> list[dict[str, str]]:
    """Rows of the effective configuration with where each value came from."""
    rows = []
    for section, keys in config.values.items():
        for key, entry in keys.items():
            rows.append({"section": section, "key": key, "value": _shown(section, key, entry), "source": _where(entry)})
    for profile, keys in sorted(config.profiles.items()):
        for key, entry in keys.items():
            rows.append({"section": f"client:{profile}", "key": key, "value": _shown("client", key, entry),
                         "source": _where(entry)})
    return rows


def _shown(section: str, key: str, entry: Value) -> str:
    if (section, key) in HIDDEN_KEYS and entry.value:
        return "(set, not shown)"
    parse = SCHEMA[section][key].parse
    if parse in (_duration, _retention) or getattr(parse, "as_written", False):
        return entry.raw.strip()  # 30d as written, not 2592000 seconds
    return _display(entry.value)


def _display(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1440 minutes, as written, not 1440.0
    return str(value)


def show(config: Config, fmt: str = "table", notes: dict[str, str] | None = None) -> str:
    """The text `gateway config` and `gateway-daemon config` print; `notes` (name -> one line, such as what
    the sandbox of this machine is) go with it: a `# name: line` comment after the table, or a field of their own."""
    from .console import Table, dump_json, dump_yaml

    rows = describe(config)
    notes = {**({"found": config.found} if config.found else {}), **(notes or {})}
    if config.warnings:
        notes["warnings"] = config.warnings
    if fmt == "json":
        return dump_json({"file": config.file, **notes, "values": rows}) + "\n"
    if fmt == "yaml":
        return dump_yaml({"file": config.file, **notes, "values": rows})
    table = Table(["section", "key", "value", "source"], width=None)  # paths are shown whole
    for row in rows:
        table.add(f"[{row['section']}]", row["key"], row["value"] or '""', row["source"])
    comments = "".join(f"# {name.removesuffix('s') if isinstance(lines, list) else name}: {line}\n"
                       for name, lines in notes.items() for line in (lines if isinstance(lines, list) else [lines]))
    return f"# config file: {config.file or '(none: defaults)'}\n" + table.render() + comments


def unprotected_store(config: Config) -> str:
    """The warning a server or runner gives at start when its etcd is reached without a client certificate
    (anyone who reaches etcd can read and write the store then); "" otherwise."""
    store = config["store"]
    if config.get("store", "backend") != "etcd" or (store.etcd_use_tls and store.etcd_client_cert_auth):
        return ""
    return (f"etcd ({', '.join(store.etcd_hosts)}) is used without client-certificate authentication: anyone who "
            "can reach it can read and change this cluster's store (users, API keys and runner entries carry a "
            "MAC and a forged one is refused, but other records are not protected); run etcd with "
            "--client-cert-auth --trusted-ca-file CA and set [store] etcd_use_tls = true, etcd_client_cert_auth = "
            "true, etcd_ca_certificate_file, etcd_certificate_file and etcd_private_key_file")
