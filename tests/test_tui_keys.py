"""Keys at a fast typist's speed and work that is never thrown away: the TUI against a real engine, a real store
and a real git repository, keys sent as a terminal sends them (all at once, no pause for the app between them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input, Select

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Repository, Service
from gateway_tui.app import GatewayApp
from gateway_tui.screens.confirm import ConfirmScreen, UnsavedScreen
from gateway_tui.screens.decorators import DecoratorFormScreen, DecoratorsScreen
from gateway_tui.screens.run import RunScreen
from gateway_tui.screens.services import ServiceFormScreen, ServicesScreen
from gateway_tui.widgets.json_editor import JsonEditor

from gitutil import new_repo
from pilot import table_keys, until

SIZE = (120, 36)


@pytest.fixture
def origin(tmp_path) -> Path:
    repo = tmp_path / "origin"
    new_repo(repo, {"main.py": "print('hi')\n"})
    return repo


@pytest.fixture
def engine(tmp_path):
    return open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                       announce=lambda _text: None)


def burst(app, *keys: str) -> None:
    """Keys as a terminal delivers them when typed fast: all queued before the app has handled the first."""
    for key in keys:
        character = key if len(key) == 1 else {"space": " "}.get(key)
        event = events.Key(key, character)
        event.set_sender(app)
        app._driver.send_message(event)


def stack(app) -> list[str]:
    return [type(screen).__name__ for screen in app.screen_stack]


async def test_quit_then_a_section_key_at_once_ends_cleanly(tmp_path):
    """`q` then `2` quickly ended the app with NoMatches('#service-filter') from a Runs screen being built while
    the app quit (2 of 3 tries): it must end cleanly, every time."""
    for attempt in range(4):
        engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                             announce=lambda _text: None)
        app = GatewayApp(engine, "local mode · test")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
            await pilot.pause(0.2)
            burst(app, "q", "2")
            await until(pilot, lambda: not app.is_running, what="the app to end", timeout=20)
        assert app._exception is None and app.return_code == 0


async def test_a_name_typed_at_once_after_n_goes_whole_into_the_form(engine, origin):
    """`n` then a name typed at once: every letter (its `n` too) in the form's first field, one form only."""
    await engine.create(Repository(name="apps", url=str(origin)))
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.pause(0.2)
        burst(app, "n", *"nano-dn2q")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen) and app.screen.query("#name")
                    and app.screen.query_one("#name", Input).value == "nano-dn2q", timeout=20,
                    what="the whole name in the form")
        await pilot.pause(0.5)
        assert stack(app) == ["ServicesScreen", "ServiceFormScreen"]
        assert app.screen.query_one("#name", Input).value == "nano-dn2q"
        assert app.is_running


async def test_keys_typed_through_create_run_and_delete_at_once_all_land(engine, origin):
    """A whole create → run → delete typed without waiting for any screen: the service is made with the name
    typed, run once, then deleted (the `y` typed right after `d` answers the question)."""
    await engine.create(Repository(name="apps", url=str(origin)))
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.pause(0.2)
        burst(app, "n", *"quick", "ctrl+s", "r", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run is not None
                    and app.screen.run.finished, timeout=60, what="the run of the new service")
        assert [s.name for s in await engine.list("service")] == ["quick"]
        assert [r.service for r in await engine.list_runs()] == ["quick"]
        burst(app, "escape", "d", "y")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == [], timeout=30,
                    what="the service deleted")
        assert await engine.list("service") == []
        assert stack(app) == ["ServicesScreen"]


async def test_a_changed_form_asks_before_closing(engine, origin):
    await engine.create(Repository(name="apps", url=str(origin)))
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        # Unchanged: esc closes at once.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen) and app.screen.loaded.is_set())
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen), what="the unchanged form closed")

        # Changed: esc asks; keep editing keeps every letter.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen) and app.screen.loaded.is_set())
        await pilot.press(*"keep")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, UnsavedScreen), what="the question")
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen))
        assert app.screen.query_one("#name", Input).value == "keep"

        # Save from the question: saved, and the form closed.
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, UnsavedScreen))
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["keep"],
                    what="the saved service")

        # Discard: nothing saved.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen) and app.screen.loaded.is_set())
        await pilot.press(*"gone")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, UnsavedScreen))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        assert [s.name for s in await engine.list("service")] == ["keep"]


async def test_escape_in_the_schema_editor_leaves_it_and_the_next_asks(engine):
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, DecoratorsScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, DecoratorFormScreen) and app.screen.loaded.is_set())
        editor = app.screen.query_one("#schema", JsonEditor)
        editor.focus()
        await pilot.pause()
        await pilot.press("end", "enter", *'{"x": 1}')
        typed = editor.text
        await pilot.press("escape")  # leaves the editor, not the form
        await pilot.pause(0.2)
        assert isinstance(app.screen, DecoratorFormScreen) and app.focused is not editor
        await pilot.press("escape")  # the form has a schema in progress: it asks
        await until(pilot, lambda: isinstance(app.screen, UnsavedScreen), what="the question")
        await pilot.press("escape")  # keep editing
        await until(pilot, lambda: isinstance(app.screen, DecoratorFormScreen))
        assert app.screen.query_one("#schema", JsonEditor).text == typed
        assert app.is_running


