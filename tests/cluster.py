"""A gateway cluster on 127.0.0.1 for the tests: `gateway-daemon` servers (distributed execution) and runners on
one real etcd, TLS everywhere with the certificates gateway_server.make_certs makes."""

from __future__ import annotations

import dataclasses
import secrets
import time
from pathlib import Path

import pytest
from etcd_server import EtcdServer, etcd_binary

from gateway_server import Daemon, make_certs
from cli_helpers import start_daemon

TTL = 3  # [runner] lease_ttl: a dead runner leaves the registry within this many seconds
SCRIPT = '''\
import os, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
print("begin", args.get("name"), flush=True)
time.sleep(float(args.get("sleep", "0")))
print("hello", args.get("name"), "token", os.environ.get("TOKEN"), flush=True)
'''


class Node(Daemon):
    """A `gateway-daemon` of the cluster: a server (distributed) or a runner."""

    def __init__(self, folder: Path, certs: dict[str, Path], etcd: EtcdServer, cluster: str, mode: str,
                 key_file: Path | None, tags: str = ""):
        super().__init__(folder, certs)
        tls = f"use_tls = true\ncertificate_file = {certs['cert']}\nprivate_key_file = {certs['key']}\n"
        text = (f"[application]\nmode = {mode}\ndata_dir = {folder / 'data'}\ncluster_id = {cluster}\n"
                f"ca_certificate_file = {certs['ca']}\n"
                f"[store]\nbackend = etcd\netcd_hosts = {etcd.hosts}\n"
                f"[execution]\nkill_grace_period = 1\nmax_concurrent_runs = 2\n"
                f"[runner]\nlease_ttl = {TTL}\n")
        if mode == "server":
            text += f"[server]\nlisten_address = 127.0.0.1\nport = {self.port}\ndistributed_execution = true\n{tls}"
        else:
            text += f"listen_address = 127.0.0.1\nport = {self.port}\ntags = {tags}\n{tls}"
        if key_file is not None:
            text += f"[secrets]\nencrypt_key_file = {key_file}\n"
        self.config.write_text(text)
        self.id = f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)
        self.process = None


def start_all(nodes: list[Node]) -> None:
    """Start runners side by side (each waits for its own log line)."""
    offsets = {}
    for node in nodes:
        offsets[node] = node.log.stat().st_size if node.log.exists() else 0
        with open(node.log, "a") as handle:
            node.process = start_daemon(["--config", str(node.config)], handle)
    deadline = time.monotonic() + 60
    for node in nodes:
        while "serving gRPC on" not in node.log.read_text()[offsets[node]:]:
            assert node.process.poll() is None and time.monotonic() < deadline, node.log.read_text()
            time.sleep(0.05)


def wait_for(what, check, timeout: float = 30.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)



@dataclasses.dataclass
class Site:
    """What the nodes of one test cluster share: certificates, the secrets key file, one etcd, a cluster id."""

    root: Path
    certs: dict[str, Path]
    key_file: Path
    etcd: EtcdServer
    name: str

    def node(self, folder: str, mode: str, tags: str = "") -> Node:
        return Node(self.root / folder, self.certs, self.etcd, self.name, mode, self.key_file, tags)


def new_site(root: Path, prefix: str) -> Site:
    """A fresh etcd, certificates and secrets key under `root` (skips the test when etcd is not installed)."""
    if etcd_binary() is None:
        pytest.skip("needs the etcd server binary on PATH (Debian package etcd-server)")
    certs = make_certs(root / "certs")
    key_file = root / "secrets.key"
    key_file.write_text(secrets.token_hex(32))
    key_file.chmod(0o600)
    return Site(root, certs, key_file, EtcdServer(root / "etcd"), f"{prefix}-{secrets.token_hex(3)}")
