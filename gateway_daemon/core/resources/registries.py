"""Registries: where a service's dependencies come from (a PyPI index, an Ansible Galaxy server).

`default-pypi` and `default-galaxy` are built in: they stand for what pip and ansible-galaxy use when told
nothing (their own configuration), and are the defaults until a stored registry of that type says it is.
A registry's password and token live in secrets; the core opens them when it prepares a job and they reach
only the install's environment or a private file removed after it (execution/registries.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from .base import Resource, check_name, check_text, field_error, now


REGISTRY_TYPES = ("pypi", "ansible-galaxy")
BUILT_IN = {"default-pypi": ("pypi", "https://pypi.org/simple"),
            "default-galaxy": ("ansible-galaxy", "https://galaxy.ansible.com")}
BUILT_IN_OF_TYPE = {kind: name for name, (kind, _) in BUILT_IN.items()}


@dataclasses.dataclass
class Registry(Resource):
    KIND = "registry"
    PLURAL = "registries"

    type: str = "pypi"
    url: str = ""
    username: str = ""
    password_name: str = ""  # a secret holding the password
    token_name: str = ""  # a secret holding a token (Galaxy's API token; PyPI: sent as user __token__)
    insecure: bool = False  # do not verify the server's certificate (and allow plain http)
    default: bool = False  # the default registry of its type
    description: str = ""
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)

    def validate(self) -> None:
        super().validate()
        if self.type not in REGISTRY_TYPES:
            raise field_error("type", f"registry type {self.type!r} is not valid; use {' or '.join(REGISTRY_TYPES)}")
        if self.name in BUILT_IN and BUILT_IN[self.name][0] != self.type:
            raise field_error("type", f"registry {self.name} is a {BUILT_IN[self.name][0]} registry")
        check_url(self.url)
        if self.username and (not isinstance(self.username, str) or len(self.username) > 256
                              or any(ch in self.username for ch in ":@/\x00\n\r")):
            raise field_error("username", "registry username must be text without ':', '@', '/' or control characters")
        for field in ("password_name", "token_name"):
            if getattr(self, field):
                check_name("registry", getattr(self, field), field.replace("_", "-"))
        if self.password_name and not self.username:
            raise field_error("username", f"registry {self.name}: --password-name needs --username")
        if self.password_name and self.token_name:
            raise field_error("token_name", f"registry {self.name}: give --password-name or --token-name, not both")
        for field in ("insecure", "default"):
            if not isinstance(getattr(self, field), bool):
                raise field_error(field, f"registry {field} must be true or false")
        check_plain_http(self.name, self.url, bool(self.username or self.password_name or self.token_name),
                         self.insecure)
        check_text("registry", "description", self.description)

    def references(self) -> list[tuple[str, str]]:
        return [("secret", name) for name in (self.password_name, self.token_name) if name]

    @property
    def built_in(self) -> bool:
        return self.name in BUILT_IN and not self.created_at


def check_url(url: Any) -> None:
    if not isinstance(url, str) or not url:
        raise field_error("url", "a registry needs --url (https://...)")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(ch in url for ch in " \x00\n\r"):
        raise field_error("url", f"registry url {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise field_error("url", f"registry url {url!r} holds credentials: give --username with --password-name "
                                 "or --token-name (secrets) instead")


def check_plain_http(name: str, url: str, credentials: bool, insecure: bool) -> None:
    """Credentials go to a plain http:// registry only when the operator said --insecure: anyone on the way
    reads them there."""
    if credentials and not insecure and urlsplit(url).scheme == "http":
        raise field_error("url", f"registry {name}: an http:// URL would send its credentials unencrypted; "
                                 "use https:// or say --insecure")


def built_in(name: str) -> Registry:
    kind, url = BUILT_IN[name]
    return Registry(name=name, type=kind, url=url, description=f"built in: {'pip' if kind == 'pypi' else 'ansible-galaxy'}"
                    "'s own configuration", created_at="", updated_at="")


def effective_defaults(registries: Any) -> set[str]:
    """The names of the registries installs use when a service names none, one per type: the stored one marked
    default, else the built-in one (what the CLI's and the TUI's DEFAULT column both show)."""
    registries = list(registries)
    chosen = set()
    for kind in REGISTRY_TYPES:
        stored = [r.name for r in registries if r.type == kind and r.default and r.created_at]
        chosen.add(stored[0] if stored else BUILT_IN_OF_TYPE[kind])
    return chosen
