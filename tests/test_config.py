"""gateway.conf and GATEWAY_* variables, through the real `gateway` and `gateway-daemon` commands.

Where the file comes from, what wins, the shipped example files, every typed value, and the one-line
error (exit code 2, never a traceback) for anything wrong.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from cli_helpers import DAEMON, GATEWAY, Result, Sandbox, check_all, run_all, write
from gateway_daemon.config import SCHEMA, ConfigError, load_config

# The example files live with the design notes, beside the project checkout.
EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"no example files at {EXAMPLES}")
PROGRAMS = {"gateway": GATEWAY, "gateway-daemon": DAEMON}


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path, write_config=False)


def values(result: Result) -> dict[tuple[str, str], dict[str, str]]:
    """`config -o json` output as {(section, key): {value, source}}."""
    data = result.json()
    return {(row["section"], row["key"]): row for row in data["values"]}


def config_json(box: Sandbox, program: str = GATEWAY, *extra: str, **kwargs) -> Result:
    run = box.gateway if program == GATEWAY else box.daemon
    return run("config", "-o", "json", *extra, **kwargs)


def fails_with_config_error(result: Result, *fragments: str) -> str:
    prefix = "gateway-daemon: " if result.args[0] == "gateway-daemon" else "gateway: "
    return result.fails(2, *fragments, prefix=prefix)


# ---------------------------------------------------------------- where the file comes from
def test_no_file_at_all_means_defaults_and_local_mode(box: Sandbox) -> None:
    if os.path.exists("/etc/gateway/gateway.conf"):
        pytest.skip("this machine has /etc/gateway/gateway.conf")
    table, as_json, daemon = run_all([
        lambda: box.gateway("config"),
        lambda: config_json(box),
        lambda: config_json(box, DAEMON),
    ])
    assert "(none: defaults)" in table.ok().out
    assert "local" in table.out
    for result in (as_json, daemon):
        data = result.ok().json()
        assert data["file"] is None
        rows = values(result)
        assert rows[("application", "mode")]["value"] == "local"
        assert rows[("application", "data_dir")]["value"] == str(box.root / ".gateway")
        assert {row["source"] for row in rows.values()} == {"default"}
        # The defaults the design names.
        assert rows[("server", "listen_address")]["value"] == "0.0.0.0"
        assert rows[("server", "port")]["value"] == "50051"
        assert rows[("server", "api_key_expiration")]["value"] == "1440"
        assert rows[("server", "certificate_file")]["value"] == "/etc/gateway/gateway.crt"
        assert rows[("server", "private_key_file")]["value"] == "/etc/gateway/gateway.key"
        assert rows[("client", "port")]["value"] == "50051"
        assert rows[("store", "backend")]["value"] == "local"
        assert rows[("application", "cluster_id")]["value"] == "default"
        assert rows[("log", "level")]["value"] == "INFO"


def test_discovery_order_flag_then_env_then_cwd_then_home(box: Sandbox) -> None:
    root = box.root
    flag = write(root / "flag.conf", "[application]\ncluster_id = from-flag\n")
    envfile = write(root / "env.conf", "[application]\ncluster_id = from-env\n")
    write(root / "gateway.conf", "[application]\ncluster_id = from-cwd\n")
    home = write(root / ".gateway" / "gateway.conf", "[application]\ncluster_id = from-home\n")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()

    with_env = {"GATEWAY_CONFIG": str(envfile)}
    cases = [  # (expected cluster_id, expected file, thunk); --config before and after the verb
        ("from-flag", str(flag), lambda: box.gateway("--config", str(flag), "config", "-o", "json", env=with_env)),
        ("from-flag", str(flag), lambda: box.daemon("config", "-o", "json", "--config", str(flag), env=with_env)),
    ]
    for program in PROGRAMS.values():
        cases += [
            ("from-env", str(envfile), lambda p=program: config_json(box, p, env=with_env)),
            ("from-cwd", "./gateway.conf", lambda p=program: config_json(box, p)),
            ("from-home", str(home), lambda p=program: config_json(box, p, cwd=elsewhere)),
        ]
    results = run_all(thunk for _, _, thunk in cases)

    def check(expected: str, file: str, result: Result) -> None:
        data = result.ok().json()
        assert data["file"] == file, str(result)
        rows = values(result)
        assert rows[("application", "cluster_id")] == {
            "section": "application", "key": "cluster_id", "value": expected, "source": file}, str(result)

    check_all(lambda e=e, f=f, r=r: check(e, f, r) for (e, f, _), r in zip(cases, results))


def test_a_named_file_that_is_missing_is_an_error_not_a_fallback(box: Sandbox) -> None:
    write(box.root / "gateway.conf", "[application]\nmode = local\n")  # would be found, but is not asked for
    missing = box.root / "missing.conf"
    results = run_all([
        lambda: box.gateway("config", "--config", str(missing)),
        lambda: box.gateway("config", env={"GATEWAY_CONFIG": str(missing)}),
        lambda: box.daemon("config", "--config", str(missing)),
        lambda: box.daemon("config", env={"GATEWAY_CONFIG": str(missing)}),
        lambda: box.daemon("config", "--config", str(box.root)),
    ])
    check_all([lambda r=r: fails_with_config_error(r, str(missing), "not found") for r in results[:4]]
              + [lambda: fails_with_config_error(results[4], str(box.root), "directory")])


# ---------------------------------------------------------------- what wins
def test_environment_wins_over_file_wins_over_default(box: Sandbox) -> None:
    conf = write(box.root / "gateway.conf",
                 "[server]\nport = 6000\nlisten_address = 127.0.0.1\n[client]\nhost = file.example\n")
    env = {"GATEWAY_SERVER_PORT": "7000", "GATEWAY_PASSWORD": "not a config variable"}
    for result in run_all([lambda: config_json(box, GATEWAY, "--config", str(conf), env=env),
                           lambda: config_json(box, DAEMON, "--config", str(conf), env=env)]):
        rows = values(result.ok())
        assert rows[("server", "port")]["value"] == "7000"
        assert rows[("server", "port")]["source"] == "environment GATEWAY_SERVER_PORT"
        assert rows[("server", "listen_address")] == {
            "section": "server", "key": "listen_address", "value": "127.0.0.1", "source": str(conf)}
        assert rows[("client", "host")]["value"] == "file.example"
        assert rows[("client", "host")]["source"] == str(conf)
        assert rows[("client", "port")] == {"section": "client", "key": "port", "value": "50051", "source": "default"}


def test_every_key_can_be_set_from_the_environment(box: Sandbox) -> None:
    pem = write(box.root / "tls" / "file.pem", "placeholder\n")
    key_content = "k3y-material-never-printed-0123456789"
    keyfile = write(box.root / "secrets.key", key_content + "\n")
    chosen = {  # values other than the default, valid together (TLS on everywhere, so files must exist)
        ("application", "mode"): ("server", "server"),
        ("application", "data_dir"): (str(box.root / "d"), str(box.root / "d")),
        ("application", "cluster_id"): ("team-a", "team-a"),
        ("application", "ca_certificate_file"): (str(pem), str(pem)),
        ("server", "listen_address"): ("127.0.0.1", "127.0.0.1"),
        ("server", "port"): ("6001", "6001"),
        ("server", "api_key_expiration"): ("60", "60"),
        ("server", "use_tls"): ("yes", "true"),
        ("server", "certificate_file"): (str(pem), str(pem)),
        ("server", "private_key_file"): (str(pem), str(pem)),
        ("server", "distributed_execution"): ("on", "true"),
        ("client", "host"): ("h1.example h2.example", "h1.example, h2.example"),
        ("client", "port"): ("6002", "6002"),
        ("client", "use_tls"): ("1", "true"),
        ("runner", "port"): ("6003", "6003"),
        ("runner", "tags"): ("gpu,linux", "gpu, linux"),
        ("store", "backend"): ("etcd", "etcd"),
        ("store", "etcd_hosts"): ("e1:2379, e2:2379 [::1]:2380", "e1:2379, e2:2379, [::1]:2380"),
        ("store", "etcd_use_tls"): ("TRUE", "true"),
        ("store", "etcd_ca_certificate_file"): (str(pem), str(pem)),
        ("store", "etcd_client_cert_auth"): ("true", "true"),
        ("store", "etcd_certificate_file"): (str(pem), str(pem)),
        ("store", "etcd_private_key_file"): (str(pem), str(pem)),
        ("secrets", "encrypt_key_file"): (str(keyfile), str(keyfile)),
        ("log", "level"): ("debug", "DEBUG"),
    }
    env = {}
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            raw = chosen.get((section, key), (spec.default, None))[0]
            env[f"GATEWAY_{section.upper()}_{key.upper()}"] = raw
    write(box.root / "gateway.conf", "[server]\nport = 5999\n")  # the environment still wins
    table, as_json, as_yaml, daemon = run_all([
        lambda: box.daemon("config", env=env),
        lambda: config_json(box, GATEWAY, env=env),
        lambda: box.daemon("config", "-o", "yaml", env=env),
        lambda: config_json(box, DAEMON, env=env),
    ])
    for result in (as_json, daemon):
        rows = values(result.ok())
        assert set(rows) == {(s, k) for s, keys in SCHEMA.items() for k in keys}
        for (section, key), row in rows.items():
            name = f"GATEWAY_{section.upper()}_{key.upper()}"
            assert row["source"] == f"environment {name}", row
            if (section, key) in chosen:
                assert row["value"] == chosen[(section, key)][1], row
    assert yaml.safe_load(as_yaml.ok().out) == as_json.json()
    assert "environment GATEWAY_SERVER_PORT" in table.ok().out
    assert table.out.startswith("# config file: ./gateway.conf")  # found, and every value overridden
    for result in (table, as_json, as_yaml, daemon):  # the key file is named, its content never shown
        assert str(keyfile) in result.out
        assert key_content not in result.out + result.err


def test_file_syntax_comments_commented_defaults_and_quotes(box: Sandbox) -> None:
    conf = write(box.root / "gateway.conf", """\
