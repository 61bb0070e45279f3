"""How values look on screen: times, durations, run statuses."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Any

# Each run status and the table style class (see ResourceTable) that colours it.
STATUS_STYLES = {
    "queued": "muted",
    "running": "accent",
    "succeeded": "success",
    "failed": "error",
    "timed-out": "error",
    "interrupted": "error",
    "cancelled": "warning",
}
STATUS_ICONS = {
    "queued": "◌",
    "running": "●",
    "succeeded": "✔",
    "failed": "✖",
    "timed-out": "✖",
    "interrupted": "✖",
    "cancelled": "■",
}


def status_label(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '?')} {status}" if status else ""


def when(timestamp: float | str | None, tz: tzinfo | None = None) -> str:
    """A moment as 'YYYY-MM-DD HH:MM' in `tz` (the machine's own zone when None)."""
    if timestamp is None or timestamp == "":
        return ""
    if isinstance(timestamp, str):
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            return timestamp
    else:
        moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if tz else moment.astimezone().strftime(
        "%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def run_duration(run: Any, now: float) -> float | None:
    """A run's duration, measured against `now` while it is still going."""
    if run.started_at is None:
        return None
    return (run.ended_at or now) - run.started_at


def short_path(path: str, home: str | None = None) -> str:
    import os

    home = home if home is not None else os.path.expanduser("~")
    if home and home != "/" and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home):]
    return path
