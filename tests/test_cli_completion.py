"""The CLI's small edges: bash completion of kinds and names, `get runs` of a service that does not exist,
and the registries' DEFAULT column as the TUI marks it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cli_helpers import BIN, Sandbox
from gitutil import new_repo


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def complete(box: Sandbox, *words: str) -> list[str]:
    """What bash completes for `gateway WORDS...` (the last word the one being typed), with the script
    `gateway completion bash` prints."""
    script = box.root / "gateway.bash"
    script.write_text(box.gateway("completion", "bash").ok().out)
    line = " ".join(("gateway", *words))
    quoted = " ".join(f"'{w}'" for w in ("gateway", *words))
    probe = (f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; COMP_LINE='{line}'; "
             f"COMP_POINT={len(line)}; _shtab_gateway; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    result = box._run(shutil.which("bash") or "bash", ["-c", probe],
                      env={"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert result.code == 0, str(result)
    return sorted(word for word in result.out.split() if word)


def test_bash_completes_kinds_and_names(box: Sandbox):
    new_repo(box.root / "origin", {"main.py": "print(1)\n"})
    box.gateway("create", "repository", "origin", "--url", str(box.root / "origin")).ok()
    for name in ("sweep", "summary", "backup"):
        box.gateway("create", "service", "python-script", name, "--repository", "origin").ok()
    assert complete(box, "get", "se") == ["secrets", "services"]
    assert "repositories" in complete(box, "describe", "")
    assert complete(box, "describe", "service", "s") == ["summary", "sweep"]
    assert complete(box, "delete", "repository", "") == ["origin"]
    assert complete(box, "edit", "service", "b") == ["backup"]


def test_get_runs_of_a_service_that_does_not_exist_fails(box: Sandbox):
    box.gateway("get", "runs", "--service", "nosuch").fails(1, "nosuch", "not found")
    assert box.gateway("get", "runs").ok().out.strip() == "(none)"


def test_registries_default_column_marks_what_installs_use(box: Sandbox):
    listing = box.gateway("get", "registries").ok().out.splitlines()
    marked = {line.split()[0] for line in listing[1:] if " yes " in f" {line} "}
    assert marked == {"default-pypi", "default-galaxy"}, listing
    box.gateway("create", "registry", "pypi", "mirror", "--url", "https://pypi.example.com/simple",
                "--default").ok()
    listing = box.gateway("get", "registries").ok().out.splitlines()
    marked = {line.split()[0] for line in listing[1:] if " yes " in f" {line} "}
    assert marked == {"mirror", "default-galaxy"}, listing


def test_the_ansible_hint_names_the_command_for_this_install():
    """An editable install from a source tree (as the README installs it): its own pip, that tree, the extra."""
    import sys

    from gateway_daemon.execution.venvs import install_hint

    root = Path(__file__).resolve().parent.parent
    assert install_hint() == f"{sys.executable} -m pip install -e '{root}[ansible]'"
