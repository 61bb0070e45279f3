"""gateway completion bash|zsh|fish (generated from the grammar by shtab) and gateway version."""

from __future__ import annotations

import platform
from importlib import metadata

from .parser import KINDS_TO_COMPLETE, build_parser

DISTRIBUTION = "automation-gateway"
# Kinds from the list; names from `gateway get KIND` (the kind is the word before; the first column of its
# table, under the header), asked when TAB is pressed, with the user's own configuration.
BASH_PREAMBLE = f"""
_gateway_kinds() {{
  compgen -W "{' '.join(KINDS_TO_COMPLETE)}" -- "$1"
}}
_gateway_names() {{
  local kind="${{COMP_WORDS[COMP_CWORD-1]}}"
  case "$kind" in ""|-*) return 0 ;; esac
  compgen -W "$(gateway get "$kind" 2>/dev/null | awk 'NR > 1 && $1 != "(none)" {{ print $1 }}')" -- "$1"
}}
"""


def completion_script(shell: str) -> str:
    import shtab  # only this verb needs it

    script = shtab.complete(build_parser(), shell=shell, preamble={"bash": BASH_PREAMBLE})
    return script if script.endswith("\n") else script + "\n"


def version_line() -> str:
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "unknown"
    return f"gateway {version} ({DISTRIBUTION}, Python {platform.python_version()})"
