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


def _moment(timestamp: float | str | None) -> datetime | None:
    if timestamp is None or timestamp == "":
        return None
    if isinstance(timestamp, str):
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(timestamp, timezone.utc)


def when(timestamp: float | str | None, tz: tzinfo | None = None) -> str:
    """A moment as 'YYYY-MM-DD HH:MM' in `tz` (the machine's own zone when None)."""
    moment = _moment(timestamp)
    if moment is None:
        return timestamp if isinstance(timestamp, str) else ""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def full_time(timestamp: float | str | None, tz: tzinfo | None = None) -> str:
    """A moment in full, as details show it: 'YYYY-MM-DD HH:MM:SS ZONE' in `tz` (None: this machine's zone)."""
    moment = _moment(timestamp)
    if moment is None:
        return timestamp if isinstance(timestamp, str) else ""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def ago(timestamp: float | str | None, now: float) -> str:
    """A moment relative to `now`, as tables show it: 'just now', '45s ago', '3m ago', '5h ago', '12d ago';
    a moment still to come: 'in 15m'."""
    moment = _moment(timestamp)
    if moment is None:
        return timestamp if isinstance(timestamp, str) else ""
    seconds = now - moment.timestamp()
    if abs(seconds) < 1.5:
        return "just now"
    span = abs(seconds)
    for size, unit in ((365 * 86400, "y"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if span >= size:
            amount = f"{int(span // size)}{unit}"
            break
    return f"{amount} ago" if seconds > 0 else f"in {amount}"


def sort_value(timestamp: float | str | None) -> str:
    """A moment as text that sorts in time order (empty for none): a table's sort key for an 'ago' cell."""
    moment = _moment(timestamp)
    return f"{moment.timestamp():020.3f}" if moment is not None else ""


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
