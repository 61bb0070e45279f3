"""Ansible playbook services: their dependencies and their command line.

`requirements.txt` (or a requirements file not ending in .yml) is pip's: Python packages, and the
ansible-core the playbooks run with when it names one.  With it, the service gets a cached venv holding
those packages and an ansible-core (the gateway's own version when the file names none), and its playbooks
run with that venv's ansible-playbook and Python.  Without it they run with the gateway's ansible-playbook.
`requirements.yml` is Galaxy's: collections and roles, installed per file into a cached folder.  Both may
be present.

The command line: inventories, runtime arguments, the service's extra vars and extra vars files, then the
run's inputs as an extra vars file (last: what the decorator checked wins), the run options (--limit, --tags,
--check) and the playbooks in turn, all in one ansible-playbook.

Inputs are data, never templates: the inputs file tags every text in it, at any depth, `!unsafe`, so Ansible
prints `{{ lookup('pipe', ...) }}` as it was given instead of running it.  The file is written in the run's
private temporary folder, readable by its owner only, and goes with the run (no input is on a command line).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.errors import FailedPrecondition
from ..core.runs.jobs import Job
from ..core.resources.services import Service
from . import registries
from .venvs import Recipe, Venvs, install_hint, read_requirements

GALAXY_SUFFIXES = (".yml", ".yaml")
INPUTS_FILE = "gateway-inputs.yml"
# A requirement line that names the Ansible engine: then the file's version is the one installed.
_ANSIBLE_RE = re.compile(r"^\s*(ansible-core|ansible_core|ansible-base|ansible)\s*($|[<>=!~;\[ ])", re.IGNORECASE)


@dataclass
class AnsibleSetup:
    """What a run of an Ansible service uses: its ansible-playbook, its Python, what its environment adds,
    and the cached folders it holds (released when the run ends)."""

    playbook: str
    python: str
    env: dict[str, str] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)


def names_ansible(requirements: Path) -> bool:
    for line in read_requirements(requirements).splitlines():
        if _ANSIBLE_RE.match(line.split("#", 1)[0]):
            return True
    return False


def gateway_ansible_core() -> str:
    """The ansible-core requirement that matches the gateway's own (unpinned when it has none)."""
    from importlib import metadata  # only when a venv is built: it is slow to import

    try:
        return f"ansible-core=={metadata.version('ansible-core')}"
    except metadata.PackageNotFoundError:
        return "ansible-core"


def ansible_binary() -> str:
    # The gateway's own environment first: the [ansible] extra (install_hint) puts it there,
    # and a venv's bin directory is often not on PATH.
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.is_file() else shutil.which("ansible-playbook")
    if not found:
        raise FailedPrecondition(
            "Ansible is not installed: no 'ansible-playbook' on PATH; "
            f"install it with: {install_hint()}"
        )
    return found


def requirement_files(service: Service, workdir: Path) -> tuple[Path | None, Path | None]:
    """(pip requirements, Galaxy requirements) of the service, each when present."""
    pip = galaxy = None
    named = service.requirements_file
    if named:
        path = workdir / named
        if not path.is_file():
            raise FailedPrecondition(f"service {service.name}: requirements file {named} not found in "
                                     f"{service.working_dir}")
        if path.suffix in GALAXY_SUFFIXES:
            galaxy = path
        else:
            pip = path
    if pip is None and (workdir / "requirements.txt").is_file():
        pip = workdir / "requirements.txt"
    if galaxy is None:
        first = service.playbook_files[0] if service.playbook_files else ""
        for candidate in (workdir / "requirements.yml", workdir / "collections" / "requirements.yml",
                          (workdir / first).parent / "requirements.yml"):
            if candidate.is_file():
                galaxy = candidate
                break
    return pip, galaxy


