"""The embedded default: SQLite in WAL mode, one file in data_dir.

Every write is one transaction committed with ``synchronous = FULL`` before it
is acknowledged, so a ``kill -9`` loses nothing that was acknowledged.  Every
write also goes to a short change log (the newest change of each key, and
the deletes of the last CHANGE_LOG_KEEP revisions), which is how a watcher in
one process sees what another process (a ``gateway`` command next to an open
TUI) wrote.  Writes, and reads that cannot be had at once, run on one worker thread that owns the
connection; a read that can (the usual one: WAL readers wait for no writer) is made on the caller's thread,
on a read-only connection of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import AsyncIterator, Callable, TypeVar

from .base import Entry, KeyExists, RevisionMismatch, Store, StoreUnavailable, WatchEvent
from .watchers import Watchers

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (revision INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL, value BLOB);
CREATE INDEX IF NOT EXISTS changes_by_key ON changes (key);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
"""
CHANGE_LOG_KEEP = 2_000  # revisions; watchers in other processes read the log every POLL_SECONDS
WAL_KEEP_BYTES = 8 * 1024 * 1024  # the -wal file is cut back to this after a checkpoint
POLL_SECONDS = 0.25
CONTENTION_SECONDS = 15.0
EMPTY_GRACE_SECONDS = 1.0


