"""What starting the `gateway` command costs over starting the interpreter it runs on.

    .venv/bin/python bench/cli_start.py [--rounds 15]

Runs the real `gateway` console script next to sys.executable as `gateway get
services` in local mode, against an empty store in a temporary home and data
dir, interleaved with `python -c pass` on the same interpreter, and prints both
medians, their ratio and the difference.  Also `gateway --help` the same way.
Each command runs once before timing starts (bytecode compiled, files cached).
Target: `gateway get services` at most 2x `python -c pass`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GATEWAY = str(Path(sys.executable).parent / "gateway")
TARGET = 2.0


def environment(home: Path) -> dict[str, str]:
    """No GATEWAY_* from the caller; a home and data dir of its own, local mode.  Bytecode is written (to a
    folder in the temporary home) and reused, as an installed gateway's is: the first run compiles, the timed
    ones do not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
    env.update(HOME=str(home), GATEWAY_APPLICATION_MODE="local", GATEWAY_APPLICATION_DATA_DIR=str(home / "data"))
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.decode().strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed runs of each command (default 15)")
    rounds = parser.parse_args().rounds
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    if not os.access(GATEWAY, os.X_OK):
        raise SystemExit(f"no gateway console script at {GATEWAY}; install the project in this interpreter's env")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = environment(home)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "gateway get services": [GATEWAY, "get", "services"],
            "gateway --help": [GATEWAY, "--help"],
        }
        for argv in commands.values():  # warm: bytecode, page cache, the empty store created
            timed(argv, env, home)
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(rounds):
            for label, argv in commands.items():
                times[label].append(timed(argv, env, home))
    medians = {label: statistics.median(values) for label, values in times.items()}
    base = medians["python -c pass"]
    print(f"{rounds} rounds, interleaved; python {sys.version.split()[0]}; medians\n")
    for label, median in medians.items():
        print(f"  {label:<22} {median * 1000:7.1f} ms   ratio {median / base:5.2f}   "
              f"added {(median - base) * 1000:6.1f} ms")
    ratio = medians["gateway get services"] / base
    print(f"\ntargets: get services {medians['gateway get services'] * 1000:.1f} ms vs python -c pass "
          f"{base * 1000:.1f} ms, ratio {ratio:.2f} <= {TARGET:g}x: {'yes' if ratio <= TARGET else 'NO'}")


if __name__ == "__main__":
    main()
