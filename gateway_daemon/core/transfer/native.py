"""Export every resource as one document, and import such a document, all or nothing.

Two formats are read:

* our own export (``format: automation-gateway/v1``): every resource as it is
  stored, secrets still sealed.  Importing it round-trips exactly; the sealed
  secrets open only with the same secrets key file.
* the export of Itential Automation Gateway 5 (``iagctl db export``), mapped
  onto ours by iag5.py.

An import first builds and validates every resource, and checks that every
reference resolves (in the document or in the store).  Only then does it
write, in the order secret providers, secrets, registries, executable objects, repositories,
decorators, services.  A write that fails puts back what the import had already
written, as far as the store lets it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from ...store import KeyExists, RevisionMismatch
from . import iag5
from ..resources.decorators import Decorator
from .documents import Problems, build_resource, entries, plain_values
from ..api import ImportReport
from ..resources.catalog import store_errors
from ..resources.features import check_enabled
from ..errors import Conflict, GatewayError, InvalidArgument
from ..resources.executables import ExecutableObject
from ..resources.registries import Registry
from ..resources.repositories import Repository
from ..resources.base import Resource, now
from ..resources.secret_providers import SecretProvider
from ..resources.secrets import KDF, SEALED_FIELDS, Secret
from ..resources.services import Service, new_service_id
from ..runs import tofu_state

if TYPE_CHECKING:
    from ...store import Entry
    from ..resources.catalog import Catalog
    from ..resources.secrets import SecretBox
    from ..runs.tofu_state import ServiceStates

FORMAT = "automation-gateway/v1"
IAG_FORMAT = "iag5"
# The order of writes: what is referenced comes before what refers to it.
ORDER: tuple[type[Resource], ...] = (SecretProvider, Secret, Registry, ExecutableObject, Repository, Decorator,
                                     Service)
_TIMESTAMPS = ("created_at", "updated_at")


@dataclasses.dataclass(frozen=True)
class Database:
    """What an export reads and an import writes: the resources, opentofu-plan services' states, and the key
    that seals secrets (an import checks that it can open what it takes).  `disabled_types`: service types
    [features] turned off, which an import refuses as a create would."""

    catalog: "Catalog"
    states: "ServiceStates"
    secret_box: "SecretBox"
    disabled_types: frozenset[str] = frozenset()

    @property
    def store(self) -> Any:
        return self.catalog.store


# ---------------------------------------------------------------- export
async def export_document(db: Database) -> dict[str, Any]:
    """Every resource as stored, secrets sealed. Loading it back with import_document round-trips."""
    document: dict[str, Any] = {"format": FORMAT}
    for cls in (Repository, Decorator, Service, Secret, Registry, ExecutableObject, SecretProvider):
        resources = sorted(await db.catalog.read_all(cls.KIND), key=lambda r: r.name)
        document[cls.PLURAL] = [r.to_dict() for r in resources]
    states = await tofu_state.export_states(db.states)  # opentofu-plan services' states, sealed
    if states:
        document[tofu_state.EXPORT_KEY] = states
    return document


# ---------------------------------------------------------------- reading our format
def _own_resources(document: dict[str, Any], problems: Problems) -> list[tuple[str, Resource]]:
    unknown_top = set(document) - {"format", tofu_state.EXPORT_KEY, *(cls.PLURAL for cls in ORDER)}
    problems.unknown("document", unknown_top)
    result = []
    for cls in ORDER:
        known = set(cls.field_names())
        for where, item in entries(document, cls.PLURAL, problems):
            problems.unknown(where, set(item) - known)
            fields = {k: v for k, v in item.items() if k in known}
            for stamp in _TIMESTAMPS:
                if stamp in fields and not isinstance(fields[stamp], str):
                    problems.errors.append(f"{where}: {stamp} must be text")
                    fields.pop(stamp)
            if cls is Service:
                secrets = fields.get("secrets", [])
                if not isinstance(secrets, list) or not all(isinstance(s, dict) for s in secrets):
                    problems.errors.append(f"{where}: secrets must be a list of {{name, type, target}} mappings")
                    continue
                bad = [k for s in secrets for k in s if k not in ("name", "type", "target")]
                if bad:
                    problems.errors.append(f"{where}: a secret reference has unknown key {bad[0]!r}")
                    continue
            resource = build_resource(cls, where, fields, problems)
            if resource is not None:
                # Resources without timestamps get them when written.
                for stamp in _TIMESTAMPS:
                    if stamp not in fields:
                        setattr(resource, stamp, "")
                result.append((where, resource))
    return result


# ---------------------------------------------------------------- import
def _comparable(resource: Resource) -> dict[str, Any]:
    data = resource.to_dict()
    for stamp in _TIMESTAMPS:
        data.pop(stamp, None)
    data.pop("sealed", None)
    return data


def _same_secret(db: Database, old: Secret, new: Secret) -> bool:
    if (old.provider, old.path, old.key) != (new.provider, new.path, new.key):
        return False
    if old.sealed == new.sealed:
        return True
    try:
        return db.secret_box.open(old.name, old.sealed) == db.secret_box.open(new.name, new.sealed)
    except GatewayError:
        return False


def _check_sealed(db: Database, secret: Secret) -> None:
    sealed = secret.sealed
    if secret.provider:  # an alias: its value is at its provider
        if sealed:
            raise InvalidArgument("an alias (it names a provider) has no sealed value")
        return
    if not isinstance(sealed, dict) or not sealed:
        raise InvalidArgument("the sealed value is missing (secrets are imported from our own export only)")
    kdf = sealed.get("kdf")
    fields = SEALED_FIELDS.get(kdf, SEALED_FIELDS[KDF]) if isinstance(kdf, str) else SEALED_FIELDS[KDF]
    # (an unknown kdf is refused by the open below)
    missing = [f for f in fields if f not in sealed]
    if missing:
        raise InvalidArgument(f"the sealed value has no {', '.join(missing)}")
    extra = sorted(set(sealed) - set(fields))
    if extra:
        raise InvalidArgument(f"the sealed value has unknown field {extra[0]!r}")
    iterations = sealed["iterations"]
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1_000 <= iterations <= 10_000_000:
        raise InvalidArgument(f"the sealed value has an implausible iteration count {iterations!r}")
    # Refuse now what could never be read later: sealed with another key, or damaged.
    db.secret_box.open(secret.name, sealed)


async def import_document(db: Database, document: Any, dry_run: bool = False,
                          strict: bool = False) -> ImportReport:
    """Import our export or an IAG 5 export. All or nothing; raises InvalidArgument naming the first problem."""
    if document is None:
        raise InvalidArgument("the document is empty")
    if not isinstance(document, dict):
        raise InvalidArgument(f"the document must be a mapping with repositories, decorators, services and secrets; "
                              f"found {type(document).__name__}")
    document = plain_values(document)
    problems = Problems(strict)
    marker = document.get("format")
    needed_secrets: list[tuple[str, str, str]] = []
    if marker is None:
        resources = iag5.read_resources(document, problems)
        needed_secrets = iag5.secret_names(document, problems)
        own = False
    elif marker == FORMAT:
        resources = _own_resources(document, problems)
        own = True
    else:
        raise InvalidArgument(f"format {marker!r} is not supported; expected {FORMAT!r} or an IAG 5 export")

    # What is stored now, with revisions, to compare against and to resolve references.
    stored: dict[str, dict[str, tuple[Resource, "Entry"]]] = {}
    for cls in ORDER:
        with store_errors():
            entries = await db.store.list(f"{cls.PLURAL}/")
        stored[cls.KIND] = {}
        for entry in entries:
            try:
                resource = cls.decode(entry.value)
            except (ValueError, TypeError):
                continue
            stored[cls.KIND][resource.name] = (resource, entry)

    # Validate each resource on its own, and find duplicates.
    incoming: dict[str, dict[str, Resource]] = {cls.KIND: {} for cls in ORDER}
    valid: list[tuple[str, Resource]] = []
    built_in: list[str] = []  # IAG 5's default registries, the same as the built-in ones here
    for where, resource in resources:
        if not own and iag5.built_in_registry(resource) and resource.name not in stored[Registry.KIND]:
            built_in.append(resource.name)
            continue
        try:
            if isinstance(resource, Service):
                check_enabled(resource.type, db.disabled_types)
            await asyncio.to_thread(resource.validate)  # off the loop: a decorator's schema can take a second
            if isinstance(resource, Secret):
                _check_sealed(db, resource)
            resource.encode()
        except GatewayError as exc:
            problems.errors.append(f"{where}: {exc}")
            continue
        except (TypeError, ValueError) as exc:
            problems.errors.append(f"{where}: holds a value that cannot be stored ({exc})")
            continue
        if resource.name in incoming[resource.KIND]:
            problems.errors.append(f"{where}: the document has two {resource.PLURAL} named {resource.name!r}")
            continue
        incoming[resource.KIND][resource.name] = resource
        valid.append((where, resource))

    # An IAG 5 export's secrets are sealed with that gateway's key, or aliases of a provider that could not be
    # imported (the aliases of those imported are imported): each must be here already.
    for where, name, provider in needed_secrets:
        if provider and name not in stored[Secret.KIND]:
            problems.errors.append(f"{where}: an alias of a secret in secret provider {provider!r}, which is not "
                                   "imported (see its warning); create the provider or the secret here first: "
                                   f"gateway create secret {name}")
        elif provider:
            problems.warnings.append(f"{where}: the secret already here is used (an alias of secret provider "
                                     f"{provider!r} in IAG 5, which is not imported)")
        elif name not in stored[Secret.KIND]:
            problems.errors.append(f"{where}: IAG 5 secret values are sealed with that gateway's key and cannot "
                                   f"be imported; create it here first: gateway create secret {name}")
        else:
            problems.warnings.append(f"{where}: the secret already here is used (IAG 5 values are sealed with "
                                     "that gateway's key)")
    _check_defaults(incoming, stored, problems)
    # Every reference must resolve, in the document or in the store.
    for where, resource in valid:
        for kind, name in resource.references():
            if name not in incoming[kind] and name not in stored[kind]:
                problems.errors.append(f"{where}: {kind} {name!r} does not exist and is not in the document")
    states = tofu_state.read_states(db.states, document, problems.errors) if own else {}
    for name in states:
        if name not in incoming["service"] and name not in stored["service"]:
            problems.errors.append(f"{tofu_state.EXPORT_KEY}: the state of service {name!r}: the service does not "
                                   "exist and is not in the document")
    problems.raise_if_any()

    # Plan: create, update or leave each one.
    report = ImportReport(warnings=problems.warnings, dry_run=dry_run)
    report.changes.extend(("unchanged", Registry.KIND, name) for name in sorted(set(built_in)))
    plan: list[tuple[str, Resource, "Entry | None"]] = []
    stamp = now()
    for cls in ORDER:
        for name in sorted(incoming[cls.KIND]):
            new = incoming[cls.KIND][name]
            old_pair = stored[cls.KIND].get(name)
            if old_pair is None:
                action = "create"
                new.created_at = new.created_at or stamp
                new.updated_at = new.updated_at or stamp
                if isinstance(new, Service) and not new.id:  # from an IAG 5 export, or one before services had ids
                    new.id = new_service_id()
            else:
                old, entry = old_pair
                if isinstance(new, Service) and isinstance(old, Service):  # the same service, changed: its runs stay
                    new.id = old.id or new.id or new_service_id()
                if isinstance(new, Secret) and isinstance(old, Secret):
                    same = (_same_secret(db, old, new) and old.description == new.description
                            and old.tags == new.tags)
                else:
                    same = _comparable(old) == _comparable(new)
                action = "unchanged" if same else "update"
                if own and new.created_at:
                    new.updated_at = new.updated_at or stamp
                else:
                    new.created_at = old.created_at
                    new.updated_at = stamp
            report.changes.append((action, cls.KIND, name))
            if action != "unchanged":
                plan.append((action, new, old_pair[1] if old_pair else None))
    state_plan: list[tuple[str, bytes, "Entry | None"]] = []
    for name in sorted(states):
        key = tofu_state.STATES_PREFIX + name
        with store_errors():
            entry = await db.store.get(key)
        old_record = _record(entry)
        action = ("create" if entry is None else
                  "unchanged" if old_record is not None and tofu_state.same_state(db.states, old_record,
                                                                                   states[name]) else "update")
        report.changes.append((action, "state", name))
        if action != "unchanged":
            state_plan.append((key, json.dumps(states[name], separators=(",", ":")).encode(), entry))
    if dry_run:
        return report

    # Write, remembering what was there, to put it back if a write fails.
    written: list[tuple[str, "Entry | None"]] = []
    try:
        for _action, resource, entry in plan:
            key = db.catalog.key(type(resource), resource.name)
            try:
                with store_errors():
                    if entry is None:
                        await db.store.create(key, resource.encode())
                    else:
                        await db.store.update(key, resource.encode(), entry.revision)
            except (KeyExists, RevisionMismatch):
                raise Conflict(f"{resource.KIND} {resource.name!r} was changed by someone else during the "
                               "import; nothing was imported, try again") from None
            written.append((key, entry))
        for key, value, entry in state_plan:
            with store_errors():
                await db.store.put(key, value)
            written.append((key, entry))
    except BaseException as exc:
        failed = await _roll_back(db, written)
        if failed and isinstance(exc, GatewayError):
            raise type(exc)(f"{exc}; putting back the earlier state also failed for {', '.join(failed)}") from None
        raise
    return report


def _check_defaults(incoming: dict[str, dict[str, Resource]],
                    stored: dict[str, dict[str, tuple[Resource, "Entry"]]], problems: Problems) -> None:
    """One default registry per type, counting the stored ones the document does not replace."""
    registries = {name: pair[0] for name, pair in stored[Registry.KIND].items()}
    registries.update(incoming[Registry.KIND])
    defaults: dict[str, list[str]] = {}
    for name, registry in sorted(registries.items()):
        if registry.default:  # type: ignore[attr-defined]
            defaults.setdefault(registry.type, []).append(name)  # type: ignore[attr-defined]
    for kind, names in sorted(defaults.items()):
        if len(names) > 1:
            problems.errors.append(f"registries: {' and '.join(names)} would both be the default {kind} registry "
                                   "(stored or in the document); keep default: true on one")


def _record(entry: "Entry | None") -> dict[str, Any] | None:
    if entry is None:
        return None
    try:
        record = json.loads(entry.value)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


async def _roll_back(db: Database, written: list[tuple[str, "Entry | None"]]) -> list[str]:
    """Undo the writes, newest first. Returns the keys that could not be put back."""
    failed = []
    for key, previous in reversed(written):
        try:
            if previous is None:
                await db.store.delete(key)
            else:
                await db.store.put(key, previous.value)
        except Exception:
            failed.append(key)
    return failed
