"""What each screen looks like, state by state, at 120x36 and at 80x24: a changed look fails here until the
snapshot is updated.

    .venv/bin/python -m pytest tests/test_tui_snapshots.py --snapshot-update   # accept the new look

Every value on screen is fixed (tests/tui_sample.py: data, clock, time zone,
header), so the snapshots are the same on any machine.
"""

from __future__ import annotations

from datetime import timezone
from typing import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from gateway_tui.app import GatewayApp
from gateway_tui.screens.confirm import ConfirmScreen
from gateway_tui.screens.run import RunScreen
from gateway_tui.widgets.json_editor import JsonEditor
from gateway_tui.widgets.output_view import OutputView
from gateway_tui.widgets.resource_table import ResourceTable

from pilot import until
from tui_sample import CONTEXT, NOW, sample_gateway

WIDE, NARROW = (120, 36), (80, 24)
SIZES = (WIDE, NARROW)
Steps = Callable[[Pilot], Awaitable[None]]


@pytest.fixture(params=SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def snap_compare(snap_compare, request):
    """Every screen state at both sizes: the wide terminal and a whole 80x24 one."""
    def compare(app, run_before=None, terminal_size=WIDE, **options):
        return snap_compare(app, run_before=run_before, terminal_size=request.param, **options)

    return compare


def no_blink(pilot: Pilot) -> None:
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False


def rows(pilot: Pilot) -> int:
    tables = pilot.app.screen.query(ResourceTable)
    return tables.first().row_count if tables else 0


async def loaded(pilot: Pilot) -> None:
    """The first screen has read its data."""
    await until(pilot, lambda: pilot.app.screen.query("#count") and str(pilot.app.screen.query_one("#count").render()))


async def keys(pilot: Pilot, *pressed: str) -> None:
    """Typed as a terminal sends them, all at once: the app keeps them in order and lets each wait for the screen
    it is meant for (KeyOrder); then until every key is taken."""
    await pilot.press(*pressed)
    order = pilot.app.key_order
    await until(pilot, lambda: not order.held and order.out is None, what="every key taken")


def app_for(tmp_path, filled: bool = True, runs: bool = True, theme: str = "textual-dark") -> GatewayApp:
    gateway = sample_gateway(tmp_path / "data", filled=filled, runs=runs)
    return GatewayApp(gateway, CONTEXT, tz=timezone.utc, clock=lambda: NOW, theme=theme)


def check(snap_compare, tmp_path, steps: Steps | None = None, size=WIDE, **options) -> None:
    async def run_before(pilot: Pilot) -> None:
        await loaded(pilot)
        if steps is not None:
            await steps(pilot)
        await pilot.pause(0.2)
        no_blink(pilot)

    assert snap_compare(app_for(tmp_path, **options), run_before=run_before, terminal_size=size)


# ---------------------------------------------------------------- services
def test_services_empty(snap_compare, tmp_path):
    check(snap_compare, tmp_path, filled=False, runs=False)


def test_services_filled(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)

    check(snap_compare, tmp_path, steps)


def test_services_filtered(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "slash", *"netops py")

    check(snap_compare, tmp_path, steps)


def test_services_light_theme(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)

    check(snap_compare, tmp_path, steps, theme="textual-light")


def test_services_delete_confirm(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "d")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))

    check(snap_compare, tmp_path, steps)


def test_service_details(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "enter")
        await until(pilot, lambda: pilot.app.screen.query("#recent-runs") and rows(pilot) == 2)

    check(snap_compare, tmp_path, steps)


def test_service_form_new(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "n")

    check(snap_compare, tmp_path, steps)


def test_service_form_validation_error(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "n")
        await keys(pilot, *"bad name", "ctrl+s")

    check(snap_compare, tmp_path, steps)


def test_service_form_edit(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "e")

    check(snap_compare, tmp_path, steps)


def test_service_form_ansible(snap_compare, tmp_path):
    """An Ansible service's form: its playbooks, inventories, extra vars, config file and registries."""
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        pilot.app.screen.query_one(ResourceTable).move_to("rotate-certs")
        await keys(pilot, "e")
        await until(pilot, lambda: pilot.app.screen.query("#playbooks"))
        pilot.app.screen.query_one("#playbooks", Input).value = "verify.yml"
        pilot.app.screen.query_one("#inventories", Input).value = "inventory/hosts.ini inventory/cloud.py"
        pilot.app.screen.query_one("#extra_vars", TextArea).text = 'renew_days=30\n{"notify": ["ops"]}'
        pilot.app.screen.query_one("#config_file", Input).value = "ansible.cfg"
        pilot.app.screen.query_one("#description", Input).scroll_visible(animate=False)
        await pilot.pause(0.1)

    check(snap_compare, tmp_path, steps)


