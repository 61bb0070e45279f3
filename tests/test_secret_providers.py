"""External secrets for real: a real OpenBao server (Vault's API) with token and AppRole auth, plain and TLS; a
plugin provider written here; and a stand-in for CyberArk's Central Credential Provider (an HTTPS endpoint this
test starts, with client-certificate checking: CyberArk's own cannot be installed here).  Aliases and
`$gateway_secret_(alias)` references resolve when a run is prepared, in local mode, on a server and for a
runner; failures are one line; no value, token or secret id appears in records, output, logs or audit events."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway_daemon.certificates import make_ca, make_certificate, write_pair
from cli_helpers import gateway_env, gw, ok, one_error_line
from cluster import new_site, start_all, wait_for
from gateway_server import ADMIN_PASSWORD, Client
from gitutil import new_repo
from openbao import Bao

VALUE = "Vault-Pa55-alpha-7f3c"  # what the tests look for everywhere it must not be
ROTATED = "Vault-Pa55-bravo-91e2"
SCRIPT = '''\
import hashlib, os, sys
for name in ("DB", "DSN", "ARG"):
    value = os.environ.get(name, "")
    print(name, hashlib.sha256(value.encode()).hexdigest()[:16], "raw:", value)
print("args", " ".join(sys.argv[1:]))
for arg in sys.argv[1:]:
    print("arg", hashlib.sha256(arg.encode()).hexdigest()[:16])
'''


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = Bao(tmp_path_factory.mktemp("bao"), audit=True)
    server.put("app/db", password=VALUE, user="svc")
    server.put("app/multi", a="1111", b="2222")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("origin")
    new_repo(repo, {"main.py": SCRIPT})
    return repo


def local(tmp_path: Path, extra: str = "") -> dict[str, str]:
    return gateway_env(tmp_path / "gw", f"[application]\nmode = local\n{extra}")


def vault_provider(env, name: str, bao: Bao, token_file: Path, *more: str) -> None:
    ok(gw(env, "create", "secret-provider", name, "--type", "vault", "--auth-method", "token", "--url", bao.url,
          "--secrets-endpoint", "secret", "--token", str(token_file), *more))


def service_with_alias(env, origin: Path, alias: str = "db") -> None:
    ok(gw(env, "create", "repository", "apps", "--url", str(origin)))
    ok(gw(env, "create", "service", "python-script", "show", "--repository", "apps", "--filename", "main.py",
          "--secret", f"name={alias},type=env,target=DB",
          "--env", f"DSN=postgres://svc:$gateway_secret_({alias})@db.example/app",
          "--runtime-arg", f"--pw=$gateway_secret_({alias})"))


def everything_kept(root: Path) -> str:
    """Every byte the gateway keeps under `root`: its store, logs and run folders."""
    texts = []
    for path in root.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


def assert_nowhere(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text, f"{secret!r} leaked into:\n{text[:2000]}"


# ---------------------------------------------------------------- local mode, token auth
def test_vault_alias_resolves_masked_and_rotates(tmp_path, bao, origin):
    env = local(tmp_path, "[log]\nfile_enabled = true\nlevel = DEBUG\n")
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token + "\n")
    vault_provider(env, "vault", bao, token)
    ok(gw(env, "create", "secret", "db", "--provider", "vault", "--secret", "app/db", "--key", "password"))
    service_with_alias(env, origin)
    listed = ok(gw(env, "get", "secrets")).out
    assert "alias: vault app/db [password]" in listed
    shown = json.loads(ok(gw(env, "get", "secrets", "-o", "json")).out)
    assert shown[0]["provider"] == "vault" and shown[0]["path"] == "app/db" and "sealed" not in shown[0]

    run = ok(gw(env, "run", "service", "show"))
    assert f"DB {digest(VALUE)} raw: ******" in run.out, run.out
    assert f"DSN {digest('postgres://svc:' + VALUE + '@db.example/app')} raw: postgres://svc:******@db" in run.out
    assert "args --pw=******" in run.out
    assert ok(gw(env, "describe", "secret", "db", "--reveal")).out.count(VALUE) == 1

    bao.put("app/db", password=ROTATED, user="svc")  # rotated in Vault: the next run sees it
    try:
        again = ok(gw(env, "run", "service", "show"))
        assert f"DB {digest(ROTATED)} raw: ******" in again.out, again.out
    finally:
        bao.put("app/db", password=VALUE, user="svc")
    records = ok(gw(env, "get", "runs", "-o", "json")).out
    kept = everything_kept(tmp_path / "gw")
    assert "secret db from provider vault (vault): ok, fetched" in (tmp_path / "gw" / "data" / "gateway.log").read_text()
    assert_nowhere(VALUE, run.out, run.err, records, kept)
    assert_nowhere(ROTATED, again.out, kept)
    assert_nowhere(bao.root_token, run.out, records, kept)


def test_vault_failures_are_one_line_naming_alias_provider_and_cause(tmp_path, bao, origin):
    env = local(tmp_path)
    token = tmp_path / "vault-token"
    token.write_text("s.not-the-token-" + "x" * 20)
    vault_provider(env, "vault", bao, token)
    ok(gw(env, "create", "secret", "db", "--provider", "vault", "--secret", "app/db", "--key", "password"))
    service_with_alias(env, origin)
    wrong = one_error_line(gw(env, "run", "service", "show"), 1)
    assert "secret db (provider vault, vault)" in wrong and "permission denied" in wrong, wrong
    assert "not-the-token" not in wrong
    assert ok(gw(env, "get", "runs", "-o", "json")).out.strip() == "[]"  # nothing started

    token.write_text(bao.root_token)
    ok(gw(env, "edit", "secret", "db", "--secret", "app/nothing-here"))
    missing = one_error_line(gw(env, "run", "service", "show"), 1)
    assert "secret db (provider vault, vault): no secret at secret/app/nothing-here" in missing, missing
    ok(gw(env, "edit", "secret", "db", "--secret", "app/db", "--key", "no-such-field"))
    key = one_error_line(gw(env, "run", "service", "show"), 1)
    assert "has no key 'no-such-field'" in key, key
    assert "svc" not in key and VALUE not in key  # the other fields' values are not named
    ok(gw(env, "edit", "secret", "db", "--secret", "app/multi", "--key", ""))
    several = one_error_line(gw(env, "run", "service", "show"), 1)
    assert "holds 2 keys: give the alias --key" in several, several
    bao.put("app/huge", password="x" * (2 * 1024 * 1024))  # a store gone wrong: the answer is bounded
    ok(gw(env, "edit", "secret", "db", "--secret", "app/huge", "--key", "password"))
    huge = one_error_line(gw(env, "run", "service", "show"), 1)
    assert "answered more than 1024 KiB" in huge, huge
    token.unlink()
    unreadable = one_error_line(gw(env, "run", "service", "show"), 1)
    assert f"cannot read the token file {token}" in unreadable, unreadable

    # bad definitions: one line, nothing stored
    for args, fragment in (
        (("--type", "vault", "--auth-method", "token", "--url", bao.url, "--secrets-endpoint", "secret",
          "--token", "relative/file"), "must be an absolute path"),
        (("--type", "vault", "--auth-method", "token", "--url", "http://vault.example.com", "--secrets-endpoint",
          "secret", "--token", str(token)), "would send credentials unencrypted"),
        (("--type", "vault", "--url", bao.url, "--secrets-endpoint", "secret"), "needs --auth-method"),
        (("--type", "cyberark", "--url", "https://ccp.example.com"), "needs --app-id"),
        (("--type", "plugin", "--command", "/bin/true", "--token", str(token)), "--token is not for a plugin"),
    ):
        line = one_error_line(gw(env, "create", "secret-provider", "bad", *args), 1)
        assert fragment in line, line
    assert "bad" not in ok(gw(env, "get", "secret-providers")).out
    line = one_error_line(gw(env, "create", "secret", "orphan", "--provider", "nope", "--secret", "x"), 1)
    assert "nope" in line and "does not exist" in line, line
    line = one_error_line(gw(env, "delete", "secret-provider", "vault"), 1)
    assert "in use by secret db" in line, line


def test_vault_stopped_fails_before_the_script_starts(tmp_path, origin):
    bao = Bao(tmp_path / "bao-short")
    try:
        bao.put("app/db", password=VALUE)
        env = local(tmp_path)
        token = tmp_path / "vault-token"
        token.write_text(bao.root_token)
        vault_provider(env, "vault", bao, token)
        ok(gw(env, "create", "secret", "db", "--provider", "vault", "--secret", "app/db"))
        service_with_alias(env, origin)
        assert f"DB {digest(VALUE)}" in ok(gw(env, "run", "service", "show")).out
    finally:
        bao.stop()
    down = one_error_line(gw(env, "run", "service", "show"), 1)
    assert down == (f"gateway: secret db (provider vault, vault): cannot reach {bao.url}: connection refused"), down
    runs = json.loads(ok(gw(env, "get", "runs", "-o", "json")).out)
    assert len(runs) == 1  # the second never started
    assert_nowhere(bao.root_token, down, everything_kept(tmp_path / "gw"))


def test_vault_tls_verified_against_its_ca(tmp_path, origin):
    bao = Bao(tmp_path / "bao-tls", tls=True)
    try:
        bao.put("app/db", password=VALUE)
        env = local(tmp_path)
        token = tmp_path / "vault-token"
        token.write_text(bao.root_token)
        vault_provider(env, "trusting", bao, token, "--ca-file", str(bao.ca))
        vault_provider(env, "system-cas", bao, token)
        ok(gw(env, "create", "secret", "db", "--provider", "trusting", "--secret", "app/db"))
        ok(gw(env, "create", "secret", "untrusted", "--provider", "system-cas", "--secret", "app/db"))
        assert ok(gw(env, "describe", "secret", "db", "--reveal", "-o", "json")).json()["value"] == VALUE
        line = one_error_line(gw(env, "describe", "secret", "untrusted", "--reveal"), 1)
        assert "secret untrusted (provider system-cas, vault): TLS: the certificate of" in line, line
        assert "--ca-file" in line
        # plain http to a TLS port is refused too, and says so
        ok(gw(env, "edit", "secret-provider", "system-cas", "--url", bao.url.replace("https://", "http://")))
        line = one_error_line(gw(env, "describe", "secret", "untrusted", "--reveal"), 1)
        assert "secret untrusted (provider system-cas, vault)" in line, line
        assert_nowhere(bao.root_token, line)
    finally:
        bao.stop()


def test_provider_cache_seconds(tmp_path, bao, origin):
    env = local(tmp_path, "[secrets]\nprovider_cache_seconds = 300\n")
    assert "provider_cache_seconds" in ok(gw(env, "config")).out
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    vault_provider(env, "vault", bao, token)
    ok(gw(env, "create", "secret", "cached", "--provider", "vault", "--secret", "app/cache", "--key", "v"))
    bao.put("app/cache", v="first-value")
    script = ("import asyncio, sys\nfrom gateway_daemon.bootstrap import open_gateway\nfrom gateway_daemon.config "
              "import load_config\n"
              "async def main():\n    gateway = await open_gateway(load_config())\n"
              "    print(await gateway.reveal_secret('cached'))\n    sys.stdin.readline()\n"
              "    print(await gateway.reveal_secret('cached'), flush=True)\n    await gateway.close()\n"
              "asyncio.run(main())\n")
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", script], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "first-value"
        bao.put("app/cache", v="second-value")
        out, err = process.communicate("\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert out.strip() == "first-value", err  # kept for 300 s
    assert ok(gw(env, "describe", "secret", "cached", "--reveal", "-o", "json")).json()["value"] == "second-value"


# ---------------------------------------------------------------- a plugin provider
PLUGIN = '''#!/usr/bin/python3
import json, os, sys, time
request = json.load(sys.stdin)
path, env = request["path"], request["config"]["env"]
assert sys.argv[1:] == ["get"], sys.argv
if path == "fail":
    print("the backend is sealed", file=sys.stderr)
    sys.exit(3)
if path == "flood":
    sys.stdout.write("x" * (4 * 1024 * 1024))
    sys.exit(0)
if path == "slow":
    time.sleep(600)
if path == "uid":
    print(json.dumps({"value": "uid-%d" % os.getuid()}))
    sys.exit(0)
if path == "peek":
    print(json.dumps({"value": open(env["PEEK"]).read()}))
    sys.exit(0)
print(json.dumps({"value": env["PREFIX"] + path + ":" + request["key"]}))
'''


def test_plugin_provider(tmp_path, origin):
    env = local(tmp_path)
    plugin = tmp_path / "plugins" / "fetch-secret"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    plugin.chmod(0o755)
    key_file = tmp_path / "gw" / "data" / "secrets.key"
    ok(gw(env, "create", "secret", "sealed-here", "--value-file", "-", stdin="sealed-value"))
    assert key_file.exists()
    ok(gw(env, "create", "secret-provider", "plug", "--type", "plugin", "--command", str(plugin),
          "--env", "PREFIX=plugged-", "--env", f"PEEK={key_file}"))
    for alias, path in (("good", "app/one"), ("failing", "fail"), ("flooding", "flood"), ("who", "uid"),
                        ("peeking", "peek")):
        ok(gw(env, "create", "secret", alias, "--provider", "plug", "--secret", path, "--key", "k1"))
    assert ok(gw(env, "describe", "secret", "good", "--reveal", "-o", "json")).json()["value"] == "plugged-app/one:k1"
    service_with_alias(env, origin, "good")
    assert f"DB {digest('plugged-app/one:k1')} raw: ******" in ok(gw(env, "run", "service", "show")).out
    line = one_error_line(gw(env, "describe", "secret", "failing", "--reveal"), 1)
    assert line == (f"gateway: secret failing (provider plug, plugin): the plugin {plugin} exited with code 3: "
                    "the backend is sealed"), line
    line = one_error_line(gw(env, "describe", "secret", "flooding", "--reveal"), 1)
    assert "wrote more than 256 KiB" in line, line
    # in the runs' sandbox: not root, and the gateway's key is not there to read
    uid = ok(gw(env, "describe", "secret", "who", "--reveal", "-o", "json")).json()["value"]
    assert uid != "uid-0", uid
    line = one_error_line(gw(env, "describe", "secret", "peeking", "--reveal"), 1)
    assert "exited with code 1: FileNotFoundError" in line, line
    assert_nowhere(key_file.read_text().strip(), line)


def test_plugin_time_limit(tmp_path):
    from gateway_daemon.core.resources.secret_providers import ProviderError, SecretProvider
    from gateway_daemon.execution.sandbox import Sandbox
    from gateway_daemon.execution.secret_providers import PluginClient

    plugin = tmp_path / "slow-plugin"
    plugin.write_text(PLUGIN)
    plugin.chmod(0o755)
    provider = SecretProvider(name="slow", type="plugin", command=str(plugin))
    client = PluginClient(Sandbox("auto", hidden=[tmp_path / "data"]), timeout=2, scratch=tmp_path / "data" / "plugins")

    async def fetch() -> str:
        return await client.fetch(provider, "slow", "")

    started = time.monotonic()
    with pytest.raises(ProviderError, match="did not answer within 2 s"):
        asyncio.run(fetch())
    assert time.monotonic() - started < 15


# ---------------------------------------------------------------- CyberArk CCP: a stand-in over mutual TLS
class _CCPStandIn(BaseHTTPRequestHandler):
    """Answers as CyberArk's Central Credential Provider does: GET /AIMWebService/api/Accounts?AppID&Safe&Object."""

    accounts = {("ProdSafe", "DB_Password"): {"Content": VALUE, "UserName": "dbadmin", "Address": "db.example"}}

    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/AIMWebService/api/Accounts" or query.get("AppID") != "gateway-app":
            return self._answer(403, {"ErrorCode": "APPAP004E", "ErrorMsg": "Application is not authorized"})
        if query.get("Object") == "Flood":  # a provider gone wrong: an endless answer
            return self._answer(200, {"Content": "x" * (5 * 1024 * 1024)})
        account = self.accounts.get((query.get("Safe"), query.get("Object")))
        if account is None:
            return self._answer(404, {"ErrorCode": "APPAP004E", "ErrorMsg": "Password object matching query "
                                                                           "[Object] was not found"})
        return self._answer(200, account)

    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def ccp(tmp_path):
    folder = tmp_path / "ccp"
    ca_cert, ca_key = make_ca("ccp CA")
    ca, _ = write_pair(folder, "ca", ca_cert, ca_key)
    cert, key = write_pair(folder, "server", *make_certificate(ca_cert, ca_key, "127.0.0.1", ["127.0.0.1"],
                                                               client=False))
    client_cert, client_key = write_pair(folder, "client", *make_certificate(ca_cert, ca_key, "gateway", hosts=[],
                                                                             client=True, server=False))
    other_ca_cert, other_ca_key = make_ca("another CA")
    stranger_cert, stranger_key = write_pair(folder, "stranger", *make_certificate(
        other_ca_cert, other_ca_key, "gateway", hosts=[], client=True, server=False))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no answer
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CCPStandIn)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"https://127.0.0.1:{server.server_address[1]}", "ca": ca, "cert": client_cert, "key": client_key,
           "stranger_cert": stranger_cert, "stranger_key": stranger_key}
    server.shutdown()
    server.server_close()