async def prepare(job: Job, workdir: Path, venvs: Venvs, progress: Callable[[str], None],
                  tree: Path | None = None) -> AnsibleSetup:
    """Install what the service needs (cached; the installs see the run's `tree`) and say what runs it."""
    service = job.service
    pip, galaxy = requirement_files(service, workdir)
    pypi, galaxy_server = job.registry("pypi"), job.registry("ansible-galaxy")
    setup = AnsibleSetup(ansible_binary(), sys.executable)
    try:
        if pip is not None:
            packages = () if names_ansible(pip) else (gateway_ansible_core(),)
            recipe = Recipe(pip, packages, registries.identity(pypi), registries.pip_environment(pypi))
            python = await venvs.venv_for(recipe, registries.cleaned(progress, pypi), tree)
            setup.held.append(str(python))
            setup.python = str(python)
            setup.playbook = str(python.parent / "ansible-playbook")
            if not Path(setup.playbook).is_file():
                raise FailedPrecondition(f"service {service.name}: {pip.name} installed no ansible-playbook "
                                         "(it names an Ansible without ansible-core?)")
        if galaxy is not None:
            program = str(Path(setup.playbook).parent / "ansible-galaxy")
            folder = await venvs.collections_for(galaxy, registries.cleaned(progress, galaxy_server),
                                                 program if Path(program).is_file() else None,
                                                 registries.identity(galaxy_server),
                                                 registries.galaxy_environment(galaxy_server), tree)
            setup.held.append(str(folder))
            setup.env["ANSIBLE_COLLECTIONS_PATH"] = str(folder / "collections")
            setup.env["ANSIBLE_ROLES_PATH"] = str(folder / "roles")
    except BaseException:
        venvs.release(*setup.held)
        raise
    if service.config_file:
        config = workdir / service.config_file
        if not config.is_file():
            raise FailedPrecondition(f"service {service.name}: config file {service.config_file} not found in "
                                     f"{service.working_dir}")
        setup.env["ANSIBLE_CONFIG"] = str(config)
    return setup


def _inventory(service: Service, workdir: Path, path: str) -> str:
    target = workdir / path
    if not target.exists():
        raise FailedPrecondition(f"service {service.name}: inventory {path} not found in {service.working_dir}")
    if target.is_file():
        with target.open("rb") as handle:
            if handle.read(2) == b"#!":  # a script: ansible runs it when it may
                target.chmod(target.stat().st_mode | 0o100)
    return str(target)


class _Unsafe(str):
    """A text Ansible must never template."""


def _inputs_dumper() -> type:
    """A YAML dumper that writes an unsafe text with Ansible's !unsafe tag (yaml is loaded when a playbook runs, not
    for every command that loads this module)."""
    import yaml

    class InputsDumper(yaml.SafeDumper):
        pass

    InputsDumper.add_representer(_Unsafe, lambda dumper, text: dumper.represent_scalar("!unsafe", str(text),
                                                                                      style='"'))
    return InputsDumper


def _unsafe(value: Any) -> Any:
    """`value` with every text in it (values, and keys below the top) marked unsafe."""
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, dict):
        return {_unsafe(key): _unsafe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unsafe(item) for item in value]
    return value


def write_inputs(inputs: dict[str, Any], folder: Path) -> Path:
    """The run's inputs as an extra vars file in `folder` (the run's private temporary folder), mode 0600."""
    import yaml

    text = yaml.dump({str(key): _unsafe(value) for key, value in inputs.items()}, Dumper=_inputs_dumper(),
                     allow_unicode=True, sort_keys=False, width=1 << 30)
    path = folder / INPUTS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def command(service: Service, workdir: Path, inputs: dict[str, Any], options: dict[str, str],
            playbook_program: str, inputs_file: str | None = None) -> list[str]:
    """The ansible-playbook command line of one run; `inputs_file`: the run's inputs as write_inputs wrote
    them, named as the run sees it (none: the run has no inputs)."""
    argv = [playbook_program]
    for path in service.inventories:
        argv += ["-i", _inventory(service, workdir, path)]
    argv += service.runtime_args
    for text in service.extra_vars:
        argv += ["--extra-vars", text]
    for path in service.extra_vars_files:
        if not (workdir / path).is_file():
            raise FailedPrecondition(f"service {service.name}: extra vars file {path} not found in "
                                     f"{service.working_dir}")
        argv += ["--extra-vars", f"@{workdir / path}"]
    if inputs:
        if not inputs_file:
            raise FailedPrecondition(f"service {service.name}: the run's inputs were not written for Ansible")
        argv += ["--extra-vars", f"@{inputs_file}"]
    if options.get("limit"):
        argv += ["--limit", options["limit"]]
    if options.get("tags"):
        argv += ["--tags", options["tags"]]
    if options.get("check") == "true":
        argv.append("--check")
    for name in service.playbook_files:
        playbook = workdir / name
        if not playbook.is_file():
            raise FailedPrecondition(f"service {service.name}: playbook {name} not found in {service.working_dir}")
        argv.append(str(playbook))
    return argv