def test_service_form_executable(snap_compare, tmp_path):
    """A new executable service: only its own fields (no playbooks, inventories, extra vars or registries)."""
    async def steps(pilot):
        from textual.widgets import Select

        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "n", *"ping-sweep2")
        pilot.app.screen.query_one("#type", Select).value = "executable"
        await until(pilot, lambda: pilot.app.screen.shown_type == "executable" and pilot.app.screen.settled)
        pilot.app.screen.query_one("#name", Input).focus()

    check(snap_compare, tmp_path, steps)


def test_help_overlay(snap_compare, tmp_path):
    """`?` on Services: the keys of the screen, from its own bindings."""
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "question_mark")
        await until(pilot, lambda: pilot.app.screen.query("#help-keys"))

    check(snap_compare, tmp_path, steps)


# ---------------------------------------------------------------- run
async def _run_form(pilot: Pilot, service: str = "add-vlan") -> None:
    await until(pilot, lambda: rows(pilot) == 6)
    pilot.app.screen.query_one(ResourceTable).move_to(service)
    await keys(pilot, "r")
    await until(pilot, lambda: isinstance(pilot.app.screen, RunScreen) and pilot.app.screen.phase == "form")


def test_run_form(snap_compare, tmp_path):
    check(snap_compare, tmp_path, _run_form)


def test_run_form_validation_error(snap_compare, tmp_path):
    async def steps(pilot):
        await _run_form(pilot)
        await keys(pilot, *"99999", "tab", "x", "ctrl+s")

    check(snap_compare, tmp_path, steps)


def test_run_form_opentofu(snap_compare, tmp_path):
    """An opentofu-plan service: its action (the service's default first) and the state files too."""
    async def steps(pilot):
        await _run_form(pilot, "lab-up")
        pilot.app.screen.query_one("#run-form-area").scroll_end(animate=False)

    check(snap_compare, tmp_path, steps)


def test_service_form_opentofu(snap_compare, tmp_path):
    """The fields of an opentofu-plan service: action, variables, var files, backend config."""
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        pilot.app.screen.query_one(ResourceTable).move_to("lab-up")
        await keys(pilot, "e")
        await until(pilot, lambda: pilot.app.screen.query("#tofu_vars"))
        pilot.app.screen.query_one("#field-tofu_action").scroll_visible(animate=False, top=True)

    check(snap_compare, tmp_path, steps)


def test_run_form_without_decorator(snap_compare, tmp_path):
    async def steps(pilot):
        await _run_form(pilot, "dns-audit")
        await keys(pilot, *"zone", "tab", *"example.net")

    check(snap_compare, tmp_path, steps)


def test_run_form_ansible_options(snap_compare, tmp_path):
    """An Ansible service's run form: --limit, --tags and --check under its inputs."""
    async def steps(pilot):
        await _run_form(pilot, "rotate-certs")
        await until(pilot, lambda: pilot.app.screen.query("#option-limit"))
        pilot.app.screen.query_one("#option-limit", Input).value = "edge-routers"
        pilot.app.screen.query_one("#option-tags", Input).value = "renew"
        await pilot.click("#option-check")

    check(snap_compare, tmp_path, steps)


async def _run_output(pilot: Pilot) -> None:
    await _run_form(pilot)
    await keys(pilot, *"120", "tab", *"users", "ctrl+s")
    screen = pilot.app.screen
    await until(pilot, lambda: screen.run is not None and screen.run.finished)
    view = screen.query_one(OutputView)
    await until(pilot, lambda: view.matches == len(view.output_lines) == 10)


def test_run_output(snap_compare, tmp_path):
    check(snap_compare, tmp_path, _run_output)


def test_run_output_wrapped(snap_compare, tmp_path):
    """`w`: long output lines wrapped; the toggles above the output say so."""
    async def steps(pilot):
        await _run_output(pilot)
        await keys(pilot, "w")
        await until(pilot, lambda: pilot.app.screen.query_one(OutputView).wrapped)

    check(snap_compare, tmp_path, steps)


