"""Generate the Python for protos/gateway/v1/*.proto into gateway_daemon/rpc/gen/.

    .venv/bin/python -m gateway_daemon.rpc.protogen          (needs grpcio-tools: the [test] extra)

protoc writes absolute imports (``from gateway.v1 import common_pb2``); they are
rewritten to relative ones so the generated modules live inside this package.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
TARGET = Path(__file__).resolve().parent / "gen"
_IMPORT_RE = re.compile(r"^from gateway\.v1 import (\w+)", re.MULTILINE)


def generate(into: Path) -> list[Path]:
    """Write the generated modules into `into` (made empty first); returns them."""
    import grpc_tools
    from grpc_tools import protoc

    sources = sorted(PROTOS.glob("gateway/v1/*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        code = protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={tmp}", f"--pyi_out={tmp}",
                            f"--grpc_python_out={tmp}", *map(str, sources)])
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
        if into.exists():
            shutil.rmtree(into)
        into.mkdir(parents=True)
        (into / "__init__.py").write_text('"""Generated from protos/gateway/v1 by gateway_daemon.rpc.protogen: do not edit."""\n')
        written = []
        for path in sorted((Path(tmp) / "gateway" / "v1").iterdir()):
            text = _IMPORT_RE.sub(r"from . import \1", path.read_text())
            (into / path.name).write_text(text)
            written.append(into / path.name)
        return written


def main() -> int:
    written = generate(TARGET)
    print(f"wrote {len(written)} files into {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
