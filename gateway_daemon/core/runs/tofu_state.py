"""The state of opentofu-plan services: kept by the gateway, sealed, changed by one run at a time.

A service's state (``terraform.tfstate``: what its plan made, secrets
included) lives in the store under ``service-states/<service>``, sealed with
the secrets key as a secret value is (core.secrets), beside a summary that
holds no value: its resources' addresses, serial, lineage and the run that
last changed it.  A run is given the state before tofu runs (the executor
writes it into the run's tree) and hands back the state its tree ended with;
an apply or a destroy stores it.

Runs that change a service's state (apply, destroy) take its lock,
``state-locks/<service>``, first: a second one waits ("waiting: run X holds
the state of service Y") until the first has stored its state.  A lock whose
run has ended, or whose gateway process is gone, is taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from ...store import KeyExists, RevisionMismatch, Store, StoreError
from . import keepers
from ..errors import FailedPrecondition, GatewayError, InvalidArgument
from ..resources.base import check_name, now
from ..resources.services import TOFU_ACTIONS, Service

if TYPE_CHECKING:
    from .jobs import Job, JobResult
    from ..resources.secrets import SecretBox

log = logging.getLogger("gateway.state")
STATES_PREFIX = "service-states/"
LOCKS_PREFIX = "state-locks/"
WAIT_STEP = 0.25  # seconds between looks at a held lock
MAX_STATE_BYTES = 16 * 1024 * 1024
STORE_TRIES = 60  # a state that cannot be stored is tried again for about this many seconds
CHANGING_ACTIONS = ("apply", "destroy")
EXPORT_KEY = "service_states"  # where `db export` puts them


def action_of(service: Service, requested: str = "") -> str:
    """The action a run of `service` takes: the one asked for, else the service's own, else its first
    runtime argument when that is an action (older services said it so), else plan."""
    if requested:
        if service.type != "opentofu-plan":
            raise InvalidArgument(f"service {service.name} is a {service.type}: an action ({requested}) is for "
                                  "opentofu-plan services", {"action": "only for opentofu-plan services"})
        if requested not in TOFU_ACTIONS:
            message = f"action {requested!r} is not one of {', '.join(TOFU_ACTIONS)}"
            raise InvalidArgument(message, {"action": message})
        return requested
    if service.type != "opentofu-plan":
        return ""
    if service.tofu_action:
        return service.tofu_action
    first = service.runtime_args[0] if service.runtime_args else ""
    return first if first in TOFU_ACTIONS else "plan"


def check_state_text(state: str | None, what: str = "the state") -> None:
    if state is None:
        return
    if not isinstance(state, str) or len(state.encode()) > MAX_STATE_BYTES:
        raise InvalidArgument(f"{what} is larger than {MAX_STATE_BYTES // (1024 * 1024)} MiB", {"state": "too large"})
    try:
        data = json.loads(state)
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not an OpenTofu state (JSON): {exc}", {"state": "not JSON"}) from None
    if not isinstance(data, dict) or "version" not in data:
        raise InvalidArgument(f"{what} is not an OpenTofu state: it has no version", {"state": "not a state"})


@dataclasses.dataclass
class StateSummary:
    """What may be shown of a service's state: never a value from it."""

    service: str
    resources: list[str] = dataclasses.field(default_factory=list)  # managed resources' addresses
    serial: int = 0
    lineage: str = ""
    terraform_version: str = ""
    updated_at: str = ""  # when the gateway last stored it
    run: str = ""  # the run that stored it ("" for an import)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StateSummary":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def summarize(service: str, state: str, run: str = "", updated_at: str = "") -> StateSummary:
    """The summary of a state's text (a state that cannot be read is summarized as empty)."""
    try:
        data = json.loads(state)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    addresses: list[str] = []
    for resource in data.get("resources") or []:
        if not isinstance(resource, dict) or resource.get("mode") == "data":
            continue
        address = f"{resource.get('type', '?')}.{resource.get('name', '?')}"
        if resource.get("module"):
            address = f"{resource['module']}.{address}"
        instances = resource.get("instances") or []
        keys = [i.get("index_key") for i in instances if isinstance(i, dict)]
        if not instances:
            continue
        if keys and all(k is None for k in keys):
            addresses.append(address)
        else:
            addresses.extend(f"{address}[{json.dumps(k)}]" for k in keys)
    serial = data.get("serial")
    return StateSummary(service=service, resources=addresses,
                        serial=serial if isinstance(serial, int) and not isinstance(serial, bool) else 0,
                        lineage=str(data.get("lineage") or ""),
                        terraform_version=str(data.get("terraform_version") or ""),
                        updated_at=updated_at or now(), run=run)