def test_run_output_search(snap_compare, tmp_path):
    async def steps(pilot):
        await _run_output(pilot)
        await keys(pilot, "slash", *"vlan 120")
        view = pilot.app.screen.query_one(OutputView)
        await until(pilot, lambda: view.search == "vlan 120" and view.matches == 4)
        await until(pilot, lambda: "4 of 10" in str(pilot.app.screen.query_one("#search").border_title))

    check(snap_compare, tmp_path, steps)


# ---------------------------------------------------------------- runs
def test_runs_history(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "2")
        await until(pilot, lambda: rows(pilot) == 6)

    check(snap_compare, tmp_path, steps)


def test_runs_empty(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "2")
        await pilot.pause(0.2)

    check(snap_compare, tmp_path, steps, runs=False)


def test_runs_filtered_by_status(snap_compare, tmp_path):
    from textual.widgets import Select

    async def steps(pilot):
        await keys(pilot, "2")
        await until(pilot, lambda: rows(pilot) == 6)
        pilot.app.screen.query_one("#status-filter", Select).value = "succeeded"
        await until(pilot, lambda: rows(pilot) == 3)

    check(snap_compare, tmp_path, steps)


def test_past_run_output(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "2")
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "down", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, RunScreen) and pilot.app.screen.run is not None)
        view = pilot.app.screen.query_one(OutputView)
        await until(pilot, lambda: view.matches == 3)

    check(snap_compare, tmp_path, steps)


# ---------------------------------------------------------------- repositories, decorators, secrets, users
def test_repositories(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "3")
        await until(pilot, lambda: rows(pilot) == 3)

    check(snap_compare, tmp_path, steps)


def test_repositories_empty(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "3")
        await pilot.pause(0.2)

    check(snap_compare, tmp_path, steps, filled=False, runs=False)


def test_repository_form_validation_error(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "3")
        await until(pilot, lambda: rows(pilot) == 3)
        await keys(pilot, "n", *"tools", "tab", *"ext::sh -c touch% /tmp/pwned", "ctrl+s")

    check(snap_compare, tmp_path, steps)


def test_repository_form_https_credentials(snap_compare, tmp_path):
    """A private https repository: a username and the secret with its password (or a token)."""
    async def steps(pilot):
        await keys(pilot, "3")
        await until(pilot, lambda: rows(pilot) == 3)
        pilot.app.screen.query_one(ResourceTable).move_to("playbooks")
        await keys(pilot, "e")
        await until(pilot, lambda: pilot.app.screen.query("#username"))
        pilot.app.screen.query_one("#username").value = "ops-bot"
        await pilot.pause(0.3)

    check(snap_compare, tmp_path, steps)


def test_decorators(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "4")
        await until(pilot, lambda: rows(pilot) == 3)

    check(snap_compare, tmp_path, steps)


def test_decorator_editor(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "4")
        await until(pilot, lambda: rows(pilot) == 3)
        pilot.app.screen.query_one(ResourceTable).move_to("vlan-form")
        await keys(pilot, "e")
        await until(pilot, lambda: pilot.app.screen.query("#schema"))

    check(snap_compare, tmp_path, steps)


def test_decorator_editor_invalid_json(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "4")
        await until(pilot, lambda: rows(pilot) == 3)
        await keys(pilot, "n", *"site-form")
        editor = pilot.app.screen.query_one("#schema", JsonEditor)
        editor.load_text('{\n  "type": "object",\n  "properties": {\n    "site": {"type": "string"}\n  \n}')
        await keys(pilot, "ctrl+s")

    check(snap_compare, tmp_path, steps)


def test_decorator_details(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "4")
        await until(pilot, lambda: rows(pilot) == 3)
        pilot.app.screen.query_one(ResourceTable).move_to("backup-form")
        await keys(pilot, "enter")
        await until(pilot, lambda: pilot.app.screen.query("#schema-view"))

    check(snap_compare, tmp_path, steps)


def test_secrets(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "5")
        await until(pilot, lambda: rows(pilot) == 3)

    check(snap_compare, tmp_path, steps)


