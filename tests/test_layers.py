"""The face (gateway_tui) talks to a typed Gateway only: it imports no grpc, no protobuf and nothing of
gateway_daemon.rpc, not inside functions and not for type checking either. Read from the source, so a
new module is checked the day it is added."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "gateway_tui"
FORBIDDEN = ("grpc", "google.protobuf", "gateway_daemon.rpc")


def forbidden_imports(path: Path) -> list[str]:
    """`line: module` for each import in the file of a module the face must not use."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from gateway_daemon import rpc` names the package in the imported names
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN):
                found.append((node.lineno, name))
                break
    return [f"{line}: {name}" for line, name in sorted(found)]


def face_modules() -> list[Path]:
    return sorted(FACE.rglob("*.py"))


def test_the_face_has_modules_to_check():
    assert len(face_modules()) > 20


@pytest.mark.parametrize("path", face_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_face_imports_no_grpc_protobuf_or_rpc(path: Path):
    assert forbidden_imports(path) == []


def test_the_check_sees_every_form_of_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import grpc\n"
                      "def f():\n    from google.protobuf import field_mask_pb2\n"
                      "from gateway_daemon import rpc\n"
                      "from gateway_daemon.rpc.gen import common_pb2\n"
                      "import gateway_daemon.core\n"
                      "from gateway_daemon import bootstrap\n"
                      "import grpcio_like_name\n")
    assert forbidden_imports(sample) == ["1: grpc", "3: google.protobuf", "4: gateway_daemon.rpc",
                                         "5: gateway_daemon.rpc.gen"]