async def test_q_never_quits_from_a_form_an_editor_or_a_dropdown(engine, origin):
    await engine.create(Repository(name="apps", url=str(origin)))
    await engine.create(Service(name="hello", type="python-script", repository="apps", filename="main.py"))
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen) and table_keys(app) == ["hello"])
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen) and app.screen.loaded.is_set())
        app.screen.query_one("#type", Select).focus()  # a dropdown
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause(0.3)
        assert app.is_running and isinstance(app.screen, ServiceFormScreen)
        await pilot.press("enter", "q")  # its list open
        await pilot.pause(0.3)
        assert app.is_running
        await pilot.press("escape")
        app.screen.query_one("#env").focus()  # an editor
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause(0.3)
        assert app.is_running and app.screen.query_one("#env").text == "q"
        # the delete question is a dialog: q is no answer and does not quit
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, UnsavedScreen))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("q")
        await pilot.pause(0.3)
        assert app.is_running and isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await pilot.press("q")  # on the list, q quits
        await until(pilot, lambda: not app.is_running, what="q to quit from the list", timeout=20)
    assert app.return_code == 0 and app._exception is None


async def test_a_key_a_busy_widget_takes_long_to_handle_is_typed_once(engine):
    """On a loaded machine a key can take over a second to be handled. While the widget it went to is there it
    is waited for: it was typed a second time (a password got a letter twice and the login failed)."""
    import asyncio

    from textual.screen import Screen

    class SlowInput(Input):
        async def _on_key(self, event: events.Key) -> None:
            await asyncio.sleep(1.5)  # longer than the app gives a key before calling it lost
            await super()._on_key(event)

    class Busy(Screen):
        def compose(self):
            yield SlowInput(id="slow")

        def on_mount(self) -> None:
            self.set_focus(self.query_one("#slow"))

    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ServicesScreen))
        app.push_screen(Busy())
        await until(pilot, lambda: isinstance(app.focused, SlowInput))
        burst(app, "a", "b")
        await until(pilot, lambda: app.focused.value == "ab", timeout=10)
        await pilot.pause(2)
        assert app.focused.value == "ab"
    await engine.close()


async def test_the_first_screen_is_drawn_before_the_engine_opens_and_keys_typed_meanwhile_wait(engine, origin):
    """`gateway` opens its local engine once the first screen is drawn (OpeningGateway). Keys typed before the
    list is read wait for it: `down enter` typed at once opens the second service's details, not nothing."""
    import asyncio

    from gateway_tui.opening import OpeningGateway
    from gateway_tui.screens.services import ServiceDetailsScreen

    await engine.create(Repository(name="apps", url=str(origin)))
    for name in ("alpha", "beta"):
        await engine.create(Service(name=name, type="python-script", repository="apps", filename="main.py"))
    may_open = asyncio.Event()
    opened_at: list[int] = []

    async def open_engine_later():  # the real engine, handed over when the test says
        await may_open.wait()
        return engine

    app = GatewayApp(OpeningGateway(open_engine_later), "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query("FooterKey"), what="the first screen with its keys")
        assert isinstance(app.screen, ServicesScreen) and not app.gateway.is_open
        assert any(key.key == "q" for key in app.screen.query("FooterKey"))  # q quits meanwhile
        await pilot.press("down", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ServicesScreen) and app.key_order.held, "the keys wait for the list"
        opened_at.append(len(app.key_order.held))
        may_open.set()
        await until(pilot, lambda: isinstance(app.screen, ServiceDetailsScreen), what="the details the keys asked")
        assert app.screen.name_ == "beta"
    assert opened_at == [2]


async def test_an_engine_that_cannot_be_opened_ends_the_app_with_its_error():
    """What `gateway` does if its engine fails to open after the first screen is drawn: the app ends with code 1
    and run_app raises the error, which `gateway` prints in one line as for any error before the app starts.
    (The opener here fails on purpose: a local engine that cannot open fails at its first call in practice.)"""
    from gateway_daemon.core import FailedPrecondition
    from gateway_tui.opening import OpeningGateway

    async def cannot_open():
        raise FailedPrecondition("the data dir is held by another process")

    app = GatewayApp(OpeningGateway(cannot_open), "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: not app.is_running, what="the app to end")
    assert app.return_code == 1
    assert isinstance(app.open_error, FailedPrecondition) and "held by another" in str(app.open_error)


async def test_the_footer_is_composed_again_only_when_its_keys_change(engine):
    """Textual's footer composes all its keys again at every focus move; this one when what it shows changes:
    focusing the filter hides `q` (it is typed there), moving back shows it, and moving between fields of a form
    changes nothing."""
    from gateway_tui.widgets.footer import GatewayFooter

    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query("FooterKey") and app.screen.query_one("#count").render())
        footer = app.screen.query_one(GatewayFooter)

        def keys() -> list[str]:
            return [key.key for key in footer.query("FooterKey")]

        first = list(footer.query("FooterKey"))
        assert "q" in keys()
        await pilot.press("slash")
        await until(pilot, lambda: "q" not in keys(), what="q gone while the filter is typed into")
        await pilot.press("escape")
        await until(pilot, lambda: "q" in keys(), what="q back")
        assert first[0] not in footer.query("FooterKey")  # composed again: the keys changed twice
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ServiceFormScreen) and app.screen.settled)
        footer = app.screen.query_one(GatewayFooter)
        shown = list(footer.query("FooterKey"))
        for _ in range(4):
            await pilot.press("tab")
        await pilot.pause(0.2)
        assert list(footer.query("FooterKey")) == shown  # the same widgets: not composed again
