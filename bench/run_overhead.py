"""What a run through the gateway costs over running the script directly.

    .venv/bin/python bench/run_overhead.py [-n 30]

Interleaves N runs of a trivial python-script service through the engine (local
mode, SQLite store) with N runs of `python3 main.py` in the same tree, and prints
the medians, their ratio and the absolute overhead: for a repository pinned to a
commit (no fetch), for one that follows a branch (a fetch per run), and with a
requirements.txt (warm venv); a one-task local playbook through the gateway vs
`ansible-playbook` directly; and an OpenTofu `plan` (init and plan of a
`terraform_data` resource, in a fresh tree each time, through the gateway vs
`tofu init && tofu plan` directly; `tofu` from PATH, else terraform under that
name; skipped when neither is there).  Then runs per second at 4 concurrent.
Target: at most 10 ms added per run, warm.

The gateway's runs get [execution] network = isolated (slirp4netns, where it is
installed); the trivial script is also run through a second gateway with
network = host, interleaved, and the difference is printed: what isolating the
network costs a run (target: at most 15 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from gateway_daemon.config import load_config  # noqa: E402
from gateway_daemon.core import Repository, Service  # noqa: E402
from gateway_daemon.execution.ansible import ansible_binary  # noqa: E402



def make_repo(root: Path, wheel_dir: Path) -> tuple[Path, str]:
    repo = root / "origin"
    (repo / "plain").mkdir(parents=True)
    (repo / "plain" / "main.py").write_text('print("hello")\n')
    (repo / "withreq").mkdir()
    (repo / "withreq" / "main.py").write_text('import benchdep\nprint("hello", benchdep.X)\n')
    pkg = root / "benchdep"
    (pkg / "benchdep").mkdir(parents=True)
    (pkg / "benchdep" / "__init__.py").write_text("X = 1\n")
    (pkg / "pyproject.toml").write_text('[build-system]\nrequires=["setuptools"]\nbuild-backend="setuptools.build_meta"\n'
                                        '[project]\nname="benchdep"\nversion="1"\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheel_dir), str(pkg)], check=True, capture_output=True)
    (repo / "play").mkdir()
    (repo / "play" / "site.yml").write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n        msg: hello\n")
    wheel = next(wheel_dir.glob("*.whl"))
    shutil.copy(wheel, repo / "withreq" / wheel.name)  # in the tree: a sandboxed build sees nothing outside it
    (repo / "withreq" / "requirements.txt").write_text(f"./{wheel.name}\n")
    (repo / "plan").mkdir()
    (repo / "plan" / "main.tf").write_text('resource "terraform_data" "box" {\n  input = "hello"\n}\n')
    return repo, new_repo(repo, {})


def tofu_on_path(root: Path) -> str | None:
    """`tofu` from PATH, else terraform (the same CLI) under that name in a folder put first on PATH."""
    found = shutil.which("tofu")
    if found:
        return found
    terraform = shutil.which("terraform")
    if not terraform:
        return None
    folder = root / "tofu-bin"
    folder.mkdir()
    (folder / "tofu").symlink_to(terraform)
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ['PATH']}"
    return str(folder / "tofu")


def tofu_directly(tofu: str, plan: Path, scratch: Path) -> float:
    """What the gateway does for a plan, by hand: a fresh copy of the tree, init, plan."""
    tree = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(plan, tree / "plan")
    started = time.perf_counter()
    for args in (["init", "-input=false", "-no-color"], ["plan", "-input=false", "-no-color"]):
        subprocess.run([tofu, *args], cwd=tree / "plan", check=True, capture_output=True,
                       env=dict(os.environ, TF_IN_AUTOMATION="1"))
    elapsed = time.perf_counter() - started
    shutil.rmtree(tree)
    return elapsed


async def through_gateway(engine, service: str) -> float:
    started = time.perf_counter()
    final = None
    said: list[str] = []
    async for event in engine.run_service(service):
        if event.kind == "status":
            final = event.run
        said = (said + [str(getattr(line, "text", line)) for line in event.lines])[-5:]
    elapsed = time.perf_counter() - started
    assert final is not None and final.status == "succeeded", (final, said)
    return elapsed


def directly(program: str, script: Path) -> float:
    started = time.perf_counter()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(script.parent), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    subprocess.run([program, str(script)], cwd=script.parent, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def report(label: str, gateway: list[float], direct: list[float]) -> None:
    g, d = statistics.median(gateway), statistics.median(direct)
    print(f"{label:<34} gateway {g * 1000:7.1f} ms   direct {d * 1000:7.1f} ms   "
          f"ratio {g / d:5.2f}   overhead {(g - d) * 1000:6.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="runs of each kind")
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, commit = make_repo(root, root / "wheels")
        config_file = root / "gateway.conf"
        config_file.write_text("[execution]\nmax_concurrent_runs = 4\n")
        config = load_config(str(config_file), environ={"GATEWAY_APPLICATION_DATA_DIR": str(root / "data")})
        engine = open_engine(config, announce=lambda text: None)
        host_file = root / "gateway-host.conf"
        host_file.write_text("[execution]\nmax_concurrent_runs = 4\nnetwork = host\n")
        host_config = load_config(str(host_file), environ={"GATEWAY_APPLICATION_DATA_DIR": str(root / "data-host")})
        host_engine = open_engine(host_config, announce=lambda text: None)
        await host_engine.create(Repository(name="pinned", url=str(repo), reference=commit))
        await host_engine.create(Service(name="plain", type="python-script", repository="pinned",
                                         working_dir="plain", filename="main.py"))
        await through_gateway(host_engine, "plain")
        await engine.create(Repository(name="pinned", url=str(repo), reference=commit))
        await engine.create(Repository(name="branch", url=str(repo), reference="main"))
        for name, repository, workdir in (("plain", "pinned", "plain"), ("plain-branch", "branch", "plain"),
                                          ("withreq", "pinned", "withreq")):
            await engine.create(Service(name=name, type="python-script", repository=repository, working_dir=workdir,
                                        filename="main.py"))
        await engine.create(Service(name="playbook", type="ansible-playbook", repository="pinned", working_dir="play"))
        for service in ("plain", "plain-branch", "withreq", "playbook"):  # warm: clone, snapshot, venvs
            await through_gateway(engine, service)
        venvs = sorted((root / "data").glob("venvs/*/bin/python"))
        empty_python = next(str(p) for p in venvs if p.parent.parent.name.endswith("-empty"))
        venv_python = next(str(p) for p in venvs if not p.parent.parent.name.endswith("-empty"))
        print(f"{n} runs each, interleaved; python {sys.version.split()[0]}; medians\n")
        # Direct runs use the interpreter the gateway itself starts for the service.
        cases = (("trivial script, pinned commit", "plain", empty_python, repo / "plain" / "main.py"),
                 ("trivial script, branch (fetch)", "plain-branch", empty_python, repo / "plain" / "main.py"),
                 ("requirements.txt, warm venv", "withreq", venv_python, repo / "withreq" / "main.py"),
                 ("one-task local playbook", "playbook", ansible_binary(), repo / "play" / "site.yml"))
        for label, service, python, script in cases:
            gateway_times, direct_times = [], []
            for _ in range(n):
                gateway_times.append(await through_gateway(engine, service))
                direct_times.append(directly(python, script))
            report(label, gateway_times, direct_times)

        isolated_times, host_times, direct_times = [], [], []
        for _ in range(n):
            isolated_times.append(await through_gateway(engine, "plain"))
            host_times.append(await through_gateway(host_engine, "plain"))
            direct_times.append(directly(empty_python, repo / "plain" / "main.py"))
        report("trivial script, network = isolated", isolated_times, direct_times)
        report("trivial script, network = host", host_times, direct_times)
        cost = statistics.median(isolated_times) - statistics.median(host_times)
        print(f"{'isolating the network costs':<34} {cost * 1000:7.1f} ms a run (median isolated - median host)")
        await host_engine.close()

        tofu = tofu_on_path(root)
        if tofu is None:
            print("opentofu plan: skipped (neither tofu nor terraform on PATH)")
        else:
            await engine.create(Service(name="tofu-plan", type="opentofu-plan", repository="pinned",
                                        working_dir="plan"))
            await through_gateway(engine, "tofu-plan")  # warm: snapshot
            scratch = root / "scratch"
            scratch.mkdir()
            gateway_times, direct_times = [], []
            for _ in range(min(n, 10)):
                gateway_times.append(await through_gateway(engine, "tofu-plan"))
                direct_times.append(tofu_directly(tofu, repo / "plan", scratch))
            report(f"opentofu plan ({Path(os.path.realpath(tofu)).name})", gateway_times, direct_times)

        for concurrency in (1, 4):
            total = max(n, 8)
            started = time.perf_counter()
            for batch in range(0, total, concurrency):
                await asyncio.gather(*(through_gateway(engine, "plain") for _ in range(min(concurrency, total - batch))))
            elapsed = time.perf_counter() - started
            print(f"throughput at {concurrency} concurrent: {total / elapsed:6.1f} runs/s ({total} runs)")
        await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