def test_secret_revealed(snap_compare, tmp_path):
    """`v`: the value in a box in the middle of the screen, hiding by itself."""
    async def steps(pilot):
        import gateway_tui.screens.secrets as secrets_screen

        secrets_screen.REVEAL_SECONDS, seconds = 3600, secrets_screen.REVEAL_SECONDS  # still there when shot
        try:
            await keys(pilot, "5")
            await until(pilot, lambda: rows(pilot) == 3)
            await keys(pilot, "v")
            await until(pilot, lambda: pilot.app.screen.query("#revealed-value"))
        finally:
            secrets_screen.REVEAL_SECONDS = seconds

    check(snap_compare, tmp_path, steps)


async def with_providers(pilot) -> None:
    """The sample with a Vault provider and an alias of one of its secrets (made here: only these screens show
    them)."""
    from gateway_daemon.core.resources.secret_providers import SecretProvider

    gateway = pilot.app.gateway
    await gateway.list("secret")  # the sample is filled on first use
    await gateway.create(SecretProvider(name="vault", type="vault", auth_method="approle",
                                        url="https://vault.example.com:8200", secrets_endpoint="secret",
                                        role_id="6f1c5a2e-6d3b-4a53-9a6c-2f1b8d0e7c11",
                                        secret_id_file="/etc/gateway/secret-id",
                                        description="The team's Vault (AppRole)"))
    await gateway.create(SecretProvider(name="keeper", type="plugin", command="/usr/local/bin/keeper-secret",
                                        env={"REGION": "eu"}, description="Keeper, through a plugin"))
    await gateway.create_secret("db-password", "", "Postgres password of the CMDB", provider="vault",
                                path="netops/cmdb", key="password")


def test_secrets_with_an_alias(snap_compare, tmp_path):
    async def steps(pilot):
        await with_providers(pilot)
        await keys(pilot, "5", "ctrl+r")
        await until(pilot, lambda: rows(pilot) == 4)

    check(snap_compare, tmp_path, steps)


def test_secret_alias_details(snap_compare, tmp_path):
    async def steps(pilot):
        await with_providers(pilot)
        await keys(pilot, "5", "ctrl+r")
        await until(pilot, lambda: rows(pilot) == 4)
        pilot.app.screen.query_one(ResourceTable).move_to("db-password")
        await keys(pilot, "enter")
        await until(pilot, lambda: "netops/cmdb" in str(pilot.app.screen.query_one("#fields").render()))

    check(snap_compare, tmp_path, steps)


def test_secret_providers(snap_compare, tmp_path):
    async def steps(pilot):
        await with_providers(pilot)
        await keys(pilot, "5")
        await until(pilot, lambda: rows(pilot) >= 3)
        await keys(pilot, "p")
        await until(pilot, lambda: rows(pilot) == 2)

    check(snap_compare, tmp_path, steps)


def test_secret_provider_form(snap_compare, tmp_path):
    async def steps(pilot):
        await with_providers(pilot)
        await keys(pilot, "5")
        await until(pilot, lambda: rows(pilot) >= 3)
        await keys(pilot, "p")
        await until(pilot, lambda: rows(pilot) == 2)
        pilot.app.screen.query_one(ResourceTable).move_to("vault")
        await keys(pilot, "e")
        await until(pilot, lambda: pilot.app.screen.query("#secret_id_file"))

    check(snap_compare, tmp_path, steps)


def test_secret_form(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "5")
        await until(pilot, lambda: rows(pilot) == 3)
        await keys(pilot, "n", *"ldap-bind", "tab", *"hunter2")

    check(snap_compare, tmp_path, steps)


# ---------------------------------------------------------------- registries, executable objects (keys 9, 0)
def test_registries(snap_compare, tmp_path):
    """The stored registries with the built-in default-pypi and default-galaxy; the defaults marked."""
    async def steps(pilot):
        await keys(pilot, "9")
        await until(pilot, lambda: rows(pilot) == 5)

    check(snap_compare, tmp_path, steps)


def test_registry_form(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "9")
        await until(pilot, lambda: rows(pilot) == 5)
        pilot.app.screen.query_one(ResourceTable).move_to("pypi-private")
        await keys(pilot, "e")
        await until(pilot, lambda: pilot.app.screen.query("#token_name"))
        await until(pilot, lambda: pilot.app.screen.query_one("#token_name").value == "api-token")

    check(snap_compare, tmp_path, steps)