def test_cyberark_ccp_stand_in_over_mutual_tls(tmp_path, ccp, origin):
    env = local(tmp_path)
    common = ("--type", "cyberark", "--url", ccp["url"], "--app-id", "gateway-app", "--ca-file", str(ccp["ca"]))
    ok(gw(env, "create", "secret-provider", "ccp", *common, "--certificate-file", str(ccp["cert"]),
          "--private-key-file", str(ccp["key"])))
    ok(gw(env, "create", "secret-provider", "stranger", *common, "--certificate-file", str(ccp["stranger_cert"]),
          "--private-key-file", str(ccp["stranger_key"])))
    ok(gw(env, "create", "secret", "db", "--provider", "ccp", "--secret", "ProdSafe/DB_Password"))
    ok(gw(env, "create", "secret", "db-user", "--provider", "ccp", "--secret", "ProdSafe/DB_Password",
          "--key", "UserName"))
    ok(gw(env, "create", "secret", "gone", "--provider", "ccp", "--secret", "ProdSafe/Nothing"))
    ok(gw(env, "create", "secret", "refused", "--provider", "stranger", "--secret", "ProdSafe/DB_Password"))
    service_with_alias(env, origin)
    run = ok(gw(env, "run", "service", "show"))
    assert f"DB {digest(VALUE)} raw: ******" in run.out, run.out
    assert ok(gw(env, "describe", "secret", "db-user", "--reveal", "-o", "json")).json()["value"] == "dbadmin"
    line = one_error_line(gw(env, "describe", "secret", "gone", "--reveal"), 1)
    assert "secret gone (provider ccp, cyberark): the credential provider answered 404 for ProdSafe/Nothing" in line
    ok(gw(env, "create", "secret", "flood", "--provider", "ccp", "--secret", "ProdSafe/Flood"))
    line = one_error_line(gw(env, "describe", "secret", "flood", "--reveal"), 1)
    assert "answered more than 1024 KiB" in line, line
    line = one_error_line(gw(env, "describe", "secret", "refused", "--reveal"), 1)
    assert "secret refused (provider stranger, cyberark)" in line and ccp["url"] in line, line
    assert_nowhere(VALUE, run.out, everything_kept(tmp_path / "gw"))


