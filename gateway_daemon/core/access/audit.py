"""The audit trail: who did what, from where, to what, and how it ended.

Every create, edit and delete (of every kind, users too), every run's start
and end (with its inputs, secret values masked), every reveal, export and
import, every login, logout and failed login, and every refusal is an event:
time, user, source address, action, target, outcome (and the one-line
message of a failure or refusal).  Never a secret value: a run's inputs are
the run record's (masked), and no value, password or key is ever taken in.

Events live in the store under ``audit/<time>-<random>`` (so a listing is in
time order), bounded by ``[audit] retention``: an age and a count, the oldest
going first.  With ``[log] file_enabled`` each event is also appended as one
JSON line to ``audit.log`` beside gateway.log (``[log] server_dir``).

A flood of failed logins must neither erase the trail nor hide in it.  The
failures of the REPEATED actions (login, password) are aggregated: one event
per action, user, address and outcome per AGGREGATE_SECONDS, with a `count`
that grows as they repeat (written at most once a second, a line in
audit.log each time).  The server records a failed login for a name that
no user has as ``user/*``, so made-up names from one address are one event
too.  Those events are kept under their own budget, a tenth
of the retention count (at least 10), under keys ending in FAILURE_MARK: the
oldest of them go first, and no other event ever makes room for them.

Who is calling comes from the server's interceptor through `acting()`; the
engine records runs, the interceptor the rest.  Local mode keeps no trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import logging
import os
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ...store import Store, StoreError
from ..errors import InvalidArgument

log = logging.getLogger("gateway.audit")

FILE_NAME = "audit.log"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 100000
PRUNE_EVERY = 100  # records between two prunings
MAX_TEXT = 512     # a target or detail longer than this is cut
REPEATED = frozenset({"login", "password"})  # their failures are aggregated (see above)
AGGREGATE_SECONDS = 60.0
WRITE_COUNT_EVERY = 1.0  # seconds: how often a growing count is written
MAX_REPEATS = 10000      # aggregated events being counted at once (the oldest is let go first)
FAILURE_MARK = "-f"      # the end of a key of an aggregated failure


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    time: str
    user: str
    source: str
    action: str
    target: str
    outcome: str
    detail: str = ""
    inputs: dict[str, Any] | None = None
    count: int = 1  # how many times it happened (repeated failures aggregated into one event)

    def public(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["inputs"] is None:
            del data["inputs"]
        if data["count"] == 1:
            del data["count"]
        return data


@dataclasses.dataclass
class _Repeat:
    """An aggregated failure being counted: where it is stored, until when it grows, whether it is written."""

    key: str
    event: AuditEvent
    until: float
    written: bool = True


@dataclasses.dataclass(frozen=True)
class Actor:
    user: str
    source: str = ""


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("gateway_actor", default=None)


def current_actor() -> Actor | None:
    return _actor.get()


@contextlib.contextmanager
def acting(actor: Actor | None) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            _actor.reset(token)


def peer_address(peer: str) -> str:
    """grpc's peer (``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``, ``unix:...``) -> the address alone."""
    if not peer:
        return ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rpartition("]")[0].lstrip("[") or rest
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    return peer