def _owner_only(path: Path) -> None:
    """The database and its -wal/-shm files readable by their owner alone (they hold run output and
    password hashes); SQLite makes them 0644 under the usual umask."""
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        try:
            st = os.stat(path.parent / name)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(path.parent / name, 0o600)
        except OSError:  # not there (yet), or not ours: SQLite says what is wrong, if anything
            pass


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix."""
    return prefix + "\U0010ffff"


class SQLiteStore(Store):
    def __init__(self, namespace: str, path: Path):
        super().__init__(namespace)
        self.path = Path(path)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # reads made at once, on the caller's thread (_read_now)
        self._reading = threading.Lock()
        self._watchers = Watchers()
        self._poller: asyncio.Task | None = None
        self._seen_revision = 0
        self._published: set[int] = set()

    # ------------------------------------------------------------ plumbing
    def _check_not_emptied(self) -> None:
        """A database file of 0 bytes is one that was truncated (or never written): SQLite would take it as an
        empty store and write a new one over it. Another process creating the store writes its first page within
        milliseconds, so a file still empty after EMPTY_GRACE_SECONDS is refused, and left as it is."""
        deadline = time.monotonic() + EMPTY_GRACE_SECONDS
        while True:
            try:
                if self.path.stat().st_size > 0:
                    return
            except FileNotFoundError:
                return  # a new store: SQLite makes it
            except OSError:
                return  # not readable: connecting says why
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"local store {self.path}: the database file is empty (0 bytes): it was truncated or never "
                    "written; restore it from a backup, or move it away to start with an empty store")
            time.sleep(0.05)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._check_not_emptied()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None, check_same_thread=False)
            try:
                _owner_only(self.path)  # before the WAL files exist: SQLite gives them the database's mode
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @staticmethod
    def _contended(exc: sqlite3.DatabaseError) -> bool:
        """SQLite answers "locked" without waiting in a few cases (switching a brand-new
        file to WAL while another process does the same, a read upgrading to a write,
        WAL recovery); those are worth another try, not an error for the user."""
        text = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)

    def _rollback(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            except sqlite3.Error:
                pass

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            deadline = time.monotonic() + CONTENTION_SECONDS
            pause = 0.01
            while True:
                try:
                    return fn(self._connect())
                except sqlite3.DatabaseError as exc:
                    self._rollback()
                    if not self._contended(exc) or time.monotonic() + pause > deadline:
                        raise StoreUnavailable(f"local store {self.path}: {exc}") from None
                except OSError as exc:  # data_dir missing, not a directory, not writable
                    raise StoreUnavailable(f"local store {self.path}: {exc.strerror or exc}") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _write(self, conn: sqlite3.Connection, key: str, kind: str, value: bytes | None) -> int:
        """Inside a transaction: bump the revision, apply, log. Returns the revision."""
        revision = conn.execute("UPDATE meta SET value = value + 1 WHERE name='revision' RETURNING value").fetchone()[0]
        if kind == "put":
            conn.execute(
                "INSERT INTO kv (key, value, revision) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value, revision=excluded.revision",
                (key, value, revision),
            )
        else:
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
        # The log keeps only the newest change of each key: a watcher in another process that has not read
        # the older ones yet sees the key as it is now, and the log never holds more than the store does
        # (a run's output chunks, put and then deleted, would otherwise pile up here).
        conn.execute("DELETE FROM changes WHERE key = ?", (key,))
        conn.execute("INSERT INTO changes (revision, key, kind, value) VALUES (?, ?, ?, ?)", (revision, key, kind, value))
        if revision % 100 == 0:
            conn.execute("DELETE FROM changes WHERE revision <= ?", (revision - CHANGE_LOG_KEEP,))
        return revision

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return run

    def _published_event(self, kind: str, key: str, value: bytes | None, revision: int) -> None:
        if len(self._watchers):
            self._published.add(revision)
        self._watchers.publish(WatchEvent(kind, self._relative(key), value, revision))

    # ------------------------------------------------------------ interface
    def _read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T | None:
        """A read on this thread, on a connection of its own, when it can be had at once: a read in WAL mode
        waits for no writer, and a hop to the worker thread costs more than the read.  None (the caller reads
        through the worker thread, as a write goes) before the store is set up, or when SQLite is busy or
        fails (the worker thread waits, retries and says what is wrong)."""
        if self._conn is None or not self._reading.acquire(blocking=False):
            return None
        try:
            if self._reader is None:
                reader = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None,
                                         check_same_thread=False, timeout=0)  # never makes a file that went
                reader.execute("PRAGMA query_only=1")
                self._reader = reader
            return fn(self._reader)
        except (sqlite3.Error, OSError):
            return None
        finally:
            self._reading.release()

    async def get(self, key: str) -> Entry | None:
        full = self._full(key)
        query = lambda c: c.execute("SELECT value, revision FROM kv WHERE key = ?", (full,)).fetchall()  # noqa: E731
        rows = self._read_now(query)
        if rows is None:
            rows = await self._run(query)
        return Entry(key, bytes(rows[0][0]), rows[0][1]) if rows else None

    async def put(self, key: str, value: bytes) -> int:
        full = self._full(key)
        revision = await self._run(self._transaction(lambda c: self._write(c, full, "put", value)))
        self._published_event("put", full, value, revision)
        return revision

    async def create(self, key: str, value: bytes) -> int:
        full = self._full(key)

        def body(c: sqlite3.Connection) -> int:
            if c.execute("SELECT 1 FROM kv WHERE key = ?", (full,)).fetchone():
                raise KeyExists(key)
            return self._write(c, full, "put", value)

        revision = await self._run(self._transaction(body))
        self._published_event("put", full, value, revision)
        return revision

    async def update(self, key: str, value: bytes, revision: int) -> int:
        full = self._full(key)

        def body(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT revision FROM kv WHERE key = ?", (full,)).fetchone()
            if row is None or row[0] != revision:
                raise RevisionMismatch(key)
            return self._write(c, full, "put", value)

        new_revision = await self._run(self._transaction(body))
        self._published_event("put", full, value, new_revision)
        return new_revision

    async def delete(self, key: str, revision: int | None = None) -> bool:
        full = self._full(key)

        def body(c: sqlite3.Connection) -> int | None:
            row = c.execute("SELECT revision FROM kv WHERE key = ?", (full,)).fetchone()
            if row is None:
                if revision is not None:
                    raise RevisionMismatch(key)
                return None
            if revision is not None and row[0] != revision:
                raise RevisionMismatch(key)
            return self._write(c, full, "delete", None)

        new_revision = await self._run(self._transaction(body))
        if new_revision is None:
            return False
        self._published_event("delete", full, None, new_revision)
        return True

    async def list(self, prefix: str) -> list[Entry]:
        full = self._full(prefix)
        query = lambda c: c.execute(  # noqa: E731
            "SELECT key, value, revision FROM kv WHERE key >= ? AND key < ? ORDER BY key", (full, _prefix_end(full)),
        ).fetchall()
        rows = self._read_now(query)
        if rows is None:
            rows = await self._run(query)
        return [Entry(self._relative(k), bytes(v), r) for k, v, r in rows]

    def watch(self, prefix: str) -> AsyncIterator[WatchEvent]:
        sub = self._watchers.subscribe(prefix)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        return sub

    async def _poll(self) -> None:
        """Bring other processes' writes to this process's watchers."""
        self._seen_revision = await self._run(
            lambda c: c.execute("SELECT value FROM meta WHERE name='revision'").fetchone()[0]
        )
        while len(self._watchers):
            await asyncio.sleep(POLL_SECONDS)
            since = self._seen_revision
            try:
                rows = await self._run(
                    lambda c: c.execute(
                        "SELECT revision, key, kind, value FROM changes WHERE revision > ? AND key >= ? AND key < ? "
                        "ORDER BY revision",
                        (since, self.namespace, _prefix_end(self.namespace)),
                    ).fetchall()
                )
            except StoreUnavailable:
                continue
            for revision, key, kind, value in rows:
                self._seen_revision = max(self._seen_revision, revision)
                if revision in self._published:
                    self._published.discard(revision)
                    continue
                self._watchers.publish(
                    WatchEvent(kind, self._relative(key), bytes(value) if value is not None else None, revision)
                )
            self._published = {r for r in self._published if r > self._seen_revision}

    async def close(self) -> None:
        self._watchers.close()
        if self._poller is not None:
            self._poller.cancel()
        with self._reading:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)