# ---------------------------------------------------------------- server mode: AppRole, audit, logs
def test_server_approle_token_renewed_and_logged_in_again_during_a_run_queue(tmp_path, bao, origin, admin, daemon):
    role_id, secret_id = bao.approle("gateway", token_ttl="4s", token_max_ttl="9s")
    secret_id_file = tmp_path / "secret-id"
    secret_id_file.write_text(secret_id + "\n")
    admin.ok("create", "secret-provider", "vault-ar", "--type", "vault", "--auth-method", "approle", "--url",
             bao.url, "--secrets-endpoint", "secret", "--role-id", role_id, "--secret-id-file", str(secret_id_file))
    admin.ok("create", "secret", "ar-db", "--provider", "vault-ar", "--secret", "app/db", "--key", "password")
    admin.ok("create", "repository", "apps-ar", "--url", str(origin))
    admin.ok("create", "service", "python-script", "ar-show", "--repository", "apps-ar", "--filename", "main.py",
             "--secret", "name=ar-db,type=env,target=DB")
    logins, renewals = bao.requests("auth/approle/login"), bao.requests("auth/token/renew-self")
    outputs = []
    started = time.monotonic()
    while time.monotonic() - started < 16:  # longer than the token's max TTL: renewed, then a new login
        outputs.append(admin.ok("run", "service", "ar-show").out)
        time.sleep(0.3)
    assert len(outputs) >= 5
    assert all(f"DB {digest(VALUE)} raw: ******" in out for out in outputs), outputs
    logins = bao.requests("auth/approle/login") - logins
    renewals = bao.requests("auth/token/renew-self") - renewals
    print(f"{len(outputs)} runs in {time.monotonic() - started:.1f} s: {logins} AppRole logins, {renewals} renewals")
    assert renewals >= 1, (logins, renewals)
    assert 2 <= logins < len(outputs), (logins, renewals)  # a token is kept between runs, and replaced in time
    kept = everything_kept(daemon.folder)
    assert_nowhere(secret_id, kept, *outputs, admin.ok("get", "audit", "-o", "json").out)
    assert_nowhere(VALUE, kept, *outputs)


