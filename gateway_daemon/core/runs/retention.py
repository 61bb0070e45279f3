"""What the store keeps of runs, and a store kept under its quota.

Finished runs are kept by ``[runs]`` retention: at most ``retention_count`` per
service (the newest) and none older than ``retention_age``; older ones go with
their output.  The stored output of all runs together stays within
``output_budget``: past it, the oldest runs' output goes first and their
records stay, saying "output pruned" and why.  A run in flight is never
touched.  This is looked at after runs end (not more often than the last look
took times twenty, so a long history costs little) and, in a server, every
few minutes.

A store with a quota (etcd refuses every write once its database passes
``--quota-backend-bytes``) is watched by the server: after every part of the
quota written, after a refused write, and every half minute, it asks how large
the database is.  Near the quota (RECLAIM_AT) it compacts and defragments; when
the data in use is still large (LIVE_AT) the oldest runs' output goes until
it is back near TARGET, and it compacts and defragments again.  A full etcd
that nothing here can free is one log line with the fix.

An admin removes runs by hand too: one (`delete`) or every finished run
created before a time (`prune_before`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ...store import StoreError, StoreFull
from ..access.audit import Actor, age_seconds
from ..errors import GatewayError, InvalidArgument
from .records import Run, run_key

if TYPE_CHECKING:
    from ..access.audit import AuditTrail
    from .lifecycle import Limits, RunLifecycle

log = logging.getLogger("gateway.runs")

RECLAIM_AT = 0.7   # of the quota: compact and defragment
LIVE_AT = 0.55     # of the quota, still in use after that: the oldest runs' output goes ...
TARGET = 0.4       # ... until the data in use is about this part of it
FULL_AT = 0.95     # of the quota, after all that: full, and said so
POLL_SECONDS = 0.5
CHECK_SECONDS = 30.0   # the database size is asked at least this often
SWEEP_SECONDS = 300.0  # a server looks at retention at least this often
SWEEP_GAP_FACTOR = 20  # after a run ends: not again before the last look took this many times over
CLOSE_SECONDS = 30.0   # what a closing engine waits for a look in progress
GATEWAY = Actor("gateway")


def _mib(size: float) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def before_time(text: str, now: float | None = None) -> float:
    """`--before`: an ISO 8601 time (a date alone is its midnight, UTC unless a zone is given) or an age
    (2h, 7d: that long ago)."""
    now = time.time() if now is None else now
    text = (text or "").strip()
    try:
        age = age_seconds(text) if len(text) <= 64 else None
        if age is not None:
            return now - age
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):  # not a time, or an age past any calendar
        shown = text if len(text) <= 64 else text[:63] + "…"
        raise InvalidArgument(f"--before {shown!r} is not a time: give an ISO time (2024-05-01T12:00:00Z), a date "
                              "(2024-05-01) or an age (30m, 2h, 7d)", {"before": "not a time"}) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment.timestamp() > now:
        raise InvalidArgument(f"--before {text!r} is in the future: every finished run would go; give a time "
                              "past, or an age (7d)", {"before": "in the future"})
    return moment.timestamp()


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class Retention:
    """Applies [runs] retention and the output budget, and keeps a store with a quota under it."""

    def __init__(self, lifecycle: "RunLifecycle", limits: "Limits", audit: "AuditTrail | None" = None):
        """`audit`: a server's audit trail, where what went is recorded."""
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.limits = limits
        self.audit = audit
        self._lock = asyncio.Lock()
        self._pending: asyncio.Task | None = None  # a look after runs ended
        self._task: asyncio.Task | None = None  # a server's watch
        self._last_look = 0.0  # when the last look ended (monotonic)
        self._look_took = 0.0
        self._full_said = False
        self._notes: dict[str, str] = {}  # runs whose output went while the store took no writes: note to write

    # ------------------------------------------------------------ reading the records
    async def _records(self) -> list[tuple[Run, int]]:
        found = []
        for entry in await self.store.list("runs/"):
            try:
                found.append((Run.decode(entry.value), entry.revision))
            except (ValueError, TypeError):
                continue
        return found

    async def _output_bytes(self, run: Run, revision: int) -> int:
        """What a finished run's output takes; a record from before the gateway counted it is counted now
        (and the count kept in it)."""
        if run.output_pruned or run.id in self._notes:  # gone already (its note waits for the store)
            return 0
        if run.output_bytes or run.output_lines <= run.output_dropped:
            return run.output_bytes
        from .outputs import output_prefix

        size = sum(len(e.value) for e in await self.store.list(output_prefix(run.id)))
        if size:
            run.output_bytes = size
            with contextlib.suppress(StoreError):
                await self.store.update(run_key(run.id), run.encode(), revision)
        return size

    # ------------------------------------------------------------ retention by count, age and output
    async def sweep(self) -> tuple[int, int]:
        """Apply [runs] retention_count, retention_age and output_budget: (runs deleted, runs whose output
        was pruned)."""
        async with self._lock:
            started = time.monotonic()
            try:
                return await self._sweep()
            finally:
                self._last_look = time.monotonic()
                self._look_took = self._last_look - started

    async def _sweep(self) -> tuple[int, int]:
        limits = self.limits
        records = await self._records()
        now = time.time()
        doomed: list[Run] = []
        if limits.retention_age:
            doomed += [r for r, _ in records if r.finished and r.created_at < now - limits.retention_age]
        if limits.retention_count:
            by_service: dict[str, list[Run]] = {}
            for run, _ in records:
                by_service.setdefault(run.service, []).append(run)
            for runs in by_service.values():
                runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)  # newest first
                doomed += [r for r in runs[limits.retention_count:] if r.finished]
        active = self.lifecycle._active  # ended, but its last writes still under way: looked at next time
        doomed = [r for r in doomed if r.id not in active]
        gone = {r.id for r in doomed}
        deleted = 0
        for run in {r.id: r for r in doomed}.values():
            with contextlib.suppress(StoreError, GatewayError):  # the rest next time
                await self.lifecycle.delete(run)
                deleted += 1
        if deleted:
            why = []
            if limits.retention_count:
                why.append(f"{limits.retention_count} per service")
            if limits.retention_age:
                why.append(f"none older than {limits.retention_age / 86400:g} days")
            detail = f"{deleted} finished runs deleted with their output ([runs] retention: {', '.join(why)})"
            log.info("%s", detail)
            await self._record("prune", "runs", detail)
        pruned = 0
        if limits.output_budget:
            kept = [(r, rev) for r, rev in records if r.id not in gone]
            total = 0
            for run, revision in kept:
                total += run.output_bytes if not run.finished else await self._output_bytes(run, revision)
            if total > limits.output_budget:
                note = (f"{_stamp(now)}: [runs] output_budget ({_mib(limits.output_budget)}) keeps the newest "
                        "runs' output; the record stays")
                pruned = await self._prune_oldest(kept, total - limits.output_budget, note)
                if pruned:
                    detail = (f"the output of the {pruned} oldest runs pruned: all runs' output was "
                              f"{_mib(total)}, past [runs] output_budget ({_mib(limits.output_budget)})")
                    log.info("%s", detail)
                    await self._record("prune", "run-output", detail)
        return deleted, pruned

    async def _prune_oldest(self, records: list[tuple[Run, int]], need: float, note: str) -> int:
        """Drop the output of the oldest finished runs until `need` bytes are gone: how many runs'."""
        candidates = sorted(((r, rev) for r, rev in records
                             if r.finished and not r.output_pruned and r.id not in self.lifecycle._active
                             and r.id not in self._notes),
                            key=lambda item: (item[0].created_at, item[0].id))
        pruned, freed = 0, 0
        for run, revision in candidates:
            if freed >= need:
                break
            size = await self._output_bytes(run, revision)
            if not size:
                continue
            try:
                marked = await self.lifecycle.mark_pruned(run, revision, note)
            except StoreFull:  # the note is written once the store takes writes again; the output goes now
                self._notes[run.id] = note
                marked = True
            if not marked:  # changed meanwhile: looked at next time
                continue
            await self.lifecycle.drop_output(run.id)
            pruned += 1
            freed += size
        return pruned

    async def _write_notes(self) -> None:
        """The notes of runs whose output went while the store took no writes."""

        for run_id, note in list(self._notes.items()):
            entry = await self.store.get(run_key(run_id))
            if entry is None:
                del self._notes[run_id]
                continue
            run = Run.decode(entry.value)
            if run.output_pruned or await self.lifecycle.mark_pruned(run, entry.revision, note):
                del self._notes[run_id]

    async def _record(self, action: str, target: str, detail: str) -> None:
        audit = self.audit
        if audit is not None:
            with contextlib.suppress(Exception):
                await audit.record(action, target, "ok", detail, actor=GATEWAY)

    # ------------------------------------------------------------ by hand
    async def prune_before(self, cutoff: float, service: str = "", visible: set[str] | None = None) -> int:
        """Delete every finished run created before `cutoff` (of `service`, among the runs of the services whose ids are `visible`): how many."""
        async with self._lock:
            deleted = 0
            for run, _ in await self._records():
                if not run.finished or run.created_at >= cutoff or (service and run.service != service):
                    continue
                if (visible is not None and run.service_id not in visible) or run.id in self.lifecycle._active:
                    continue
                await self.lifecycle.delete(run)
                deleted += 1
            return deleted

    # ------------------------------------------------------------ a store with a quota
    async def keep_space(self) -> None:
        """Keep a store with a quota under it (see the module's text); nothing for a store without one."""
        async with self._lock:
            await self._keep_space()

    async def _keep_space(self) -> None:
        store = self.store
        space = await store.space()
        if space is None or not space.quota:
            return
        quota = space.quota
        if space.full or space.size >= RECLAIM_AT * quota:
            await store.reclaim()
            space = await store.space()
            for _ in range(3):
                if not (space.full or space.in_use >= LIVE_AT * quota):
                    break
                note = (f"{_stamp(time.time())}: the store neared its quota ({_mib(quota)}), so the oldest runs' "
                        "output went first; the record stays")
                pruned = await self._prune_oldest(await self._records(), space.in_use - TARGET * quota, note)
                if not pruned:
                    break
                detail = (f"the output of the {pruned} oldest runs pruned: the store held {_mib(space.in_use)} "
                          f"of its {_mib(quota)} quota")
                log.warning("%s", detail)
                await store.reclaim()
                space = await store.space()
                await self._record("prune", "run-output", detail)
        if self._notes and not space.full:
            with contextlib.suppress(StoreError):
                await self._write_notes()
        if space.full or space.size >= FULL_AT * quota:
            if not self._full_said:
                self._full_said = True
                log.error("the store is full (%s of its %s quota) with data the gateway cannot drop (run output is "
                          "pruned already): free it with `etcdctl compact REVISION`, `etcdctl defrag` and `etcdctl "
                          "alarm disarm` after removing what filled it, or restart etcd with a larger "
                          "--quota-backend-bytes and set [store] etcd_quota_bytes alike",
                          _mib(space.size), _mib(quota))
        elif self._full_said:
            self._full_said = False
            log.warning("the store takes writes again (%s of its %s quota)", _mib(space.size), _mib(quota))

    # ------------------------------------------------------------ when
    def run_ended(self) -> None:
        """A run ended: look again soon (not more often than the last look took, times twenty)."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self._look_soon())

    async def _look_soon(self) -> None:
        wait = self._last_look + self._look_took * SWEEP_GAP_FACTOR - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await self._look("after a run")

    async def _look(self, when: str) -> None:
        try:
            await self.sweep()
            await self.keep_space()
        except (StoreError, GatewayError) as exc:  # the store away or full: looked at again later
            log.debug("run retention not applied %s: %s", when, exc)
        except Exception:  # a bug: said, and the runs go on
            log.exception("run retention failed %s", when)

    def start(self) -> None:
        """A server's watch: the store's size as it is written to, retention every few minutes."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        store = self.store
        written, refusals = store.bytes_written, store.refusals
        checked = swept = time.monotonic()
        step = 256 * 1024
        await self._look("at start")
        while True:
            await asyncio.sleep(POLL_SECONDS)
            now = time.monotonic()
            quota = getattr(store, "quota", 0)
            if quota:
                step = max(256 * 1024, min(64 * 1024 * 1024, quota // 32))
            due = store.bytes_written - written >= step or store.refusals != refusals
            if self._full_said:  # full of what cannot go here: compacted and defragmented again only now and then
                due = False
            try:
                if quota and (due or now - checked >= CHECK_SECONDS):
                    written, refusals, checked = store.bytes_written, store.refusals, now
                    await self.keep_space()
                if now - swept >= SWEEP_SECONDS:
                    swept = now
                    await self.sweep()
            except (StoreError, GatewayError) as exc:
                log.debug("run retention not applied now: %s", exc)
            except Exception:  # a bug: said once a while, and the watch goes on
                log.exception("run retention failed; it is tried again in %.0f s", CHECK_SECONDS)
                await asyncio.sleep(CHECK_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._pending is not None and not self._pending.done():
            try:
                await asyncio.wait_for(self._pending, CLOSE_SECONDS)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                pass
