"""Files people name on a command line or in a config: read with a size bound, and YAML without alias bombs.

`read_text` reads at most `limit` bytes and refuses a bigger file (or /dev/zero, or a pipe that never ends)
with one line naming the file and the limit, instead of reading it whole into memory.  `digest_file` hashes a
file in small reads, with the same bound.

`load_yaml` is yaml.safe_load with two bounds: anchors and aliases may add at most MAX_ALIASED nodes to the
document once expanded (a 700-byte "billion laughs" file otherwise expands to gigabytes as soon as anything
walks it), and a document nested too deep for the parser's stack is refused, not a traceback.
"""

from __future__ import annotations

import os
import sys
TYPE_CHECKING = False  # typing stays unloaded at run time: every `gateway` command loads this module
if TYPE_CHECKING:
    from typing import Any, Protocol

KIB = 1024
MIB = 1024 * KIB
MAX_ALIASED = 100_000  # nodes that aliases may add to a YAML document, expanded
DIGEST_READ = 64 * KIB  # one read of a file being hashed


class InputFileError(ValueError):
    """A file that cannot be taken as it is; str() is one line naming it."""


def size_text(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB and limit % MIB == 0 else f"{limit // KIB} KiB"


def read_bytes(path: str, limit: int, what: str) -> bytes:
    """At most `limit` bytes of `path` ("-": standard input); a longer file raises InputFileError.
    OSError (missing, unreadable) is left to the caller, which knows how to phrase it."""
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
        name = "standard input"
    else:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
        name = path
    if len(data) > limit:
        raise InputFileError(f"{what} {name} is larger than {size_text(limit)}, the most that is read")
    return data


if TYPE_CHECKING:
    class Digest(Protocol):
        def update(self, data: bytes, /) -> None: ...


def digest_file(path: str | os.PathLike, limit: int, what: str, digest: Digest, name: str = "") -> None:
    """Feed `path` to `digest` DIGEST_READ bytes at a time; a file longer than `limit` raises InputFileError
    (named `name`, default its path) before more than `limit` bytes are read.  OSError is the caller's."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        seen = 0
        while size <= limit and (chunk := handle.read(min(DIGEST_READ, limit + 1 - seen))):
            seen += len(chunk)
            if seen > limit:
                break
            digest.update(chunk)
        if size > limit or seen > limit:
            raise InputFileError(f"{what} {name or path} is larger than {size_text(limit)}, the most that is read")


def read_text(path: str, limit: int, what: str) -> str:
    """read_bytes as UTF-8 text; text that is not UTF-8 raises InputFileError."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {'standard input' if path == '-' else path} is not UTF-8 text") from None


def _loader(limit: int):
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that counts what aliases add once expanded, and refuses past `limit`."""

        def __init__(self, stream):
            super().__init__(stream)
            self._sizes: dict[int, int] = {}
            self._active: set[int] = set()
            self._done: set[int] = set()
            self._aliased = 0

        def compose_node(self, parent, index):
            alias = self.check_event(yaml.AliasEvent)
            mark = self.peek_event().start_mark if alias else None
            node = super().compose_node(parent, index)
            if not alias:
                self._done.add(id(node))
                return node
            if id(node) not in self._done:  # an alias inside the node it names: a structure without end
                raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it", mark)
            if alias:
                self._aliased += self._size(node, mark)
                if self._aliased > limit:
                    raise yaml.composer.ComposerError(None, None, f"aliases expand to more than {limit} values",
                                                      mark)
            return node

        def _size(self, node, mark) -> int:
            """Nodes in `node` with every alias expanded; a node that contains itself is refused."""
            known = self._sizes.get(id(node))
            if known is not None:
                return known
            if id(node) in self._active:
                raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it", mark)
            self._active.add(id(node))
            try:
                if isinstance(node, yaml.SequenceNode):
                    size = 1 + sum(self._size(child, mark) for child in node.value)
                elif isinstance(node, yaml.MappingNode):
                    size = 1 + sum(self._size(k, mark) + self._size(v, mark) for k, v in node.value)
                else:
                    size = 1
                if size > limit:
                    raise yaml.composer.ComposerError(None, None, f"aliases expand to more than {limit} values",
                                                      mark)
            finally:
                self._active.discard(id(node))
            self._sizes[id(node)] = size
            return size

    return BoundedLoader


def load_yaml(text: str, source: str, limit: int = MAX_ALIASED) -> Any:
    """yaml.safe_load(text), bounded; a problem raises InputFileError naming `source`, the line and column."""
    import yaml

    loader = None
    try:
        loader = _loader(limit)(text)  # the reader refuses characters YAML does not allow at once
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputFileError(f"{source}:{where} not valid YAML: {problem}") from None
    except RecursionError:
        raise InputFileError(f"{source}: YAML nested too deep to read") from None
    finally:
        if loader is not None:
            loader.dispose()