def test_server_fetches_are_audited_and_failures_leak_nothing(tmp_path, bao, origin, admin, daemon):
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    admin.ok("create", "secret-provider", "vault-s", "--type", "vault", "--auth-method", "token", "--url", bao.url,
             "--secrets-endpoint", "secret", "--token", str(token))
    admin.ok("create", "secret", "s-db", "--provider", "vault-s", "--secret", "app/db", "--key", "password")
    admin.ok("edit", "secret-provider", "vault-s", "--description", "edited over gRPC")
    admin.ok("create", "secret-provider", "plug-s", "--type", "plugin", "--command", "/usr/local/bin/none",
             "--env", "A=1", "--env", "B=two")
    listed = {p["name"]: p for p in json.loads(admin.ok("get", "secret-providers", "-o", "json").out)}
    assert listed["vault-s"]["description"] == "edited over gRPC" and listed["vault-s"]["token_file"] == str(token)
    assert listed["plug-s"]["env"] == {"A": "1", "B": "two"}
    admin.ok("edit", "secret-provider", "plug-s", "--env", "C=3")
    assert json.loads(admin.ok("describe", "secret-provider", "plug-s", "-o", "json").out)["env"] == {"C": "3"}
    admin.ok("delete", "secret-provider", "plug-s")
    assert "alias: vault-s app/db [password]" in admin.ok("get", "secrets").out
    admin.ok("create", "secret", "s-gone", "--provider", "vault-s", "--secret", "app/gone")
    admin.ok("create", "repository", "apps-s", "--url", str(origin))
    admin.ok("create", "service", "python-script", "s-show", "--repository", "apps-s", "--filename", "main.py",
             "--env", "DSN=u:$gateway_secret_(s-db)@h", "--runtime-arg", "--pw=$gateway_secret_(s-db)")
    admin.ok("create", "service", "python-script", "s-broken", "--repository", "apps-s", "--filename", "main.py",
             "--secret", "name=s-gone,type=env,target=DB")
    run = admin.ok("run", "service", "s-show")
    assert f"DSN {digest('u:' + VALUE + '@h')} raw: u:******@h" in run.out and "args --pw=******" in run.out
    assert json.loads(admin.ok("describe", "secret", "s-db", "--reveal", "-o", "json").out)["value"] == VALUE
    failed = admin("run", "service", "s-broken")
    line = one_error_line(failed, 1)
    assert "secret s-gone (provider vault-s, vault): no secret at secret/app/gone" in line, line
    line = one_error_line(admin("create", "service", "python-script", "s-unknown", "--repository", "apps-s",
                                "--filename", "main.py", "--env", "X=$gateway_secret_(no-such)"), 1)
    assert "secret 'no-such' does not exist" in line, line
    events = json.loads(admin.ok("get", "audit", "-o", "json").out)
    fetches = [e for e in events if e["action"] == "secret-fetch"]
    assert any(e["target"] == "secret/s-db" and e["outcome"] == "ok" and "provider vault-s" in e["detail"]
               for e in fetches), fetches
    assert any(e["target"] == "secret/s-gone" and e["outcome"] == "failed" and "no secret at" in e["detail"]
               for e in fetches), fetches
    assert any(e["action"] == "create" and e["target"] == "secret-provider/vault-s" for e in events)
    log = (daemon.folder / "data" / "gateway.log")
    logged = log.read_text() if log.exists() else daemon.log.read_text()
    assert "secret s-db from provider vault-s (vault): ok, fetched" in logged
    records = admin.ok("get", "runs", "-o", "json").out
    assert_nowhere(VALUE, json.dumps(events), records, everything_kept(daemon.folder), line, run.out)
    assert_nowhere(bao.root_token, json.dumps(events), records, everything_kept(daemon.folder), run.out)


