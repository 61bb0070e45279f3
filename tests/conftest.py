"""Shared fixtures: real etcd servers (plain and TLS with client certificates)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keyring.core
import pytest
from etcd_server import EtcdServer, EtcdTLS, etcd_binary
from gateway_server import ADMIN_PASSWORD, Client, Daemon, keyring_environ, make_certs

from gateway_daemon.certificates import make_ca, make_certificate, write_pair

# pytest-xdist's workers run with COLUMNS=80 and LINES=24 in their environment, which the programs the tests start
# (rich's tables, the terminal UI under tmux) would take as the terminal's size: the tests run as they do in one
# process, without them.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

# The slow tier: tests that took 3 s or more on the project's 2-core machine (`--durations`, measured again when
# the suite changes), listed by id in slow_tests.txt.  `./scripts/test -m "not slow"` is the everyday tier.
SLOW_TESTS = Path(__file__).with_name("slow_tests.txt")
SPREAD_FILES = {"test_tui_snapshots"}  # each test makes its own app and sample data: any worker may take it


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    slow = {line.strip() for line in SLOW_TESTS.read_text().splitlines()
            if line.strip() and not line.startswith("#")} if SLOW_TESTS.exists() else set()
    for item in items:
        if item.nodeid.split("[", 1)[0] in slow or item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
        # In several workers (scripts/test: --dist loadgroup) a file's tests stay in one worker with the servers its
        # module starts, except the files whose tests each start their own: those spread over every worker.
        module = item.module.__name__ if item.module is not None else ""
        if module not in SPREAD_FILES:
            item.add_marker(pytest.mark.xdist_group(module))


def _require_etcd() -> None:
    if etcd_binary() is None:
        pytest.skip("needs the etcd server binary on PATH (Debian package etcd-server)")


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> EtcdServer:
    """One plain etcd for the whole session; tests keep apart by using their own cluster_id."""
    _require_etcd()
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def etcd_tls(tmp_path_factory: pytest.TempPathFactory) -> EtcdTLS:
    """An etcd that speaks only TLS and requires a client certificate signed by `ca`."""
    _require_etcd()
    directory = tmp_path_factory.mktemp("etcd-tls")
    ca_cert, ca_key = make_ca("test etcd CA")
    ca_path, _ = write_pair(directory / "certs", "ca", ca_cert, ca_key)
    server_cert, server_key = make_certificate(ca_cert, ca_key, "etcd", hosts=["127.0.0.1", "localhost"])
    server_cert_path, server_key_path = write_pair(directory / "certs", "etcd", server_cert, server_key)
    client_cert, client_key = make_certificate(ca_cert, ca_key, "gateway", hosts=[], client=True, server=False)
    client_cert_path, client_key_path = write_pair(directory / "certs", "client", client_cert, client_key)
    server = EtcdServer(directory, tls={"ca": ca_path, "cert": server_cert_path, "key": server_key_path})
    yield EtcdTLS(server=server, ca=ca_path, cert=client_cert_path, key=client_key_path)
    server.close()


@pytest.fixture
def make_etcd_server(tmp_path) -> Callable[..., EtcdServer]:
    """A factory of private etcd servers, for tests that stop, kill or restart them; all stopped afterwards."""
    _require_etcd()
    servers: list[EtcdServer] = []

    def make(tls: dict | None = None, quota_backend_bytes: int | None = None) -> EtcdServer:
        server = EtcdServer(tmp_path / f"etcd-{len(servers)}", tls=tls, quota_backend_bytes=quota_backend_bytes)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()
        server.remove_data()


# ---------------------------------------------------------------- a real gateway-daemon over TLS

@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, certs):
    daemon = Daemon(tmp_path_factory.mktemp("server"), certs)
    daemon.start()
    yield daemon
    if daemon.process is not None:
        daemon.stop()


@pytest.fixture(scope="module")
def admin(daemon, tmp_path_factory, certs) -> Client:
    """A client of `daemon` logged in as its first admin, whose temporary password it changed."""
    client = Client(tmp_path_factory.mktemp("admin"), daemon.port, certs["ca"])
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{daemon.admin_password}\n{ADMIN_PASSWORD}\n")
    return client


@pytest.fixture
def home(monkeypatch):
    """Call with a Client to move this process into its home: the TUI here and the client's `gateway` commands
    share its config and its keyring (a real file keyring backend). The backend is put back afterwards."""
    previous = keyring.core.get_keyring()

    def use(client: Client) -> None:
        for key, value in keyring_environ(Path(client.env["HOME"])).items():
            monkeypatch.setenv(key, value)
        keyring.core.init_backend()
        assert type(keyring.core.get_keyring()).__name__ == "PlaintextKeyring"

    yield use
    keyring.core.set_keyring(previous)


# ---------------------------------------------------------------- a package to install
@pytest.fixture(scope="session")
def tinydep(tmp_path_factory) -> Path:
    """A tiny wheel built here (tinydep 1.0, VALUE = "42"), so a venv's requirements need no network."""
    root = tmp_path_factory.mktemp("tinydep")
    (root / "tinydep").mkdir()
    (root / "tinydep" / "__init__.py").write_text('VALUE = "42"\n')
    (root / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=61"]\n'
                                         'build-backend = "setuptools.build_meta"\n'
                                         '[project]\nname = "tinydep"\nversion = "1.0"\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(root / "dist"), str(root)], check=True, capture_output=True)
    return next((root / "dist").glob("*.whl"))


# ---------------------------------------------------------------- an address of this machine that is not loopback
OUTSIDE_ADDRESS = "10.213.0.1"


@pytest.fixture(scope="session")
def outside_address():
    """A non-loopback address of this machine the tests make themselves (on a dummy, else a tap interface of
    their own, removed afterwards): what an isolated run reaches, unlike 127.0.0.1.  None where no interface
    can be made (not root, no iproute2)."""
    if not shutil.which("ip"):
        yield None
        return
    name = f"gwt{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "link", "add", name, "type", "dummy"], capture_output=True, text=True)
    if made.returncode != 0:  # a kernel without the dummy driver: a tap device does as well
        made = subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], capture_output=True, text=True)
    if made.returncode != 0:
        yield None
        return
    try:
        subprocess.run(["ip", "addr", "add", f"{OUTSIDE_ADDRESS}/32", "dev", name], check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)
        yield OUTSIDE_ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
