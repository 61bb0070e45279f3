"""An IAG 5 operator's gateway.conf, as their deployment tooling writes it, works here unchanged.

A complete IAG 5-layout server.conf and runner.conf (every key of every section, values quoted the way
IAG 5's deployment role writes them, the server with client_cert_auth = true and certificates from
`gateway cert-gen`) start a real server and a real runner on a real etcd, and a run goes through the runner
for a client written as IAG 5's official client config (mutual TLS: the client's own certificate and key);
their log files appear under server_dir as JSON lines in the zone asked for.  Then, in local mode through
the real `gateway` command: each [features] flag refusing create and run with one line, working_dir,
requirements_file, [terminal] times, log files, and the one-line errors for bad values.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli_helpers import BIN, DAEMON, GATEWAY, Result, clean_environ, one_error_line, run_command, write
from cluster import TTL, Node, new_site, wait_for
from gateway_daemon.config import SCHEMA, load_config
from gateway_daemon.execution.venvs import LAST_USED, MARKER, Venvs
from gateway_server import ADMIN_PASSWORD, Client
from test_iag5_tls import Operator, cert_gen, official_client_conf
from gitutil import new_repo

SCRIPT = '''\
import sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
print("hello", args.get("name"), "from", sys.prefix, flush=True)
'''
DAY = 86400


def iag5_server_conf(node: Node, site, folder: Path) -> str:
    certs = site.certs
    return f"""\
# gateway.conf as an IAG 5 deployment writes it for a server
[application]
mode = 'server'
cluster_id = '{site.name}'
working_dir = '{folder / "working"}'
ca_certificate_file = '{certs["ca"]}'
auto_accept_eula = true
venv_retention_period = 30d
venv_sweep_interval = 24h

[server]
listen_address = '127.0.0.1'
port = {node.port}
api_key_expiration = 1440
use_tls = true
certificate_file = '{certs["cert"]}'
private_key_file = '{certs["key"]}'
distributed_execution = true
client_cert_auth = true
grpc_max_recv_msg_size = 33554432
runtime_data_dir = ''

[client]
host = '127.0.0.1'
port = {node.port}
use_tls = true
certificate_file = '{certs["client"]}'
private_key_file = '{certs["client_key"]}'
api_key = ''

[connect]
enabled = true
hosts = 'gateway-manager.example.com:8080'
certificate_file = '/etc/gateway/gw-manager.pem'
private_key_file = '/etc/gateway/gw-manager-key.pem'
insecure_tls = false
server_ha_enabled = false
server_ha_is_primary = false
proxy_url = ''
proxy_username = ''
proxy_password = ''

[features]
ansible_enabled = false
python_enabled = true
opentofu_enabled = true
hostkeys_enabled = true
mcp_enabled = false

[log]
level = 'INFO'
console_json = true
file_enabled = true
file_json = true
server_dir = '{folder / "logs"}'
timestamp_timezone = 'Asia/Kolkata'

[python-script]
requirements_file = 'requirements.txt'

[registry]
default_overridable = true

[runner]
announcement_address = ''
listen_address = '0.0.0.0'
port = 50051
use_tls = false
certificate_file = '{certs["cert"]}'
private_key_file = '{certs["key"]}'
tags = ''
lease_ttl = {TTL}
runtime_data_dir = ''

[secrets]
encrypt_key_file = '{site.key_file}'

[store]
backend = 'etcd'
etcd_hosts = '{site.etcd.hosts}'
etcd_use_tls = false
etcd_ca_certificate_file = ''
etcd_client_cert_auth = false
etcd_certificate_file = ''
etcd_private_key_file = ''
dynamodb_table_name = 'itential.gateway5.store'

[terminal]
no_color = true
timestamp_timezone = 'utc'

[execution]
max_concurrent_runs = 2
default_timeout = 3600
output_limit = 1048576
kill_grace_period = 1
"""


def iag5_runner_conf(node: Node, site, folder: Path) -> str:
    certs = site.certs
    return f"""\
# gateway.conf as an IAG 5 deployment writes it for a runner
[application]
mode = "runner"
cluster_id = "{site.name}"
working_dir = "{folder / "working"}"
ca_certificate_file = "{certs["ca"]}"
auto_accept_eula = true
venv_retention_period = 720h
venv_sweep_interval = 24h

