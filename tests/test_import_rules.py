"""The layer rules of ARCHITECTURE.md, as import-linter contracts in pyproject.toml, and no import loop in either
package (grimp, the graph import-linter is built on): a broken rule or a loop fails here."""

from __future__ import annotations

import json
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
    jobs = tree / "gateway_daemon" / "core" / "runs" / "jobs.py"
    jobs.write_text(jobs.read_text() + "\nfrom ...execution import local  # noqa\n")
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=tree,
                            capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})
    assert result.returncode != 0
    assert "gateway_daemon.core.runs.jobs -> gateway_daemon.execution" in result.stdout


def import_loops(package: str, path: Path | None = None) -> list[list[str]]:
    """Every group of modules of `package` that import each other, directly or round a ring (the strongly
    connected components of the import graph with more than one module, or a module importing itself).
    Imports under TYPE_CHECKING count: a loop there is a loop in the design."""
    code = f"""
import json, sys
import grimp
sys.setrecursionlimit(100000)
graph = grimp.build_graph({package!r})
index, low, stack, on_stack, loops = {{}}, {{}}, [], set(), []
def visit(module):
    index[module] = low[module] = len(index)
    stack.append(module)
    on_stack.add(module)
    for imported in graph.find_modules_directly_imported_by(module):
        if imported not in index:
            visit(imported)
            low[module] = min(low[module], low[imported])
        elif imported in on_stack:
            low[module] = min(low[module], index[imported])
    if low[module] == index[module]:
        group = []
        while True:
            member = stack.pop()
            on_stack.discard(member)
            group.append(member)
            if member == module:
                break
        if len(group) > 1 or module in graph.find_modules_directly_imported_by(module):
            loops.append(sorted(group))
for module in sorted(graph.modules):
    if module not in index:
        visit(module)
print(json.dumps(loops))
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(path)} if path else None
    result = subprocess.run([sys.executable, "-c", code], cwd=path or ROOT, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_no_import_loop_in_either_package():
    for package in ("gateway_daemon", "gateway_tui"):
        assert import_loops(package) == [], f"{package} has import loops"


def test_an_import_loop_is_found(tmp_path):
    """The loop check really looks: the engine imported back from the run lifecycle it uses is a loop."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "gateway_daemon", tree / "gateway_daemon", ignore=shutil.ignore_patterns("__pycache__"))
    lifecycle = tree / "gateway_daemon" / "core" / "runs" / "lifecycle.py"
    lifecycle.write_text(lifecycle.read_text() + "\nfrom ..engine import Engine  # noqa\n")
    loops = import_loops("gateway_daemon", tree)
    assert any({"gateway_daemon.core.engine", "gateway_daemon.core.runs.lifecycle"} <= set(loop) for loop in loops), loops