# a comment
; another comment
[application]
mode = local
cluster_id = "quoted-id"

[server]
#port = 1
listen_address = '127.0.0.1'
port = 6000  # an inline comment
api_key_expiration = 90

[client]
host = "h1.example, h2.example:6001"
""")
    rows = values(config_json(box, GATEWAY, "--config", str(conf), env={"GATEWAY_LOG_LEVEL": '"warn"'}).ok())
    assert rows[("application", "cluster_id")]["value"] == "quoted-id"
    assert rows[("server", "listen_address")]["value"] == "127.0.0.1"
    assert rows[("server", "port")]["value"] == "6000"
    assert rows[("server", "api_key_expiration")]["value"] == "90"
    assert rows[("client", "host")]["value"] == "h1.example, h2.example:6001"
    assert rows[("log", "level")]["value"] == "WARN"


# ---------------------------------------------------------------- the shipped examples
@needs_examples
@pytest.mark.parametrize("name", ["local", "server", "client", "runner"])
def test_example_files_load_exactly_as_written(box: Sandbox, name: str) -> None:
    conf = box.root / f"{name}.conf"
    shutil.copy(EXAMPLES / f"{name}.conf", conf)
    text = conf.read_text()
    gateway, daemon, table = run_all([
        lambda: config_json(box, GATEWAY, "--config", str(conf)),
        lambda: box.daemon("--config", str(conf), "config", "-o", "json"),
        lambda: box.daemon("config", env={"GATEWAY_CONFIG": str(conf)}),
    ])
    assert f"# config file: {conf}" in table.ok().out
    for result in (gateway, daemon):
        assert result.ok().json()["file"] == str(conf)
        rows = values(result)
        assert rows[("application", "mode")] == {
            "section": "application", "key": "mode", "value": name, "source": str(conf)}
        # Every key the example sets comes from it; every key it only mentions in a comment stays default.
        section = None
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]")
            elif line.startswith("#") and "=" in line:
                key = line.lstrip("#").split("=")[0].strip()
                assert rows[(section, key)]["source"] == "default", (section, key)
            elif "=" in line:
                key, value = (part.strip() for part in line.split("=", 1))
                assert rows[(section, key)]["source"] == str(conf), (section, key)
                assert rows[(section, key)]["value"] == value, (section, key)
    if name == "client":
        assert rows[("client", "host")]["value"] == "some.gateway-server.domain"
    if name == "runner":
        assert rows[("store", "backend")]["value"] == "etcd"
        assert rows[("store", "etcd_hosts")]["value"] == "etcd-host.domain:2379"


@needs_examples
def test_examples_with_tls_switched_on_need_their_files(box: Sandbox) -> None:
    server, runner = box.root / "server.conf", box.root / "runner.conf"
    shutil.copy(EXAMPLES / "server.conf", server)
    shutil.copy(EXAMPLES / "runner.conf", runner)
    cert = write(box.root / "tls" / "gateway.crt", "placeholder\n")
    key = write(box.root / "tls" / "gateway.key", "placeholder\n")
    results = run_all([
        lambda: box.daemon("--config", str(server), "config", env={"GATEWAY_SERVER_USE_TLS": "true"}),
        lambda: box.gateway("--config", str(server), "config",
                            env={"GATEWAY_SERVER_USE_TLS": "true", "GATEWAY_SERVER_CERTIFICATE_FILE": str(cert)}),
        lambda: box.daemon("--config", str(runner), "config", env={"GATEWAY_RUNNER_USE_TLS": "on"}),
        lambda: box.daemon("--config", str(runner), "config", env={"GATEWAY_STORE_ETCD_USE_TLS": "yes"}),
        lambda: box.daemon("--config", str(server), "config", "-o", "json", env={
            "GATEWAY_SERVER_USE_TLS": "true", "GATEWAY_SERVER_CERTIFICATE_FILE": str(cert),
            "GATEWAY_SERVER_PRIVATE_KEY_FILE": str(key)}),
    ])
    no_cert, no_key, runner_no_cert, etcd_no_ca, good = results
    check_all([
        lambda: fails_with_config_error(no_cert, "[server] certificate_file", "/etc/gateway/gateway.crt",
                                        "no such file", "use_tls"),
        lambda: fails_with_config_error(no_key, "[server] private_key_file", "/etc/gateway/gateway.key",
                                        "no such file"),
        lambda: fails_with_config_error(runner_no_cert, "[runner] certificate_file", "/etc/gateway/gateway.crt"),
        lambda: fails_with_config_error(etcd_no_ca, "[store] etcd_ca_certificate_file", "etcd_use_tls"),
        lambda: good.ok(),
    ])
    assert values(good)[("server", "certificate_file")]["source"] == "environment GATEWAY_SERVER_CERTIFICATE_FILE"


# ---------------------------------------------------------------- typed values
BAD_VALUES = [  # section, key, raw value, what the message must say is allowed
    ("server", "port", "0", "1-65535"),
    ("server", "port", "65536", "1-65535"),
    ("client", "port", "http", "1-65535"),
    ("runner", "port", "-1", "1-65535"),
    ("server", "use_tls", "maybe", "true/false, yes/no, on/off, 1/0"),
    ("store", "etcd_use_tls", "2", "true/false, yes/no, on/off, 1/0"),
    ("application", "mode", "standalone", "local, server, client, runner"),
    ("store", "backend", "redis", "local, memory, etcd"),
    ("store", "etcd_hosts", "etcd-host.domain", "host:port"),
    ("store", "etcd_hosts", "a:2379, b:99999", "host:port"),
    ("log", "level", "LOUD", "TRACE, DEBUG, INFO, WARN, ERROR, FATAL, DISABLED"),
    ("server", "api_key_expiration", "soon", "minutes"),
    ("application", "cluster_id", "a/b", "letters, digits"),
]


def by_turns(index: int, first: str) -> str:
    """Both programs share the loader: cases alternate between them, so each sees every kind of value."""
    other = DAEMON if first == GATEWAY else GATEWAY
    return first if index % 2 == 0 else other


def test_a_bad_value_in_the_file_is_one_line_and_exit_2(box: Sandbox) -> None:
    files = [write(box.root / f"bad{i}.conf", f"# line one\n[{section}]\n{key} = {raw}\n")
             for i, (section, key, raw, _) in enumerate(BAD_VALUES)]
    results = run_all(lambda i=i, f=f: box._run(by_turns(i, DAEMON), ["--config", str(f), "config"])
                      for i, f in enumerate(files))
    check_all(
        lambda r=r, f=f, case=case: fails_with_config_error(r, str(f), f"[{case[0]}]", case[1], repr(case[2]), case[3])
        for r, f, case in zip(results, files, BAD_VALUES)
    )


def test_a_bad_value_in_the_environment_is_one_line_and_exit_2(box: Sandbox) -> None:
    write(box.root / "gateway.conf", "[application]\nmode = local\n")
    names = [f"GATEWAY_{section.upper()}_{key.upper()}" for section, key, _, _ in BAD_VALUES]
    results = run_all(lambda i=i, n=n, case=case: box._run(by_turns(i, GATEWAY), ["get", "services"] if i % 2 == 0
                                                           else ["config"], env={n: case[2]})
                      for i, (n, case) in enumerate(zip(names, BAD_VALUES)))
    check_all(
        lambda r=r, n=n, case=case: fails_with_config_error(r, f"environment {n}", f"[{case[0]}]", case[1],
                                                            repr(case[2]), case[3])
        for r, n, case in zip(results, names, BAD_VALUES)
    )
    assert not (box.root / ".gateway").exists(), "a bad configuration must not touch the store"


def test_typed_values_accept_every_documented_spelling(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    bool_keys = [("server", "distributed_execution"), ("client", "use_tls"), ("store", "etcd_use_tls"),
                 ("store", "etcd_client_cert_auth")]
    spellings = {"true": True, "yes": True, "on": True, "1": True, "TRUE": True, "Yes": True,
                 "false": False, "no": False, "off": False, "0": False, "FALSE": False, "Off": False}
    for raw, expected in spellings.items():
        for section, key in bool_keys:
            config = load_config(None, {**env, f"GATEWAY_{section.upper()}_{key.upper()}": raw})
            assert config.get(section, key) is expected, (section, key, raw)
    for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "DISABLED", "warn"):
        assert load_config(None, {**env, "GATEWAY_LOG_LEVEL": level}).get("log", "level") == level.upper()
    for mode in ("local", "server", "client"):
        assert load_config(None, {**env, "GATEWAY_APPLICATION_MODE": mode}).mode == mode
    runner = load_config(None, {**env, "GATEWAY_APPLICATION_MODE": "runner", "GATEWAY_STORE_BACKEND": "etcd"})
    assert runner.mode == "runner"
    for backend in ("local", "memory", "etcd"):
        assert load_config(None, {**env, "GATEWAY_STORE_BACKEND": backend}).get("store", "backend") == backend
    for port in ("1", "65535", "50051"):
        assert load_config(None, {**env, "GATEWAY_SERVER_PORT": port}).get("server", "port") == int(port)
    hosts = load_config(None, {**env, "GATEWAY_STORE_ETCD_HOSTS": "a:1,b:2  c.example:2379,[::1]:2379"})
    assert hosts.get("store", "etcd_hosts") == ("a:1", "b:2", "c.example:2379", "[::1]:2379")
    # A runner keeps its resources in etcd; any other backend is refused with the reason.
    with pytest.raises(ConfigError, match=r"\[store\] backend = 'local': runner mode needs etcd"):
        load_config(None, {**env, "GATEWAY_APPLICATION_MODE": "runner"})


def test_tls_files_must_exist_and_be_readable(box: Sandbox) -> None:
    cert = write(box.root / "server.crt", "placeholder\n")
    key = write(box.root / "server.key", "placeholder\n")
    missing = box.root / "nope.crt"
    conf = write(box.root / "tls.conf", f"[application]\nmode = server\n[server]\nuse_tls = true\n"
                                        f"certificate_file = {missing}\nprivate_key_file = {key}\n")
    cases = [
        lambda: box.daemon("config", "--config", str(conf)),
        lambda: box.gateway("config", "--config", str(conf)),
        lambda: box.daemon("config", "--config", str(conf), env={"GATEWAY_SERVER_CERTIFICATE_FILE": str(box.root)}),
        lambda: box.gateway("config", env={"GATEWAY_SECRETS_ENCRYPT_KEY_FILE": str(missing)}),
        lambda: box.daemon("config", "--config", str(conf), env={"GATEWAY_SERVER_CERTIFICATE_FILE": str(cert)}),
    ]
    file_missing, same_for_gateway, a_directory, key_file_missing, good = run_all(cases)
    check_all([
        lambda: fails_with_config_error(file_missing, str(conf), "[server] certificate_file", repr(str(missing)),
                                        "no such file"),
        lambda: fails_with_config_error(same_for_gateway, str(conf), "[server] certificate_file", "no such file"),
        lambda: fails_with_config_error(a_directory, "environment GATEWAY_SERVER_CERTIFICATE_FILE",
                                        "[server] certificate_file", "no such file"),
        lambda: fails_with_config_error(key_file_missing, "environment GATEWAY_SECRETS_ENCRYPT_KEY_FILE",
                                        "[secrets] encrypt_key_file", str(missing)),
        lambda: good.ok(),
    ])
    if os.geteuid() != 0:  # root reads every file, so only an ordinary user can see this refusal
        cert.chmod(0)
        try:
            result = box.daemon("config", "--config", str(conf), env={"GATEWAY_SERVER_CERTIFICATE_FILE": str(cert)})
            fails_with_config_error(result, "[server] certificate_file", "not readable")
        finally:
            cert.chmod(0o600)


# ---------------------------------------------------------------- unknown keys, broken files
def test_unknown_keys_and_sections_are_refused(box: Sandbox) -> None:
    key = write(box.root / "key.conf", "[server]\nprot = 50051\n")
    section = write(box.root / "section.conf", "[servr]\nport = 50051\n")
    profile = write(box.root / "profile.conf", "[client:prod]\nhost = a.example\nmode = local\n")
    results = run_all([
        lambda: box.gateway("config", "--config", str(key)),
        lambda: box.daemon("config", "--config", str(key)),
        lambda: box.gateway("config", "--config", str(section)),
        lambda: box.daemon("--config", str(section), "config"),
        lambda: box.gateway("config", "--config", str(profile)),
        lambda: box.gateway("config", env={"GATEWAY_SERVER_PROT": "1"}),
        lambda: box.daemon("config", env={"GATEWAY_LOG_LEVL": "INFO"}),
    ])
    check_all([
        lambda: fails_with_config_error(results[0], str(key), "[server]", "unknown key 'prot'", "port"),
        lambda: fails_with_config_error(results[1], str(key), "[server]", "unknown key 'prot'", "port"),
        lambda: fails_with_config_error(results[2], str(section), "unknown section [servr]", "[server]"),
        lambda: fails_with_config_error(results[3], str(section), "unknown section [servr]", "[server]"),
        lambda: fails_with_config_error(results[4], str(profile), "[client:prod]", "unknown key 'mode'", "host"),
        lambda: fails_with_config_error(results[5], "GATEWAY_SERVER_PROT", "[server]", "unknown key 'prot'"),
        lambda: fails_with_config_error(results[6], "GATEWAY_LOG_LEVL", "[log]", "unknown key 'levl'", "level"),
    ])


def test_a_broken_file_is_one_line_naming_it(box: Sandbox) -> None:
    broken = {
        "no-section.conf": ("mode = local\n", ["line 1", "before any [section]"]),
        "twice.conf": ("[server]\nport = 1\nport = 2\n", ["line 3", "[server] port is set twice"]),
        "section-twice.conf": ("[server]\n[server]\n", ["line 2", "[server] appears twice"]),
        "no-equals.conf": ("[application]\nmode\n", ["line 2", "'mode'", "key = value"]),
    }
    files = {name: write(box.root / name, text) for name, (text, _) in broken.items()}
    binary = box.root / "binary.conf"
    binary.write_bytes(b"[application]\nmode = \xff\xfe\n")
    results = run_all([lambda i=i, f=f: box._run(by_turns(i, DAEMON), ["config", "--config", str(f)])
                       for i, f in enumerate(files.values())]
                      + [lambda: box.daemon("config", "--config", str(binary))])
    check_all(
        [lambda r=r, f=f, frags=broken[n][1]: fails_with_config_error(r, str(f), *frags)
         for r, (n, f) in zip(results, files.items())]
        + [lambda: fails_with_config_error(results[-1], str(binary), "UTF-8")]
    )


def test_config_output_shows_where_each_value_comes_from(box: Sandbox) -> None:
    keyfile = write(box.root / "secrets.key", "0123456789abcdef-secret-key-content\n")
    write(box.root / "gateway.conf",
          f"[application]\ndata_dir = {box.root / 'data'}\n[secrets]\nencrypt_key_file = {keyfile}\n")
    env = {"GATEWAY_LOG_LEVEL": "ERROR"}
    table, daemon_table, daemon_yaml = run_all([
        lambda: box.gateway("config", env=env),
        lambda: box.daemon("config", env=env),
        lambda: box.daemon("config", "-o", "yaml", env=env),
    ])
    for result in (table, daemon_table):
        lines = result.ok().out.splitlines()
        assert lines[0] == "# config file: ./gateway.conf"
        assert lines[1].split() == ["SECTION", "KEY", "VALUE", "SOURCE"]
        by_key = {tuple(line.split()[:2]): line.split() for line in lines[2:]}
        assert by_key[("[log]", "level")][2:] == ["ERROR", "environment", "GATEWAY_LOG_LEVEL"]
        assert by_key[("[application]", "data_dir")][2:] == [str(box.root / "data"), "./gateway.conf"]
        assert by_key[("[secrets]", "encrypt_key_file")][2:] == [str(keyfile), "./gateway.conf"]
        assert by_key[("[server]", "port")][2:] == ["50051", "default"]
        assert "secret-key-content" not in result.out
    data = yaml.safe_load(daemon_yaml.ok().out)
    assert data["file"] == "./gateway.conf"
    assert {"section": "log", "key": "level", "value": "ERROR", "source": "environment GATEWAY_LOG_LEVEL"} \
        in data["values"]
    assert "secret-key-content" not in daemon_yaml.out
    assert json.dumps(data)  # plain data, nothing YAML-specific
