"""`gateway run service -o json` prints the run's stored output from the lines it streamed (no second read of
the output): it is exactly what the store kept, notes shown on the way and lines cut at the output limit
included."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cli_helpers import gateway_env, gw, ok
from gitutil import new_repo

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config

SCRIPT = '''\
import sys
n = int(sys.argv[1].split("=", 1)[1])
for i in range(n):
    out = sys.stderr if i % 7 == 3 else sys.stdout
    out.write(f"line {i} " + "y" * (i % 50) + "\\n")
    out.flush()
print("the end")
'''


def stored_output(env: dict[str, str], run_id: str) -> list[dict[str, str]]:
    config = load_config(None, environ=env)

    async def read() -> list[dict[str, str]]:
        engine = open_engine(config, announce=lambda text: None)
        try:
            return [{"stream": l.stream, "text": l.text} for l in await engine.run_output(run_id)]
        finally:
            await engine.close()
    return asyncio.run(read())


@pytest.mark.parametrize("limit, lines", [("1048576", 300), ("16384", 3000)], ids=["whole", "cut at the limit"])
def test_run_json_prints_what_the_store_kept(tmp_path: Path, limit: str, lines: int) -> None:
    new_repo(tmp_path / "origin", {"emit.py": SCRIPT})
    env = gateway_env(tmp_path / "gw", f"[application]\nmode = local\n[execution]\noutput_limit = {limit}\n")
    ok(gw(env, "create", "repository", "apps", "--url", str(tmp_path / "origin")))
    ok(gw(env, "create", "service", "python-script", "emit", "--repository", "apps", "--filename", "emit.py"))
    for _ in range(2):  # the first run also shows the clone and the environment being made (notes, not stored)
        run = json.loads(ok(gw(env, "run", "service", "emit", "--set", f"n={lines}", "-o", "json")).stdout)
        assert run["status"] == "succeeded"
        assert run["output"] == stored_output(env, run["id"])
        assert {"stream": "stdout", "text": "the end"} in run["output"]
        assert len(run["output"]) == run["output_lines"] - run["output_dropped"]
        assert (run["output_dropped"] > 0) == (limit == "16384")
