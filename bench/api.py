"""What the gRPC API costs over the in-process Engine: unary calls, a list of 10,000 services, a trivial run.

    .venv/bin/python bench/api.py [-n 2000] [--services 10000] [--runs 20]

Starts a real `gateway-daemon` (TLS on 127.0.0.1, certificates made here, the
embedded SQLite store) and opens an Engine in this process on a copy of the
same data.  Both hold one repository and --services services.  Measures, one
call after another: get of one service (calls/s, p50, p99), list of every
service (p50, p99; for the remote side also the wire call alone, before the
replies become domain objects, and the list with every field, as -o json asks), and a trivial python-script run (medians,
interleaved, remote minus local).
Targets: get p50 under 1 ms; list of 10,000 under 150 ms; a remote run at most 15 ms slower than local.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gitutil import new_repo  # noqa: E402

from gateway_daemon.bootstrap import open_engine  # noqa: E402
from gateway_daemon.certificates import make_ca, make_certificate, write_pair  # noqa: E402
from gateway_daemon.config import load_config  # noqa: E402
from gateway_daemon.core import Repository, Service  # noqa: E402
from gateway_daemon.rpc.client import Connection, Endpoint, RemoteGateway, login  # noqa: E402
from gateway_daemon.rpc.gen import common_pb2  # noqa: E402

BIN = Path(sys.executable).parent
PASSWORD = "bench-password-1"


def make_repo(root: Path) -> tuple[Path, str]:
    repo = root / "origin"
    return repo, new_repo(repo, {"main.py": 'print("hello")\n'})


async def seed(data_dir: Path, repo: Path, commit: str, count: int) -> None:
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(data_dir)})
    engine = open_engine(config, announce=lambda text: None)
    await engine.create(Repository(name="apps", url=str(repo), reference=commit))
    await engine.create(Service(name="trivial", type="python-script", repository="apps", filename="main.py"))
    for i in range(count - 1):
        await engine.create(Service(name=f"svc-{i:05d}", type="python-script", repository="apps",
                                    filename="main.py", description=f"bench service {i}", tags=["bench"]))
    await engine.close()


def start_daemon(root: Path, data_dir: Path, port: int) -> tuple[subprocess.Popen, str, Path]:
    ca_cert, ca_key = make_ca("bench CA")
    ca, _ = write_pair(root / "certs", "ca", ca_cert, ca_key)
    cert, key = write_pair(root / "certs", "server", *make_certificate(ca_cert, ca_key, "127.0.0.1", ["127.0.0.1"],
                                                                       client=False))
    config = root / "server.conf"
    config.write_text(f"[application]\nmode = server\ndata_dir = {data_dir}\n[server]\nlisten_address = 127.0.0.1\n"
                      f"port = {port}\nuse_tls = true\ncertificate_file = {cert}\nprivate_key_file = {key}\n"
                      )
    log = root / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = subprocess.Popen([str(BIN / "gateway-daemon"), "--config", str(config)], stdout=log.open("w"),
                               stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while "serving gRPC on" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the daemon did not start:\n" + log.read_text())
        time.sleep(0.05)
    found = re.search(r"temporary password (\S+);", log.read_text())
    return process, found.group(1) if found else "", ca


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(call, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


def line(label: str, times: list[float]) -> tuple[float, float]:
    p50, p99 = pct(times, 0.5), pct(times, 0.99)
    print(f"  {label:<34} {len(times) / sum(times):9.0f} calls/s   p50 {p50 * 1000:8.3f} ms   p99 {p99 * 1000:8.3f} ms")
    return p50, p99


async def run_once(gateway) -> float:
    started = time.perf_counter()
    final = None
    async for event in gateway.run_service("trivial"):
        if event.kind == "status":
            final = event.run
    elapsed = time.perf_counter() - started
    assert final is not None and final.status == "succeeded", final
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="get calls of each kind")
    parser.add_argument("--lists", type=int, default=30, help="list calls of each kind")
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=20, help="trivial runs of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, commit = make_repo(root)
        started = time.perf_counter()
        await seed(root / "server-data", repo, commit, args.services)
        shutil.copytree(root / "server-data", root / "local-data")
        print(f"seeded {args.services} services in {time.perf_counter() - started:.1f} s; "
              f"python {sys.version.split()[0]}\n")
        port = free_port()
        process, temporary, ca = start_daemon(root, root / "server-data", port)
        try:
            endpoint = Endpoint((f"127.0.0.1:{port}",), True, str(ca))
            reply = await login(endpoint, "admin", temporary, PASSWORD)
            remote = RemoteGateway(Connection(endpoint, reply.api_key))
            local = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(root / "local-data")}),
                                announce=lambda text: None)
            for gateway in (remote, local):  # warm: connection, caches, clone, snapshot
                await gateway.get("service", "svc-00042")
                assert len(await gateway.list("service")) == args.services
                await run_once(gateway)

            print(f"get service (n={args.n})")
            get_remote = line("remote (gRPC, TLS, loopback)", await timed(lambda: remote.get("service", "svc-00042"), args.n))
            get_local = line("in-process Engine", await timed(lambda: local.get("service", "svc-00042"), args.n))
            print(f"  ratio remote/local p50 {get_remote[0] / get_local[0]:.1f}x\n")

            print(f"list {args.services} services (n={args.lists})")
            list_remote = line("remote (gRPC, TLS, loopback)", await timed(lambda: remote.list("service"), args.lists))
            wire = line("remote, wire only (no conversion)", await timed(
                lambda: remote.connection.call(lambda s: s.services.ListServiceSummaries, common_pb2.Empty()),
                args.lists))
            full = line("remote, every field (-o json)", await timed(lambda: remote.list("service", full=True),
                                                                     args.lists))
            list_local = line("in-process Engine", await timed(lambda: local.list("service"), args.lists))
            print(f"  ratio remote/local p50 {list_remote[0] / list_local[0]:.1f}x; "
                  f"conversion is {(list_remote[0] - wire[0]) / list_remote[0]:.0%} of the remote p50; "
                  f"every field costs {full[0] / list_remote[0]:.1f}x the list\n")

            remote_runs, local_runs = [], []
            for _ in range(args.runs):
                remote_runs.append(await run_once(remote))
                local_runs.append(await run_once(local))
            r, l = statistics.median(remote_runs), statistics.median(local_runs)
            print(f"trivial run (n={args.runs}, interleaved, medians)")
            print(f"  remote {r * 1000:7.1f} ms   local {l * 1000:7.1f} ms   ratio {r / l:4.2f}   "
                  f"added {(r - l) * 1000:6.1f} ms\n")
            print("targets: get p50 {:.3f} ms < 1 ms: {}; list p50 {:.1f} ms < 150 ms: {}; run added {:.1f} ms "
                  "<= 15 ms: {}".format(
                      get_remote[0] * 1000, "yes" if get_remote[0] < 0.001 else "NO",
                      list_remote[0] * 1000, "yes" if list_remote[0] < 0.150 else "NO",
                      (r - l) * 1000, "yes" if r - l <= 0.015 else "NO"))
            await remote.close()
            await local.close()
        finally:
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    asyncio.run(main())
