"""gateway completion bash|zsh|fish (generated from the grammar by shtab) and gateway version."""

from __future__ import annotations

import platform
from importlib import metadata

from .parser import build_parser

DISTRIBUTION = "automation-gateway"


def completion_script(shell: str) -> str:
    import shtab  # only this verb needs it

    script = shtab.complete(build_parser(), shell=shell)
    return script if script.endswith("\n") else script + "\n"


def version_line() -> str:
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "unknown"
    return f"gateway {version} ({DISTRIBUTION}, Python {platform.python_version()})"
