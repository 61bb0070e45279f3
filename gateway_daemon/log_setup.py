"""Where log lines go and how they look: the [log] section.

The console (stderr) always gets them; with ``file_enabled`` they also go to
``gateway.log``, rotated at LOG_FILE_BYTES with LOG_FILE_BACKUPS older files
kept (gateway.log.1 ... .5).  gateway-daemon writes it in ``server_dir``
(default: data_dir), `gateway` in local mode in data_dir.  Either stream is
text (``2024-02-14T09:18:28.123-06:00 INFO gateway.server: ...``) or, with
``console_json`` / ``file_json``, one JSON object per line:
``{"time": ..., "level": "info", "logger": "gateway.server", "message": ...}``.
Times are in ``timestamp_timezone`` (UTC, Local or an IANA name).

Log files are for the gateway's owner alone: gateway.log and its rotated files are 0600 (an existing one
open to others is tightened when it is opened), in a folder made 0700; an existing folder open to others is
tightened to 0700 when it holds nothing but the gateway's logs, and otherwise (a shared folder such as
/var/log) left as it is, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, tzinfo
from pathlib import Path

from .config import Config, ConfigError, time_zone

LOG_FILE_NAME = "gateway.log"
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
LOG_FILE_MODE = 0o600
LOG_DIR_MODE = 0o700
AUDIT_FILE_NAME = "audit.log"
LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
          "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
_LEVEL_WORDS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
                logging.CRITICAL: "fatal"}


def _stamp(record: logging.LogRecord, zone: tzinfo | None) -> str:
    moment = datetime.fromtimestamp(record.created, zone) if zone else datetime.fromtimestamp(record.created).astimezone()
    return moment.isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self, zone: tzinfo | None):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return _stamp(record, self.zone)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, when there is one)."""

    def __init__(self, zone: tzinfo | None):
        super().__init__()
        self.zone = zone

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _stamp(record, self.zone),
                 "level": _LEVEL_WORDS.get(record.levelno, record.levelname.lower()),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _formatter(as_json: bool, zone: tzinfo | None) -> logging.Formatter:
    return JsonFormatter(zone) if as_json else TextFormatter(zone)


def log_file_path(config: Config, daemon: bool) -> Path:
    """gateway.log: in [log] server_dir for gateway-daemon (data_dir when empty), in data_dir for `gateway`."""
    folder = config.get("log", "server_dir") if daemon else ""
    return Path(folder or config.data_dir) / LOG_FILE_NAME


def open_private(path: str | os.PathLike, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT) -> int:
    """A descriptor of the log file `path`, made 0600 (and tightened to 0600 when it was open to others)."""
    fd = os.open(path, flags | os.O_CLOEXEC, LOG_FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, LOG_FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def private_log_folder(folder: Path) -> str:
    """Make `folder` for log files: 0700 when it is made; an existing one open to others tightened when it
    holds only the gateway's logs.  A warning for the user when a shared folder is left open, else ""."""
    if not folder.exists():
        folder.mkdir(mode=LOG_DIR_MODE, parents=True, exist_ok=True)
        return ""
    info = folder.stat()
    if not info.st_mode & 0o077 or info.st_uid != os.getuid():
        return ""
    names = {LOG_FILE_NAME, AUDIT_FILE_NAME}
    if all(entry.split(".log", 1)[0] + ".log" in names for entry in os.listdir(folder)):
        folder.chmod(LOG_DIR_MODE)
        return ""
    return (f"[log] server_dir {folder} holds other files and is open to other users "
            f"(mode {info.st_mode & 0o777:04o}): the gateway's log files in it are 0600; "
            "a folder of their own is better")


def _rotating_handler(path: Path) -> logging.Handler:
    from logging.handlers import RotatingFileHandler  # only where a log file is written

    class PrivateRotatingFileHandler(RotatingFileHandler):
        """Every file it opens (the first, and the new one at each rotation) is 0600."""

        def _open(self):
            return os.fdopen(open_private(self.baseFilename), "a", encoding=self.encoding, errors=self.errors)

    return PrivateRotatingFileHandler(path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS,
                                      encoding="utf-8")


def _file_handler(config: Config, daemon: bool, zone: tzinfo | None) -> logging.Handler:
    path = log_file_path(config, daemon)
    try:
        note = private_log_folder(path.parent)
        handler = _rotating_handler(path)
        if note:
            logging.getLogger("gateway.log").warning("%s", note)
    except OSError as exc:
        where = "[log] server_dir" if daemon and config.get("log", "server_dir") else "[application] data_dir"
        raise ConfigError(f"[log] file_enabled: cannot write {path} ({exc.strerror or exc}); "
                          f"check {where}") from None
    handler.setFormatter(_formatter(config.get("log", "file_json"), zone))
    return handler


def setup_daemon_logging(config: Config) -> None:
    """gateway-daemon: every line at [log] level and above to stderr, and to gateway.log with file_enabled."""
    level = config.get("log", "level")
    if level == "DISABLED":
        logging.disable(logging.CRITICAL)
        return
    zone = time_zone(config.get("log", "timestamp_timezone"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_formatter(config.get("log", "console_json"), zone))
    handlers = [console]
    if config.get("log", "file_enabled"):
        handlers.append(_file_handler(config, True, zone))
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))
    logging.getLogger("asyncio").setLevel(logging.WARNING)


def setup_local_logging(config: Config) -> None:
    """`gateway` in local mode: with file_enabled, every line at [log] level to data_dir/gateway.log; the
    terminal keeps getting only warnings and errors, as bare messages, as it did without a file."""
    level = config.get("log", "level")
    if config.mode != "local" or not config.get("log", "file_enabled") or level == "DISABLED":
        return
    zone = time_zone(config.get("log", "timestamp_timezone"))
    root = logging.getLogger()
    root.addHandler(_file_handler(config, False, zone))
    if logging.lastResort is not None:
        root.addHandler(logging.lastResort)  # WARNING and above to stderr, as when no handler is set
    root.setLevel(LEVELS.get(level, logging.INFO))
    logging.getLogger("asyncio").setLevel(logging.WARNING)
