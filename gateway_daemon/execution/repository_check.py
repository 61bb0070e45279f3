"""A repository checked when it is created, with git's own reason kept: a local path or file:// URL at once
(refused when git cannot read it, or it lacks the reference); a remote one without credentials with a short
`git ls-remote` (a warning when that fails: the network may be away, so it is not refused)."""

from __future__ import annotations

import os
import re

from ..core.resources.base import field_error
from ..core.resources.repositories import Repository, url_kind
from .git import run_git

LOCAL_CHECK_SECONDS = 15.0
REMOTE_CHECK_SECONDS = 5.0
_COMMIT_LIKE_RE = re.compile(r"^[0-9a-fA-F]{7,64}$")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_ALLOW_PROTOCOL="file:https:http", GIT_TERMINAL_PROMPT="0",
               GIT_ASKPASS="/bin/false" if os.path.exists("/bin/false") else "false", GIT_CONFIG_NOSYSTEM="1",
               LC_ALL="C")
    for name in ("GIT_DIR", "GIT_SSH", "GIT_SSH_COMMAND"):
        env.pop(name, None)
    return env


def git_reason(stderr: str) -> str:
    """git's own words, in one line: its first `fatal:`/`error:` line (else its first line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix):]
    return lines[0] if lines else "git gave no reason"


async def ls_remote(url: str, timeout: float) -> tuple[bool, str]:
    """(whether `git ls-remote` read `url`, its refs or git's reason)."""
    code, out, err = await run_git(["ls-remote", "--", url], _env(), timeout)
    if code is None:
        return False, f"no answer within {timeout:.0f} s"
    if code != 0:
        return False, git_reason(err)
    return True, out


def _has_reference(refs: str, reference: str) -> bool:
    names = {line.split("\t", 1)[1].strip() for line in refs.splitlines() if "\t" in line}
    return any(name in (reference, f"refs/heads/{reference}", f"refs/tags/{reference}", f"refs/{reference}")
               for name in names)


async def check_repository(repository: Repository) -> str:
    """Raises InvalidArgument (field url or reference) for a local repository git cannot read or that lacks
    its reference; returns a warning ('' for none) for a remote one that did not answer."""
    kind = url_kind(repository.url)
    if kind == "local":
        read, said = await ls_remote(repository.url, LOCAL_CHECK_SECONDS)
        if not read:
            raise field_error("url", f"repository {repository.name}: git cannot read {repository.url}: {said}")
        reference = repository.reference
        if reference and not _COMMIT_LIKE_RE.match(reference) and not _has_reference(said, reference):
            raise field_error("reference", f"repository {repository.name}: {repository.url} has no branch or tag "
                                           f"{reference!r}")
        return ""
    if kind != "https" or repository.password_name or repository.token_name:
        return ""  # ssh, or credentials held in secrets: the first run checks it
    read, said = await ls_remote(repository.url, REMOTE_CHECK_SECONDS)
    if read:
        return ""
    return (f"repository {repository.name} created, but its url was not checked: git ls-remote "
            f"{repository.url} said: {said}")
