"""How fast a run's output streams through the gateway, and what memory that costs.

    .venv/bin/python bench/stream.py [--sizes 25 100] [--width 100]

A python-script service prints SIZE MB in lines of WIDTH bytes; `gateway run service`
(local mode, the SQLite store, the default output_limit of 1 MiB) carries it to a
pipe that is read and thrown away.  The same script piped into `cat` is the floor.
Prints MB/s for both and the gateway's peak RSS (ru_maxrss of the `gateway`
process) for each size.
Targets: >= 100 MB/s through the gateway; RSS bounded (the biggest run's peak
within 10 MB of the smallest's).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cli_helpers import GATEWAY, gateway_env, gw  # noqa: E402
from gitutil import new_repo  # noqa: E402

EMIT = '''\
import sys
mb, width = float(sys.argv[1].split("=", 1)[1]), int(sys.argv[2].split("=", 1)[1])
line = b"x" * (width - 1) + b"\\n"
block = line * (65536 // width)
out = sys.stdout.buffer
left = int(mb * 1000 * 1000)
while left > 0:
    out.write(block[:left])
    left -= len(block)
'''


def timed(argv: list[str], env: dict[str, str] | None = None, shell: bool = False) -> tuple[float, int]:
    """Wall seconds and the peak RSS (KiB) of the command, its output read and thrown away."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, shell=shell)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err.strip()[-500:]}")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[25, 100], help="MB of output per run")
    parser.add_argument("--width", type=int, default=100, help="bytes per line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        new_repo(root / "origin", {"emit.py": EMIT})
        env = gateway_env(root / "gateway")
        for argv in (("create", "repository", "bench", "--url", str(root / "origin"), "--reference", "main"),
                     ("create", "service", "python-script", "emit", "--repository", "bench", "--filename", "emit.py")):
            result = gw(env, *argv)
            assert result.code == 0, str(result)
        gw(env, "run", "service", "emit", "--set", "mb=1", "--set", f"width={args.width}")  # clone once
        rates, peaks = [], []
        print(f"lines of {args.width} bytes; MB = 10^6 bytes")
        for size in args.sizes:
            script = f"{sys.executable} {root / 'origin' / 'emit.py'} --mb={size} --width={args.width} | cat"
            cat_seconds, _ = timed([script], shell=True)
            seconds, rss = timed([GATEWAY, "run", "service", "emit", "--set", f"mb={size}", "--set",
                                  f"width={args.width}"], env=env)
            rates.append(size / seconds)
            peaks.append(rss)
            print(f"{size:6.0f} MB   gateway {seconds:6.2f} s {size / seconds:7.1f} MB/s   "
                  f"cat {cat_seconds:6.2f} s {size / cat_seconds:7.1f} MB/s   gateway peak RSS {rss / 1024:6.1f} MB")
        fast = rates[-1] >= 100  # the target is for the biggest run (a small one is mostly the start)
        bounded = max(peaks) - min(peaks) <= 10 * 1024
        print("targets: {:.0f} MB at {:.1f} MB/s >= 100 MB/s: {}; RSS bounded (peak grows <= 10 MB from {:.0f} to {:.0f} MB): {}".format(
            args.sizes[-1], rates[-1], "yes" if fast else "NO", min(args.sizes), max(args.sizes),
            "yes" if bounded else "NO"))


if __name__ == "__main__":
    main()
