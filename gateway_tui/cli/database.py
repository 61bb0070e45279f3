"""gateway db export / import."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from gateway_daemon.console import dump_yaml
from gateway_daemon.core import Gateway, InvalidArgument
from gateway_daemon.core.transfer.documents import problems_of
from gateway_daemon.inputfiles import MIB, InputFileError, load_yaml

from .parser import REPOSITORY_FILES, UsageError
from .resources import _read_text

IMPORT_FILE_LIMIT = 32 * MIB  # what one ImportDb message to a server may carry


def _export_text(document: dict, formats: list[str]) -> str:
    """The export as -f/--format asks: YAML (default) or JSON, ours or IAG 5's layout (what IAG 5 cannot
    express is listed on stderr, one line each)."""
    if "iag5" in formats:
        from gateway_daemon.core.transfer.iag5 import to_iag5

        document, notes = to_iag5(document)
        for note in notes:
            print(f"not in the IAG 5 file: {note}", file=sys.stderr)
    if "json" in formats:
        if "yaml" in formats:
            raise UsageError("give -f yaml or -f json, not both")
        return json.dumps(document, indent=2) + "\n"
    return dump_yaml(document)


async def export(gateway: Gateway, args: argparse.Namespace) -> int:
    text = _export_text(await gateway.export_db(), getattr(args, "format", None) or [])
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
    """iagctl's `db import --repository URL FILE`: FILE as it is in that repository, fetched by the gateway (the
    server, in client mode) with its trusted ssh host keys and, for ssh, the key in --private-key-name."""
    path, text = await gateway.read_repository_file(args.repository, args.reference or "", args.file or "",
                                                    args.private_key_name or "", REPOSITORY_FILES)
    args.file = path
    return text


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
    try:
        report = await gateway.import_db(document, dry_run=dry_run, strict=args.strict)
    except InvalidArgument as exc:
        problems = problems_of(exc)
        if len(problems) > 1 and (args.check or args.validate or getattr(args, "verbose", False)):
            for problem in problems:  # every one, then the usual line
                print(f"problem: {problem}", file=sys.stderr)
            raise InvalidArgument(f"{len(problems)} problems in {source}; nothing was imported") from None
        raise
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    lines = report.lines(with_warnings=False)
    if args.validate:
        print(f"valid: {source} holds {len(lines) - 1} resources that can be imported; nothing was changed")
        return 0
    if args.check:
        lines = check_lines(lines)
    for line in lines:
        print(line)
    return 0


CHECK_STATES = {"create": "created", "unchanged": "unchanged", "update": "conflict"}


def check_lines(lines: list[str]) -> list[str]:
    """A dry run's lines as iagctl's --check states them: created, unchanged, or conflict (differs from what is
    stored; the import replaces it, as iagctl's --force does), then a count of each."""
    result = []
    counts = dict.fromkeys(CHECK_STATES.values(), 0)
    for line in lines[:-1]:
        action, _, rest = line.partition(" ")
        state = CHECK_STATES.get(action, action)
        counts[state] = counts.get(state, 0) + 1
        result.append(f"{state} {rest}" + (" (differs from what is stored; the import replaces it)"
                                           if state == "conflict" else ""))
    result.append("check (dry run): " + ", ".join(f"{count} {state}" for state, count in counts.items())
                  + "; nothing was changed")
    return result