def _seal_name(service: str) -> str:
    """What the sealed state is bound to: it opens under this service's name only."""
    return f"service-state/{service}"


class ServiceStates:
    """The stored states of the services, and their locks."""

    def __init__(self, store: Store, secret_box: "SecretBox", owner: str):
        self.store = store
        self.secret_box = secret_box
        self.owner = owner

    # ------------------------------------------------------------ reading and writing
    async def _record(self, service: str) -> dict[str, Any] | None:
        entry = await self.store.get(STATES_PREFIX + service)
        if entry is None:
            return None
        record = json.loads(entry.value)
        return record if isinstance(record, dict) else None

    async def summary(self, service: str) -> StateSummary | None:
        """The summary of the service's state; None when it has none."""
        check_name("service", service)
        record = await self._record(service)
        return None if record is None else StateSummary.from_dict(record)

    async def open(self, service: str) -> str | None:
        """The service's state, opened; None when it has none."""
        record = await self._record(service)
        if record is None:
            return None
        return self.secret_box.open(_seal_name(service), record.get("sealed") or {})

    def record(self, service: str, state: str, run: str = "", updated_at: str = "") -> dict[str, Any]:
        """What the store keeps of a state: its summary and the sealed text."""
        return dict(summarize(service, state, run, updated_at).to_dict(),
                    sealed=self.secret_box.seal(_seal_name(service), state))

    async def save(self, service: str, state: str, run: str = "") -> StateSummary:
        await self.secret_box.ready()  # never sealed with a key that is not the store's
        record = self.record(service, state, run)
        await self.store.put(STATES_PREFIX + service, json.dumps(record, separators=(",", ":")).encode())
        return StateSummary.from_dict(record)

    async def delete(self, service: str) -> None:
        await self.store.delete(STATES_PREFIX + service)

    # ------------------------------------------------------------ a run's use of its state
    @contextlib.asynccontextmanager
    async def held(self, job: "Job", waiting: Callable[[str], Awaitable[None]],
                   cancel: asyncio.Event) -> AsyncIterator[bool]:
        """Around an opentofu-plan job: the lock of its service's state when the job changes it (apply,
        destroy), and the state it starts from in `job.state` (unless the caller gave one).  Yields False
        when the run was cancelled while it waited for the lock."""
        if job.service.type != "opentofu-plan":
            yield True
            return
        name = job.service.name
        revision = None
        if job.action in CHANGING_ACTIONS:
            revision = await self._lock(name, job.run_id, waiting, cancel)
            if revision is None:
                yield False
                return
        try:
            if job.state is None:
                job.state = await self.open(name)
            yield True
        finally:
            if revision is not None:
                await self._unlock(name, revision)

    async def keep(self, job: "Job", result: "JobResult", given: bool = False) -> str:
        """After the job: store the state it ended with when it may change it and did (or the caller `given`
        the state it started from); '' or why it could not be stored."""
        if (job.service.type != "opentofu-plan" or job.action not in CHANGING_ACTIONS or result.state is None
                or (result.state == job.state and not given)):
            return ""
        for attempt in range(STORE_TRIES):
            try:
                summary = await self.save(job.service.name, result.state, job.run_id)
                log.info("run %s: the state of service %s is stored (serial %d, %d resources)", job.run_id,
                         job.service.name, summary.serial, len(summary.resources))
                return ""
            except StoreError as exc:
                if attempt == STORE_TRIES - 1:
                    return f"the new state of service {job.service.name} could not be stored: {exc}"
                await asyncio.sleep(1.0)
            except GatewayError as exc:  # no secrets key to seal it with
                return f"the new state of service {job.service.name} could not be stored: {exc}"
        return ""

    # ------------------------------------------------------------ the lock
    async def _lock(self, service: str, run_id: str, waiting: Callable[[str], Awaitable[None]],
                    cancel: asyncio.Event) -> int | None:
        key = LOCKS_PREFIX + service
        value = json.dumps({"run": run_id, "owner": self.owner}).encode()
        told = ""
        while not cancel.is_set():
            try:
                return await self.store.create(key, value)
            except KeyExists:
                pass
            entry = await self.store.get(key)
            if entry is None:
                continue
            holder = _holder(entry.value)
            if holder.get("run") == run_id or await self._stale(holder):
                with contextlib.suppress(RevisionMismatch):
                    await self.store.delete(key, revision=entry.revision)
                continue
            reason = f"waiting: run {holder.get('run') or '?'} holds the state of service {service}"
            if reason != told:
                told = reason
                await waiting(reason)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(cancel.wait(), WAIT_STEP)
        return None

    async def _stale(self, holder: dict[str, Any]) -> bool:
        """A lock is stale when its run has ended (or has no record), or its process is gone."""
        from .records import Run

        run_id = holder.get("run")
        if not isinstance(run_id, str):
            return True
        entry = await self.store.get(f"runs/{run_id}")
        if entry is None:
            return True
        try:
            if Run.decode(entry.value).finished:
                return True
        except (ValueError, TypeError):
            return True
        owner = holder.get("owner")
        return isinstance(owner, str) and keepers.process_gone(owner)

    async def _unlock(self, service: str, revision: int) -> None:
        for _ in range(STORE_TRIES):
            try:
                await self.store.delete(LOCKS_PREFIX + service, revision=revision)
                return
            except RevisionMismatch:
                return  # taken over meanwhile
            except StoreError:
                await asyncio.sleep(1.0)  # a lock left behind is taken over once its run has ended