def test_registry_form_invalid_url(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "9")
        await until(pilot, lambda: rows(pilot) == 5)
        await keys(pilot, "n", *"galaxy-ci", "tab", "tab", *"https://ci:hunter2@galaxy.example.com", "ctrl+s")

    check(snap_compare, tmp_path, steps)


def test_executables(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "0")
        await until(pilot, lambda: rows(pilot) == 3)

    check(snap_compare, tmp_path, steps)


def test_executable_form(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "0")
        await until(pilot, lambda: rows(pilot) == 3)
        await keys(pilot, "n", *"node20", "tab", *"/usr/bin/node --enable-source-maps", "tab")
        pilot.app.screen.query_one("#arg_format").value = "--{{.Key}}={{.Value}}"
        await keys(pilot, "end")

    check(snap_compare, tmp_path, steps)


def test_users_disabled(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "6")

    check(snap_compare, tmp_path, steps)


def test_runners_disabled(snap_compare, tmp_path):
    async def steps(pilot):
        await keys(pilot, "7")

    check(snap_compare, tmp_path, steps)


def test_command_palette(snap_compare, tmp_path):
    async def steps(pilot):
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "ctrl+p", *"run")
        await pilot.pause(0.5)

    check(snap_compare, tmp_path, steps)


# ---------------------------------------------------------------- client mode
# These use a stand-in server (tui_sample.SampleServer, a fixed address and fixed users): a real daemon's port
# and timestamps differ on every run. tests/test_tui_client.py drives the same screens against a real one.
def client_app_for(tmp_path, logged_in: bool, role: str = "admin") -> GatewayApp:
    from tui_sample import SampleServer

    return GatewayApp(None, mode="client",
                      connection=SampleServer(tmp_path / "data", logged_in=logged_in, role=role),
                      tz=timezone.utc, clock=lambda: NOW)


def check_client(snap_compare, tmp_path, steps: Steps, logged_in: bool = False, size=WIDE,
                 role: str = "admin") -> None:
    async def run_before(pilot: Pilot) -> None:
        await steps(pilot)
        await pilot.pause(0.2)
        no_blink(pilot)

    assert snap_compare(client_app_for(tmp_path, logged_in, role), run_before=run_before, terminal_size=size)


def _on_login(pilot: Pilot) -> bool:
    from gateway_tui.screens.login import LoginScreen

    return isinstance(pilot.app.screen, LoginScreen)


def test_client_login(snap_compare, tmp_path):
    """Stand-in server. The Login screen of a first start; the header names the server and TLS."""
    async def steps(pilot):
        await until(pilot, lambda: _on_login(pilot))
        await keys(pilot, *"admin")

    check_client(snap_compare, tmp_path, steps)


def test_client_login_wrong_password(snap_compare, tmp_path):
    """Stand-in server. A wrong password: the error inline, the password field emptied."""
    async def steps(pilot):
        await until(pilot, lambda: _on_login(pilot))
        await keys(pilot, *"admin", "enter", *"guess", "enter")
        await until(pilot, lambda: pilot.app.screen.error)

    check_client(snap_compare, tmp_path, steps)


def test_client_login_must_change_password(snap_compare, tmp_path):
    """Stand-in server. A temporary password: a new one is asked for."""
    from tui_sample import TEMPORARY_PASSWORD

    async def steps(pilot):
        await until(pilot, lambda: _on_login(pilot))
        await keys(pilot, *"admin", "enter", *TEMPORARY_PASSWORD, "enter")
        await until(pilot, lambda: pilot.app.screen.must_change)

    check_client(snap_compare, tmp_path, steps)


def test_client_users(snap_compare, tmp_path):
    """Stand-in server. The Users screen in client mode; the header shows server, TLS and the user."""
    async def steps(pilot):
        await loaded(pilot)
        await keys(pilot, "6")
        await until(pilot, lambda: rows(pilot) == 5)

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def test_client_user_form(snap_compare, tmp_path):
    """Stand-in server. A new user's form."""
    async def steps(pilot):
        await loaded(pilot)
        await keys(pilot, "6")
        await until(pilot, lambda: rows(pilot) == 5)
        await keys(pilot, "n", *"carol")

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def test_client_user_form_edit_role(snap_compare, tmp_path):
    """Stand-in server. A user's form: role and scope, the password left as it is."""
    async def steps(pilot):
        await loaded(pilot)
        await keys(pilot, "6")
        await until(pilot, lambda: rows(pilot) == 5)
        await keys(pilot, "down", "down", "down", "e")

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def _audit_rows(pilot: Pilot) -> bool:
    from gateway_tui.screens.audit import AuditScreen

    return isinstance(pilot.app.screen, AuditScreen) and rows(pilot) == 11


