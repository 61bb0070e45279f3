"""`gateway get KIND` in local mode, answered by a plain synchronous read of the local store.

Listing what is stored needs neither the engine nor its executor, asyncio or the schema checker: this reads
the SQLite file and prints the same table the full command prints (cli/tables.py).  It answers only the plain
case it is sure of: local mode and the local store, the data dir and database already there and private, table
output, a kind whose table it can fill from the stored records.  Anything else (another flag, a record without
a field the table shows, a store that cannot be read now, a configuration with a problem) returns None, and
the full command answers, with its notes and errors, exactly as before.
"""

from __future__ import annotations

import json
import os
import sys

# The kinds read here: their words on the command line, their folder in the store, the fields their table shows.
# Registries are not: the built-in ones are listed beside the stored ones, by the engine.
_FOLDERS = {"repository": "repositories", "decorator": "decorators", "service": "services", "secret": "secrets",
            "executable-object": "executable-objects"}
_TABLE_FIELDS = {
    "repository": ("name", "url", "reference", "tags", "description"),
    "decorator": ("name", "schema", "description"),
    "service": ("name", "type", "repository", "decorator", "tags", "description"),
    "secret": ("name", "tags", "description", "updated_at"),
    "executable-object": ("name", "exec_command", "arg_format", "description"),
}


class _Row:
    """The fields of one stored record a table row shows, as attributes (cli/tables.py reads them so)."""

    def __init__(self, fields: dict):
        self.__dict__.update(fields)


def _plain_get(argv: list[str]) -> tuple[str, list[str]] | None:
    """(the kind, the tags asked for) when argv is `get KIND [-o table] [--tag T]...`; None otherwise."""
    if len(argv) < 2 or argv[0] != "get":
        return None
    from .tables import KIND_WORDS

    kind = KIND_WORDS.get(argv[1])
    if kind not in _FOLDERS:
        return None
    tags: list[str] = []
    rest = argv[2:]
    while rest:
        flag = rest[0]
        if flag in ("-o", "--output") and len(rest) > 1 and rest[1] == "table":
            rest = rest[2:]
        elif flag == "--output=table":
            rest = rest[1:]
        elif flag == "--tag" and len(rest) > 1 and rest[1] and not rest[1].startswith("-"):
            tags.append(rest[1])
            rest = rest[2:]
        else:
            return None
    return kind, tags


def _private(path: str) -> bool:
    """`path` is there, ours, and closed to others (else the full command makes or tightens it, and says so)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size > 0 and not st.st_mode & 0o077 and st.st_uid == os.getuid()


def answer(argv: list[str]) -> int | None:
    """Print `gateway get KIND` read straight from the local store and return 0; None: the full command answers."""
    plain = _plain_get(argv)
    if plain is None:
        return None
    kind, tags = plain
    from gateway_daemon.config import ConfigError, load_config

    try:
        config = load_config(None)
    except (ConfigError, OSError):
        return None  # the full command says what is wrong
    if (config.mode != "local" or config.get("store", "backend") != "local"
            or (config.get("log", "file_enabled") and config.get("log", "level") != "DISABLED")):
        return None
    data_dir = config.data_dir
    database = str(data_dir / "gateway.db")
    if not (os.path.isdir(data_dir) and _private(str(data_dir)) and _private(database)):
        return None
    rows = _read(database, f"/gateway/{config.cluster_id}/{_FOLDERS[kind]}/", _TABLE_FIELDS[kind])
    if rows is None:
        return None
    if tags:
        wanted = set(tags)
        rows = [row for row in rows if wanted <= set(getattr(row, "tags", None) or [])]
    from .tables import table

    sys.stdout.write(table(kind, rows).render())
    return 0


def _read(database: str, prefix: str, fields: tuple[str, ...]) -> list[_Row] | None:
    """The records under `prefix`, in key order (as the store lists them), each with `fields`; None when the
    database cannot be read now or a record lacks one of the fields."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    try:
        found = conn.execute("SELECT value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                             (prefix, prefix + "\U0010ffff")).fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    rows = []
    for (value,) in found:
        try:
            record = json.loads(value)
        except ValueError:
            return None
        if not isinstance(record, dict) or any(name not in record for name in fields):
            return None
        rows.append(_Row({name: record[name] for name in fields}))
    return rows