[server]
listen_address = "0.0.0.0"
port = 50051
api_key_expiration = 1440
use_tls = false
certificate_file = "/etc/gateway/gateway.crt"
private_key_file = "/etc/gateway/gateway.key"
distributed_execution = false
client_cert_auth = false
grpc_max_recv_msg_size = 4194304
runtime_data_dir = ""

[client]
host = "localhost"
port = 50051
use_tls = false
certificate_file = ""
private_key_file = ""
api_key = ""

[connect]
enabled = false
hosts = ""
certificate_file = ""
private_key_file = ""
insecure_tls = false
server_ha_enabled = false
server_ha_is_primary = false
proxy_url = ""
proxy_username = ""
proxy_password = ""

[features]
ansible_enabled = true
python_enabled = true
opentofu_enabled = true
hostkeys_enabled = true
mcp_enabled = false

[log]
level = "INFO"
console_json = false
file_enabled = true
file_json = true
server_dir = "{folder / "logs"}"
timestamp_timezone = "UTC"

[python-script]
requirements_file = "reqs.txt"

[registry]
default_overridable = false

[runner]
announcement_address = "127.0.0.1"
listen_address = "127.0.0.1"
port = {node.port}
use_tls = true
certificate_file = "{certs["cert"]}"
private_key_file = "{certs["key"]}"
tags = "iag5"
lease_ttl = {TTL}
runtime_data_dir = ""

[secrets]
encrypt_key_file = "{site.key_file}"

[store]
backend = "etcd"
etcd_hosts = "{site.etcd.hosts}"
etcd_use_tls = false
etcd_ca_certificate_file = ""
etcd_client_cert_auth = false
etcd_certificate_file = ""
etcd_private_key_file = ""
dynamodb_table_name = "itential.gateway5.store"

[terminal]
no_color = false
timestamp_timezone = "local"

[execution]
max_concurrent_runs = 2
default_timeout = 3600
output_limit = 1048576
kill_grace_period = 1
"""


def written_keys(text: str) -> set[tuple[str, str]]:
    keys, section = set(), ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            keys.add((section, line.split("=", 1)[0].strip()))
    return keys


def json_lines(path: Path) -> list[dict]:
    """Every line of a log file, each one JSON object (fails on any other line)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message"}, entry
    return entries


def stale_venv(working: Path, name: str, age_days: float) -> Path:
    """A built venv folder last used `age_days` ago."""
    target = working / "venvs" / name
    (target / "bin").mkdir(parents=True)
    for marker in (MARKER, LAST_USED):
        (target / marker).write_text("")
        then = time.time() - age_days * DAY
        os.utime(target / marker, (then, then))
    return target


@pytest.fixture(scope="module")
def iag5(tmp_path_factory):
    site = new_site(tmp_path_factory.mktemp("iag5"), "iag5")
    # the certificates an operator makes with `gateway cert-gen`: the CA, the server's (the runner's too) and
    # the client's own, which the server asks for (client_cert_auth = true)
    made = cert_gen(site.root / "cert-gen")
    site.certs = {"ca": made["ca.crt"], "cert": made["server.crt"], "key": made["server.key"],
                  "client": made["client.crt"], "client_key": made["client.key"]}
    server = site.node("server", "server")
    runner = site.node("runner", "runner", "iag5")
    server.config.write_text(iag5_server_conf(server, site, server.folder))
    runner.config.write_text(iag5_runner_conf(runner, site, runner.folder))
    runner_working = runner.folder / "working"
    old = stale_venv(runner_working, "py3.0.0-unused-for-40-days", 40)
    recent = stale_venv(runner_working, "py3.0.0-used-yesterday", 1)
    origin = site.root / "origin"
    new_repo(origin, {"main.py": SCRIPT, "reqs.txt": "# nothing to install\n"})
    server.start()
    runner.start()
    client = Operator(site.root / "client", official_client_conf(server.port, made))
    client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
              stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
    client.ok("create", "repository", "apps", "--url", str(origin))
    yield {"site": site, "server": server, "runner": runner, "client": client, "old": old, "recent": recent,
           "cert-gen": made}
    for node in (server, runner):
        if node.process is not None:
            node.kill()
    site.etcd.kill()


