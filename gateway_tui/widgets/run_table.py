"""Tables of runs: the Runs section, a service's recent runs, the runs a runner ran. One set of columns."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any, Iterable

from ..formatting import STATUS_STYLES, ago, duration, run_duration, sort_value, status_label
from .resource_table import Column, ResourceTable, TableRow

# Too narrow for all: the duration, runner, exit code and then the id go (the id cut to its end first, what
# tells runs apart; the run's own screen shows it whole) before the status, age, By or reason are cut.
COLUMNS = {
    "id": Column("id", "Run", min_width=8, max_width=22, keep_end=True, priority=2),
    "service": Column("service", "Service", min_width=8, max_width=28, priority=0),
    "status": Column("status", "Status", min_width=11, max_width=14, whole=True, priority=0),
    "when": Column("when", "Started", min_width=8, max_width=10, whole=True, priority=1),
    "duration": Column("duration", "Took", min_width=4, max_width=10, whole=True, priority=3),
    "exit": Column("exit", "Exit", min_width=4, max_width=5, priority=2),
    "by": Column("by", "By", min_width=0, max_width=12, whole=True, priority=1),
    "runner": Column("runner", "Runner", min_width=0, max_width=22, priority=3),
    "reason": Column("reason", "Reason", min_width=16, max_width=36, grow=True, whole=True, priority=0),
}


def _cell(run: Any, key: str, tz: tzinfo | None, now: float) -> tuple[str, str | None]:
    """(text, style) of one cell."""
    if key == "status":
        return status_label(run.status), STATUS_STYLES.get(run.status)
    if key == "when":
        return ago(run.created_at, now), "muted"
    if key == "duration":
        return duration(run_duration(run, now)), None
    if key == "exit":
        return ("" if run.exit_code is None else str(run.exit_code)), None
    if key == "by":
        return run.started_by, "muted"
    if key == "reason":
        return run.reason, "muted"
    return getattr(run, key), None


class RunTable(ResourceTable):
    """Runs, newest first, with the columns named in `keys` (of COLUMNS)."""

    def __init__(self, keys: Iterable[str], *, id: str | None = None):
        self.keys = list(keys)
        super().__init__([Column(**vars(COLUMNS[k])) for k in self.keys], id=id)
        self.sort_key, self.sort_reverse = "id", True

    def set_runs(self, runs: Iterable[Any], tz: tzinfo | None, now: float) -> None:
        runs = list(runs)
        for column in self.columns:
            if column.key == "runner":  # whole while there is room: the other columns give way first
                column.min_width = min(column.max_width, max((len(r.runner) for r in runs), default=0))
        rows = []
        for run in runs:
            cells = [_cell(run, key, tz, now) for key in self.keys]
            sort = tuple(sort_value(run.created_at) if key == "when" else None for key in self.keys)
            rows.append(TableRow(run.id, tuple(text for text, _ in cells), tuple(style for _, style in cells), sort))
        self.set_rows(rows)
