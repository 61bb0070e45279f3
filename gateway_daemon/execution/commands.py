"""A service and its inputs -> the command lines that run it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..core.errors import FailedPrecondition
from ..core.services import Service, format_arg

from ..core.services import TOFU_ACTIONS  # noqa: F401  (known here before core said it)
from . import tofu
from .tofu import tofu_action, tofu_binary  # noqa: F401  (opentofu-plan lives in execution/tofu.py)


def _text(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def python_args(inputs: dict[str, Any], booleans: set[str]) -> list[str]:
    """--key=value; a boolean the decorator declares: a bare --key when true, nothing when false."""
    args = []
    for key, value in inputs.items():
        if key in booleans and isinstance(value, bool):
            if value:
                args.append(f"--{key}")
            continue
        args.append(f"--{key}={_text(value)}")
    return args


def formatted_args(fmt: str, inputs: dict[str, Any]) -> list[str]:
    """The service's --arg-format per input; a format with spaces makes several arguments."""
    args = []
    for key, value in inputs.items():
        args.extend(format_arg(part, key, _text(value)) for part in fmt.split())
    return args


def ansible_binary() -> str:
    # The gateway's own environment first: `pip install 'automation-gateway[ansible]'` puts it there,
    # and a venv's bin directory is often not on PATH.
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.is_file() else shutil.which("ansible-playbook")
    if not found:
        raise FailedPrecondition(
            "Ansible is not installed: no 'ansible-playbook' on PATH; "
            "install it with: pip install 'automation-gateway[ansible]'"
        )
    return found


def build(service: Service, workdir: Path, inputs: dict[str, Any], booleans: set[str], python: str,
          action: str = "") -> list[list[str]]:
    """The steps to run, each an argv. Only the last step's exit code decides the status.  `action`: an
    opentofu-plan run's (empty: the service's)."""
    kind = service.type
    if kind == "python-script":
        script = workdir / service.script
        if not script.is_file():
            raise FailedPrecondition(f"service {service.name}: {service.script} not found in {service.working_dir}")
        return [[python, "-u", str(script), *service.runtime_args, *python_args(inputs, booleans)]]
    if kind == "ansible-playbook":
        playbook = workdir / service.script
        if not playbook.is_file():
            raise FailedPrecondition(f"service {service.name}: playbook {service.script} not found in {service.working_dir}")
        return [[ansible_binary(), *service.runtime_args, "--extra-vars", json.dumps(inputs), str(playbook)]]
    if kind == "opentofu-plan":
        return tofu.steps(service, inputs, action, _text)
    # executable: a file in the repository, else a command on PATH
    target = workdir / service.script
    if target.is_file():
        target.chmod(target.stat().st_mode | 0o100)
        program = str(target)
    elif "/" not in service.script and shutil.which(service.script):
        program = shutil.which(service.script) or service.script
    else:
        raise FailedPrecondition(
            f"service {service.name}: {service.script} is neither a file in the repository nor a command on PATH"
        )
    return [[program, *service.runtime_args, *formatted_args(service.arg_format, inputs)]]


def child_environment(extra: dict[str, str], tmp: Path, python: str) -> dict[str, str]:
    """A clean environment: the gateway's own variables never reach a script."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SSL_CERT_FILE", "SSL_CERT_DIR",
            "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
            "TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")  # OpenTofu's CLI configuration (provider mirrors)
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    bindir = str(Path(python).parent)
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    env.update(TMPDIR=str(tmp), PYTHONUNBUFFERED="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", TF_IN_AUTOMATION="1")
    env.update(extra)
    return env
