"""opentofu-plan services on this machine: their command lines, and their state in the run's tree.

The state a run starts from is written as ``terraform.tfstate`` in the
service's working dir before tofu runs (the local backend's file), and the
file is read back after: the core stores it (core.tofu_state).  A plan whose
backend keeps the state elsewhere (``--backend-config``, a remote backend)
leaves no such file, and the gateway keeps nothing for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from ..core.errors import FailedPrecondition
from ..core.resources.services import Service
from ..core.runs.tofu_state import MAX_STATE_BYTES, action_of

STATE_FILE = "terraform.tfstate"


def tofu_binary() -> str:
    found = shutil.which("tofu")
    if not found:
        raise FailedPrecondition(
            "OpenTofu is not installed: no 'tofu' on PATH; install it from https://opentofu.org/docs/intro/install/ "
            "(for example the standalone binary into /usr/local/bin)"
        )
    return found


def tofu_action(service: Service, requested: str = "") -> tuple[str, list[str]]:
    """The action of a run (core.tofu_state.action_of) and the service's runtime arguments without the
    action an older service gave as the first of them."""
    rest = list(service.runtime_args)
    if rest and rest[0] in ("plan", "apply", "destroy"):
        rest = rest[1:]
    return action_of(service, requested), rest


def steps(service: Service, inputs: dict[str, Any], action: str, text) -> list[list[str]]:
    """init, then the action: the service's -var-file and -var first, its runtime arguments, then the run's
    inputs as -var (the last -var of a name wins)."""
    tofu = tofu_binary()
    action, rest = tofu_action(service, action)
    init = [tofu, "init", "-input=false", "-no-color", *(f"-backend-config={c}" for c in service.tofu_backend_config)]
    final = [tofu, action, "-input=false", "-no-color"]
    if action in ("apply", "destroy"):
        final.append("-auto-approve")
    final += [f"-var-file={path}" for path in service.tofu_var_files]
    final += [arg for key, value in service.tofu_vars.items() for arg in ("-var", f"{key}={value}")]
    variables = [arg for key, value in inputs.items() for arg in ("-var", f"{key}={text(value)}")]
    return [init, [*final, *rest, *variables]]


def place_state(workdir: Path, state: str | None) -> None:
    """The state the run starts from, as the local backend's file (readable by its owner only)."""
    if state is None:
        return
    path = workdir / STATE_FILE
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(state)


def read_state(workdir: Path) -> str | None:
    """The state the run's tree ended with; None when there is none (or it is too large to keep)."""
    path = workdir / STATE_FILE
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_STATE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None

