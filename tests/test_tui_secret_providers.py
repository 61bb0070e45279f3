"""The Secrets section's providers and aliases, driven in the real TUI: a plugin provider made through its form,
an alias made through the secret form, marked in the table, and revealed with the value the plugin gives."""

from __future__ import annotations

from textual.widgets import Select

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_tui.app import GatewayApp
from gateway_tui.screens.secret_providers import SecretProvidersScreen
from gateway_tui.screens.secrets import SecretsScreen

from pilot import cell, table_keys, type_into, until

PLUGIN = '''#!/usr/bin/python3
import json, sys
request = json.load(sys.stdin)
print(json.dumps({"value": "plugged-" + request["path"] + "-" + request["config"]["env"]["TEAM"]}))
'''


async def test_provider_and_alias_made_in_the_tui_and_revealed(tmp_path):
    plugin = tmp_path / "fetch-secret"
    plugin.write_text(PLUGIN)
    plugin.chmod(0o755)
    engine = open_engine(load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")}),
                         announce=lambda _text: None)
    app = GatewayApp(engine, "local mode · test")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, SecretProvidersScreen))
        await pilot.press("n")
        await until(pilot, lambda: app.screen.query("#command"))
        await type_into(pilot, "#name", "plug")
        app.screen.query_one("#type", Select).value = "plugin"
        await type_into(pilot, "#command", "relative/path")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        error = app.screen.query_one("#field-command").error  # type: ignore[attr-defined]
        assert "absolute path" in error, error
        await type_into(pilot, "#command", str(plugin))
        await type_into(pilot, "#env", "TEAM=netops")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SecretProvidersScreen) and table_keys(app) == ["plug"])
        assert cell(app, "plug", "type") == "plugin"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen))
        await pilot.press("n")
        await until(pilot, lambda: app.screen.query("#provider"))
        await type_into(pilot, "#name", "from-plugin")
        await type_into(pilot, "#provider", "plug")
        await type_into(pilot, "#path", "app/x")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen) and table_keys(app) == ["from-plugin"])
        assert cell(app, "from-plugin", "provider") == "alias: plug"
        secret = await engine.get("secret", "from-plugin")
        assert (secret.provider, secret.path, secret.key, secret.sealed) == ("plug", "app/x", "", {})
        await pilot.press("v")
        await until(pilot, lambda: "plugged-app/x-netops" in app.export_screenshot(), what="the fetched value")
    await engine.close()
