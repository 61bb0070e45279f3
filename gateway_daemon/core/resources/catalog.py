"""The catalog: resources as the store holds them, read, decoded once per revision, and written.

Everyone who reads a resource goes through here: the engine, the life of a run, import and export.
`load(Service, name)` is the typed read; `read(kind, name)` gives the revision too, for a
compare-and-set.  What a scoped caller may see (core.access.roles) is decided here as well, so that a
run's secrets and a listing are judged the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, TypeVar, cast

from ...store import Entry, RevisionMismatch, Store, StoreUnavailable
from ..access.roles import scoped_caller, service_visible
from ..errors import Conflict, InvalidArgument, NotFound, OutOfScope, Unavailable
from .base import Resource, check_name
from .decorators import Decorator
from .executables import ExecutableObject
from .registries import Registry
from .repositories import Repository
from .secret_providers import SecretProvider
from .secrets import Secret
from .services import Service, new_service_id

KINDS: dict[str, type[Resource]] = {cls.KIND: cls for cls in (Repository, Decorator, Service, Secret, Registry,
                                                                ExecutableObject, SecretProvider)}
# The kinds that carry tags a scope limits (core.access.roles); the others every user sees.
SCOPED_KINDS = (Service, Repository, Secret)
R = TypeVar("R", bound=Resource)
_READ_RETRIES = 8


def resource_class(kind: str) -> type[Resource]:
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidArgument(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}") from None


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """The store out of reach, as the Gateway says it: Unavailable."""
    try:
        yield
    except StoreUnavailable as exc:
        raise Unavailable(str(exc)) from None


def visible(resource: Resource) -> bool:
    """Whether the caller's scope lets them see it (an unscoped caller sees everything)."""
    return not isinstance(resource, SCOPED_KINDS) or service_visible(resource.tags)


class Catalog:
    def __init__(self, store: Store):
        self.store = store
        self._decoded: dict[str, tuple[int, Resource]] = {}  # store key -> (revision, resource)

    @staticmethod
    def key(cls: type[Resource], name: str) -> str:
        return f"{cls.PLURAL}/{name}"

    async def read(self, kind: str, name: str) -> tuple[Resource, int]:
        """The resource and its revision; NotFound when there is none."""
        cls = resource_class(kind)
        check_name(kind, name)
        with store_errors():
            entry = await self.store.get(self.key(cls, name))
        if entry is None:
            raise NotFound(f"{kind} {name!r} not found")
        return self.decode(cls, entry), entry.revision

    async def load(self, cls: type[R], name: str) -> R:
        resource, _ = await self.read(cls.KIND, name)
        return cast(R, resource)

    async def read_all(self, kind: str) -> list[Resource]:
        cls = resource_class(kind)
        with store_errors():
            entries = await self.store.list(f"{cls.PLURAL}/")
        decoded = [self.decode(cls, e) for e in entries]
        if len(self._decoded) > 2 * len(entries) + 1000:  # forget what was deleted meanwhile
            listed = {e.key for e in entries}
            prefix = f"{cls.PLURAL}/"
            for key in [k for k in self._decoded if k.startswith(prefix) and k not in listed]:
                del self._decoded[key]
        return decoded

    async def load_all(self, cls: type[R]) -> list[R]:
        return cast("list[R]", await self.read_all(cls.KIND))

    def decode(self, cls: type[Resource], entry: Entry) -> Resource:
        """The resource a stored entry holds, decoded once per revision: a list of thousands costs a
        store read when nothing changed.  Resources handed out are snapshots: changes go through
        the engine's update(), never into the object itself."""
        known = self._decoded.get(entry.key)
        if known is not None and known[0] == entry.revision:
            return known[1]
        resource = cls.decode(entry.value)
        self._decoded[entry.key] = (entry.revision, resource)
        return resource

    async def exists(self, kind: str, name: str) -> bool:
        cls = resource_class(kind)
        with store_errors():
            return await self.store.get(self.key(cls, name)) is not None

    async def read_visible(self, kind: str, name: str) -> tuple[Resource, int]:
        """As read; a service, repository or secret outside the caller's scope is not found."""
        resource, revision = await self.read(kind, name)
        if not visible(resource):
            raise OutOfScope(f"{kind} {name!r} not found", f"{kind}/{name}")
        return resource, revision

    async def visible_service_ids(self) -> set[str] | None:
        """The ids of the services the caller may see; None: every one (no scope).  A run belongs to the service
        it ran for, by its id: a service made again under a deleted one's name does not have the old runs, and a
        run recorded without an id (before services had them) is for unscoped users only."""
        if scoped_caller() is None:
            return None
        return {s.id for s in await self.load_all(Service) if visible(s) and s.id}

    async def service_with_id(self, name: str) -> Service:
        """The service, with the id it keeps from now on (given here to one stored before services had ids)."""
        for _ in range(_READ_RETRIES):
            service, revision = await self.read("service", name)
            assert isinstance(service, Service)
            if service.id:
                return service
            service = dataclasses.replace(service, id=new_service_id())
            try:
                with store_errors():
                    await self.store.update(self.key(Service, name), service.encode(), revision)
            except RevisionMismatch:
                continue
            self._decoded.pop(self.key(Service, name), None)
            return service
        raise Conflict(f"service {name!r} kept changing while it was being read; try again")
