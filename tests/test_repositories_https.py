"""Repositories over https with credentials, against a real git smart-HTTP server with basic auth.

`git http-backend` runs behind lighttpd (Debian's package; scripts/test installs it), started here on
127.0.0.1 with an htpasswd file made here.  The password reaches git through the gateway's askpass, from the
git process's environment only: it must show in no process's arguments, no file under the data dir and no
output.  The repository has a submodule from a file:// URL, which a run's tree holds too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cli_helpers import gateway_env, gw, ok, one_error_line
from gitutil import git, new_repo

PASSWORD = "pw-Zq81-secret"
TOKEN = "tok-Xy77-secret"
LIGHTTPD = shutil.which("lighttpd") or ("/usr/sbin/lighttpd" if os.path.exists("/usr/sbin/lighttpd") else None)
HTTP_BACKEND = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip() + "/git-http-backend"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _htpasswd_line(user: str, password: str) -> str:
    return f"{user}:{{SHA}}{base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """lighttpd on 127.0.0.1 serving git-http-backend over /git, basic auth for every path under it."""
    if LIGHTTPD is None or not os.path.exists(HTTP_BACKEND):
        pytest.skip("lighttpd or git-http-backend is missing (scripts/test installs lighttpd)")
    root = tmp_path_factory.mktemp("git-http")
    srv = root / "srv"
    srv.mkdir()
    # The submodule comes from a file:// URL; the main repository holds it and a script that reads it.
    sub = root / "sub-origin"
    new_repo(sub, {"lib.txt": "from the submodule\n"})
    work = root / "work"
    new_repo(work, {"show.sh": "#!/bin/sh\necho \"main says hi\"\ncat vendor/sub/lib.txt\n"})
    (work / "show.sh").chmod(0o755)
    git(work, "-c", "protocol.file.allow=always", "submodule", "add", "-q", f"file://{sub}", "vendor/sub")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "with a submodule")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(srv / "main.git")], check=True)
    (root / "htpasswd").write_text(_htpasswd_line("alice", PASSWORD) + _htpasswd_line("x-access-token", TOKEN))
    port = _free_port()
    config = root / "lighttpd.conf"
    config.write_text(f'''\
server.document-root = "{srv}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{root}/error.log"
server.modules = ("mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi")
alias.url = ("/git" => "{HTTP_BACKEND}")
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{srv}", "GIT_HTTP_EXPORT_ALL" => "")
}}
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = "{root}/htpasswd"
auth.require = ("/git" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
''')
    process = subprocess.Popen([LIGHTTPD, "-D", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"lighttpd did not start: {(root / 'error.log').read_text() if (root / 'error.log').exists() else ''}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/git/main.git"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    key = tmp_path / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    env = gateway_env(tmp_path / "gw", f"[secrets]\nencrypt_key_file = {key}\n")
    ok(gw(env, "create", "secret", "git-password", "--value", PASSWORD))
    ok(gw(env, "create", "secret", "git-token", "--value", TOKEN))
    ok(gw(env, "create", "secret", "wrong", "--value", "not-the-password"))
    return env


class ArgvWatch:
    """Reads every process's command line, again and again, while a command runs: what it saw."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                            self.seen.add(handle.read().replace(b"\0", b" ").decode("utf-8", "replace"))
            time.sleep(0.005)

    def __enter__(self) -> "ArgvWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def test_password_through_askpass_and_the_submodule_is_fetched(server, env):
    ok(gw(env, "create", "repository", "private", "--url", server, "--username", "alice",
          "--password-name", "git-password"))
    ok(gw(env, "create", "service", "executable", "show", "--repository", "private", "--filename", "show.sh"))
    with ArgvWatch() as watch:
        result = ok(gw(env, "run", "service", "show"))
    assert "main says hi" in result.stdout and "from the submodule" in result.stdout
    assert any("git" in line and "fetch" in line for line in watch.seen), "the watch saw git fetch"
    assert not [line for line in watch.seen if PASSWORD in line]
    assert PASSWORD not in result.stdout + result.stderr
    data_dir = Path(env["GATEWAY_APPLICATION_DATA_DIR"])
    assert _files_holding(data_dir, PASSWORD.encode()) == []
    clone = next((data_dir / "repos").glob("private-*.git"))
    assert "credential" not in (clone / "config").read_text() and PASSWORD not in (clone / "config").read_text()
    described = ok(gw(env, "describe", "repository", "private")).stdout
    assert "alice" in described and "git-password" in described and PASSWORD not in described

    # A second run fetches again with the same credentials (the snapshot of the commit is kept).
    assert "from the submodule" in ok(gw(env, "run", "service", "show")).stdout


