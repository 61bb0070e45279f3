"""Repositories on disk: one cached bare clone per repository, one clean tree per run.

Layout under ``data_dir``::

    repos/<name>-<hash of url>.git   bare clone, fetched with the git CLI
    snapshots/<commit>/              the files of one commit, extracted once (with its submodules)
    known_hosts                      the SSH host keys the gateway trusts
    git-askpass                      answers git's password prompt from its own environment

A repository over https with credentials gets its password (or token) through
``git-askpass``: git runs it with the prompt, and it answers from variables set
in that git process's environment alone, for the repository's own host only.
The secret is never in a URL, an argument, a file or git's configuration
(credential helpers are switched off for such fetches).  A commit with
submodules is checked out and ``git submodule update --init --recursive`` run
under the same credentials and protocol restrictions.

A run gets its own copy of the snapshot of its commit, so concurrent runs of
one service never see each other's files, and no run pays for a git checkout
once its commit has been seen.  A branch (or the remote's HEAD) is fetched
before every run; a pinned commit already in the clone is not fetched again.

A tree never leads outside itself: a run whose tree holds a symbolic link that
resolves outside the tree (``/etc/passwd``, the secrets key, ``/``, ``../..``)
is refused, naming the link; links that stay inside keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from ..core.errors import FailedPrecondition
from . import archive
from .git import run_git
from .hostkeys import HostKeys, ssh_host

Progress = Callable[[str], None]

# Transports git may use; ext:: and fd:: run commands and are never allowed.
ALLOWED_PROTOCOLS = "file:https:http:ssh"
FETCH_TIMEOUT = 300.0
_COMMIT_RE = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$")
FETCH_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "+HEAD:refs/gateway/HEAD")
# git runs it with its prompt ("Username for 'https://host': ", "Password for 'https://user@host': "); it answers
# from its environment, only for the repository's own scheme://host[:port], with shell builtins only (no argv).
ASKPASS_SCRIPT = """#!/bin/sh
url=${1#*\\'}
url=${url%\\'*}
scheme=${url%%://*}
host=${url#*://}
host=${host##*@}
host=${host%%/*}
[ "$scheme://$host" = "$GATEWAY_GIT_ORIGIN" ] || exit 1
case "$1" in
Username*) printf '%s\\n' "$GATEWAY_GIT_USERNAME" ;;
Password*) printf '%s\\n' "$GATEWAY_GIT_PASSWORD" ;;
*) exit 1 ;;
esac
"""
NO_CREDENTIAL_HELPER = ("-c", "credential.helper=")  # git neither asks nor tells a stored helper anything


class GitFailed(Exception):
    def __init__(self, stderr: str):
        super().__init__(stderr)
        self.stderr = stderr

    def last_line(self) -> str:
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        meaningful = [line for line in lines if line.lower().startswith(("fatal", "error"))]
        text = (meaningful or lines or ["git failed"])[-1]
        return text.removeprefix("fatal: ").removeprefix("error: ")


def _flock(path: Path) -> int:
    """A blocking exclusive lock on `path` (called in a thread); returns the fd to close."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@contextlib.asynccontextmanager
async def file_lock(path: Path, local: asyncio.Lock):
    """Exclusive across tasks (the asyncio lock) and processes (flock on the file)."""
    async with local:
        fd = await asyncio.to_thread(_flock, path)
        try:
            yield
        finally:
            os.close(fd)


class Workspace:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.clones = self.data_dir / "repos"
        self.snapshots = self.data_dir / "snapshots"
        self.host_keys = HostKeys(self.data_dir)
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def clone_dir(self, repository) -> Path:
        digest = hashlib.sha256(repository.url.encode()).hexdigest()[:12]
        return self.clones / f"{repository.name}-{digest}.git"

    # ------------------------------------------------------------ public
    async def prepare(self, repository, tree: Path, progress: Progress, key: str = "", password: str = "") -> str:
        """Put the files of the repository's reference into `tree` (new); return the commit.
        `key`: the repository's ssh private key; `password`: its https password or token (secrets opened by
        the core)."""
        commit = await self.resolve(repository, progress, key, password)
        snapshot = await self._snapshot(repository, commit, progress, key, password)
        await asyncio.to_thread(shutil.copytree, snapshot, tree, symlinks=True)  # links copied as links
        leading_out = await asyncio.to_thread(link_leading_out, tree)
        if leading_out:
            link, target = leading_out
            raise FailedPrecondition(
                f"repository {repository.name}: link {link} leads outside the repository (to {target}); "
                "links must stay inside the checked-out tree")
        return commit

    async def resolve(self, repository, progress: Progress, key: str = "", password: str = "") -> str:
        """Fetch as needed and return the full commit id the repository's reference names now."""
        reference = repository.reference
        if _COMMIT_RE.match(reference or "") and (self.snapshots / reference.lower()).is_dir():
            return reference.lower()  # a pinned commit already extracted: no git at all
        clone = self.clone_dir(repository)
        async with file_lock(clone.with_suffix(".lock"), self._lock(str(clone))):
            fresh = not (clone / "HEAD").is_file()
            if fresh:
                progress(f"cloning repository {repository.name} from {repository.url}")
                await self._init(clone, repository)
            if not fresh and _COMMIT_RE.match(reference or ""):
                commit = await self._rev_parse(clone, reference)
                if commit:
                    return commit  # a pinned commit we already have: no network at all
            await self._fetch(clone, repository, key, password)
            commit = await self._reference_commit(clone, reference)
            if not commit:
                what = f"reference {reference!r}" if reference else "a default branch (HEAD)"
                raise FailedPrecondition(f"repository {repository.name}: {what} not found in {repository.url}")
            return commit

    # ------------------------------------------------------------ git
    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS,
            GIT_TERMINAL_PROMPT="0",
            GIT_ASKPASS="/bin/false" if os.path.exists("/bin/false") else "false",
            GIT_CONFIG_NOSYSTEM="1",
            LC_ALL="C",
        )
        env.pop("GIT_SSH", None)
        env.pop("GIT_DIR", None)
        env.update(extra or {})
        return env

    async def _git(self, clone: Path, *args: str, env: dict[str, str] | None = None,
                   timeout: float = FETCH_TIMEOUT, where: str = "--git-dir") -> str:
        """git on a clone (`where` --git-dir), or in a work tree (`where` -C)."""
        code, out, err = await run_git([where, str(clone), *args], env or self._env(), timeout)
        if code is None:
            raise GitFailed(f"fatal: git {args[0]} took longer than {timeout:.0f} s")
        if code != 0:
            raise GitFailed(err)
        return out.strip()

    async def _init(self, clone: Path, repository) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=".init-", dir=self.clones))
        try:
            await self._git(tmp, "init", "--bare", "--quiet")
            await self._git(tmp, "config", "remote.origin.url", repository.url)
            os.replace(tmp, clone)  # under the clone's lock: nobody else makes it meanwhile
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def _fetch(self, clone: Path, repository, key: str, password: str = "") -> None:
        env, key_file = self._ssh_env(repository, key)
        options = self._credentials(repository, password, env)
        try:
            await self._git(clone, *options, "fetch", "--quiet", "--prune", "--no-tags", "--", repository.url,
                            *FETCH_REFSPECS, env=env)
        except GitFailed as failed:
            raise self._fetch_error(repository, failed) from None
        finally:
            if key_file is not None:
                with contextlib.suppress(FileNotFoundError):
                    key_file.unlink()

    def _fetch_error(self, repository, failed: GitFailed) -> FailedPrecondition:
        text = failed.stderr
        host = ssh_host(repository.url)
        if host and ("Host key verification failed" in text or "host key is known" in text.lower()
                     or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text):
            name, port = host
            add = f"gateway hostkeys add {name}" + (f" --port {port}" if port != 22 else "")
            if "HAS CHANGED" in text:
                return FailedPrecondition(
                    f"repository {repository.name}: the ssh host key of {name} has CHANGED since it was trusted; "
                    f"if that is expected, run: gateway hostkeys delete {name} && {add}")
            return FailedPrecondition(
                f"repository {repository.name}: the ssh host key of {name} is not trusted yet; "
                f"check its fingerprint, then run: {add}")
        return FailedPrecondition(f"repository {repository.name}: cannot fetch {repository.url}: {failed.last_line()}")

    def _ssh_env(self, repository, key: str) -> tuple[dict[str, str], Path | None]:
        """For ssh URLs: strict host keys from our known_hosts, and the private key in a 0600 file."""
        if ssh_host(repository.url) is None:
            return self._env(), None
        self.host_keys.path.parent.mkdir(parents=True, exist_ok=True)
        self.host_keys.path.touch(exist_ok=True)
        options = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                   "-o", f"UserKnownHostsFile={self.host_keys.path}", "-o", "GlobalKnownHostsFile=/dev/null",
                   "-o", "ConnectTimeout=20", "-F", "/dev/null"]
        key_file = None
        if key:
            keys = self.data_dir / "tmp"
            keys.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, name = tempfile.mkstemp(prefix="key-", dir=keys)  # mkstemp makes it 0600
            with os.fdopen(fd, "w") as handle:
                handle.write(key if key.endswith("\n") else key + "\n")
            key_file = Path(name)
            options += ["-o", "IdentitiesOnly=yes", "-i", str(key_file)]
        return self._env({"GIT_SSH_COMMAND": shlex.join(options)}), key_file

    def _credentials(self, repository, password: str, env: dict[str, str]) -> tuple[str, ...]:
        """For https with credentials: the askpass and its variables into `env` (the git process's own), and
        the options that keep credential helpers out."""
        username = getattr(repository, "git_username", "")
        if not (password or username) or ssh_host(repository.url) is not None:
            return ()
        parts = urlsplit(repository.url)
        host = parts.netloc.rpartition("@")[2]
        env.update(GIT_ASKPASS=str(self._askpass()), GATEWAY_GIT_ORIGIN=f"{parts.scheme.lower()}://{host}",
                   GATEWAY_GIT_USERNAME=username, GATEWAY_GIT_PASSWORD=password)
        return NO_CREDENTIAL_HELPER

    def _askpass(self) -> Path:
        path = self.data_dir / "git-askpass"
        if not path.is_file() or path.read_text() != ASKPASS_SCRIPT:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".askpass-", dir=self.data_dir)
            with os.fdopen(fd, "w") as handle:
                handle.write(ASKPASS_SCRIPT)
            os.chmod(name, 0o700)
            os.replace(name, path)
        return path

    async def _rev_parse(self, clone: Path, name: str) -> str:
        try:
            return await self._git(clone, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
        except GitFailed:
            return ""

    async def _reference_commit(self, clone: Path, reference: str) -> str:
        if not reference:
            return await self._rev_parse(clone, "refs/gateway/HEAD")
        for candidate in (f"refs/heads/{reference}", f"refs/tags/{reference}", reference):
            commit = await self._rev_parse(clone, candidate)
            if commit:
                return commit
        return ""

    # ------------------------------------------------------------ snapshots
    async def _snapshot(self, repository, commit: str, progress: Progress, key: str = "",
                        password: str = "") -> Path:
        target = self.snapshots / commit
        if target.is_dir():
            return target
        self.snapshots.mkdir(parents=True, exist_ok=True)
        clone = self.clone_dir(repository)
        async with file_lock(self.snapshots / f"{commit}.lock", self._lock(commit)):
            if target.is_dir():
                return target
            work = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=self.snapshots))
            try:
                tar = work / "tree.tar"
                await self._git(clone, "archive", "--format=tar", "-o", str(tar), commit)
                files = work / "files"
                try:
                    await asyncio.to_thread(archive.extract, tar, files)
                except archive.UnsafeArchive as exc:
                    raise FailedPrecondition(f"repository {repository.name}: commit {commit[:12]}: {exc}") from None
                if (files / ".gitmodules").is_file():
                    progress(f"fetching the submodules of repository {repository.name}")
                    files = await self._with_submodules(repository, commit, work, key, password)
                os.replace(files, target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return target


    async def _with_submodules(self, repository, commit: str, work: Path, key: str, password: str) -> Path:
        """The commit checked out with its submodules (recursively), without git's own files."""
        clone = self.clone_dir(repository)
        checkout = work / "checkout"
        await self._git(work, "clone", "--quiet", "--no-checkout", "--shared", "--", str(clone), str(checkout),
                        where="-C")
        await self._git(checkout, "config", "remote.origin.url", repository.url, where="-C")  # relative URLs
        await self._git(checkout, "checkout", "--quiet", "--detach", commit, where="-C")
        env, key_file = self._ssh_env(repository, key)
        options = self._credentials(repository, password, env)
        try:
            await self._git(checkout, *options, "submodule", "update", "--init", "--recursive", "--quiet",
                            env=env, where="-C")
        except GitFailed as failed:
            raise FailedPrecondition(f"repository {repository.name}: cannot fetch the submodules of commit "
                                     f"{commit[:12]}: {failed.last_line()}") from None
        finally:
            if key_file is not None:
                with contextlib.suppress(FileNotFoundError):
                    key_file.unlink()
        await asyncio.to_thread(_drop_git_files, checkout)
        return checkout


def _drop_git_files(tree: Path) -> None:
    """A snapshot holds the files alone: every .git (the clone's folder, a submodule's gitfile) goes."""
    for folder, dirs, files in os.walk(tree):
        if ".git" in dirs:
            dirs.remove(".git")
            shutil.rmtree(Path(folder) / ".git")
        if ".git" in files:
            (Path(folder) / ".git").unlink()


def link_leading_out(tree: Path) -> tuple[str, str] | None:
    """The first symbolic link (in name order) whose target, followed all the way, is outside `tree`:
    (its path in the tree, where it leads); None when every link stays inside."""
    root = os.path.realpath(tree)
    for folder, dirs, files in os.walk(tree):  # links to folders are listed in dirs, and not entered
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            resolved = os.path.realpath(path)
            if resolved != root and not resolved.startswith(root + os.sep):
                return _printable(os.path.relpath(path, tree)), _printable(os.readlink(path))
    return None


def _printable(name: str) -> str:
    """A file name on one line: newlines and other control characters escaped."""
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


class ScratchReader:
    """core.resources.repositories.RepositoryFiles: a repository checked as it is created (execution.
    repository_check), and one file of a repository read from a clone made for the read alone and removed after
    it.  A path that leaves the repository's tree (a symlink to the gateway host's files, say) is not a file in
    it."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    async def check(self, repository) -> str:
        from .repository_check import check_repository

        return await check_repository(repository)

    async def read(self, repository, candidates: tuple[str, ...], key: str, limit: int) -> tuple[str, str] | None:
        from ..inputfiles import InputFileError, read_text
        from ..core.errors import InvalidArgument

        with tempfile.TemporaryDirectory(prefix="gateway-import-") as scratch:
            workspace = Workspace(Path(scratch))
            workspace.host_keys.path = self.data_dir / "known_hosts"  # the gateway's trusted host keys
            tree = Path(scratch) / "tree"
            await workspace.prepare(repository, tree, lambda _line: None, key)
            root = tree.resolve()
            for name in candidates:
                path = tree / name
                try:
                    inside = path.resolve().is_relative_to(root) and not path.is_symlink()
                except (OSError, RuntimeError):
                    inside = False
                if not inside or not path.is_file():
                    continue
                try:
                    return name, await asyncio.to_thread(read_text, str(path), limit, "import file")
                except InputFileError as exc:
                    raise InvalidArgument(str(exc).replace(str(path), f"{repository.url}:{name}")) from None
        return None
