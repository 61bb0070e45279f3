"""A real single-member etcd on free 127.0.0.1 ports, for tests.

    server = EtcdServer(tmp_path)                    # plain http
    server = EtcdServer(tmp_path, tls={"ca": ..., "cert": ..., "key": ...})
    server = EtcdServer(tmp_path, quota_backend_bytes=16 * 1024 * 1024)  # a small etcd that fills up
    server.hosts        # "127.0.0.1:PORT", as [store] etcd_hosts takes it
    server.stop(); server.start(); server.kill()

With ``tls`` the client URLs are https, the server presents ``cert``/``key``
and only accepts clients with a certificate signed by ``ca``.  The data
directory and the ports stay the same across stop()/start(), so the data
survives a restart.  etcd's log goes to ``etcd.log`` in the directory given.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from gateway_server import free_port  # noqa: F401 (the one free-port rule; tests import it from here too)

START_TIMEOUT = 30.0


def etcd_binary() -> str | None:
    return shutil.which("etcd")




_RUNNING: set[EtcdServer] = set()
_CREATED: list[EtcdServer] = []  # each one's data folder goes when the tests end (64 MB of WAL each)


@atexit.register
def _kill_leftovers() -> None:
    """When the test process exits (after a failed or interrupted run too), no etcd is left running and no
    etcd data folder is left in the temporary directory."""
    for server in list(_RUNNING):
        server.kill()
    for server in _CREATED:
        server.remove_data()


@dataclasses.dataclass
class EtcdTLS:
    """A TLS etcd with client-certificate auth and the files a client needs."""

    server: EtcdServer
    ca: Path
    cert: Path
    key: Path


class EtcdServer:
    def __init__(self, tmp_dir: str | os.PathLike, tls: dict | None = None, name: str = "test",
                 quota_backend_bytes: int | None = None):
        binary = etcd_binary()
        if binary is None:
            raise RuntimeError("the etcd binary is not installed (Debian package etcd-server)")
        self.binary = binary
        self.dir = Path(tmp_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "etcd-data"
        self.log_path = self.dir / "etcd.log"
        self.tls = dict(tls) if tls else None
        self.name = name
        self.quota_backend_bytes = quota_backend_bytes
        self.client_port = free_port()
        self.peer_port = free_port()
        while self.peer_port == self.client_port:
            self.peer_port = free_port()
        self.process: subprocess.Popen | None = None
        _CREATED.append(self)
        self.start()

    # ------------------------------------------------------------ addresses
    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.hosts}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def command(self) -> list[str]:
        cmd = [
            self.binary,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self.name}={self.peer_url}",
            "--initial-cluster-state", "new",
            "--initial-cluster-token", f"test-{self.client_port}",
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
        ]
        if self.quota_backend_bytes:
            cmd += ["--quota-backend-bytes", str(self.quota_backend_bytes)]
        if self.tls:
            cmd += [
                "--cert-file", str(self.tls["cert"]),
                "--key-file", str(self.tls["key"]),
                "--trusted-ca-file", str(self.tls["ca"]),
                "--client-cert-auth",
            ]
        return cmd

    # ------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )
            _RUNNING.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def _client(self, timeout: float):
        import pyetcd

        host, port = "127.0.0.1", self.client_port
        if self.tls:
            return pyetcd.client(host, port, ca_cert=str(self.tls["ca"]), cert_key=str(self.tls["key"]),
                                 cert_cert=str(self.tls["cert"]), timeout=timeout)
        return pyetcd.client(host, port, timeout=timeout)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        error = "no answer"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"etcd exited with code {code} while starting; log tail:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.client_port), timeout=0.5):
                    pass
            except OSError as exc:
                error = str(exc)
                time.sleep(0.05)
                continue
            client = self._client(timeout=2.0)
            try:
                client.get("/health-probe")
                return
            except Exception as exc:  # not serving yet (no leader, TLS not up, ...)
                error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.1)
            finally:
                client.close()
        raise RuntimeError(
            f"etcd on {self.hosts} did not answer within {START_TIMEOUT:g} s ({error}); log tail:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        _RUNNING.discard(self)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as in a crash."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process = None
        _RUNNING.discard(self)

    def remove_data(self) -> None:
        """Delete the data folder (the server must not be running)."""
        assert self.process is None, "stop the etcd server before removing its data"
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def close(self) -> None:
        """Stop for good: the server and its data folder."""
        self.stop()
        self.remove_data()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> EtcdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fill_etcd(client, prefix: str = "/junk/") -> int:
    """Live keys outside the gateway's namespace (no compaction frees them) until etcd refuses writes; how many
    went in."""
    value = b"j" * 200_000
    for count in range(10_000):
        try:
            client.put(f"{prefix}{count:05d}", value)
        except Exception as exc:
            assert "database space exceeded" in str(exc), exc
            return count
    raise AssertionError("etcd never filled up")