def test_client_audit(snap_compare, tmp_path):
    """Stand-in server. The Audit section (key 8), for an admin: newest first, refusals and failures marked."""
    async def steps(pilot):
        await loaded(pilot)
        await keys(pilot, "8")
        await until(pilot, lambda: _audit_rows(pilot))

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def test_client_audit_event(snap_compare, tmp_path):
    """Stand-in server. One event in full: a run's start, its inputs with the secret one masked."""
    async def steps(pilot):
        await loaded(pilot)
        await keys(pilot, "8")
        await until(pilot, lambda: _audit_rows(pilot))
        await keys(pilot, "down", "enter")

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def test_client_services_as_viewer(snap_compare, tmp_path):
    """Stand-in server, logged in as a viewer: New, Edit, Delete and Run are greyed out in the footer."""
    async def steps(pilot):
        await loaded(pilot)
        await until(pilot, lambda: pilot.app.role == "viewer")

    check_client(snap_compare, tmp_path, steps, logged_in=True, role="viewer")


def test_client_audit_as_viewer(snap_compare, tmp_path):
    """Stand-in server, logged in as a viewer: the audit trail refused, no rows, the reason in their place; Users
    greyed in the strip."""
    async def steps(pilot):
        await loaded(pilot)
        await until(pilot, lambda: pilot.app.role == "viewer")
        await keys(pilot, "8")
        await until(pilot, lambda: getattr(pilot.app.screen, "refused", ""))

    check_client(snap_compare, tmp_path, steps, logged_in=True, role="viewer")


def test_client_change_password(snap_compare, tmp_path):
    """Stand-in server. Change password (from the palette): the current password, the new one twice."""
    async def steps(pilot):
        await loaded(pilot)
        pilot.app.action_change_password()
        await until(pilot, lambda: _on_login(pilot) and pilot.app.focused is not None)
        await keys(pilot, *"secret")

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def test_client_login_again(snap_compare, tmp_path):
    """Stand-in server. The key was revoked under the TUI: the Login screen says so, the username filled in,
    the password empty, and nothing of the screens before it left behind."""
    from gateway_daemon.core import Unauthenticated

    async def steps(pilot):
        await loaded(pilot)
        pilot.app.connection.logged_in = False
        pilot.app._unauthenticated(Unauthenticated("the API key is not valid (revoked or unknown): run gateway login"))
        await until(pilot, lambda: _on_login(pilot) and pilot.app.focused is not None)

    check_client(snap_compare, tmp_path, steps, logged_in=True)


async def _on_runners(pilot: Pilot) -> None:
    await loaded(pilot)
    await keys(pilot, "7")
    await until(pilot, lambda: rows(pilot) == 5)


def test_client_runners(snap_compare, tmp_path):
    """Stand-in server. The Runners screen: each runner's tags, load, last seen, uptime and state."""
    check_client(snap_compare, tmp_path, _on_runners, logged_in=True)


def test_client_runner_details(snap_compare, tmp_path):
    """Stand-in server. One runner: its fields and the runs it ran."""
    async def steps(pilot):
        await _on_runners(pilot)
        await keys(pilot, "enter")
        await until(pilot, lambda: rows(pilot) == 3)

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def test_client_runs_with_runners(snap_compare, tmp_path):
    """Stand-in server. The run history with the runner of each run."""
    async def steps(pilot):
        await loaded(pilot)
        await keys(pilot, "2")
        await until(pilot, lambda: rows(pilot) == 6)

    check_client(snap_compare, tmp_path, steps, logged_in=True)


def test_client_run_on_a_runner(snap_compare, tmp_path):
    """Stand-in server. A past run's output; its status names the runner that ran it."""
    async def steps(pilot):
        await loaded(pilot)
        await keys(pilot, "2")
        await until(pilot, lambda: rows(pilot) == 6)
        await keys(pilot, "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, RunScreen) and pilot.app.screen.run is not None)
        await until(pilot, lambda: len(pilot.app.screen.query_one(OutputView).output_lines) == 10)

    check_client(snap_compare, tmp_path, steps, logged_in=True)
