"""What handing runs to runners costs: a trivial service in-process, through a server alone, through 1 and 3 runners.

    .venv/bin/python bench/dispatch.py [-n 20]

Starts a real etcd (the `etcd` binary) and real `gateway-daemon` processes on 127.0.0.1 (no TLS), and runs a
trivial python-script service (a pinned commit, no venv) N times one after another in each setup, then 3N at 6
concurrent.  Prints the median time per run, runs per second, and the time added per run against the engine
in-process on the same etcd ("local") -- the issue's target: at most 25 ms added by a runner.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from etcd_server import EtcdServer, free_port  # noqa: E402
from gitutil import new_repo  # noqa: E402

from gateway_daemon.bootstrap import open_engine  # noqa: E402
from gateway_daemon.config import load_config  # noqa: E402
from gateway_daemon.core import Repository, Service  # noqa: E402
from gateway_daemon.rpc.client import Connection, Endpoint, RemoteGateway, login  # noqa: E402

BIN = Path(sys.executable).parent
PASSWORD = "bench-password-1"


def make_repo(root: Path) -> tuple[Path, str]:
    repo = root / "origin"
    return repo, new_repo(repo, {"main.py": 'print("hello")\n'})


class Daemon:
    def __init__(self, folder: Path, common: str, mode: str, distributed: bool = False):
        folder.mkdir(parents=True)
        self.port = free_port()
        self.log = folder / "daemon.log"
        self.config = folder / "gateway.conf"
        section = (f"[server]\nlisten_address = 127.0.0.1\nport = {self.port}\n"
                   f"distributed_execution = {'true' if distributed else 'false'}\n" if mode == "server" else
                   f"[runner]\nlisten_address = 127.0.0.1\nport = {self.port}\n")
        self.config.write_text(f"[application]\nmode = {mode}\ndata_dir = {folder / 'data'}\n{common}{section}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.process = subprocess.Popen([str(BIN / "gateway-daemon"), "--config", str(self.config)],
                                        stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env)

    def wait(self) -> str:
        deadline = time.monotonic() + 60
        while "serving gRPC on" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("a daemon did not start:\n" + self.log.read_text())
            time.sleep(0.05)
        return self.log.read_text()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


async def one_run(gateway, service: str = "trivial") -> float:
    started = time.perf_counter()
    final = None
    async for event in gateway.run_service(service):
        if event.kind == "status":
            final = event.run
    elapsed = time.perf_counter() - started
    assert final is not None and final.status == "succeeded", final
    return elapsed


async def measure(label: str, gateway, n: int, baseline: float | None) -> float:
    await one_run(gateway)  # warm: clone, channels
    times = [await one_run(gateway) for _ in range(n)]
    median = statistics.median(times)
    total = 3 * n
    started = time.perf_counter()
    for batch in range(0, total, 6):
        await asyncio.gather(*(one_run(gateway) for _ in range(min(6, total - batch))))
    concurrent = total / (time.perf_counter() - started)
    added = "" if baseline is None else (f"   added {(median - baseline) * 1000:6.1f} ms/run   "
                                         f"ratio {median / baseline:4.2f}")
    print(f"{label:<22} {median * 1000:7.1f} ms/run   {1 / median:5.1f} runs/s   "
          f"{concurrent:5.1f} runs/s at 6 concurrent{added}", flush=True)
    return median


async def remote(port: int, admin_password: str, first: bool) -> RemoteGateway:
    endpoint = Endpoint((f"127.0.0.1:{port}",), use_tls=False)
    if first:
        reply = await login(endpoint, "admin", admin_password, PASSWORD)
    else:
        reply = await login(endpoint, "admin", PASSWORD)
    return RemoteGateway(Connection(endpoint, reply.api_key))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="sequential runs in each setup")
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, commit = make_repo(root)
        key = root / "secrets.key"
        key.write_text("k" * 64)
        etcd = EtcdServer(root / "etcd")
        daemons: list[Daemon] = []
        try:
            common = (f"cluster_id = bench\n[store]\nbackend = etcd\netcd_hosts = {etcd.hosts}\n"
                      f"[secrets]\nencrypt_key_file = {key}\n[execution]\nmax_concurrent_runs = 4\n")
            config_file = root / "local.conf"
            config_file.write_text(f"[application]\nmode = local\ndata_dir = {root / 'local'}\ncluster_id = bench\n"
                                   + common.split("\n", 1)[1])
            engine = open_engine(load_config(str(config_file), environ={}), announce=lambda text: None)
            await engine.create(Repository(name="pinned", url=str(repo), reference=commit))
            await engine.create(Service(name="trivial", type="python-script", repository="pinned", filename="main.py"))
            print(f"{n} sequential runs (median) and {3 * n} at 6 concurrent; etcd store; "
                  f"python {sys.version.split()[0]}; {os.cpu_count()} cores\n", flush=True)
            local = await measure("in-process (local)", engine, n, None)

            plain = Daemon(root / "server", common, "server")
            daemons.append(plain)
            password = re.search(r"temporary password (\S+);", plain.wait()).group(1)
            gateway = await remote(plain.port, password, first=True)
            server_alone = await measure("server alone", gateway, n, local)
            await gateway.close()

            distributed = Daemon(root / "dserver", common, "server", distributed=True)
            runners = [Daemon(root / f"runner-{i}", common, "runner") for i in range(3)]
            daemons += [distributed, *runners]
            distributed.wait()
            runners[0].wait()
            gateway = await remote(distributed.port, "", first=False)
            while len(await gateway.list_runners()) < 1:
                await asyncio.sleep(0.1)
            one = await measure("server + 1 runner", gateway, n, local)
            for runner in runners[1:]:
                runner.wait()
            while len(await gateway.list_runners()) < 3:
                await asyncio.sleep(0.1)
            three = await measure("server + 3 runners", gateway, n, local)
            await gateway.close()
            print(f"\nadded by a runner over the server alone: {(one - server_alone) * 1000:.1f} ms/run (1 runner), "
                  f"{(three - server_alone) * 1000:.1f} ms/run (3 runners); over in-process: "
                  f"{(one - local) * 1000:.1f} ms/run (target: at most 25 ms)")
            await engine.close()
        finally:
            for daemon in daemons:
                if daemon.process.poll() is None:
                    daemon.stop()
            etcd.kill()


if __name__ == "__main__":
    asyncio.run(main())
