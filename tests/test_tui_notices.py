"""Small things that together felt careless: a revealed secret where the eyes are, a short password refused at
its first entry, the new secrets key announced in the app when it is made, a palette of one line per item."""

from __future__ import annotations

import asyncio
from datetime import timezone

import pytest
from textual.command import CommandList, CommandPalette, SearchIcon
from textual.widgets import Input

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_tui.app import GatewayApp, build_app
from gateway_tui.screens.login import LoginScreen
from gateway_tui.screens.secrets import RevealedSecretScreen, SecretsScreen
from gateway_tui.screens.users import UserFormScreen
from gateway_tui.widgets.form import FormField

from pilot import table_keys, type_into, until
from tui_sample import NOW, TEMPORARY_PASSWORD, SampleServer

SIZE = (120, 36)


@pytest.fixture
def engine(tmp_path):
    return open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                       announce=lambda _text: None)


async def test_a_revealed_secret_shows_in_the_middle_of_the_screen(engine):
    await engine.create_secret("api-token", "s3cr3t-value", "a token")
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen) and table_keys(app) == ["api-token"])
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, RevealedSecretScreen))
        await pilot.pause(0.1)
        value = app.screen.query_one("#revealed-value")
        assert "s3cr3t-value" in str(value.render())
        assert 8 <= value.region.y <= 26 and 20 <= value.region.x <= 80, value.region  # the middle, not the edge
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen))
        assert "s3cr3t-value" not in app.export_screenshot()
        assert app.screen.revealed is None


async def test_a_short_new_password_is_refused_at_its_first_entry(tmp_path):
    app = GatewayApp(None, mode="client", connection=SampleServer(tmp_path / "data"), tz=timezone.utc,
                     clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LoginScreen) and app.focused is not None)
        await pilot.press(*"admin", "enter", *TEMPORARY_PASSWORD, "enter")
        await until(pilot, lambda: app.screen.must_change)
        await until(pilot, lambda: app.focused is app.screen.query_one("#new-password"))
        await pilot.press(*"short", "enter")
        await pilot.pause(0.1)
        assert "at least 8 characters" in app.screen.error
        assert app.focused is app.screen.query_one("#new-password")  # not on to "Again"
        assert app.screen.query_one("#new-password", Input).value == ""


async def test_a_short_password_in_the_user_form_is_said_when_the_field_is_left(tmp_path):
    app = GatewayApp(None, mode="client", connection=SampleServer(tmp_path / "data", logged_in=True),
                     tz=timezone.utc, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query("ResourceTable"))
        await pilot.press("6")
        await until(pilot, lambda: app.current_mode == "users" and app.screen.query("ResourceTable")
                    and app.screen.query_one("ResourceTable").row_count == 5)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, UserFormScreen))
        await type_into(pilot, "#password", "short")
        await pilot.press("tab")
        await until(pilot, lambda: app.screen.query_one("#field-password", FormField).error)
        assert "at least 8" in app.screen.query_one("#field-password", FormField).error


def test_the_new_secrets_key_is_announced_in_the_app_when_made(tmp_path):
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")})
    messages: list[str] = []
    app = build_app(config, messages)

    async def drive() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await until(pilot, lambda: isinstance(app.screen, SecretsScreen))
            await pilot.pause(0.2)
            await pilot.press("n")
            await until(pilot, lambda: app.screen.query("#value"))
            await type_into(pilot, "#name", "first")
            await type_into(pilot, "#value", "v4lue-one")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: any("keep a copy" in n.message for n in app._notifications),
                        timeout=10, what="the new key's notice in the app")

    asyncio.run(drive())
    assert any("keep a copy" in m for m in messages)  # and printed after the app ends, as before


async def test_the_palette_shows_one_line_per_item_and_no_icon_box(engine):
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query("ResourceTable"))
        await pilot.press("ctrl+p", *"go")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.pause(0.6)
        palette = app.screen
        assert all(not icon.display for icon in palette.query(SearchIcon))
        options = palette.query_one(CommandList)
        assert options.option_count > 3
        for index in range(options.option_count):
            prompt = options.get_option_at_index(index).prompt
            text = str(prompt.plain if hasattr(prompt, "plain") else prompt)
            assert "\n" not in text.strip(), f"two lines: {text!r}"
        assert any("Go to Runs" in str(options.get_option_at_index(i).prompt) and "key 2" in
                   str(options.get_option_at_index(i).prompt) for i in range(options.option_count))
