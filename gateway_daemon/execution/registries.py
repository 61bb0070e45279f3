"""A registry's credentials for one install, and nowhere else.

pip gets the index through PIP_INDEX_URL in the install's own environment (pip shows it with the password
masked); ansible-galaxy gets its server through ANSIBLE_GALAXY_SERVER_* variables, also only in the
install's environment.  Neither is written to disk, put in an argv or stored: a cached environment's key
holds the registry's URL, never who logged in.  Every line the install prints is cleaned of the secret
values (raw and URL-quoted) before it goes on as progress.
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import quote, urlsplit, urlunsplit

from ..core.runs.installs import RegistryAccess

MASK = "***"


def pip_environment(access: RegistryAccess | None) -> dict[str, str]:
    """The variables that point pip at `access` (nothing for a built-in registry: pip's own configuration)."""
    if access is None or access.built_in:
        return {}
    parts = urlsplit(access.url)
    username, password = access.username, access.password
    if access.token and not password:
        username, password = username or "__token__", access.token
    netloc = parts.netloc
    if username:
        netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{netloc}" if password else \
            f"{quote(username, safe='')}@{netloc}"
    env = {"PIP_INDEX_URL": urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
           "PIP_NO_INPUT": "1"}
    if access.insecure:
        env["PIP_TRUSTED_HOST"] = parts.hostname or ""
    return env


def galaxy_environment(access: RegistryAccess | None) -> dict[str, str]:
    """The variables that make `access` ansible-galaxy's only server (nothing for the built-in one)."""
    if access is None or access.built_in:
        return {}
    env = {"ANSIBLE_GALAXY_SERVER_LIST": "gateway", "ANSIBLE_GALAXY_SERVER_GATEWAY_URL": access.url}
    if access.token:
        env["ANSIBLE_GALAXY_SERVER_GATEWAY_TOKEN"] = access.token
    if access.username:
        env["ANSIBLE_GALAXY_SERVER_GATEWAY_USERNAME"] = access.username
    if access.password:
        env["ANSIBLE_GALAXY_SERVER_GATEWAY_PASSWORD"] = access.password
    if access.insecure:
        env["ANSIBLE_GALAXY_SERVER_GATEWAY_VALIDATE_CERTS"] = "false"
        env["ANSIBLE_GALAXY_IGNORE"] = "true"
    return env


def identity(access: RegistryAccess | None) -> str:
    """What a cached environment's key says of the registry: its URL, never its credentials."""
    if access is None or access.built_in:
        return ""
    return f"{access.url} insecure={access.insecure}"


def cleaned(progress: Callable[[str], None], *accesses: RegistryAccess | None) -> Callable[[str], None]:
    """`progress` with every secret value of the registries (and its URL-quoted form) masked."""
    values: set[str] = set()
    for access in accesses:
        if access is not None:
            for value in access.secret_values():
                values.update({value, quote(value, safe=""), quote(value)})
    values.discard("")
    if not values:
        return progress
    ordered = sorted(values, key=len, reverse=True)

    def clean(text: str) -> None:
        for value in ordered:
            text = text.replace(value, MASK)
        progress(text)

    return clean