def test_providers_are_for_admins_only(tmp_path, bao, admin, daemon, certs):
    admin.ok("create", "user", "ed", "--role", "editor", "--password-stdin", stdin="editor-password-1\n")
    editor = Client(tmp_path / "editor", daemon.port, certs["ca"])
    editor.login("ed", "editor-password-1")
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    line = one_error_line(editor("create", "secret-provider", "mine", "--type", "vault", "--auth-method", "token",
                                 "--url", bao.url, "--secrets-endpoint", "secret", "--token", str(token)), 1)
    assert "permission" in line.lower() or "admin" in line.lower(), line
    one_error_line(editor("get", "secret-providers"), 1)


# ---------------------------------------------------------------- a runner: resolved on the server, sent in the job
def test_runner_gets_the_value_only_inside_the_job(tmp_path, bao, origin):
    site = new_site(tmp_path / "cluster", "providers")
    server, runner = site.node("server", "server"), site.node("runner", "runner")
    try:
        server.start()
        start_all([runner])
        client = Client(tmp_path / "client", server.port, site.certs["ca"])
        client.ok("login", "--username", "admin", "--password-stdin", "--change-password",
                  stdin=f"{server.admin_password}\n{ADMIN_PASSWORD}\n")
        wait_for("the runner", lambda: json.loads(client.ok("get", "runners", "-o", "json").out))
        token = tmp_path / "vault-token"
        token.write_text(bao.root_token)
        client.ok("create", "secret-provider", "vault", "--type", "vault", "--auth-method", "token", "--url",
                  bao.url, "--secrets-endpoint", "secret", "--token", str(token))
        client.ok("create", "secret", "db", "--provider", "vault", "--secret", "app/db", "--key", "password")
        client.ok("create", "repository", "apps", "--url", str(origin))
        client.ok("create", "service", "python-script", "show", "--repository", "apps", "--filename", "main.py",
                  "--secret", "name=db,type=env,target=DB", "--env", "DSN=u:$gateway_secret_(db)@h")
        run = client.ok("run", "service", "show")
        assert f"DB {digest(VALUE)} raw: ******" in run.out and f"DSN {digest('u:' + VALUE + '@h')}" in run.out
        record = json.loads(client.ok("get", "runs", "-o", "json").out)[0]
        assert record["runner"] == runner.id, record
        assert "secret db from provider vault (vault): ok, fetched" in server.log.read_text()
        assert "from provider" not in runner.log.read_text()  # the runner never asked the provider
        # A line the runner cuts at 16 KiB right inside a referenced value: masked there before the cut, so no
        # piece of it reaches the server unmasked.
        long_repo = tmp_path / "long"
        new_repo(long_repo, {"main.py": "import os\nprint('a' * (16 * 1024 - 4) + os.environ['PW'])\n"})
        client.ok("create", "repository", "long", "--url", str(long_repo))
        client.ok("create", "service", "python-script", "long", "--repository", "long", "--filename", "main.py",
                  "--env", "PW=$gateway_secret_(db)")
        cut = client.ok("run", "service", "long").out
        assert "line cut at 16 KiB" in cut and VALUE[:4] + " [line cut" not in cut, cut[-200:]
        client.ok("create", "secret", "gone", "--provider", "vault", "--secret", "app/gone")
        client.ok("create", "service", "python-script", "broken", "--repository", "apps", "--filename", "main.py",
                  "--secret", "name=gone,type=env,target=DB")
        line = one_error_line(client("run", "service", "broken"), 1)
        assert "secret gone (provider vault, vault): no secret at secret/app/gone" in line, line
        assert sorted(r["service"] for r in json.loads(client.ok("get", "runs", "-o", "json").out)) == ["long", "show"]
        for folder in (server.folder, runner.folder):
            assert_nowhere(VALUE, everything_kept(folder))
        assert_nowhere(bao.root_token, everything_kept(server.folder), everything_kept(runner.folder))
    finally:
        for node in (server, runner):
            if node.process is not None:
                node.kill()
        site.etcd.kill()
        site.etcd.remove_data()


