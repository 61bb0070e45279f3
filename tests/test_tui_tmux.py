"""`gateway` in a real terminal: tmux runs it, keys go in, the screen is read back.

The same path an operator takes on a fresh machine: no config file, an empty
data dir, a real git repository; repository, decorator and service are made
with the keyboard, the service is run, its output and its history are read off
the screen, and `q` ends the program cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from cli_helpers import BIN
from gitutil import new_repo

SCRIPT = '''\
import sys
print("hello " + " ".join(sys.argv[1:]))
print("careful", file=sys.stderr)
'''


class Terminal:
    """One tmux server of its own, one window running one command."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, size: tuple[int, int] = (120, 36)):
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed (./scripts/test installs it with apt-get)")
        self.socket = f"gw-test-{uuid.uuid4().hex[:8]}"
        width, height = size
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "gw", "-c", str(cwd),
                   *[f"-e{k}={v}" for k, v in env.items()], " ".join(command) + "; sleep 30", env=env)

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True,
                                text=True, env=env, timeout=30)
        assert result.returncode == 0, f"tmux {' '.join(args)}: {result.stderr}"
        return result.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "gw")

    def keys(self, *keys: str) -> None:
        """Named keys (Enter, Tab, C-s), each on its own, as a person presses them."""
        for key in keys:
            self._tmux("send-keys", "-t", "gw", key)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "gw", "-l", text)
        time.sleep(0.3)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; the screen:\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal():
    # A short folder of its own: the header shows the data dir whole only while it fits (pytest's own temporary
    # folders are longer when the tests run in several workers).
    tmp_path = Path(tempfile.mkdtemp(prefix="gw-", dir="/tmp"))
    origin = tmp_path / "origin"
    new_repo(origin, {"hello/main.py": SCRIPT})
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(HOME=str(tmp_path / "home"), TERM="xterm-256color",
               GATEWAY_APPLICATION_DATA_DIR=str(tmp_path / "data"))
    (tmp_path / "home").mkdir()
    term = Terminal([str(BIN / "gateway")], env, cwd=tmp_path)
    term.origin = origin
    yield term
    term.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_gateway_in_a_real_terminal(terminal):
    term = terminal
    term.wait_for("No services yet")
    first = term.wait_for("q Quit")
    assert "local mode" in first and "1 Services" in first and str(term.origin.parent / "data") in first

    term.keys("3")
    term.wait_for("No repositories yet")
    term.keys("n")
    term.wait_for("New repository")
    term.type("apps")
    term.keys("Tab")
    term.type(str(term.origin))
    term.keys("C-s")
    term.wait_for("Saved repository apps")

    term.keys("1")
    term.wait_for("No services yet")
    term.keys("n")
    term.wait_for("New service")
    term.type("hello")
    term.keys("Tab", "Tab", "Tab")  # type and repository keep their first choice
    term.type("hello")               # working dir
    term.keys("C-s")
    screen = term.wait_for("Saved service hello")
    assert "python-script" in screen and "apps" in screen, screen

    term.keys("r")
    term.wait_for("Run hello")
    term.type("who")                 # no decorator: free key and value rows
    term.keys("Tab")
    term.type("tmux")
    term.keys("C-s")
    screen = term.wait_for("succeeded")
    term.wait_for("hello --who=tmux")
    assert "careful" in term.screen()

    term.keys("Escape", "2")
    screen = term.wait_for("1 run")
    assert "hello" in screen and "succeeded" in screen

    term.keys("q")
    deadline = time.monotonic() + 20
    while "Automation Gateway" in term.screen():  # the program ended and gave the terminal back
        assert time.monotonic() < deadline, term.screen()
        time.sleep(0.2)


SLEEPY = '''\
import sys, time
print("started", *sys.argv[1:], flush=True)
time.sleep(60 if any(arg.startswith("--wait") for arg in sys.argv[1:]) else 0)
'''


def test_typed_at_full_speed_create_run_cancel_rerun_delete(tmp_path):
    """Every key of create service → run → cancel → run again → cancel → delete sent in one go, with no pause
    for any screen: nothing lost, nothing typed into the screen behind, no extra form."""
    from cli_helpers import gateway_env, gw, ok

    origin = tmp_path / "origin"
    new_repo(origin, {"main.py": SLEEPY})
    env = gateway_env(tmp_path / "gw", home=tmp_path / "home")
    (tmp_path / "home").mkdir()
    ok(gw(env, "create", "repository", "apps", "--url", str(origin)))
    env["TERM"] = "xterm-256color"
    term = Terminal([str(BIN / "gateway")], env, cwd=tmp_path)
    try:
        term.wait_for("q Quit")
        term.wait_for("No services yet")
        keys = ["n", *"sleepy-n2d", "C-s",          # a new service named as typed (its n, 2, d are letters)
                "r", *"wait", "Tab", *"60", "C-s",  # run it with free inputs: it sleeps
                "c",                                # cancel it
                "r", "C-s",                         # run it again with the same inputs
                "c",                                # cancel that one too
                "Escape"]                           # back to the list
        term._tmux("send-keys", "-t", "gw", *keys)
        # A terminal cannot tell Esc followed at once by d from alt+d (one escape sequence): the only pause.
        time.sleep(0.6)
        term._tmux("send-keys", "-t", "gw", "d", "y")  # delete it, yes
        deadline = time.monotonic() + 120
        while "No services yet" not in term.screen() or "Deleted service" not in term.screen():
            assert time.monotonic() < deadline, f"never came back to an empty list:\n{term.screen()}"
            time.sleep(0.2)
        screen = term.screen()
        assert "New service" not in screen and "sleepy" in screen  # the notice names it; no form left open
        term.keys("q")
        deadline = time.monotonic() + 20
        while "Automation Gateway" in term.screen():
            assert time.monotonic() < deadline, term.screen()
            time.sleep(0.2)
    finally:
        term.close()
    assert "(none)" in ok(gw(env, "get", "services")).out or not ok(gw(env, "get", "services", "-o", "json")).out.strip("[]\n ")
    runs = json.loads(ok(gw(env, "get", "runs", "-o", "json")).out)
    assert [(r["service"], r["status"], r["inputs"]) for r in runs] == [("sleepy-n2d", "cancelled", {"wait": "60"})] * 2
