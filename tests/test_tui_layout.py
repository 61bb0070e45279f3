"""The terminal UI whole at 80x24, like k9s: every section in the strip, tables that keep what explains a
problem, relative ages in tables and full times in details, a count of running runs in the header, a help
overlay built from the screen's own keys, and output that can be wrapped and followed."""

from __future__ import annotations

import dataclasses
from datetime import timezone

from textual.widgets import Static

from gateway_tui.app import GatewayApp
from gateway_tui.screens.run import RunScreen
from gateway_tui.widgets.navigation import NavItem
from gateway_tui.widgets.output_view import OutputView
from gateway_tui.widgets.resource_table import ResourceTable

from pilot import until
from gateway_daemon.core.runs.records import OutputLine
from tui_sample import CONTEXT, NOW, SampleServer, history, sample_engine, sample_gateway, SampleGateway

NARROW, WIDE = (80, 24), (120, 36)


def local_app(tmp_path, **options) -> GatewayApp:
    return GatewayApp(sample_gateway(tmp_path / "data", **options), CONTEXT, tz=timezone.utc, clock=lambda: NOW)


def client_app(tmp_path) -> GatewayApp:
    return GatewayApp(None, mode="client", connection=SampleServer(tmp_path / "data", logged_in=True),
                      tz=timezone.utc, clock=lambda: NOW)


def table_lines(table: ResourceTable) -> list[str]:
    """The lines the table draws, as text: what an operator reads."""
    return [table.render_line(y).text for y in range(table.size.height)]


def rows_of(pilot) -> int:
    tables = pilot.app.screen.query(ResourceTable)
    return tables.first().row_count if tables else 0


async def test_every_section_shows_whole_in_the_strip_at_80_columns(tmp_path):
    """Audit, Registries and Executables too, in local and client mode, none cut at the edge."""
    for app in (local_app(tmp_path / "local"), client_app(tmp_path / "client")):
        async with app.run_test(size=NARROW) as pilot:
            await until(pilot, lambda: rows_of(pilot) > 0)
            await pilot.pause(0.3)
            items = list(pilot.app.screen.query(NavItem))
            assert [item.nav_key for item in items] == list("1234567890")
            for item in items:
                assert item.region.right <= 80, f"{item.nav_label} cut at the edge: {item.region}"
                text = str(item.render())
                assert item.region.width >= len(text) + 2, f"{text!r} does not fit {item.region}"
            await pilot.press("8")
            await until(pilot, lambda: pilot.app.current_mode == "audit")
            await pilot.pause(0.3)
            items = list(pilot.app.screen.query(NavItem))
            assert len(items) == 10 and all(item.region.right <= 80 for item in items)
            active = next(item for item in items if item.has_class("-active"))
            assert "Audit" in str(active.render())


async def test_run_history_at_80_columns_keeps_status_reason_and_by(tmp_path):
    app = local_app(tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: rows_of(pilot) == 6)
        await pilot.pause(0.1)
        text = "\n".join(table_lines(pilot.app.screen.query_one(ResourceTable)))
        for whole in ("stopped after the 3600 s time limit", "exited with code 2", "✖ timed-out", "■ cancelled",
                      " ops "):
            assert whole in text, f"{whole!r} cut at 80 columns:\n{text}"
        assert "2m ago" in text and "18h ago" in text  # relative ages, not "2026-11-2…"
        assert "2026-11-2" not in text


async def test_tables_show_relative_ages_and_details_the_full_time(tmp_path):
    app = local_app(tmp_path)
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: rows_of(pilot) == 6)
        text = "\n".join(table_lines(pilot.app.screen.query_one(ResourceTable)))
        assert "2m ago" in text and "2026-11" not in text
        await pilot.press("5")
        await until(pilot, lambda: pilot.app.current_mode == "secrets" and rows_of(pilot) == 3)
        text = "\n".join(table_lines(pilot.app.screen.query_one(ResourceTable)))
        assert "4d ago" in text and "2026-11" not in text
        await pilot.press("enter")
        await until(pilot, lambda: pilot.app.screen.query("#fields"))
        await pilot.pause(0.2)
        fields = str(pilot.app.screen.query_one("#fields").render())
        assert "2026-11-20 09:12:00 UTC" in fields


