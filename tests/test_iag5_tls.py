"""TLS as IAG 5 configures it, configuration as IAG 5 ships it, and the `iagctl` command.

A real server with [server] client_cert_auth = true and certificates from `gateway cert-gen`: a client with
IAG 5's official client config ([application] ca_certificate_file, [client] certificate_file and
private_key_file: its own certificate) logs in and works; one without a certificate is refused in one line.
An old-style client file that put the CA in [client] certificate_file still works, with one warning.  Every
key of the official templates loads (file and environment forms), ~/.gateway.d/gateway.conf is read as IAG 5
reads it, new users get [server] default_user_role, and `iagctl server` / `iagctl runner` /
`iagctl server --recover-admin-user` do what IAG 5's do.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from cli_helpers import DAEMON, GATEWAY, IAGCTL, clean_environ, one_error_line, run_command, write
from gateway_daemon.config import ConfigError, load_config
from gateway_server import ADMIN_PASSWORD, Daemon, free_port, keyring_environ


def cert_gen(folder: Path) -> dict[str, Path]:
    """`gateway cert-gen --dir`: the CA, a server and a client certificate, as an operator makes them."""
    result = run_command(GATEWAY, ["cert-gen", "--dir", str(folder)], clean_environ(folder.parent))
    assert result.code == 0, str(result)
    files = {name: folder / name for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}
    assert all(path.is_file() for path in files.values()), str(result)
    return files


def server_daemon(folder: Path, certs: dict[str, Path], server: str = "") -> Daemon:
    daemon = Daemon(folder, {"cert": certs["server.crt"], "key": certs["server.key"]}, server=server)
    text = daemon.config.read_text().replace("mode = server\n", f"mode = server\nca_certificate_file = {certs['ca.crt']}\n")
    daemon.config.write_text(text)
    return daemon


class Operator:
    """One operator's machine with a gateway.conf written as given."""

    def __init__(self, folder: Path, text: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.config = write(folder / "gateway.conf", text)
        self.env = clean_environ(None, **keyring_environ(folder), GATEWAY_CONFIG=str(self.config))

    def __call__(self, *args: str, stdin: str | None = None, program: str = GATEWAY):
        return run_command(program, args, self.env, stdin=stdin, timeout=120)

    def ok(self, *args: str, stdin: str | None = None, program: str = GATEWAY):
        result = self(*args, stdin=stdin, program=program)
        assert result.code == 0, str(result)
        return result


def official_client_conf(port: int, certs: dict[str, Path]) -> str:
    """The client gateway.conf of IAG 5's documentation and deployment role."""
    return (f"[application]\nmode = client\nca_certificate_file = {certs['ca.crt']}\n"
            f"[client]\nhost = 127.0.0.1\nport = {port}\nuse_tls = true\n"
            f"certificate_file = {certs['client.crt']}\nprivate_key_file = {certs['client.key']}\n")


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    root = tmp_path_factory.mktemp("mtls")
    certs = cert_gen(root / "certs")
    daemon = server_daemon(root / "server", certs, "client_cert_auth = true\ndefault_user_role = operator\n"
                                                   "grpc_max_recv_msg_size = 65536\nruntime_data_dir = /var/lib/x\n")
    daemon.start()
    plain = server_daemon(root / "plain", certs)
    plain.start()
    for each in (daemon, plain):  # the admin's first login, with the official client config: every test logs in
        first = Operator(root / f"first-{each.port}", official_client_conf(each.port, certs))
        first.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                 stdin=f"{each.admin_password}\n{ADMIN_PASSWORD}\n")
    yield {"root": root, "certs": certs, "daemon": daemon, "plain": plain}
    for each in (daemon, plain):
        if each.process is not None:
            each.stop()


