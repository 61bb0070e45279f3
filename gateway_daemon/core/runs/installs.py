"""Where a run's installs come from: the pip and ansible-galaxy registries a service uses, their secrets
opened for the job (the one the service names for a type, else the default of that type)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ..errors import FailedPrecondition, InvalidArgument, NotFound
from ..resources.registries import BUILT_IN, BUILT_IN_OF_TYPE, Registry, built_in, check_plain_http

if TYPE_CHECKING:
    from ..resources.catalog import Catalog
    from ..resources.services import Service


@dataclasses.dataclass(frozen=True)
class RegistryAccess:
    """A registry as an install uses it, its secrets open. `built_in`: tell the tool nothing."""

    type: str
    name: str
    url: str = ""
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    token: str = dataclasses.field(default="", repr=False)
    insecure: bool = False
    built_in: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RegistryAccess":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def secret_values(self) -> list[str]:
        return [v for v in (self.password, self.token) if v]


def wanted_types(service: "Service") -> list[str]:
    """The registry types a service's installs may use."""
    if service.type == "ansible-playbook":
        return ["pypi", "ansible-galaxy"]
    if service.type == "python-script":
        return ["pypi"]
    return []


async def access_for(catalog: "Catalog", open_secret: Callable[[str], Awaitable[str]], service: "Service",
                     overridable: bool = True) -> list[RegistryAccess]:
    """The registries `service` installs from, their secrets opened: the one it names for a type, else the
    default of that type.  With `overridable` false ([registry] default_overridable), naming another one is
    refused."""
    accesses = []
    for kind in wanted_types(service):
        named = service.pypi_registry if kind == "pypi" else service.galaxy_registry
        default = await default_of(catalog, kind)
        if named and named != default.name and not overridable:
            raise FailedPrecondition(
                f"service {service.name} names registry {named}, but [registry] default_overridable = false: "
                f"its installs must use the default {kind} registry {default.name}")
        registry = default
        if named and named != default.name:
            registry = await get_registry(catalog, named)
            if registry.type != kind:
                raise FailedPrecondition(f"service {service.name}: registry {named} is a {registry.type} "
                                         f"registry, not {kind}")
        if registry.built_in:
            accesses.append(RegistryAccess(kind, registry.name, registry.url, built_in=True))
            continue
        try:  # a record stored before this rule held
            check_plain_http(registry.name, registry.url, bool(registry.username or registry.password_name
                                                                or registry.token_name), registry.insecure)
        except InvalidArgument as exc:
            raise FailedPrecondition(f"service {service.name}: {exc}") from None
        password = await open_secret(registry.password_name) if registry.password_name else ""
        token = await open_secret(registry.token_name) if registry.token_name else ""
        accesses.append(RegistryAccess(kind, registry.name, registry.url, registry.username, password, token,
                                       registry.insecure))
    return accesses


async def get_registry(catalog: "Catalog", name: str) -> Registry:
    try:
        return await catalog.load(Registry, name)
    except NotFound:
        if name in BUILT_IN:
            return built_in(name)
        raise


async def default_of(catalog: "Catalog", kind: str) -> Registry:
    stored = [r for r in await catalog.load_all(Registry) if r.type == kind and r.default]
    return stored[0] if stored else built_in(BUILT_IN_OF_TYPE[kind])
