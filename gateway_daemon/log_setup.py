"""Where log lines go and how they look: the [log] section.

The console (stderr) always gets them; with ``file_enabled`` they also go to
``gateway.log``, rotated at LOG_FILE_BYTES with LOG_FILE_BACKUPS older files
kept (gateway.log.1 ... .5).  gateway-daemon writes it in ``server_dir``
(default: data_dir), `gateway` in local mode in data_dir.  Either stream is
text (``2024-02-14T09:18:28.123-06:00 INFO gateway.server: ...``) or, with
``console_json`` / ``file_json``, one JSON object per line:
``{"time": ..., "level": "info", "logger": "gateway.server", "message": ...}``.
Times are in ``timestamp_timezone`` (UTC, Local or an IANA name).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, tzinfo
from pathlib import Path

from .config import Config, ConfigError, time_zone

LOG_FILE_NAME = "gateway.log"
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
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


def _file_handler(config: Config, daemon: bool, zone: tzinfo | None) -> logging.Handler:
    path = log_file_path(config, daemon)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        from logging.handlers import RotatingFileHandler  # only where a log file is written

        handler = RotatingFileHandler(path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8")
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