def test_cert_gen_makes_a_client_certificate_for_mutual_tls(mtls):
    cert = x509.load_pem_x509_certificate(mtls["certs"]["client.crt"].read_bytes())
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_official_client_config_logs_in_with_mutual_tls(mtls, tmp_path):
    daemon, certs = mtls["daemon"], mtls["certs"]
    client = Operator(tmp_path / "client", official_client_conf(daemon.port, certs))
    login = client.ok("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert "warning" not in login.err.lower(), login.err
    # the server said once, as it started, that [server] runtime_data_dir is accepted and not used
    said = [line for line in daemon.log.read_text().splitlines() if "runtime_data_dir" in line]
    assert len(said) == 1 and "WARN" in said[0].upper() and "not used" in said[0], said
    assert client.ok("get", "services").out.strip() != ""  # a table header at least
    # [server] default_user_role = operator: a user created without --role gets it, and is told so
    made = client.ok("create", "user", "alice", "--password-stdin", stdin="alice-password-1\n")
    assert made.out.strip() == "created user alice (role operator)"
    made = client.ok("create", "user", "bob", "--role", "editor", "--password-stdin", stdin="bob-password-12\n")
    assert made.out.strip() == "created user bob (role editor)"
    # [server] grpc_max_recv_msg_size = 65536: a bigger message is refused by the server
    refused = client("create", "repository", "big", "--url", "https://example.com/x.git", "--description", "d" * 100000)
    assert one_error_line(refused, 1).startswith("gateway: ") and "big" not in client.ok("get", "repositories").out


def test_a_client_without_a_certificate_is_refused_in_one_line(mtls, tmp_path):
    daemon, certs = mtls["daemon"], mtls["certs"]
    bare = Operator(tmp_path / "bare", f"[application]\nmode = client\nca_certificate_file = {certs['ca.crt']}\n"
                                       f"[client]\nhost = 127.0.0.1\nport = {daemon.port}\nuse_tls = true\n")
    line = one_error_line(bare("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n"), 1)
    assert "client certificate" in line and "[client] certificate_file" in line and "private_key_file" in line, line


def test_an_old_style_client_file_with_the_ca_in_certificate_file_works_and_warns_once(mtls, tmp_path):
    plain, certs = mtls["plain"], mtls["certs"]
    old = Operator(tmp_path / "old", f"[application]\nmode = client\n[client]\nhost = 127.0.0.1, 127.0.0.1:{plain.port}\n"
                                     f"port = {free_port()}\nuse_tls = true\ncertificate_file = {certs['ca.crt']}\n")
    login = old.ok("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    warnings = [line for line in login.err.splitlines() if "certificate_file" in line]
    assert len(warnings) == 1, login.err
    assert "is a CA certificate" in warnings[0] and "[application] ca_certificate_file" in warnings[0]
    # a user created without --role on a server with the default setting is a viewer
    made = old.ok("create", "user", "carol", "--password-stdin", stdin="carol-password-1\n")
    assert made.out.strip() == "created user carol (role viewer)"
    assert len([line for line in made.err.splitlines() if "certificate_file" in line]) == 1


def test_client_cert_auth_needs_tls_and_the_ca(tmp_path):
    base = f"[application]\nmode = server\ndata_dir = {tmp_path / 'd'}\n[server]\nclient_cert_auth = true\n"
    with pytest.raises(ConfigError, match=r"\[server\] client_cert_auth .* needs \[server\] use_tls"):
        load_config(str(write(tmp_path / "a.conf", base)), {})
    certs = {"cert": write(tmp_path / "s.crt", "x"), "key": write(tmp_path / "s.key", "x")}
    tls = base + f"use_tls = true\ncertificate_file = {certs['cert']}\nprivate_key_file = {certs['key']}\n"
    with pytest.raises(ConfigError, match=r"\[application\] ca_certificate_file is empty"):
        load_config(str(write(tmp_path / "b.conf", tls)), {})
    config = load_config(str(write(tmp_path / "c.conf", tls)), {"GATEWAY_SERVER_CLIENT_CERT_AUTH": "false"})
    assert config.get("server", "client_cert_auth") is False


# ---------------------------------------------------------------- the keys of IAG 5's templates
TEMPLATE_KEYS = """\
[features]
mcp_enabled = true
[server]
runtime_data_dir = '/var/lib/gateway/runtime'
grpc_max_recv_msg_size = 8388608
client_cert_auth = false
[runner]
runtime_data_dir = "/var/lib/gateway/runtime"
[connect]
proxy_url = 'http://proxy.example.com:3128'
proxy_username = 'iag'
proxy_password = 'proxy-secret-1'
"""


@pytest.mark.parametrize("mode", ["server", "runner", "client"])
def test_every_key_of_the_iag5_templates_loads(tmp_path, mode):
    extra = "[store]\nbackend = etcd\n" if mode == "runner" else ""
    text = f"[application]\nmode = {mode}\ndata_dir = {tmp_path / 'd'}\n" + TEMPLATE_KEYS + extra
    conf = write(tmp_path / "gateway.conf", text)
    config = load_config(str(conf), {})
    assert config.get("server", "grpc_max_recv_msg_size") == 8388608
    assert config.get("features", "mcp_enabled") is True
    assert config.get("connect", "proxy_url") == "http://proxy.example.com:3128"
    assert config.get("server", "runtime_data_dir") == "/var/lib/gateway/runtime"
    assert sum("mcp_enabled" in w for w in config.warnings) == 1
    assert sum("proxy_url" in w for w in config.warnings) == 1
    assert sum("runtime_data_dir" in w for w in config.warnings) == 1
    env = {"GATEWAY_CONNECT_PROXY_URL": "http://other:8080", "GATEWAY_CONNECT_PROXY_USERNAME": "u",
           "GATEWAY_CONNECT_PROXY_PASSWORD": "env-secret-2", "GATEWAY_SERVER_GRPC_MAX_RECV_MSG_SIZE": "1048576",
           "GATEWAY_FEATURES_MCP_ENABLED": "false", "GATEWAY_RUNNER_RUNTIME_DATA_DIR": "/srv/run",
           "GATEWAY_SERVER_RUNTIME_DATA_DIR": "/srv/run", "GATEWAY_SERVER_CLIENT_CERT_AUTH": "false",
           "GATEWAY_CLIENT_PRODUCTION_HOST": "gw.prod.example.com", "GATEWAY_CLIENT_PRODUCTION_PORT": "50443",
           "GATEWAY_CLIENT_MY_LAB_PRIVATE_KEY_FILE": "/keys/lab.key"}
    config = load_config(str(conf), env)
    assert config.get("connect", "proxy_url") == "http://other:8080"
    assert config.get("server", "grpc_max_recv_msg_size") == 1048576
    assert config.get("features", "mcp_enabled") is False and not any("mcp_enabled" in w for w in config.warnings)
    assert config.client("production").host == ("gw.prod.example.com",)
    assert config.client("production").port == 50443
    assert config.client("my_lab").private_key_file == "/keys/lab.key"
    # the real programs start past their configuration and never show the proxy password
    program = GATEWAY if mode == "client" else DAEMON
    shown = run_command(program, ["config"], clean_environ(tmp_path, GATEWAY_CONFIG=str(conf), **env))
    assert shown.code == 0, str(shown)
    assert "env-secret-2" not in shown.out + shown.err and "proxy-secret-1" not in shown.out + shown.err
    assert "[client:production]" in shown.out
    warned = [line for line in shown.out.splitlines() if line.startswith("# warning: ")]
    assert len(warned) == 2 and any("[connect] proxy_url" in w for w in warned), shown.out
    assert any("runtime_data_dir = /srv/run" in w and "data_dir" in w for w in warned), shown.out


def test_typos_of_known_keys_still_get_did_you_mean(tmp_path):
    conf = write(tmp_path / "g.conf", "[application]\nmode = server\n")
    for name, wanted in (("GATEWAY_SERVER_GRPC_MAX_RECV_MSG_SIZ", "grpc_max_recv_msg_size"),
                         ("GATEWAY_CONNECT_PROXY_URLS", "proxy_url"),
                         ("GATEWAY_FEATURES_MCP_ENABLE", "mcp_enabled"),
                         ("GATEWAY_CLIENT_HOTS", "host")):
        result = run_command(DAEMON, ["config"], clean_environ(tmp_path, GATEWAY_CONFIG=str(conf), **{name: "1"}))
        assert f"did you mean '{wanted}'?" in one_error_line(result, 2, "gateway-daemon: "), name
    bad = write(tmp_path / "b.conf", "[server]\nruntime_dir = /x\n")
    result = run_command(DAEMON, ["config", "--config", str(bad)], clean_environ(tmp_path))
    assert "did you mean 'runtime_data_dir'?" in one_error_line(result, 2)
    bad = write(tmp_path / "c.conf", "[server]\ngrpc_max_recv_msg_size = lots\n")
    result = run_command(DAEMON, ["config", "--config", str(bad)], clean_environ(tmp_path))
    assert "grpc_max_recv_msg_size = 'lots': expected" in one_error_line(result, 2)


# ---------------------------------------------------------------- where the file is found
def test_the_gateway_d_file_is_read_as_iag5_reads_it_and_config_names_it(tmp_path):
    home = tmp_path / "home"
    work = tmp_path / "cwd"
    work.mkdir()
    conf = write(home / ".gateway.d" / "gateway.conf", "[application]\nmode = local\ncluster_id = from_gateway_d\n")
    env = clean_environ(home)
    shown = run_command(GATEWAY, ["config"], env, cwd=work)
    assert shown.code == 0, str(shown)
    assert shown.out.splitlines()[0] == f"# config file: {conf}"
    found = [line for line in shown.out.splitlines() if line.startswith("# found: ")]
    assert found == ["# found: the first that exists of ./gateway.conf, ~/.gateway.d/gateway.conf, "
                     "~/.gateway/gateway.conf, /etc/gateway/gateway.conf"], shown.out
    assert re.search(r"\[application\]\s+cluster_id\s+from_gateway_d", shown.out)
    # IAG 5's default working dir is there too
    assert re.search(rf"\[application\]\s+data_dir\s+{re.escape(str(home / '.gateway.d'))}\s", shown.out), shown.out
    # ~/.gateway.d comes before ~/.gateway (and /etc/gateway), as in IAG 5; ./gateway.conf before both
    write(home / ".gateway" / "gateway.conf", "[application]\ncluster_id = from_dot_gateway\n")
    assert "from_gateway_d" in run_command(GATEWAY, ["config"], env, cwd=work).out
    write(work / "gateway.conf", "[application]\ncluster_id = from_cwd\n")
    here = run_command(GATEWAY, ["config"], env, cwd=work).out
    assert "from_cwd" in here and "# config file: ./gateway.conf" in here.splitlines()[0]
    named = run_command(GATEWAY, ["config"], {**env, "GATEWAY_CONFIG": str(conf)}, cwd=work).out
    assert named.splitlines()[0] == f"# config file: {conf}" and "# found: $GATEWAY_CONFIG" in named


# ---------------------------------------------------------------- iagctl
def test_iagctl_is_the_same_program(tmp_path):
    env = clean_environ(tmp_path, GATEWAY_CONFIG=str(write(tmp_path / "g.conf", "[application]\nmode = local\n")))
    result = run_command(IAGCTL, ["config"], env)
    assert result.code == 0 and "# config file:" in result.out, str(result)
    assert run_command(IAGCTL, ["get", "services"], env).code == 0


def test_iagctl_server_starts_a_server_and_recovers_the_admin_user(tmp_path):
    certs = cert_gen(tmp_path / "certs")
    daemon = server_daemon(tmp_path / "server", certs)
    # the file says client: `iagctl server` serves all the same, as IAG 5's does
    daemon.config.write_text(daemon.config.read_text().replace("mode = server", "mode = client"))
    env = clean_environ(tmp_path, GATEWAY_CONFIG=str(daemon.config))
    log = open(tmp_path / "iagctl.log", "w")
    process = subprocess.Popen([IAGCTL, "server"], stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while "serving gRPC on" not in (tmp_path / "iagctl.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "iagctl.log").read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    recovered = run_command(IAGCTL, ["server", "--recover-admin-user"], env)
    assert recovered.code == 0, str(recovered)
    password = re.search(r"new temporary password for admin: (\S+)", recovered.out).group(1)
    daemon.config.write_text(daemon.config.read_text().replace("mode = client", "mode = server"))
    daemon.start()
    try:
        client = Operator(tmp_path / "client", official_client_conf(daemon.port, certs))
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{password}\n{ADMIN_PASSWORD}\n", program=IAGCTL)
        assert client.ok("get", "services", program=IAGCTL).code == 0
    finally:
        daemon.stop()


def test_iagctl_runner_starts_the_daemon_as_a_runner(tmp_path):
    conf = write(tmp_path / "g.conf", f"[application]\nmode = server\ndata_dir = {tmp_path / 'd'}\n")
    result = run_command(IAGCTL, ["runner"], clean_environ(tmp_path, GATEWAY_CONFIG=str(conf)))
    # a runner needs etcd: the daemon, started in runner mode, says so in its own words
    assert "runner mode needs etcd" in one_error_line(result, 2, "gateway-daemon: ")


def test_iagctl_runner_serves_as_a_runner_on_etcd(tmp_path):
    from cluster import new_site

    site = new_site(tmp_path, "iagctl")
    runner = site.node("runner", "runner", "iag5")
    runner.config.write_text(runner.config.read_text().replace("mode = runner", "mode = client"))
    log = open(runner.log, "w")
    process = subprocess.Popen([IAGCTL, "--config", str(runner.config), "runner"], stdout=log, stderr=log,
                               env=clean_environ(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while "serving gRPC on" not in runner.log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, runner.log.read_text()
            time.sleep(0.1)
        assert "gateway.runner" in runner.log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        site.etcd.kill()


def test_client_certificate_files_that_are_wrong_are_one_line(tmp_path):
    ca = cert_gen(tmp_path / "certs")["ca.crt"]
    base = f"[application]\nmode = client\nca_certificate_file = {ca}\n[client]\nhost = 127.0.0.1\nport = {free_port()}\nuse_tls = true\n"
    missing = Operator(tmp_path / "missing", base + f"certificate_file = {tmp_path / 'nope.crt'}\n"
                                                    f"private_key_file = {tmp_path / 'nope.key'}\n")
    line = one_error_line(missing("login", "--username", "admin", "--password-stdin", stdin="x\n"), 2)
    assert line == f"gateway: [client] certificate_file = '{tmp_path / 'nope.crt'}': no such file"
    keyless = Operator(tmp_path / "keyless", base + f"private_key_file = {tmp_path / 'client.key'}\n")
    line = one_error_line(keyless("login", "--username", "admin", "--password-stdin", stdin="x\n"), 2)
    assert "private_key_file" in line and "without certificate_file" in line


def test_a_server_certificate_from_another_ca_names_the_setting_that_holds_the_ca(mtls, tmp_path):
    plain = mtls["plain"]
    other = cert_gen(tmp_path / "other")
    client = Operator(tmp_path / "c", official_client_conf(plain.port, other))
    line = one_error_line(client("login", "--username", "admin", "--password-stdin", stdin="x\n"), 1)
    assert "its certificate is not trusted" in line and "check [application] ca_certificate_file" in line, line


def test_a_client_certificate_from_another_ca_is_refused_in_one_line(mtls, tmp_path):
    daemon, certs = mtls["daemon"], mtls["certs"]
    forged = cert_gen(tmp_path / "forged")  # a client certificate any attacker can make
    conf = official_client_conf(daemon.port, {**forged, "ca.crt": certs["ca.crt"]})
    client = Operator(tmp_path / "c", conf)
    line = one_error_line(client("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n"), 1)
    assert "does not accept this client's certificate" in line and "[client] certificate_file" in line, line
    # the server's own key pair is no client certificate either: refused the same way
    own = Operator(tmp_path / "own", official_client_conf(daemon.port, {**certs, "client.crt": certs["server.crt"],
                                                                       "client.key": certs["server.key"]}))
    line = one_error_line(own("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n"), 1)
    assert "does not accept this client's certificate" in line, line


def test_a_flood_of_handshakes_without_a_certificate_leaves_the_server_serving(mtls, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from gateway_daemon.rpc.client import _asks_for_client_certificate

    daemon, certs = mtls["daemon"], mtls["certs"]
    target = f"127.0.0.1:{daemon.port}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        refused = list(pool.map(lambda _: _asks_for_client_certificate(target), range(40)))
    assert all(refused)  # every one closed at the handshake
    client = Operator(tmp_path / "after", official_client_conf(daemon.port, certs))
    client.ok("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert "admin" in client.ok("get", "users").out
    assert daemon.process is not None and daemon.process.poll() is None