# Keys this gateway has and IAG 5 does not (the sandbox, the audit trail, login throttling): an IAG 5 file has none.
OWN_KEYS = {("execution", "sandbox"), ("execution", "run_as_user"), ("execution", "network"),
            ("execution", "memory_limit"), ("audit", "retention"), ("server", "login_failures_per_user"),
            ("server", "login_failures_per_address"), ("server", "login_lock_seconds"),
            ("server", "login_lock_max_seconds"), ("server", "allow_plaintext_runners"),
            ("server", "default_user_role"), ("server", "public_calls_at_once"),
            ("server", "public_calls_per_address"), ("runs", "retention_count"), ("runs", "retention_age"),
            ("runs", "output_budget"), ("store", "etcd_quota_bytes"), ("secrets", "provider_cache_seconds")}


def test_the_confs_hold_every_key_of_every_section():
    """data_dir is left out (IAG 5 calls it working_dir), and so are the keys IAG 5 does not have."""
    every = ({(section, key) for section, keys in SCHEMA.items() for key in keys} - {("application", "data_dir")}
             - OWN_KEYS)
    node = SimpleNamespace(port=1)
    site = SimpleNamespace(certs={"ca": "ca", "cert": "cert", "key": "key", "client": "c", "client_key": "ck"},
                           name="n", key_file="k",
                           etcd=SimpleNamespace(hosts="h:1"))
    for conf in (iag5_server_conf, iag5_runner_conf):
        assert written_keys(conf(node, site, Path("/x"))) == every


