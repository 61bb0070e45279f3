"""A run this process keeps while it lives: its record, its followers and its stop switch."""

from __future__ import annotations

import asyncio

from .records import OutputLine, Run, RunEvent


class ActiveRun:
    """A run this process keeps: its record, its followers and its stop switch."""

    def __init__(self, run: Run, revision: int):
        self.run = run
        self.revision = revision
        self.subscribers: list[asyncio.Queue] = []
        self.task: asyncio.Task | None = None
        self.cancel = asyncio.Event()
        self.unsaved = False  # the record changed since the store last took it
        self.writing = asyncio.Lock()
        self.saver: asyncio.Task | None = None
        self.store_error = ""  # why the store did not take the record, when it did not
        self.ended = False  # the job is over; only its final record may still wait for the store
        self.stop_waiting = asyncio.Event()  # its followers stop waiting for that record (Ctrl-C)

        self._lines: list[OutputLine] = []  # output lines not yet told to the followers
        self._lines_due = False
        self.state_out = False  # opentofu-plan: the final event carries the state the run ended with
        self.final_state: str | None = None

    def publish(self, event: RunEvent) -> None:
        self.publish_lines()  # what came before goes first
        self._deliver(event)

    def publish_lines_of(self, lines: list[OutputLine]) -> None:
        """Output lines for the followers: the lines of one loop iteration (what the processes printed
        in one read each) go to them together, as one event."""
        self._lines.extend(lines)
        if not self._lines_due:
            self._lines_due = True
            asyncio.get_running_loop().call_soon(self.publish_lines)

    def publish_lines(self) -> None:
        self._lines_due = False
        if self._lines:
            lines, self._lines = self._lines, []
            self._deliver(RunEvent("output", lines=tuple(lines)))

    def _deliver(self, event: RunEvent) -> None:
        for queue in self.subscribers:
            if queue.full():  # a slow follower loses lines, never the gateway
                continue
            queue.put_nowait(event)