# ---------------------------------------------------------------- times
_AGE = re.compile(r"(\d+)([smhdw])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def stamp(when: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if when is None else when, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def age_seconds(text: str) -> float | None:
    """``30m``, ``2h``, ``7d``, ``1d12h`` -> seconds; None when it is no age."""
    parts = _AGE.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        return None
    return float(sum(int(n) * _AGE_UNITS[u] for n, u in parts))


def since_time(text: str, now: float | None = None) -> float:
    """`--since`: an ISO 8601 time (a date alone is its midnight, UTC unless a zone is given) or an age."""
    text = text.strip()
    age = age_seconds(text)
    if age is not None:
        return (time.time() if now is None else now) - age
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"--since {text!r} is not a time: give an ISO time (2024-05-01T12:00:00Z) or an "
                              "age (30m, 2h, 7d)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _cut(text: str) -> str:
    text = " ".join(str(text).split())  # one line
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


# ---------------------------------------------------------------- the trail
class AuditTrail:
    def __init__(self, store: Store, max_age: float = 90 * 86400, max_count: int = 10000,
                 file: Path | None = None):
        self.store = store
        self.max_age = max_age
        self.max_count = max_count
        self.file = file
        self._private = False  # the file was seen 0600
        self._store_failing = False  # said once until a write succeeds again
        self.failure_budget = max(10, max_count // 10)
        # each bound is passed by 10 % of the count, or half the failure budget, at most
        self.prune_every = max(1, min(PRUNE_EVERY, max_count // 10, self.failure_budget // 2))
        self._since_prune = self.prune_every  # prune at the first record
        self._repeats: dict[tuple[str, ...], _Repeat] = {}
        self._writing: "asyncio.Task[None] | None" = None

    async def record(self, action: str, target: str = "", outcome: str = "ok", detail: str = "",
                     inputs: dict[str, Any] | None = None, actor: Actor | None = None) -> AuditEvent:
        """Keep one event; who did it is `actor`, else the caller of the call being served."""
        who = actor or current_actor() or Actor("")
        now = time.time()
        event = AuditEvent(time=stamp(now), user=_cut(who.user)[:128], source=who.source, action=action,
                           target=_cut(target), outcome=outcome, detail=_cut(detail), inputs=inputs)
        key = f"audit/{int(now * 1e6):017d}-{secrets.token_hex(3)}"
        if action in REPEATED and outcome == "failed":
            ident = (event.action, event.target, event.user, event.source, event.outcome)
            repeat = self._repeats.get(ident)
            if repeat is not None and now < repeat.until:
                repeat.event = dataclasses.replace(repeat.event, detail=event.detail, count=repeat.event.count + 1)
                repeat.written = False
                self._write_soon()
                return repeat.event
            self._repeats.pop(ident, None)
            while len(self._repeats) >= MAX_REPEATS:
                await self._write(self._repeats.pop(next(iter(self._repeats))))
            key += FAILURE_MARK
            self._repeats[ident] = _Repeat(key, event, now + AGGREGATE_SECONDS)
        await self._keep(key, event)
        self._since_prune += 1
        if self._since_prune >= self.prune_every:
            self._since_prune = 0
            try:
                await self.prune()
            except StoreError:  # pruned the next time
                self._since_prune = self.prune_every - 1
        return event

    async def _keep(self, key: str, event: AuditEvent) -> None:
        line = json.dumps(event.public(), sort_keys=True, ensure_ascii=False)
        try:
            await self.store.put(key, line.encode())
            self._store_failing = False
        except StoreError as exc:  # the store away or full: one line (the fix is in it), not one per event
            if not self._store_failing:
                log.error("cannot keep audit events in the store (they still go to audit.log, when kept): %s", exc)
            self._store_failing = True
        except Exception:  # noqa: BLE001 - the trail must not fail the call it records; the log says why
            log.exception("cannot keep the audit event %s", line)
        self._append(line)

    async def _write(self, repeat: _Repeat) -> None:
        if not repeat.written:
            repeat.written = True
            await self._keep(repeat.key, repeat.event)

    def _write_soon(self) -> None:
        """Write the grown counts in a moment (one writer at a time)."""
        if self._writing is None or self._writing.done():
            self._writing = asyncio.get_running_loop().create_task(self._write_counts())

    async def _write_counts(self) -> None:
        await asyncio.sleep(WRITE_COUNT_EVERY)
        now = time.time()
        for ident, repeat in list(self._repeats.items()):
            await self._write(repeat)
            if repeat.until <= now:
                self._repeats.pop(ident, None)
        if any(not r.written for r in self._repeats.values()):
            self._writing = asyncio.get_running_loop().create_task(self._write_counts())

    async def flush(self) -> None:
        """Write every count not written yet (before the server stops)."""
        for repeat in list(self._repeats.values()):
            await self._write(repeat)

    def _append(self, line: str) -> None:
        if self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if not self._private:  # an audit.log open to others (made before) is tightened once
                    if os.fstat(fd).st_mode & 0o077:
                        os.fchmod(fd, 0o600)
                    self._private = True
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("cannot append to %s: %s", self.file, exc.strerror or exc)

    async def prune(self) -> int:
        """Drop events older than the retention age, and the oldest beyond its count."""
        try:
            entries = await self.store.list("audit/")
        except StoreError as exc:
            log.warning("cannot read the audit trail to prune it: %s", exc)
            return 0
        except Exception:  # noqa: BLE001
            log.exception("cannot read the audit trail to prune it")
            return 0
        cutoff = int((time.time() - self.max_age) * 1e6)
        doomed = []
        for keys, most in (([e.key for e in entries if not e.key.endswith(FAILURE_MARK)], self.max_count),
                           ([e.key for e in entries if e.key.endswith(FAILURE_MARK)], self.failure_budget)):
            old = [key for key in keys if _key_time(key) < cutoff]  # keys are in time order: the oldest first
            doomed += old
            kept = len(keys) - len(old)
            if kept > most:
                doomed += keys[len(old):len(old) + kept - most]
        for key in doomed:
            await self.store.delete(key)
        return len(doomed)

    async def list(self, user: str = "", action: str = "", since: str = "", limit: int = 0) -> list[AuditEvent]:
        """Newest first: of `user`, of `action` (``run`` matches run and run.end), since `since`."""
        limit = limit or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit must be 1 to {MAX_LIMIT}: got {limit}")
        floor = int(since_time(since) * 1e6) if since else 0
        found: list[AuditEvent] = []
        for entry in reversed(await self.store.list("audit/")):
            if _key_time(entry.key) < floor:
                break
            try:
                data = json.loads(entry.value)
                event = AuditEvent(**{f.name: data.get(f.name, {"inputs": None, "count": 1}.get(f.name, ""))
                                      for f in dataclasses.fields(AuditEvent)})
            except (ValueError, TypeError):
                continue
            if user and event.user != user:
                continue
            if action and event.action != action and not event.action.startswith(action + "."):
                continue
            found.append(event)
            if len(found) >= limit:
                break
        return found


def _key_time(key: str) -> int:
    try:
        return int(key.rsplit("/", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return 0


def mask_values(text: str, inputs: Any) -> str:
    """`text` with every string input value (3 characters or more) masked: a run's error message may quote
    an input, and which inputs are secret the caller may not know."""
    from ..resources.secrets import MASK

    values: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and len(value) >= 3:
            values.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(inputs)
    for value in sorted(set(values), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