def test_a_run_goes_through_the_runner_started_from_an_iag5_runner_conf(iag5):
    """The client is IAG 5's official client config; the server asks it for its certificate."""
    client, runner, server = iag5["client"], iag5["runner"], iag5["server"]
    assert "certificate_file" in client.config.read_text() and "private_key_file" in client.config.read_text()
    wait_for("the runner", lambda: runner.id in client.ok("get", "runners").stdout)
    client.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py",
              "--runner-tag", "iag5")
    result = client.ok("run", "service", "hello", "--set", "name=iag5")
    # [python-script] requirements_file = "reqs.txt": the runner built a venv for it, in its working_dir
    venvs = runner.folder / "working" / "venvs"
    assert re.search(rf"hello iag5 from {re.escape(str(venvs))}/py", result.stdout), result.stdout
    run = json.loads(client.ok("get", "runs", "-o", "json").stdout)[0]
    assert run["status"] == "succeeded" and run["runner"] == runner.id
    assert not (runner.folder / "data").exists()  # working_dir is where everything went
    # client_cert_auth = true holds: the same client without its certificate and key is turned away
    bare = Client(runner.folder.parent / "bare-client", server.port, iag5["cert-gen"]["ca.crt"])
    refused = bare("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert "client certificate" in one_error_line(refused, 1), str(refused)


def test_unused_venvs_are_pruned_when_the_runner_starts(iag5):
    wait_for("the venv unused for 40 days to go (venv_retention_period = 720h)", lambda: not iag5["old"].exists())
    assert iag5["recent"].is_dir()


def test_daemon_logs_are_json_lines_under_server_dir_in_the_zone_asked_for(iag5):
    server, runner = iag5["server"], iag5["runner"]
    server_log = json_lines(server.folder / "logs" / "gateway.log")
    messages = [entry["message"] for entry in server_log]
    assert any("serving gRPC on 127.0.0.1" in m for m in messages)
    assert {e["logger"] for e in server_log} >= {"gateway.server"}
    # Asia/Kolkata is +05:30 all year round
    assert all(e["time"].endswith("+05:30") for e in server_log), server_log[0]
    stamp = datetime.fromisoformat(server_log[-1]["time"])
    assert abs(stamp - datetime.now(timezone.utc)) < timedelta(minutes=30)
    # [connect] enabled = true: said once, clearly, as a warning
    connect = [e for e in server_log if "[connect]" in e["message"]]
    assert len(connect) == 1 and connect[0]["level"] == "warn"
    assert "does not connect to Itential Platform" in connect[0]["message"]
    # console_json = true: the console lines are JSON too
    console = server.log.read_text().splitlines()
    assert any("serving gRPC on" in json.loads(line)["message"] for line in console if line.startswith("{"))
    assert not [line for line in console if re.match(r"\d{4}-\d\d-\d\dT.* INFO gateway", line)]

    runner_log = json_lines(runner.folder / "logs" / "gateway.log")
    assert any("serving gRPC on" in e["message"] for e in runner_log)
    assert all(e["time"].endswith("+00:00") for e in runner_log)
    assert any("unused for more than 30 days" in e["message"] for e in runner_log)
    # console_json = false: the runner's console is text, in the same zone
    text = [line for line in runner.log.read_text().splitlines() if "serving gRPC on" in line]
    assert text and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 INFO gateway.runner: ", text[0])
    assert not (server.folder / "working" / "gateway.log").exists()  # server_dir, not working_dir


def test_a_feature_the_server_turns_off_is_refused_to_its_clients(iag5):
    client = iag5["client"]
    refused = client("create", "service", "ansible-playbook", "play", "--repository", "apps")
    assert one_error_line(refused, 1) == \
        "gateway: ansible-playbook services are disabled: [features] ansible_enabled = false"
    assert "play" not in client.ok("get", "services").stdout


def test_client_api_key_is_used_instead_of_a_login(iag5, tmp_path):
    client, server = iag5["client"], iag5["server"]
    probe = ("from gateway_daemon.config import load_config; from gateway_tui.cli.session import endpoint; "
             "from gateway_tui.credentials import Credentials; import argparse; "
             "c = load_config(); print(Credentials(None).load(endpoint(c, argparse.Namespace()).address).api_key)")
    key = run_command(str(BIN / "python"), ["-c", probe], client.env).stdout.strip()
    assert len(key) > 20
    other = Operator(tmp_path / "scripted", official_client_conf(server.port, iag5["cert-gen"]))
    assert one_error_line(other("get", "services"), 1).startswith("gateway: not logged in")
    other.config.write_text(other.config.read_text() + f"api_key = '{key}'\n")
    # the key is taken as the client's login: the same listing (whatever earlier tests of the module made)
    listing = client.ok("get", "services").stdout
    assert other.ok("get", "services").stdout == listing
    shown = other.ok("config").stdout
    assert key not in shown and "(set, not shown)" in shown
    # a profile can carry its own key
    other.config.write_text(other.config.read_text().replace(f"api_key = '{key}'\n", "")
                            + f"[client:prod]\napi_key = \"{key}\"\n")
    assert other.ok("--profile", "prod", "get", "services").stdout == listing
    # `gateway login` still works
    other.ok("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert other.ok("get", "services").stdout == listing


# ---------------------------------------------------------------- local mode, through the real `gateway`
def local_env(root: Path, text: str, name: str = "gateway.conf") -> dict[str, str]:
    conf = write(root / name, text)
    return clean_environ(root, GATEWAY_CONFIG=str(conf), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")


def gw(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return run_command(GATEWAY, args, env, stdin=stdin, timeout=180)


def ok(result: Result) -> Result:
    assert result.code == 0, str(result)
    return result


FEATURES = {"python-script": "python_enabled", "ansible-playbook": "ansible_enabled",
            "opentofu-plan": "opentofu_enabled"}


def test_each_features_flag_refuses_create_and_run_with_one_line(tmp_path):
    working = tmp_path / "working"
    origin = tmp_path / "origin"
    new_repo(origin, {"main.py": SCRIPT, "site.yml": "- hosts: localhost\n  tasks: []\n", "main.tf": "\n"})
    on = local_env(tmp_path, f"[application]\nmode = 'local'\nworking_dir = '{working}'\n", "on.conf")
    ok(gw(on, "create", "repository", "apps", "--url", str(origin)))
    for kind in FEATURES:
        ok(gw(on, "create", "service", kind, f"{kind}-old", "--repository", "apps"))
    export = ok(gw(on, "db", "export")).stdout
    write(tmp_path / "export.yaml", export)

    for kind, key in FEATURES.items():
        off = local_env(tmp_path, f"[application]\nworking_dir = \"{working}\"\n[features]\n{key} = false\n",
                        f"{key}.conf")
        line = f"gateway: {kind} services are disabled: [features] {key} = false"
        assert one_error_line(gw(off, "create", "service", kind, f"{kind}-new", "--repository", "apps"), 1) == line
        assert one_error_line(gw(off, "run", "service", f"{kind}-old"), 1) == line
        assert one_error_line(gw(off, "edit", "service", f"{kind}-old", "--description", "x"), 1) == line
        imported = gw(off, "db", "import", str(tmp_path / "export.yaml"))
        assert imported.code == 1 and f"{kind} services are disabled: [features] {key} = false" in imported.err
        assert "Traceback" not in imported.err
        # the other kinds still work, and what exists can be seen and deleted
        other = next(k for k in FEATURES if k != kind)
        ok(gw(off, "create", "service", other, f"{other}-with-{key}", "--repository", "apps"))
        ok(gw(off, "delete", "service", f"{other}-with-{key}"))
        assert f"{kind}-old" in ok(gw(off, "get", "services")).stdout
    assert ok(gw(on, "get", "runs", "-o", "json")).json() == []  # no refused run was recorded

    off = local_env(tmp_path, f"[application]\nworking_dir = {working}\n[features]\nhostkeys_enabled = false\n",
                    "hostkeys.conf")
    for args in (("hostkeys", "get"), ("hostkeys", "add", "example.com"), ("hostkeys", "delete", "example.com")):
        assert one_error_line(gw(off, *args), 1) == \
            "gateway: host keys are disabled: [features] hostkeys_enabled = false"
    ok(gw(off, "delete", "service", "python-script-old"))


def test_working_dir_requirements_file_terminal_zone_and_local_log_file(tmp_path):
    working = tmp_path / "work dir"
    origin = tmp_path / "origin"
    new_repo(origin, {"main.py": SCRIPT, "deps.txt": "# nothing\n"})
    env = local_env(tmp_path, f"""\
[application]
mode = "local"
working_dir = "{working}"
[python-script]
requirements_file = 'deps.txt'
[terminal]
timestamp_timezone = 'UTC'
[log]
level = "DEBUG"
file_enabled = true
file_json = true
timestamp_timezone = utc
""")
    ok(gw(env, "create", "repository", "apps", "--url", str(origin)))
    ok(gw(env, "create", "service", "python-script", "hello", "--repository", "apps"))
    result = ok(gw(env, "run", "service", "hello", "--set", "name=local"))
    assert f"hello local from {working / 'venvs'}/py" in result.stdout  # deps.txt made it build one
    assert (working / "gateway.db").exists() and not (tmp_path / ".gateway").exists()
    run = ok(gw(env, "get", "runs", "-o", "json")).json()[0]
    text = Path(env["GATEWAY_CONFIG"]).read_text()

    def shown(zone: str) -> str:
        """When the run started, as `get runs` and `describe run` show it with [terminal] timestamp_timezone."""
        zoned = local_env(tmp_path, text.replace("timestamp_timezone = 'UTC'", f"timestamp_timezone = '{zone}'"),
                          f"{zone.replace('/', '-')}.conf")
        table = ok(gw(zoned, "get", "runs")).stdout
        described = ok(gw(zoned, "describe", "run", run["id"])).stdout
        started = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", table.splitlines()[1]).group(0)
        assert started in described
        return started

    utc = datetime.fromtimestamp(run["started_at"], timezone.utc)
    assert shown("UTC") == utc.strftime("%Y-%m-%d %H:%M:%S")
    assert shown("Asia/Kolkata") == (utc + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")

    entries = json_lines(working / "gateway.log")
    assert any(e["message"].startswith("gateway run (configuration file") for e in entries)
    assert all(e["time"].endswith("+00:00") for e in entries)


def test_iag5_values_quoted_either_way_and_booleans(tmp_path):
    for quote in ("'", '"', ""):
        text = (f"[application]\nmode = {quote}server{quote}\nworking_dir = {quote}{tmp_path / 'w'}{quote}\n"
                f"auto_accept_eula = {quote}true{quote}\n[features]\npython_enabled = false\n"
                f"[log]\nlevel = {quote}DEBUG{quote}\nfile_enabled = true\n")
        config = load_config(str(write(tmp_path / "q.conf", text)), {})
        assert config.mode == "server" and config.data_dir == tmp_path / "w"
        assert config.get("application", "auto_accept_eula") is True
        assert config.get("features", "python_enabled") is False and config.get("log", "file_enabled") is True
        assert config.get("log", "level") == "DEBUG"
    env = {"GATEWAY_APPLICATION_WORKING_DIR": str(tmp_path / "from-env"),
           "GATEWAY_PYTHON_SCRIPT_REQUIREMENTS_FILE": "other.txt"}
    config = load_config(str(write(tmp_path / "empty.conf", "")), env)
    assert config.data_dir == tmp_path / "from-env"
    assert config.get("python-script", "requirements_file") == "other.txt"


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None, program: str = GATEWAY) -> str:
    conf = write(tmp_path / "bad.conf", text)
    result = run_command(program, ["config", "--config", str(conf)], clean_environ(tmp_path, **(env or {})))
    return one_error_line(result, 2, f"{Path(program).name}: ")


def test_bad_iag5_values_are_one_line_errors(tmp_path):
    assert config_error(tmp_path, "[log]\ntimestamp_timezone = Mars/Olympus_Mons\n").endswith(
        "[log] timestamp_timezone = 'Mars/Olympus_Mons': expected UTC, Local or an IANA time zone name such as "
        "America/New_York")
    assert "expected UTC, Local or an IANA" in config_error(
        tmp_path, "", {"GATEWAY_TERMINAL_TIMESTAMP_TIMEZONE": "../../etc/passwd"}, DAEMON)
    for bad in ("30", "30x", "-1d", "0s", "1d 2h", "forever"):
        line = config_error(tmp_path, f"[application]\nvenv_retention_period = {bad}\n")
        assert line.endswith(f"venv_retention_period = {bad!r}: expected a duration like 30d, 720h, 12h or 1h30m "
                             "(units d, h, m, s; at least 1m)"), line
    assert config_error(tmp_path, "[store]\nbackend = 'dynamodb'\n").endswith(
        "[store] backend = 'dynamodb': DynamoDB is not supported by this gateway; use etcd (backend = etcd) "
        "for a shared store")
    assert "[features] python_enabled = 'maybe': expected a boolean" in config_error(
        tmp_path, "[features]\npython_enabled = maybe\n")
    assert "did you mean 'working_dir'?" in config_error(tmp_path, "[application]\nworkdir = /x\n")
    assert "did you mean 'timestamp_timezone'?" in config_error(
        tmp_path, "", {"GATEWAY_TERMINAL_TIMESTAMP_TIMEZON": "UTC"})
    assert "unknown section [feature]; did you mean 'features'?" in config_error(tmp_path, "[feature]\nx = 1\n")
    line = config_error(tmp_path, f"[application]\nworking_dir = {tmp_path / 'a'}\ndata_dir = {tmp_path / 'b'}\n")
    assert "working_dir" in line and "data_dir" in line and "differ" in line
    # the same folder under both names is fine
    same = write(tmp_path / "same.conf", f"[application]\nworking_dir = {tmp_path / 'a'}\ndata_dir = {tmp_path / 'a'}\n")
    assert load_config(str(same), {}).data_dir == tmp_path / "a"


def test_a_log_file_that_cannot_be_written_is_one_line(tmp_path):
    blocker = write(tmp_path / "not-a-dir", "")
    conf = write(tmp_path / "server.conf", f"[application]\nmode = server\nworking_dir = {tmp_path / 'w'}\n"
                                           f"[log]\nfile_enabled = true\nserver_dir = {blocker / 'logs'}\n")
    result = run_command(DAEMON, ["--config", str(conf)], clean_environ(tmp_path))
    line = one_error_line(result, 2, "gateway-daemon: ")
    assert "[log] file_enabled: cannot write" in line and "[log] server_dir" in line


def test_terminal_no_color_reaches_the_tui(tmp_path, monkeypatch):
    from gateway_tui.app import GatewayApp, terminal_settings

    monkeypatch.setenv("NO_COLOR", "")  # recorded first, so the variable is put back as it was afterwards
    monkeypatch.delenv("NO_COLOR")
    plain = load_config(str(write(tmp_path / "plain.conf", "[terminal]\ntimestamp_timezone = Local\n")), {})
    assert terminal_settings(plain) is None and "NO_COLOR" not in os.environ
    assert GatewayApp(None).no_color is False
    grey = load_config(str(write(tmp_path / "grey.conf", "[terminal]\nno_color = true\n"
                                                           "timestamp_timezone = 'UTC'\n")), {})
    assert terminal_settings(grey) == timezone.utc
    assert GatewayApp(None).no_color is True
    monkeypatch.setenv("NO_COLOR", "1")  # a user's own NO_COLOR works without the setting
    assert GatewayApp(None).no_color is True


def test_venv_prune_keeps_what_a_run_holds_and_what_was_used_recently(tmp_path):
    venvs = Venvs(tmp_path, retention=7 * DAY)
    old = stale_venv(tmp_path, "old", 8)
    held = stale_venv(tmp_path, "held", 8)
    fresh = stale_venv(tmp_path, "fresh", 6)
    half = tmp_path / "venvs" / "half-built"
    half.mkdir()
    venvs._hold(held)
    assert asyncio.run(venvs.prune()) == ["old"]
    assert not old.exists() and held.is_dir() and fresh.is_dir() and half.is_dir()
    venvs.release(held / "bin" / "python")  # its run ended: used just now
    assert asyncio.run(venvs.prune()) == []
    assert asyncio.run(venvs.prune(now=time.time() + 8 * DAY)) == ["fresh", "held"]
