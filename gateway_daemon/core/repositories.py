"""Repositories: where the automations live (git over https, ssh, or a local path)."""

from __future__ import annotations

import dataclasses
import re

from .resources import Resource, check_name, check_tags, check_text, field_error, now

# Git transports that run a command given in the URL. Never allowed.
_COMMAND_TRANSPORT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^/].*|^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:/.*")
_REF_FORBIDDEN_RE = re.compile(r"[\x00-\x20~^:?*\[\\\x7f]|\.\.|@\{|//")


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

    def references(self) -> list[tuple[str, str]]:
        return [("secret", self.private_key_name)] if self.private_key_name else []
