"""Registries end to end: a real pypiserver with basic auth on an address of this machine that is not its
loopback (runs reach the network, not the machine's own loopback) serving a wheel the test builds, real pip
installs through the gateway, the registry's password only ever in the install's environment.  And the
python-script interpreter: isolated without requirements, pyproject.toml dependencies installed."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cli_helpers import gateway_env, gw, ok, one_error_line
from gitutil import new_repo

PASSWORD = "pa:ss@w/rd-9f3k"  # characters a URL must quote


def _wheel(root: Path, name: str, value: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(f'VALUE = "{value}"\n')
    (root / "pyproject.toml").write_text(textwrap.dedent(f'''\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "1.0"
        '''))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(root / "dist"), str(root)], check=True, capture_output=True)
    return next((root / "dist").glob("*.whl"))


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def host(outside_address) -> str:
    """Where the registries listen: an address of this machine that is not loopback (a sandboxed build reaches
    the network, not the machine's own loopback), else 127.0.0.1 (and runs get the host's network)."""
    return outside_address or "127.0.0.1"


@pytest.fixture(scope="module")
def pypi(tmp_path_factory, host):
    """pypiserver with basic auth (an htpasswd file) for every download and listing."""
    from passlib.apache import HtpasswdFile

    root = tmp_path_factory.mktemp("pypi")
    packages = root / "packages"
    packages.mkdir()
    wheel = _wheel(root / "gwprivdep", "gwprivdep", "from-the-private-index")
    (packages / wheel.name).write_bytes(wheel.read_bytes())
    htpasswd = HtpasswdFile(str(root / "htpasswd"), new=True)
    htpasswd.set_password("alice", PASSWORD)
    htpasswd.save()
    port = _free_port(host)
    server = subprocess.Popen([sys.executable, "-m", "pypiserver", "run", "-i", host, "-p", str(port),
                               "-P", str(root / "htpasswd"), "-a", "download,list,update", str(packages)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("pypiserver did not start")
                time.sleep(0.2)
        yield f"http://{host}:{port}/simple/"
    finally:
        server.terminate()
        server.wait(10)


SCRIPT = '''\
import sys
try:
    import gwprivdep
    print("gwprivdep says " + gwprivdep.VALUE)
except ImportError:
    print("no gwprivdep")
for name in ("yaml", "grpc", "textual"):
    try:
        __import__(name)
        print("sees " + name)
    except ImportError:
        print("isolated from " + name)
print("prefix " + sys.prefix)
'''


@pytest.fixture(scope="module")
def wheel_server(tmp_path_factory, host):
    """gwtinyproj's wheel over HTTP (a sandboxed build sees the run's tree, not the test's folders)."""
    tiny = _wheel(tmp_path_factory.mktemp("tiny") / "w", "gwtinyproj", "from-pyproject")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tiny.parent))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}/{tiny.name}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def origin(tmp_path_factory, pypi, wheel_server) -> Path:
    repo = tmp_path_factory.mktemp("origin")
    new_repo(repo, {
        "private/main.py": SCRIPT,
        "private/requirements.txt": "gwprivdep==1.0\n",
        "bare/main.py": SCRIPT,
        "project/main.py": SCRIPT + "import gwtinyproj\nprint('pyproject dep ' + gwtinyproj.VALUE)\n",
        "project/pyproject.toml": textwrap.dedent(f'''\
            [project]
            name = "project"
            version = "0"
            dependencies = ["gwtinyproj @ {wheel_server}"]
            '''),
    })
    return repo


@pytest.fixture
def env(tmp_path, origin, host) -> dict[str, str]:
    env = gateway_env(tmp_path, **({"GATEWAY_EXECUTION_NETWORK": "host"} if host == "127.0.0.1" else {}))
    ok(gw(env, "create", "repository", "code", "--url", str(origin)))
    ok(gw(env, "create", "secret", "pypi-password", "--value", PASSWORD))
    return env


def _nothing_holds_the_password(env: dict[str, str], *texts: str) -> None:
    from urllib.parse import quote

    forms = {PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD)}
    for text in texts:
        assert not any(form in text for form in forms), text
    data = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    for path in data.rglob("*"):
        if path.is_file() and not path.is_symlink():
            raw = path.read_bytes()
            assert not any(form.encode() in raw for form in forms), path


def test_private_pypi_registry_with_basic_auth(env, pypi):
    ok(gw(env, "create", "registry", "pypi", "private", "--url", pypi, "--username", "alice",
          "--password-name", "pypi-password", "--insecure"))
    ok(gw(env, "create", "service", "python-script", "private", "--repository", "code", "--working-dir", "private",
          "--pypi-registry", "private"))
    result = ok(gw(env, "run", "service", "private"))
    assert "gwprivdep says from-the-private-index" in result.stdout
    logs = ok(gw(env, "logs", json.loads(ok(gw(env, "get", "runs", "-o", "json")).stdout)[0]["id"]))
    described = ok(gw(env, "describe", "registry", "private", "-o", "json"))
    assert json.loads(described.stdout)["password_name"] == "pypi-password"
    _nothing_holds_the_password(env, result.stdout, result.stderr, logs.stdout, logs.stderr, described.stdout)

    # A wrong password: the install fails in one reason, and the password shows nowhere either.
    ok(gw(env, "edit", "secret", "pypi-password", "--value", "wrong-" + PASSWORD))
    ok(gw(env, "edit", "service", "private", "--working-dir", "private", "--requirements-file", "requirements.txt",
          "--env", "CHANGED=1"))
    other = Path(env["GATEWAY_APPLICATION_DATA_DIR"]) / "venvs"
    for venv in other.iterdir():  # forget the cached venv so that the install runs again
        subprocess.run(["rm", "-rf", str(venv)], check=True)
    failed = gw(env, "run", "service", "private")
    assert failed.code == 1 and "Traceback" not in failed.err
    assert "wrong-" not in failed.out + failed.err


