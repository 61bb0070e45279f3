"""A service and its inputs -> the command lines that run it."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from ..core.errors import FailedPrecondition
from ..core.resources.executables import ExecutableObject
from ..core.resources.services import DEFAULT_ARG_FORMAT, EARLIER_DEFAULT_ARG_FORMAT, Service, format_arg
from . import ansible, tofu
from .ansible import ansible_binary


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


def make_executable(path: Path, tree: Path) -> None:
    """Give the owner the x bit of the file `path` names, following links only as far as they stay in `tree`:
    a link leading outside the tree is refused, and a file outside it never changes."""
    real = os.path.realpath(path)
    root = os.path.realpath(tree)
    if not real.startswith(root + os.sep):
        raise FailedPrecondition(f"{path.relative_to(tree) if path.is_relative_to(tree) else path} "
                                 "leads outside the repository; links must stay inside the checked-out tree")
    mode = os.lstat(real).st_mode  # `real` has no link left in it
    if stat.S_ISREG(mode) and not mode & stat.S_IXUSR:
        os.chmod(real, mode | stat.S_IXUSR)


def build(service: Service, workdir: Path, inputs: dict[str, Any], booleans: set[str], python: str,
          options: dict[str, str] | None = None, playbook_program: str | None = None,
          executable: ExecutableObject | None = None, tree: Path | None = None, action: str = "",
          inputs_file: str | None = None) -> list[list[str]]:
    """The steps to run, each an argv. Only the last step's exit code decides the status.
    `options`: the run options (core.run_options); `playbook_program`: the ansible-playbook to use (default:
    the gateway's); `executable`: the executable object the service names; `tree`: the checked-out tree
    `workdir` is in (default: workdir itself): nothing outside it is changed; `action`: an opentofu-plan
    run's (empty: the service's); `inputs_file`: an ansible-playbook run's inputs file (ansible.write_inputs), as
    the run sees it."""
    kind = service.type
    if kind == "python-script":
        script = workdir / service.script
        if not script.is_file():
            raise FailedPrecondition(f"service {service.name}: {service.script} not found in {service.working_dir}")
        return [[python, "-u", str(script), *service.runtime_args, *python_args(inputs, booleans)]]
    if kind == "ansible-playbook":
        return [ansible.command(service, workdir, inputs, options or {}, playbook_program or ansible_binary(),
                                inputs_file)]
    if kind == "opentofu-plan":
        return tofu.steps(service, inputs, action, _text)
    if executable is not None:
        return [executable_command(service, workdir, inputs, executable)]
    # executable: a file in the repository, else a command on PATH
    target = workdir / service.script
    if target.is_file():
        make_executable(target, tree or workdir)
        program = str(target)
    elif "/" not in service.script and shutil.which(service.script):
        program = shutil.which(service.script) or service.script
    else:
        raise FailedPrecondition(
            f"service {service.name}: {service.script} is neither a file in the repository nor a command on PATH"
        )
    return [[program, *service.runtime_args, *formatted_args(service.arg_format, inputs)]]


def executable_command(service: Service, workdir: Path, inputs: dict[str, Any],
                       executable: ExecutableObject) -> list[str]:
    """An executable object's command, then the service's file (when it names one), its runtime arguments and
    its inputs in the arg-format: the service's own when it sets one, else the object's."""
    argv = executable.argv()
    program = argv[0]
    if "/" not in program:
        found = shutil.which(program)
        if not found:
            raise FailedPrecondition(f"executable-object {executable.name}: {program} is not a command on PATH")
        argv[0] = found
    elif not Path(program).is_file():
        raise FailedPrecondition(f"executable-object {executable.name}: {program} not found")
    if service.filename:
        target = workdir / service.filename
        if not target.is_file():
            raise FailedPrecondition(f"service {service.name}: {service.filename} not found in {service.working_dir}")
        argv.append(str(target))
    own = service.arg_format not in (DEFAULT_ARG_FORMAT, EARLIER_DEFAULT_ARG_FORMAT)
    fmt = service.arg_format if own else executable.arg_format
    return [*argv, *service.runtime_args, *formatted_args(fmt, inputs)]


def child_environment(extra: dict[str, str], tmp: Path, python: str, home: Path | None = None) -> dict[str, str]:
    """A clean environment: the gateway's own variables never reach a script.  `tmp`: its TMPDIR; `home`:
    its HOME (default: the gateway's)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SSL_CERT_FILE", "SSL_CERT_DIR",
            "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
            "TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")  # OpenTofu's CLI configuration (provider mirrors)
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    bindir = str(Path(python).parent)
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    if home is not None:
        env["HOME"] = str(home)
    # Ansible's own temporary files go to the run's private tmp too, not ~/.ansible/tmp of whoever runs the gateway.
    env.update(TMPDIR=str(tmp), PYTHONUNBUFFERED="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp), TF_IN_AUTOMATION="1")
    env.update(extra)
    return env
