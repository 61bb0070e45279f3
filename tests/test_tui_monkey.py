"""A monkey at the keyboard: seeded random key bursts (sent as a terminal sends fast typing, with no pause for
the app between keys) over every section, its forms, details, dialogs and the palette, in local mode (a real
engine and store) and client mode (a real gateway-daemon over TLS, logged in). Whatever the keys, the app never
ends with an error; a `q` that quits it cleanly starts a new one.

GATEWAY_MONKEY_SEED picks the seeds (one, or several separated by commas) and GATEWAY_MONKEY_KEYS the number of
keys per seed and mode, for longer runs than CI's.
"""

from __future__ import annotations

import json
import os
import random
import time

import pytest
from textual import events

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Decorator, Repository, Service
from gateway_tui.app import GatewayApp
from gateway_tui.screens.login import LoginScreen
from gateway_tui.widgets.navigation import EXTRA_SECTIONS, SECTIONS

from gateway_server import ADMIN_PASSWORD, SCRIPT, Client
from gitutil import new_repo
from pilot import client_app, type_into, until

SIZE = (120, 36)
SEEDS = [int(s) for s in os.environ.get("GATEWAY_MONKEY_SEED", "1,2").split(",") if s.strip()]
KEYS = int(os.environ.get("GATEWAY_MONKEY_KEYS", "600"))  # per seed and mode: 2 seeds x 2 modes, 2,400 keys
SECTION_KEYS = [key for _mode, key, _label in (*SECTIONS, *EXTRA_SECTIONS)]
# What an operator's hands do: the bindings' letters most, then moving, typing, leaving; ctrl+q is left out (it
# ends the app the hard way, as it should), q is in (it quits cleanly where it may, and a new app starts).
KEY_WEIGHTS = {
    **{key: 3 for key in SECTION_KEYS},
    **{key: 4 for key in "nedrcfsyk"},
    **{key: 1 for key in "abghijlmoptuvwxz-_.{}\":,[]"},
    "q": 1, "slash": 3, "enter": 6, "escape": 6, "tab": 5, "shift+tab": 2, "up": 3, "down": 4, "left": 1,
    "right": 1, "home": 1, "end": 1, "pageup": 1, "pagedown": 1, "space": 2, "backspace": 2, "ctrl+s": 4,
    "ctrl+r": 1, "ctrl+p": 1, "ctrl+t": 1, "ctrl+a": 1, "delete": 1,
}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
          "required": ["name"]}


def burst(app, keys: list[str]) -> None:
    for key in keys:
        character = key if len(key) == 1 else {"space": " "}.get(key)
        event = events.Key(key, character)
        event.set_sender(app)
        app._driver.send_message(event)


def healthy(app) -> None:
    assert app._exception is None, f"the app failed: {app._exception!r}"
    assert app.return_code in (None, 0), f"the app ended with return code {app.return_code}"


