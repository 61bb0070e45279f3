"""gateway db export / import."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from gateway_daemon.core import Gateway, InvalidArgument

from gateway_daemon.console import dump_yaml
from .parser import UsageError
from gateway_daemon.inputfiles import MIB, InputFileError, load_yaml

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


async def import_(gateway: Gateway, args: argparse.Namespace) -> int:
    text = _read_text(args.file, "import file", IMPORT_FILE_LIMIT)
    source = "stdin" if args.file == "-" else args.file
    try:
        document = load_yaml(text, source)
    except InputFileError as exc:
        raise InvalidArgument(str(exc)) from None
    report = await gateway.import_db(document, dry_run=args.dry_run, strict=args.strict)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in report.lines(with_warnings=False):
        print(line)
    return 0
