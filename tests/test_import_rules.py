"""The layer rules of ARCHITECTURE.md, as import-linter contracts in pyproject.toml: a broken rule fails here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_broken_rule_is_reported(tmp_path):
    """The contracts really are checked: core importing the executor side breaks them."""
    config = (ROOT / "pyproject.toml").read_text()
    tree = tmp_path / "tree"
    for package in ("gateway_daemon", "gateway_tui"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "pyproject.toml").write_text(config)
    jobs = tree / "gateway_daemon" / "core" / "jobs.py"
    jobs.write_text(jobs.read_text() + "\nfrom ..execution import local  # noqa\n")
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=tree,
                            capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})
    assert result.returncode != 0
    assert "gateway_daemon.core.jobs -> gateway_daemon.execution" in result.stdout