# ---------------------------------------------------------------- db export / import
def test_providers_and_aliases_travel_with_db_export_without_credentials(tmp_path, bao):
    one = gateway_env(tmp_path / "one")
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    vault_provider(one, "vault", bao, token, "--description", "the team's vault")
    ok(gw(one, "create", "secret", "db", "--provider", "vault", "--secret", "app/db", "--key", "password",
          "--tag", "team=a"))
    exported = tmp_path / "export.yaml"
    ok(gw(one, "db", "export", "--file", str(exported)))
    text = exported.read_text()
    assert "secret-providers:" in text and str(token) in text
    assert_nowhere(bao.root_token, text)
    assert_nowhere(VALUE, text)
    two = gateway_env(tmp_path / "two")
    result = ok(gw(two, "db", "import", str(exported)))
    assert "create secret-provider vault" in result.out and "create secret db" in result.out, result.out
    assert ok(gw(two, "db", "import", str(exported))).out.splitlines()[-1] == \
        "imported: 0 created, 0 updated, 2 unchanged"
    for kind, name in (("secret-provider", "vault"), ("secret", "db")):
        a = json.loads(ok(gw(one, "describe", kind, name, "-o", "json")).out)
        b = json.loads(ok(gw(two, "describe", kind, name, "-o", "json")).out)
        assert a == b
    assert ok(gw(two, "describe", "secret", "db", "--reveal", "-o", "json")).json()["value"] == VALUE


