"""Python script services: the venv a script runs in.

Its requirements file (the service's, else `[python-script] requirements_file` when the working dir has it)
and the dependencies a `pyproject.toml` in the working dir declares ([project] dependencies, as IAG 5.1
installs them) go into one cached venv.  A script with neither runs in an empty venv: an interpreter that
sees neither the gateway's packages nor the system's site-packages.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Callable

from ..core.errors import FailedPrecondition
from ..core.runs.jobs import Job
from . import registries
from .venvs import Recipe, Venvs, read_requirements


def project_dependencies(pyproject: Path, service: str) -> tuple[str, ...]:
    try:
        data = tomllib.loads(read_requirements(pyproject, "project file"))
    except tomllib.TOMLDecodeError as exc:
        raise FailedPrecondition(f"service {service}: {pyproject.name} is not valid TOML: {exc}") from None
    project = data.get("project") if isinstance(data, dict) else None
    dependencies = project.get("dependencies", []) if isinstance(project, dict) else []
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise FailedPrecondition(f"service {service}: {pyproject.name} [project] dependencies must be a list of text")
    return tuple(d.strip() for d in dependencies if d.strip())


def recipe(job: Job, workdir: Path, default_requirements: str) -> Recipe:
    service = job.service
    requirements = workdir / (service.requirements_file or default_requirements)
    if service.requirements_file and not requirements.is_file():
        raise FailedPrecondition(f"service {service.name}: requirements file {service.requirements_file} not "
                                 f"found in {service.working_dir}")
    pyproject = workdir / "pyproject.toml"
    packages = project_dependencies(pyproject, service.name) if pyproject.is_file() else ()
    pypi = job.registry("pypi")
    return Recipe(requirements if requirements.is_file() else None, packages, registries.identity(pypi),
                  registries.pip_environment(pypi))


async def python_for(job: Job, workdir: Path, default_requirements: str, venvs: Venvs,
                     progress: Callable[[str], None], tree: Path | None = None) -> Path:
    """The python of the script's venv (built on first use, cached; the build sees the run's `tree`)."""
    return await venvs.venv_for(recipe(job, workdir, default_requirements),
                                registries.cleaned(progress, job.registry("pypi")), tree)
