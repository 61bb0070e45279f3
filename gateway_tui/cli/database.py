"""gateway db export / import."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from gateway_daemon.console import dump_yaml
from gateway_daemon.core import Gateway, InvalidArgument
from gateway_daemon.inputfiles import MIB, InputFileError, load_yaml

from .parser import UsageError
from .resources import _read_text

IMPORT_FILE_LIMIT = 32 * MIB  # what one ImportDb message to a server may carry


async def export(gateway: Gateway, args: argparse.Namespace) -> int:
    text = dump_yaml(await gateway.export_db())
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    # Write beside the target, then rename: a failed export never leaves half a file.
    directory = os.path.dirname(os.path.abspath(args.output))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gateway-export-")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, args.output)
    except OSError as exc:
        os.unlink(tmp)
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"exported to {args.output}", file=sys.stderr)
    return 0


async def _from_repository(gateway: Gateway, args: argparse.Namespace) -> str:
    """iagctl's `db import --repository URL FILE`: FILE as it is in that repository (fetched here, with this
    gateway's trusted ssh host keys and, for ssh, the key in --private-key-name)."""
    from pathlib import Path

    from gateway_daemon.config import load_config
    from gateway_daemon.core import Repository
    from gateway_daemon.execution.workspace import Workspace

    path = Path(args.file)
    if args.file == "-" or path.is_absolute() or ".." in path.parts:
        raise UsageError(f"with --repository, FILE is a path inside the repository: {args.file!r} is not")
    repository = Repository(name="import", url=args.repository, reference=args.reference or "")
    repository.validate()
    key = await gateway.reveal_secret(args.private_key_name) if args.private_key_name else ""
    data_dir = load_config(getattr(args, "config", None)).data_dir
    with tempfile.TemporaryDirectory(prefix="gateway-import-") as scratch:
        # A workspace of its own: the clone goes away with the import; trusted host keys are the gateway's.
        workspace = Workspace(Path(scratch))
        workspace.host_keys.path = Path(data_dir) / "known_hosts"
        tree = Path(scratch) / "tree"
        await workspace.prepare(repository, tree, lambda _line: None, key)
        if not (tree / path).is_file():
            raise InvalidArgument(f"{args.file} is not a file in {args.repository}")
        return _read_text(str(tree / path), "import file", IMPORT_FILE_LIMIT)


async def import_(gateway: Gateway, args: argparse.Namespace) -> int:
    if args.repository:
        text = await _from_repository(gateway, args)
        source = f"{args.repository}:{args.file}"
    else:
        text = _read_text(args.file, "import file", IMPORT_FILE_LIMIT)
        source = "stdin" if args.file == "-" else args.file
    try:
        document = load_yaml(text, source)
    except InputFileError as exc:
        raise InvalidArgument(str(exc)) from None
    dry_run = args.dry_run or args.check or args.validate
    report = await gateway.import_db(document, dry_run=dry_run, strict=args.strict)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.validate:
        print(f"valid: {source} holds {len(report.changes)} resources that can be imported; nothing was changed")
        return 0
    for line in report.lines(with_warnings=False):
        print(line)
    return 0