def test_default_registry_and_overridable(env, pypi, tmp_path):
    listed = json.loads(ok(gw(env, "get", "registries", "-o", "json")).stdout)
    assert {(r["name"], r["type"]) for r in listed} == {("default-pypi", "pypi"), ("default-galaxy", "ansible-galaxy")}
    assert "built in" in one_error_line(gw(env, "delete", "registry", "default-pypi"), code=1)
    assert "built in" in one_error_line(gw(env, "edit", "registry", "default-galaxy", "--url", "https://x.example"),
                                        code=1)

    ok(gw(env, "create", "registry", "pypi", "company", "--url", pypi, "--username", "alice",
          "--password-name", "pypi-password", "--insecure", "--default"))
    line = one_error_line(gw(env, "create", "registry", "pypi", "second", "--url", pypi, "--default"), code=1)
    assert "already the default pypi registry" in line
    ok(gw(env, "create", "service", "python-script", "uses-default", "--repository", "code", "--working-dir",
          "private"))
    assert "gwprivdep says from-the-private-index" in ok(gw(env, "run", "service", "uses-default")).stdout

    # Services may not name another registry when [registry] default_overridable = false.
    ok(gw(env, "create", "registry", "pypi", "elsewhere", "--url", "https://pypi.invalid/simple"))
    ok(gw(env, "create", "service", "python-script", "names-one", "--repository", "code", "--working-dir",
          "private", "--pypi-registry", "elsewhere"))
    locked = dict(env, GATEWAY_REGISTRY_DEFAULT_OVERRIDABLE="false")
    line = one_error_line(gw(locked, "run", "service", "names-one"), code=1)
    assert "default_overridable = false" in line and "company" in line

    # In use: neither the registry nor its secret can go.
    assert "in use by service names-one" in one_error_line(gw(env, "delete", "registry", "elsewhere"), code=1)
    assert "in use by registry company" in one_error_line(gw(env, "delete", "secret", "pypi-password"), code=1)


def test_registry_fields_are_checked(env):
    line = one_error_line(gw(env, "create", "registry", "pypi", "leaky", "--url", "https://bob:pw@pypi.example/"),
                          code=1)
    assert "holds credentials" in line
    line = one_error_line(gw(env, "create", "registry", "pypi", "nouser", "--url", "https://pypi.example/",
                             "--password-name", "pypi-password"), code=1)
    assert "needs --username" in line
    line = one_error_line(gw(env, "create", "registry", "pypi", "nosecret", "--url", "https://pypi.example/",
                             "--username", "a", "--password-name", "missing"), code=1)
    assert "secret 'missing' does not exist" in line
    assert one_error_line(gw(env, "create", "registry", "npm", "x", "--url", "https://x.example"), code=2)


def test_python_script_without_requirements_is_isolated(env):
    ok(gw(env, "create", "service", "python-script", "bare", "--repository", "code", "--working-dir", "bare"))
    result = ok(gw(env, "run", "service", "bare"))
    # The gateway's own packages (PyYAML, grpc, textual) are not there, nor the system's site-packages.
    assert all(f"isolated from {name}" in result.stdout for name in ("yaml", "grpc", "textual")), result.stdout
    prefix = next(line for line in result.stdout.splitlines() if line.startswith("prefix "))[7:]
    assert prefix.startswith(env["GATEWAY_APPLICATION_DATA_DIR"]) and prefix.endswith("-empty")


def test_pyproject_dependencies_are_installed(env):
    ok(gw(env, "create", "service", "python-script", "project", "--repository", "code", "--working-dir", "project"))
    result = ok(gw(env, "run", "service", "project"))
    assert "pyproject dep from-pyproject" in result.stdout


def test_executable_object_runs_a_service(env, tmp_path):
    ok(gw(env, "create", "executable-object", "py", "--exec-command", f"{sys.executable} -I",
          "--arg-format", "--{{.Key}} {{.Value}}"))
    described = json.loads(ok(gw(env, "describe", "executable-object", "py", "-o", "json")).stdout)
    assert described["arg_format"] == "--{key} {value}"
    ok(gw(env, "create", "service", "executable", "via-object", "--repository", "code", "--working-dir", "bare",
          "--filename", "main.py", "--executable", "py"))
    result = ok(gw(env, "run", "service", "via-object"))
    assert "no gwprivdep" in result.stdout
    assert "in use by service via-object" in one_error_line(gw(env, "delete", "executable-object", "py"), code=1)
    line = one_error_line(gw(env, "create", "executable-object", "bad", "--exec-command", "x",
                             "--arg-format", "--{{.Other}}"), code=1)
    assert "arg-format" in line