# ---------------------------------------------------------------- references in decorator defaults and credentials
def test_decorator_defaults_resolve_but_typed_inputs_do_not(tmp_path, bao, origin):
    env = local(tmp_path)
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    vault_provider(env, "vault", bao, token)
    ok(gw(env, "create", "secret", "db", "--provider", "vault", "--secret", "app/db", "--key", "password"))
    schema = tmp_path / "form.json"
    schema.write_text(json.dumps({"type": "object", "properties": {
        "pw": {"type": "string", "default": "$gateway_secret_(db)"}}}))
    line = one_error_line(gw(env, "create", "decorator", "bad-form", "--schema", "-",
                             stdin=json.dumps({"type": "object", "properties": {
                                 "pw": {"type": "string", "default": "$gateway_secret_(nope)"}}})), 1)
    assert "secret 'nope' does not exist" in line, line
    ok(gw(env, "create", "decorator", "form", "--schema", str(schema)))
    ok(gw(env, "create", "repository", "apps", "--url", str(origin)))
    ok(gw(env, "create", "service", "python-script", "show", "--repository", "apps", "--filename", "main.py",
          "--decorator", "form"))
    default = ok(gw(env, "run", "service", "show"))
    assert f"arg {digest('--pw=' + VALUE)}" in default.out and "args --pw=******" in default.out, default.out
    typed = ok(gw(env, "run", "service", "show", "--set", "pw=$gateway_secret_(db)"))
    assert f"arg {digest('--pw=$gateway_secret_(db)')}" in typed.out, typed.out  # what the caller typed, as typed
    records = json.loads(ok(gw(env, "get", "runs", "-o", "json")).out)
    assert {json.dumps(r["inputs"]) for r in records} == {'{"pw": "******"}', '{"pw": "$gateway_secret_(db)"}'}
    line = one_error_line(gw(env, "delete", "secret", "db"), 1)
    assert "decorator form" in line, line
    assert_nowhere(VALUE, everything_kept(tmp_path / "gw"))


def test_aliases_as_repository_and_registry_credentials(tmp_path, bao):
    from gateway_daemon.bootstrap import open_engine
    from gateway_daemon.config import load_config
    from gateway_daemon.core import Repository, Service
    from gateway_daemon.core.resources.registries import Registry
    from gateway_daemon.core.resources.secret_providers import SecretProvider

    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    bao.put("app/git", token="git-T0ken-value-42")

    async def main():
        engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                             announce=lambda _text: None)
        try:
            await engine.create(SecretProvider(name="vault", type="vault", auth_method="token", url=bao.url,
                                               secrets_endpoint="secret", token_file=str(token)))
            await engine.create_secret("git-token", "", provider="vault", path="app/git")
            await engine.create_secret("pypi-pw", "", provider="vault", path="app/db", key="password")
            await engine.create(Repository(name="private", url="https://git.example.com/team/private.git",
                                           username="bot", password_name="git-token"))
            await engine.create(Registry(name="mirror", type="pypi", url="https://pypi.example.com/simple",
                                         username="deploy", password_name="pypi-pw", default=True))
            await engine.create(Service(name="svc", type="python-script", repository="private", filename="main.py"))
            job, _ = await engine.lifecycle.prepare("20261206-000000-abcdef", "svc", {}, [], None)
            return job
        finally:
            await engine.close()

    job = asyncio.run(main())
    assert job.repository_password == "git-T0ken-value-42"
    assert job.registry("pypi").password == VALUE
    assert {"git-T0ken-value-42", VALUE} <= set(job.secret_values())
    assert "git-T0ken" not in repr(job) and VALUE not in repr(job)


PEEK_SCRIPT = '''\
import os
path = os.environ["TOKEN_PATH"]
try:
    text = open(path).read()
except OSError as exc:
    text = ""
print("token file:", "empty or unreadable" if not text.strip() else "READ " + text)
'''


