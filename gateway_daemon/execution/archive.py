"""Unpacking the tar archive of one commit (`git archive`) into a folder, safely, on every Python >= 3.11.

Every entry is checked first: a relative path without ``..``, a regular file, a
folder or a symbolic link (no devices, fifos or hard links), and nothing
written through a link already unpacked.  Where the tar extraction filters
exist (Python 3.11.4 and later) the "tar" filter applies as well; on 3.11.0 to
3.11.3 (Debian 12 has 3.11.2) the same clean-up of modes is done here.  Links
are unpacked as links, wherever they point: the workspace refuses a run whose
tree has a link leading outside it.

Standard library only: the tests load this file on an old interpreter.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

HAS_FILTERS = hasattr(tarfile, "tar_filter")  # Python 3.11.4+, 3.12+


class UnsafeArchive(ValueError):
    """An entry of the archive that must not be unpacked; the message is one line."""


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a fifo"
    if member.islnk():
        return "a hard link"
    return f"of an unknown type ({member.type!r})"


def check_member(member: tarfile.TarInfo, root: str) -> None:
    """Refuse what must not be unpacked into the folder whose real path is `root`."""
    name = member.name
    shown = name.encode("unicode_escape").decode("ascii")
    if name.startswith("/") or os.path.isabs(name):
        raise UnsafeArchive(f"archive entry {shown}: an absolute path")
    if ".." in Path(name).parts:
        raise UnsafeArchive(f"archive entry {shown}: has .. in its path")
    if not (member.isreg() or member.isdir() or member.issym()):
        raise UnsafeArchive(f"archive entry {shown}: {_kind(member)}")
    parent = os.path.realpath(os.path.join(root, os.path.dirname(name)))
    if parent != root and not parent.startswith(root + os.sep):
        raise UnsafeArchive(f"archive entry {shown}: reached through the link out of the folder "
                            f"({os.path.dirname(name)})")
    # The entry itself must not be an existing link either: a file written onto a link writes its target.
    target = os.path.join(root, name)
    if os.path.islink(target) and not member.issym():
        raise UnsafeArchive(f"archive entry {shown}: would be written through the link of the same name")


def _clean_modes(member: tarfile.TarInfo) -> None:
    """What the "tar" filter does to modes: no setuid, setgid or sticky bit, no write for others."""
    if member.mode is not None:
        member.mode &= ~(stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWOTH)


def extract(archive: Path, into: Path, use_filters: bool | None = None) -> None:
    """Unpack `archive` into the folder `into` (made here).  UnsafeArchive for an entry that must not be
    unpacked (what was unpacked before it stays: the caller removes the folder).  `use_filters`: use the
    tar extraction filters (default: where this Python has them)."""
    filters = HAS_FILTERS if use_filters is None else use_filters
    into.mkdir()
    root = os.path.realpath(into)
    with tarfile.open(archive) as tar:
        for member in tar:
            check_member(member, root)
            if not filters:
                _clean_modes(member)
                tar.extract(member, into)
                continue
            try:
                tar.extract(member, into, filter="tar")
            except tarfile.FilterError as exc:  # what the checks above let through and the filter does not
                raise UnsafeArchive(f"archive entry {member.name!r}: {exc}") from None