async def monkey(make_app, seed: int, keys: int, visited: set[str], log_in=None) -> int:
    """`keys` random keys in bursts over every section; returns how many apps it took (one per clean quit)."""
    rng = random.Random(seed)
    population, weights = list(KEY_WEIGHTS), list(KEY_WEIGHTS.values())
    sent, apps, rounds = 0, 0, 0
    while sent < keys:
        app = make_app()
        apps += 1
        push_screen = app.push_screen

        def pushed(screen, *args, **kwargs):  # every screen and dialog opened, however briefly
            visited.add(type(screen).__name__)
            return push_screen(screen, *args, **kwargs)

        app.push_screen = pushed
        async with app.run_test(size=SIZE) as pilot:
            started = time.monotonic()
            while not (app.screen.is_mounted and type(app.screen).__name__ not in ("Screen", "SignedOutScreen")):
                assert time.monotonic() - started < 60, "the first screen never came"
                await pilot.pause(0.05)
            while sent < keys and app.is_running:
                if log_in is not None and isinstance(app.screen, LoginScreen) and not app.screen.change_password:
                    await log_in(pilot)  # the monkey logged out (palette): in again, as the admin
                    continue
                rounds += 1
                if rounds % 3 == 0:  # every section in turn: out of whatever is open (discarding), then its key
                    section = SECTION_KEYS[rounds // 3 % len(SECTION_KEYS)]
                    chunk = ["escape", "d", "escape", "d", "escape", "escape", section]
                else:
                    chunk = rng.choices(population, weights, k=rng.randint(1, 25))
                burst(app, chunk)
                if os.environ.get("GATEWAY_MONKEY_TRACE"):
                    print(chunk, [type(s).__name__ for s in app.screen_stack], repr(app.focused))
                sent += len(chunk)
                await pilot.pause(rng.choice((0.0, 0.02, 0.05, 0.2)))
                if rounds % 3 == 0:  # every key typed has been handled: the section is on screen
                    order = app.key_order
                    deadline = time.monotonic() + 20
                    while app.is_running and (order.held or order.out is not None):
                        assert time.monotonic() < deadline, f"keys never handled: {order.held} {order.out}"
                        await pilot.pause(0.02)
                    await pilot.pause(0.05)
                healthy(app)
                if app.is_running:
                    visited.update(type(screen).__name__ for screen in app.screen_stack)
                    if os.environ.get("GATEWAY_MONKEY_TRACE") and rounds % 5 == 0:
                        print("after", chunk[-1], [type(s).__name__ for s in app.screen_stack], repr(app.focused))
            if app.is_running:
                await pilot.pause(0.3)  # what the last keys started comes to an end
                healthy(app)
        healthy(app)
    return apps


# ---------------------------------------------------------------- local mode
@pytest.fixture
def seeded_engine(tmp_path):
    origin = tmp_path / "origin"
    new_repo(origin, {"main.py": "import sys\nprint('hi', *sys.argv[1:])\n"})
    data = tmp_path / "data"

    async def seed() -> None:
        engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(data)}),
                             announce=lambda _text: None)
        await engine.create(Repository(name="apps", url=str(origin)))
        await engine.create(Decorator(name="form", schema=SCHEMA))
        await engine.create_secret("token", "t0ken", "")
        for name, decorator in (("hello", ""), ("withform", "form")):
            await engine.create(Service(name=name, type="python-script", repository="apps", filename="main.py",
                                        decorator=decorator))
        await engine.close()

    def make() -> GatewayApp:
        engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(data)}),
                             announce=lambda _text: None)
        return GatewayApp(engine, "local mode · monkey")

    return seed, make


@pytest.mark.parametrize("seed", SEEDS)
async def test_monkey_local_mode(seeded_engine, seed):
    seed_data, make = seeded_engine
    await seed_data()
    visited: set[str] = set()
    apps = await monkey(make, seed, KEYS, visited)
    print(f"seed {seed}: {KEYS} keys, {apps} app(s), screens {sorted(visited)}")
    # it went everywhere: lists, forms, details, a run, a dialog
    assert {"ServicesScreen", "RunsScreen", "RepositoriesScreen", "DecoratorsScreen", "SecretsScreen"} <= visited
    assert visited & {"ServiceFormScreen", "RepositoryFormScreen", "DecoratorFormScreen", "SecretFormScreen"}
    assert visited & {"ConfirmScreen", "UnsavedScreen", "CommandPalette"}


# ---------------------------------------------------------------- client mode
@pytest.fixture(scope="module")
def operator(admin, tmp_path_factory) -> Client:
    """conftest's admin of the module's daemon (its own password, logged in), and things to open and run."""
    client = admin
    origin = tmp_path_factory.mktemp("origin")
    new_repo(origin, {"main.py": SCRIPT})
    client.ok("create", "repository", "apps", "--url", str(origin))
    client.ok("create", "secret", "token", "--value-file", "-", stdin="t0ken-value")
    client.ok("create", "decorator", "form", "--schema", "-", stdin=json.dumps(SCHEMA))
    client.ok("create", "service", "python-script", "hello", "--repository", "apps", "--filename", "main.py")
    return client


@pytest.mark.parametrize("seed", SEEDS)
async def test_monkey_client_mode(operator, home, seed):
    home(operator)

    async def log_in(pilot) -> None:
        await type_into(pilot, "#username", "admin")
        await type_into(pilot, "#password", ADMIN_PASSWORD)
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(pilot.app.screen, LoginScreen), what="the login", timeout=30)

    visited: set[str] = set()
    apps = await monkey(lambda: client_app(operator), seed, KEYS, visited, log_in=log_in)
    print(f"seed {seed}: {KEYS} keys, {apps} app(s), screens {sorted(visited)}")
    assert {"ServicesScreen", "RunsScreen", "RepositoriesScreen", "DecoratorsScreen", "SecretsScreen"} <= visited
    assert visited & {"UserListScreen", "RunnersScreen", "AuditScreen"}
