"""A real `gateway-daemon` (TLS on 127.0.0.1, certificates made here) and `gateway` clients with their own home
and keyring (keyrings.alt's file keyring): what the server and client-mode TUI tests share."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from gateway_daemon.certificates import make_ca, make_certificate, write_pair

from cli_helpers import BIN, Forked, Result, clean_environ, run_command, start_daemon

SCRIPT = '''\
import os, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
time.sleep(float(args.get("sleep", "0")))
print("hello", args.get("name"), "token", os.environ.get("TOKEN"))
sys.exit(int(args.get("exit", "0")))
'''


_GIVEN: set[int] = set()  # the ports this process handed out: never twice


def free_port() -> int:
    """A free port on 127.0.0.1 for a server a test starts.  In several workers (pytest-xdist) each worker picks
    from a range of its own below the ephemeral ports, so that two workers never race for one port between the
    pick and the server's bind; one process never hands out the same port twice."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        base = 10000 + int(worker[2:]) % 5 * 4000
        for port in random.sample(range(base, base + 4000), 4000):
            if port in _GIVEN:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _GIVEN.add(port)
            return port
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def make_certs(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and localhost, and another CA that signed nothing here."""
    ca_cert, ca_key = make_ca("test CA")
    ca, _ = write_pair(folder, "ca", ca_cert, ca_key)
    server, key = write_pair(folder, "server", *make_certificate(ca_cert, ca_key, "127.0.0.1",
                                                                  ["127.0.0.1", "localhost"], client=False))
    other_cert, other_key = make_ca("another CA")
    other, _ = write_pair(folder, "other-ca", other_cert, other_key)
    return {"ca": ca, "cert": server, "key": key, "other_ca": other}


class Daemon:
    def __init__(self, folder: Path, certs: dict[str, Path], expiration: str = "1440", server: str = "",
                 extra: str = ""):
        """`server`: more [server] lines; `extra`: more sections."""
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = folder / "server.conf"
        self.config.write_text(
            f"[application]\nmode = server\ndata_dir = {folder / 'data'}\n"
            f"[server]\nlisten_address = 127.0.0.1\nport = {self.port}\nuse_tls = true\n"
            f"certificate_file = {certs['cert']}\nprivate_key_file = {certs['key']}\n"
            f"api_key_expiration = {expiration}\n{server}[execution]\nkill_grace_period = 1\n{extra}")
        self.log = folder / "daemon.log"
        self.process: subprocess.Popen | Forked | None = None
        self.admin_password = ""

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0  # a restart appends: look only at this start's
        with open(self.log, "a") as handle:
            self.process = start_daemon(["--config", str(self.config)], handle)
        deadline = time.monotonic() + 30
        while "serving gRPC on" not in self.log.read_text()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the daemon did not start:\n" + self.log.read_text())
            time.sleep(0.05)
        found = re.search(r"temporary password (\S+);", self.log.read_text()[offset:])
        if found:
            self.admin_password = found.group(1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code


def keyring_environ(home: Path) -> dict[str, str]:
    """A home of its own, with a real file keyring in it (PlaintextKeyring: tests need no desktop session)."""
    return {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}


class Client:
    """One operator's machine: its own config, home and keyring."""

    def __init__(self, folder: Path, port: int, ca: Path | None, use_tls: bool = True):
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "gateway.conf"
        # IAG 5's layout: the CA in [application] ca_certificate_file ([client] certificate_file is the client's own)
        self.config.write_text("[application]\nmode = client\n" + (f"ca_certificate_file = {ca}\n" if ca else "")
                               + f"[client]\nhost = 127.0.0.1\nport = {port}\n"
                               f"use_tls = {'true' if use_tls else 'false'}\n")
        self.env = clean_environ(None, **keyring_environ(folder), GATEWAY_CONFIG=str(self.config))

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 120) -> Result:
        return run_command(str(BIN / "gateway"), args, self.env, stdin=stdin, timeout=timeout)

    def ok(self, *args: str, stdin: str | None = None) -> Result:
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result

    def login(self, user: str, password: str) -> Result:
        return self.ok("login", "--username", user, "--password-stdin", stdin=password + "\n")


ADMIN_PASSWORD = "admin-password-1"