def test_runs_cannot_read_the_credential_files_providers_use(tmp_path, bao):
    """A token file left readable to all, in a folder runs see (/etc): a run of this gateway does not get it."""
    import secrets as random
    import shutil

    folder = Path("/etc") / f"gateway-provider-test-{random.token_hex(4)}"
    folder.mkdir()
    try:
        token = folder / "vault-token"
        token.write_text(bao.root_token)
        token.chmod(0o644)
        repo = tmp_path / "peek"
        new_repo(repo, {"main.py": PEEK_SCRIPT})
        env = local(tmp_path)
        vault_provider(env, "vault", bao, token)
        ok(gw(env, "create", "secret", "db", "--provider", "vault", "--secret", "app/db", "--key", "password"))
        ok(gw(env, "create", "repository", "peek", "--url", str(repo)))
        ok(gw(env, "create", "service", "python-script", "peek", "--repository", "peek", "--filename", "main.py",
              "--env", f"TOKEN_PATH={token}", "--secret", "name=db,type=env,target=DB"))
        ok(gw(env, "create", "service", "python-script", "peek-alone", "--repository", "peek", "--filename",
              "main.py", "--env", f"TOKEN_PATH={token}"))  # names no alias: nothing is fetched for it
        run = ok(gw(env, "run", "service", "peek"))
        alone = ok(gw(env, "run", "service", "peek-alone"))
        assert "token file: empty or unreadable" in run.out, run.out
        assert "token file: empty or unreadable" in alone.out, alone.out
        assert_nowhere(bao.root_token, run.out, alone.out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_scoped_editor_cannot_reference_a_secret_outside_the_scope(tmp_path, bao, origin, admin, daemon, certs):
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    admin.ok("create", "secret-provider", "vault-scope", "--type", "vault", "--auth-method", "token", "--url",
             bao.url, "--secrets-endpoint", "secret", "--token", str(token))
    admin.ok("create", "secret", "b-db", "--provider", "vault-scope", "--secret", "app/db", "--key", "password",
             "--tag", "team-b")
    admin.ok("create", "user", "scoped-a", "--role", "editor", "--scope", "tag=team-a", "--password-stdin",
             stdin="scoped-password-1\n")
    editor = Client(tmp_path / "scoped", daemon.port, certs["ca"])
    editor.login("scoped-a", "scoped-password-1")
    editor.ok("create", "repository", "apps-a", "--url", str(origin), "--tag", "team-a")
    for flags in (("--env", "X=$gateway_secret_(b-db)"), ("--runtime-arg=--pw=$gateway_secret_(b-db)",)):
        line = one_error_line(editor("create", "service", "python-script", "steal", "--repository", "apps-a",
                                     "--filename", "main.py", "--tag", "team-a", *flags), 1)
        assert "secret 'b-db' does not exist" in line, line
    line = one_error_line(editor("create", "decorator", "steal-form", "--schema", "-", stdin=json.dumps(
        {"type": "object", "properties": {"pw": {"type": "string", "default": "$gateway_secret_(b-db)"}}})), 1)
    assert "does not exist" in line or "permission" in line.lower(), line


def test_concurrent_fetches_share_one_approle_login(tmp_path, bao):
    """Twenty fetches at once through one client: one AppRole login, every value right."""
    from gateway_daemon.core.resources.secret_providers import SecretProvider
    from gateway_daemon.execution.secret_providers import ProviderClients

    role_id, secret_id = bao.approle("burst", token_ttl="60s", token_max_ttl="120s")
    secret_id_file = tmp_path / "secret-id"
    secret_id_file.write_text(secret_id)
    provider = SecretProvider(name="burst", type="vault", auth_method="approle", url=bao.url,
                              secrets_endpoint="secret", role_id=role_id, secret_id_file=str(secret_id_file))
    clients = ProviderClients()
    logins = bao.requests("auth/approle/login")

    async def burst() -> list[str]:
        return await asyncio.gather(*(clients.fetch(provider, "app/db", "password") for _ in range(20)))

    assert asyncio.run(burst()) == [VALUE] * 20
    assert bao.requests("auth/approle/login") - logins == 1


def test_an_iag5_alias_of_a_provider_already_here_is_imported(tmp_path, bao):
    import yaml

    env = gateway_env(tmp_path / "gw")
    token = tmp_path / "vault-token"
    token.write_text(bao.root_token)
    vault_provider(env, "vault", bao, token)
    document = tmp_path / "iag5.yaml"
    document.write_text(yaml.safe_dump({"secrets": [{"name": "db", "provider": "vault", "secret": "app/db",
                                                     "key": "password"}]}))
    result = ok(gw(env, "db", "import", str(document)))
    assert "create secret db" in result.out, result.out
    assert ok(gw(env, "describe", "secret", "db", "--reveal", "-o", "json")).json()["value"] == VALUE
    document.write_text(yaml.safe_dump({"secrets": [{"name": "other", "provider": "nowhere", "secret": "x"}]}))
    line = one_error_line(gw(env, "db", "import", str(document)), 1)
    assert "secret-provider 'nowhere' does not exist and is not in the document" in line, line