def _holder(raw: bytes) -> dict[str, Any]:
    try:
        holder = json.loads(raw)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


# ---------------------------------------------------------------- db export / import
async def export_states(states: ServiceStates) -> list[dict[str, Any]]:
    """Every service's state as the store keeps it (sealed), by service name."""
    result = []
    for entry in await states.store.list(STATES_PREFIX):
        try:
            record = json.loads(entry.value)
        except ValueError:
            continue
        if isinstance(record, dict):
            result.append(record)
    return sorted(result, key=lambda r: str(r.get("service")))


def read_states(states: ServiceStates, document: dict[str, Any], errors: list[str]) -> dict[str, dict[str, Any]]:
    """The states of an export, checked (each must open with this gateway's key); the records to store, by
    service.  Problems go to `errors`."""
    items = document.get(EXPORT_KEY)
    if items is None:
        return {}
    if not isinstance(items, list):
        errors.append(f"{EXPORT_KEY}: must be a list")
        return {}
    records: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(items):
        where = f"{EXPORT_KEY}[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be a mapping with service and sealed")
            continue
        service = item.get("service")
        try:
            check_name("service", service)
            sealed = item.get("sealed")
            if not isinstance(sealed, dict) or not sealed:
                raise InvalidArgument("the sealed state is missing")
            state = states.secret_box.open(_seal_name(service), sealed)
        except GatewayError as exc:
            errors.append(f"{where}: {exc}")
            continue
        if service in records:
            errors.append(f"{where}: the document has two states of service {service!r}")
            continue
        updated = item.get("updated_at") if isinstance(item.get("updated_at"), str) else ""
        run = item.get("run") if isinstance(item.get("run"), str) else ""
        records[service] = dict(summarize(service, state, run, updated).to_dict(), sealed=sealed)
    return records


def same_state(states: ServiceStates, old: dict[str, Any], new: dict[str, Any]) -> bool:
    if old.get("sealed") == new.get("sealed"):
        return True
    try:
        name = _seal_name(str(new.get("service")))
        return states.secret_box.open(name, old.get("sealed") or {}) == states.secret_box.open(name, new["sealed"])
    except (GatewayError, FailedPrecondition):
        return False
