"""Repositories: where the automations live (git over https, ssh, or a local path)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import InvalidArgument
from .base import Resource, check_name, check_tags, check_text, field_error, now

# Git transports that run a command given in the URL. Never allowed.
_COMMAND_TRANSPORT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^/].*|^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:/.*")
_REF_FORBIDDEN_RE = re.compile(r"[\x00-\x20~^:?*\[\\\x7f]|\.\.|@\{|//")
_USERNAME_RE = re.compile(r"[^\x00-\x20\x7f:/@]{1,128}")
_URL_PASSWORD_RE = re.compile(r"^[A-Za-z]+://[^/@]*:[^/@]*@")  # https://user:password@host
TOKEN_USERNAME = "x-access-token"  # the user name sent with a token when no --username is given


def url_kind(url: str) -> str:
    """'https', 'ssh' or 'local'. Raises InvalidArgument (field url) for anything else."""
    if not url or url != url.strip() or any(ch in url for ch in "\x00\n\r"):
        raise field_error("url", f"repository url {url!r} is empty or has spaces or control characters")
    if url.startswith("-"):
        raise field_error("url", f"repository url {url!r} may not start with '-'")
    if _COMMAND_TRANSPORT_RE.match(url):
        raise field_error(
            "url",
            f"repository url {url!r} uses a git transport that runs commands ({url.split('::')[0]}::); "
            "use https, ssh, file:// or a local path"
        )
    lower = url.lower()
    if lower.startswith(("https://", "http://")):
        return "https"
    if lower.startswith(("ssh://", "git+ssh://")) or _SCP_LIKE_RE.match(url):
        return "ssh"
    if lower.startswith("file://") or url.startswith("/"):
        return "local"
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise field_error(
            "url",
            f"repository url {url!r}: the {scheme}:// scheme is not supported; use https://, ssh:// "
            "(or user@host:path), file:// or an absolute local path"
        )
    raise field_error(
        "url",
        f"repository url {url!r} is not an https, ssh or local URL: use https://…, ssh://… (or user@host:path), "
        "file:///path/to/repo or an absolute local path /path/to/repo"
    )


CREDENTIAL_FIELDS = ("private_key_name", "password_name", "token_name")  # secrets a repository's host is sent
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22}


def credential_origin(url: str) -> tuple[str, str, int]:
    """Where a repository's credentials go: (scheme, host, port), as git's credential helpers match them.  A
    local path has no host; a URL that cannot be read is an origin of its own (it matches none)."""
    try:
        kind = url_kind(url)
    except InvalidArgument:
        return ("invalid", url, 0)
    if kind == "local":
        return ("local", "", 0)
    lower = url.lower()
    if "://" not in url:  # user@host:path
        host = url.split("@", 1)[1].split(":", 1)[0]
        return ("ssh", host.strip("[]").lower(), 22)
    if lower.startswith("git+ssh://"):
        url = url[4:]
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return (scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0))
    except ValueError:  # a port that is not a number
        return ("invalid", url, 0)


def drop_moved_credentials(resource: Any, old_url: str, kept: set[str]) -> list[str]:
    """A repository (or a registry) moved to another scheme, host or port keeps no credential that was not given
    again with the move (`kept`: the fields the change sets): its secrets are never sent to the new host until
    someone sets them again.  Returns the secret names dropped."""
    if credential_origin(old_url) == credential_origin(resource.url):
        return []
    dropped = []
    for field in CREDENTIAL_FIELDS:
        if field not in kept and getattr(resource, field, ""):
            dropped.append(getattr(resource, field))
            setattr(resource, field, "")
    return dropped


def check_reference(reference: str) -> None:
    if not reference:
        return
    if reference.startswith("-") or reference.endswith((".", "/", ".lock")) or _REF_FORBIDDEN_RE.search(reference):
        raise field_error("reference", f"repository reference {reference!r} is not a valid branch, tag or commit name")
    if len(reference) > 255:
        raise field_error("reference", "repository reference is longer than 255 characters")


@dataclasses.dataclass
class Repository(Resource):
    KIND = "repository"
    PLURAL = "repositories"

    url: str = ""
    reference: str = ""  # branch, tag or commit; empty: the remote's HEAD
    private_key_name: str = ""  # a secret holding an ssh private key
    # https: the user git logs in as, and the secret holding their password or an access token (one of the two)
    username: str = ""
    password_name: str = ""
    token_name: str = ""
    description: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)

    def validate(self) -> None:
        super().validate()
        kind = url_kind(self.url)
        check_reference(self.reference)
        if self.private_key_name:
            check_name("repository", self.private_key_name, "private-key-name")
            if kind != "ssh":
                raise field_error(
                    "private_key_name",
                    f"repository {self.name}: a private key is used only with ssh URLs, and {self.url!r} is {kind}"
                )
        check_text("repository", "description", self.description)
        check_tags("repository", self.tags)
        self._validate_credentials(kind)

    def _validate_credentials(self, kind: str) -> None:
        for flag, field in (("password-name", "password_name"), ("token-name", "token_name")):
            value = getattr(self, field)
            if value:
                check_name("repository", value, flag, key=field)
                if kind != "https":
                    raise field_error(field, f"repository {self.name}: --{flag} is used only with https URLs, "
                                             f"and {self.url!r} is {kind}")
        if self.password_name and self.token_name:
            raise field_error("token_name", f"repository {self.name}: give --password-name or --token-name, not both")
        if self.username:
            if kind != "https":
                raise field_error("username", f"repository {self.name}: --username is used only with https URLs, "
                                              f"and {self.url!r} is {kind}")
            if not _USERNAME_RE.fullmatch(self.username):
                raise field_error("username", f"repository {self.name}: username {self.username!r} is not valid "
                                              "(1-128 characters, no spaces, ':', '/' or control characters)")
        if self.password_name and not self.username:
            raise field_error("username", f"repository {self.name}: --password-name needs --username")
        if kind == "https" and _URL_PASSWORD_RE.match(self.url):
            raise field_error("url", f"repository {self.name}: the URL carries a password; give it as a secret "
                                     "with --username and --password-name (or --token-name) instead")

    @property
    def git_username(self) -> str:
        """Who git logs in as over https: the username, else (a token alone) the name token hosts accept."""
        return self.username or (TOKEN_USERNAME if self.token_name else "")

    @property
    def credential_name(self) -> str:
        """The secret git answers the password prompt with, if any."""
        return self.password_name or self.token_name

    def references(self) -> list[tuple[str, str]]:
        return [("secret", name) for name in (self.private_key_name, self.password_name, self.token_name) if name]


class RepositoryFiles(Protocol):
    """What the engine asks of git outside a run (execution/ implements it): a repository checked as it is
    created, and one file of a repository read for an import."""

    async def check(self, repository: Repository) -> str:
        """Raises InvalidArgument (field url or reference, git's own reason kept) for a local repository git cannot
        read or that lacks its reference; returns a warning ('' for none) for a remote one that did not answer."""
        ...

    async def read(self, repository: Repository, candidates: tuple[str, ...], key: str,
                   limit: int) -> tuple[str, str] | None:
        """The first of `candidates` (paths inside the repository) that is a file at its reference, as (its path,
        its text); None when none is.  `key` is the ssh private key, opened by the caller."""
        ...