def test_a_token_alone_and_a_wrong_password(server, env):
    ok(gw(env, "create", "repository", "by-token", "--url", server, "--token-name", "git-token"))
    ok(gw(env, "create", "service", "executable", "show", "--repository", "by-token", "--filename", "show.sh"))
    assert "main says hi" in ok(gw(env, "run", "service", "show")).stdout

    ok(gw(env, "edit", "repository", "by-token", "--clear", "token-name", "--username", "alice",
          "--password-name", "wrong"))
    result = gw(env, "run", "service", "show")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "cannot fetch" in result.stderr and "Authentication failed" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr

    # No credentials at all: git is not asked, it fails at once.
    ok(gw(env, "edit", "repository", "by-token", "--clear", "username", "--clear", "password-name"))
    result = gw(env, "run", "service", "show")
    assert result.code == 1 and "cannot fetch" in result.stderr


def test_askpass_answers_only_for_the_repositorys_own_host(server, env):
    ok(gw(env, "create", "repository", "private", "--url", server, "--username", "alice",
          "--password-name", "git-password"))
    ok(gw(env, "create", "service", "executable", "show", "--repository", "private", "--filename", "show.sh"))
    ok(gw(env, "run", "service", "show"))
    askpass = Path(env["GATEWAY_APPLICATION_DATA_DIR"]) / "git-askpass"
    origin = server.rsplit("/git/", 1)[0]
    host = origin.split("://", 1)[1]
    answer_env = {"PATH": "/usr/bin:/bin", "GATEWAY_GIT_ORIGIN": origin, "GATEWAY_GIT_USERNAME": "alice",
                  "GATEWAY_GIT_PASSWORD": PASSWORD}

    def ask(prompt: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(askpass), prompt], env=answer_env, capture_output=True, text=True)

    assert ask(f"Username for '{origin}': ").stdout == "alice\n"
    assert ask(f"Password for 'http://alice@{host}': ").stdout == f"{PASSWORD}\n"
    for elsewhere in ("Password for 'http://alice@evil.example:80': ", f"Password for 'https://alice@{host}': ",
                      "Username for 'http://127.0.0.2': "):
        answered = ask(elsewhere)
        assert answered.returncode != 0 and answered.stdout == ""


def test_credentials_are_checked_when_the_repository_is_made(env, tmp_path):
    cases = [
        (("--url", "ssh://git@example.com/r.git", "--password-name", "git-password"), "only with https"),
        (("--url", "https://example.com/r.git", "--password-name", "git-password"), "needs --username"),
        (("--url", "https://example.com/r.git", "--username", "a", "--password-name", "git-password",
          "--token-name", "git-token"), "not both"),
        (("--url", "https://bob:hunter2@example.com/r.git"), "carries a password"),
        (("--url", "https://example.com/r.git", "--username", "a b", "--password-name", "git-password"),
         "username"),
        (("--url", "https://example.com/r.git", "--username", "a", "--password-name", "nope"), "does not exist"),
        (("--url", str(tmp_path), "--username", "a"), "only with https"),
    ]
    for flags, fragment in cases:
        line = one_error_line(gw(env, "create", "repository", "r", *flags), code=1)
        assert fragment in line, (flags, line)
    ok(gw(env, "create", "repository", "fine", "--url", "https://example.com/r.git", "--username", "a",
          "--password-name", "git-password"))
    line = one_error_line(gw(env, "delete", "secret", "git-password"), code=1)
    assert "in use by repository fine" in line