async def test_runners_at_80_columns_keep_the_state_whole(tmp_path):
    app = client_app(tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: rows_of(pilot) > 0)
        await pilot.press("7")
        await until(pilot, lambda: pilot.app.current_mode == "runners" and rows_of(pilot) == 5)
        await pilot.pause(0.1)
        text = "\n".join(table_lines(pilot.app.screen.query_one(ResourceTable)))
        assert "refuses work" in text and "draining" in text, text
        assert "10.60.0.9:50052" in text


async def test_audit_at_80_columns_keeps_time_action_and_outcome(tmp_path):
    app = client_app(tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: rows_of(pilot) > 0)
        await pilot.press("8")
        await until(pilot, lambda: pilot.app.current_mode == "audit" and rows_of(pilot) == 11)
        await pilot.pause(0.1)
        text = "\n".join(table_lines(pilot.app.screen.query_one(ResourceTable)))
        for whole in ("1m ago", "run.end", "succeeded", "refused", "ci-runner", "service/backup-configs"):
            assert whole in text, f"{whole!r} cut at 80 columns:\n{text}"


async def test_header_counts_the_running_runs(tmp_path):
    runs = history()
    running = [dataclasses.replace(runs[0][0], id="20261124-102900-aaaaaa", status="running", ended_at=None,
                                   exit_code=None), []]
    gateway = SampleGateway(sample_engine(tmp_path / "data"), [tuple(running), *runs])
    from tui_sample import fill
    await fill(gateway)
    app = GatewayApp(gateway, CONTEXT, tz=timezone.utc, clock=lambda: NOW)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: rows_of(pilot) == 6)
        await until(pilot, lambda: pilot.app.screen.query("#running"), what="a running count in the header")
        counter = pilot.app.screen.query_one("#running", Static)
        await until(pilot, lambda: "1 running" in str(counter.render()))
        assert counter.region.right <= 80 and counter.region.y == 0


async def test_help_overlay_lists_the_keys_of_the_current_screen(tmp_path):
    app = local_app(tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await until(pilot, lambda: rows_of(pilot) == 6)
        await pilot.press("question_mark")
        await until(pilot, lambda: pilot.app.screen.query("#help-keys"))
        text = str(pilot.app.screen.query_one("#help-keys").render())
        for key, what in (("n", "New service"), ("r", "Run the selected service"), ("d", "Delete"),
                          ("/", "Filter"), ("s", "Sort"), ("ctrl+r", "Reload"), ("8", "Audit")):
            assert key in text and what in text, f"{key} {what} missing:\n{text}"
        await pilot.press("escape")
        await until(pilot, lambda: not pilot.app.screen.query("#help-keys"))
        await pilot.press("2")
        await until(pilot, lambda: pilot.app.current_mode == "runs" and rows_of(pilot) == 6)
        await pilot.press("question_mark")
        await until(pilot, lambda: pilot.app.screen.query("#help-keys"))
        text = str(pilot.app.screen.query_one("#help-keys").render())
        assert "New service" not in text and "Show the selected run's output" in text


async def test_output_wraps_on_request_and_shows_follow(tmp_path):
    """A long line is cut at the edge until `w` wraps it; the status line says whether output is followed
    and wrapped."""
    app = local_app(tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: rows_of(pilot) == 6)
        await pilot.press("enter")  # the newest run: the add-vlan one, ten lines, one of them long
        await until(pilot, lambda: isinstance(pilot.app.screen, RunScreen) and pilot.app.screen.run is not None)
        view = pilot.app.screen.query_one(OutputView)
        await until(pilot, lambda: len(view.output_lines) == 10)
        view.add([OutputLine("stdout", "long " * 40)])
        await until(pilot, lambda: len(view.lines) == 11)
        toggles = pilot.app.screen.query_one("#output-toggles", Static)
        assert "follow on" in str(toggles.render()) and "wrap off" in str(toggles.render())
        longest = max(len(line.text) for line in view.output_lines)
        assert longest + 2 > view.scrollable_content_region.width
        assert view.virtual_size.width > view.scrollable_content_region.width  # scrolls sideways meanwhile
        await pilot.press("w")
        await until(pilot, lambda: "wrap on" in str(toggles.render()))
        await until(pilot, lambda: len(view.lines) > 11)  # the long line on several lines
        await pilot.press("f")
        await until(pilot, lambda: "follow off" in str(toggles.render()))
