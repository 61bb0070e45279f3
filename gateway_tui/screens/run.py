"""Run a service: its input form, then its live output, status, duration and exit code.

The same screen shows a past or running run (from the history): then it starts
in the output phase, following the run until it ends.
"""

from __future__ import annotations

import os
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalGroup, VerticalScroll
from textual.content import Content
from textual.widgets import Checkbox, Input, Label, Select, Static

from gateway_daemon.core import GatewayError, InvalidArgument
from gateway_daemon.core.resources.services import TOFU_ACTIONS
from gateway_daemon.core.runs.tofu_state import action_of
from gateway_daemon.inputfiles import InputFileError, read_text

from ..widgets.form import FormField

from ..formatting import STATUS_STYLES, duration, full_time, run_duration, status_label
from ..widgets.output_view import OutputView
from ..widgets.schema_form import KeyValueRows, SchemaForm
from .base import SectionScreen

LIVE_SEARCH_LIMIT = 20_000  # above this many lines, search runs on enter, not on every key
STYLE_VARIABLES = {"success": "$text-success", "error": "$text-error", "warning": "$text-warning",
                   "accent": "$text-accent", "muted": "$foreground-muted"}


def banner_line(field: str, message: str) -> str:
    """A problem of a field the form does not show, as a line above the form."""
    if field == "inputs":
        return f"(inputs): {message}"
    return f"{field.removeprefix('inputs.')}: {message}" if field.startswith("inputs.") else message


class RunScreen(SectionScreen):
    SECTION = "services"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start run", tooltip="Start the run with these inputs"),
        Binding("c", "cancel_run", "Cancel run", tooltip="Cancel the run in progress"),
        Binding("slash", "search", "Search", tooltip="Search the output (shows matching lines)"),
        Binding("r", "again", "Run again", tooltip="Run the service again with the same inputs"),
        Binding("end", "follow", "Follow", show=False, tooltip="Jump to the end of the output and follow it"),
        Binding("f", "toggle_follow", "Follow", show=False, tooltip="Follow the output as it comes, or stop"),
        Binding("w", "toggle_wrap", "Wrap", show=False,
                tooltip="Wrap long output lines, or not (then ← → scroll sideways)"),
        Binding("escape", "back", "Back", tooltip="Back (a run in progress keeps running)"),
    ]

    def __init__(self, service: str | None, inputs: dict[str, Any] | None = None, run_id: str | None = None,
                 section: str = "services"):
        super().__init__()
        self.SECTION = section
        self.service_name = service
        self.initial_inputs = inputs
        self.run_id = run_id
        self.run: Any = None
        self.phase = "output" if run_id else "loading"
        self.schema: dict[str, Any] | None = None
        self.form: SchemaForm | KeyValueRows | None = None
        self.tofu = False  # an opentofu-plan service: the action and state files are asked for too
        self.state_out = ""  # where the state the run ends with is written, on this machine
        self.starting = False  # a run was asked for and has not said it started
        self.cancelling = False

    @property
    def opening(self) -> bool:
        """Keys typed wait while the inputs form is read, a run is starting (`c` typed after ctrl+s cancels it)
        and a run is being cancelled (`r` typed after `c` runs it again)."""
        return self.phase == "loading" or self.starting or (
            self.cancelling and self.run is not None and not self.run.finished)

    @property
    def typed_into(self) -> bool:
        return self.phase != "output"  # its inputs form

    def compose_body(self) -> ComposeResult:
        yield Label("", id="run-title")
        with VerticalScroll(id="run-form-area"):
            yield Static("", id="form-error")
        with Vertical(id="run-output-area"):
            yield Static("", id="run-status")
            yield Static("", id="run-reason")
            yield Static("", id="output-toggles")
            yield OutputView(id="output")
            yield Input(placeholder="search the output; enter: keep, esc: clear", id="search", compact=True)

    async def on_mount(self) -> None:
        self.query_one("#form-error").display = False
        self.query_one("#search").display = False
        self.query_one("#run-reason").display = False
        self.set_interval(0.5, self._tick)
        view = self.query_one(OutputView)
        self.watch(view, "follow", self._show_toggles)
        self.watch(view, "wrapped", self._show_toggles)
        if self.run_id:
            self._show_phase("output")
            self.query_one("#run-title", Label).update(Content(f"Run {self.run_id}"))
            self.follow(self.run_id)
        else:
            self.query_one("#run-output-area").display = False
            await self._load_form()

    # ------------------------------------------------------------ the form
    async def _load_form(self) -> None:
        name = self.service_name
        assert name is not None
        try:
            service = await self.gateway.get("service", name)
            self.schema = (await self.gateway.get("decorator", service.decorator)).schema \
                if service.decorator else None
        except GatewayError as exc:
            self.report(exc, f"Cannot run {name}")
            if self.is_current:
                self.dismiss()
            return
        if not self.showing:  # closed (or the app quit) while the service was read
            return
        info = f"{service.type} · {service.repository}" + (f" · decorator {service.decorator}"
                                                           if service.decorator else "")
        self.query_one("#run-title", Label).update(
            Content.assemble(("Run ", "bold"), (name, "bold $text-accent"), "  ", (info, "$foreground-muted")))
        self.form = SchemaForm(self.schema, self.initial_inputs, id="inputs") if self.schema is not None \
            else KeyValueRows(self.initial_inputs, id="inputs")
        area = self.query_one("#run-form-area")
        await area.mount(self.form)
        if service.type == "ansible-playbook":  # the run options of a playbook (core.run_options)
            rows = [Horizontal(Label("Limit "), Input(placeholder="hosts pattern (--limit)", id="option-limit",
                                                      compact=True)),
                    Horizontal(Label("Tags  "), Input(placeholder="tag,tag (--tags)", id="option-tags", compact=True))]
            options = Vertical(Label("Ansible run options", classes="section-title"), *rows,
                               Checkbox("Check mode: change nothing (--check)", id="option-check", compact=True),
                               id="run-options")
            for box in (options, *rows):
                box.styles.height = "auto"
            options.styles.margin = (1, 0, 0, 0)
            await area.mount(options)
        if service.type == "opentofu-plan":
            self.tofu = True
            await area.mount(VerticalGroup(
                FormField("action", "Action", Select([(a, a) for a in TOFU_ACTIONS], value=action_of(service),
                                                     allow_blank=False, id="tofu-action", compact=True),
                          "plan changes nothing; apply and destroy store the state they end with"),
                FormField("state", "State file", Input(id="state-file", compact=True,
                                                       placeholder="the stored state"),
                          "start from the state in this file on this machine instead"),
                FormField("state_out", "State out", Input(id="state-out", compact=True, placeholder="none"),
                          "write the state the run ends with to this file on this machine"),
                id="tofu-run"))
        await area.mount(Static(Content.from_markup(
            "[b]ctrl+s[/b] start the run   [b]esc[/b] back   [$text-error]*[/] required"), id="form-hint"))
        self._show_phase("form")
        self._focus_form()

    def _focus_form(self) -> None:
        first = next((w for w in self.query("#inputs Input, #inputs Select, #inputs Checkbox")), None)
        if first is not None:
            first.focus()

    def _show_phase(self, phase: str) -> None:
        self.phase = phase
        self.query_one("#run-form-area").display = phase == "form"
        self.query_one("#run-output-area").display = phase == "output"
        if phase == "output":
            self.query_one(OutputView).focus()
        self.refresh_bindings()

    def _form_errors(self, problems: dict[str, str]) -> None:
        """Problems by field (`inputs.<name>`; '' for none): at the fields the form shows, the rest above it."""
        assert self.form is not None
        rest = self.form.show_errors(problems)
        count = len(problems) - len(rest)
        lines = ([f"{count} field{'s' if count > 1 else ''} need{'' if count > 1 else 's'} attention"]
                 if count else []) + [banner_line(field, message) for field, message in rest.items()]
        banner = self.query_one("#form-error", Static)
        banner.update(Content("\n".join(lines)))
        banner.display = bool(lines)

    def action_start(self) -> None:
        if self.phase != "form" or self.form is None:
            return
        inputs, problems = self.form.collect()
        self._form_errors(problems)
        if problems:
            self.notify("The run did not start: check the inputs", severity="warning", timeout=3)
            return
        extra: dict[str, Any] = {}  # an opentofu-plan run's action and state
        if self.tofu:
            action = self.query_one("#tofu-action", Select).value
            extra["action"] = action if isinstance(action, str) else ""
            state_file = self.query_one("#state-file", Input).value.strip()
            if state_file:
                try:
                    extra["state"] = read_text(state_file, 16 * 1024 * 1024, "state file")
                except (InputFileError, OSError) as exc:
                    self._form_errors({"": f"state file {state_file}: {getattr(exc, 'strerror', None) or exc}"})
                    return
            self.state_out = self.query_one("#state-out", Input).value.strip()
            extra["state_out"] = bool(self.state_out)
        self.starting, self.cancelling = True, False
        self.start_run(inputs, self._options(), extra)

    def _options(self) -> dict[str, Any] | None:
        """The run options the form shows (an Ansible service's --limit, --tags, --check)."""
        if not self.query("#run-options"):
            return None
        options: dict[str, Any] = {"limit": self.query_one("#option-limit", Input).value.strip(),
                                   "tags": self.query_one("#option-tags", Input).value.strip(),
                                   "check": self.query_one("#option-check", Checkbox).value}
        return {k: v for k, v in options.items() if v} or None

    @work(exclusive=True, group="run")
    async def start_run(self, inputs: dict[str, Any], options: dict[str, Any] | None = None,
                        extra: dict[str, Any] | None = None) -> None:
        assert self.service_name is not None
        try:
            events = self.gateway.run_service(self.service_name, inputs, options=options,
                                              **(extra or {})).__aiter__()
            first = await events.__anext__()
        except StopAsyncIteration:
            return
        except InvalidArgument as exc:
            self._form_errors(exc.fields or {"": str(exc)})
            return
        except GatewayError as exc:
            self.report(exc, f"Cannot run {self.service_name}")
            return
        finally:
            self.starting = False
        if not self.showing:  # closed while the run started: it runs on, in 2 Runs
            return
        output = self.query_one(OutputView)
        output.reset()
        self._show_phase("output")
        self._event(first)
        await self._consume(events)

    @work(exclusive=True, group="run")
    async def follow(self, run_id: str) -> None:
        await self._consume(self.gateway.follow_run(run_id).__aiter__())

    async def _consume(self, events: Any) -> None:
        try:
            async for event in events:
                self._event(event)
        except GatewayError as exc:
            self.report(exc, "The run's events stopped")
        finally:
            for view in self.query(OutputView):  # none when the screen was closed while following
                view.flush()

    def _event(self, event: Any) -> None:
        if not self.showing:
            return
        if event.kind == "status" and event.run is not None:
            was_finished = self.run is not None and self.run.finished
            self.run = event.run
            self.run_id = event.run.id
            if self.service_name is None:
                self.service_name = event.run.service
                self.query_one("#run-title", Label).update(Content.assemble(
                    ("Run ", "bold"), (event.run.id, "bold"), " of ", (event.run.service, "bold $text-accent")))
            self._update_status()
            self.refresh_bindings()
            if event.state is not None and self.state_out:
                self._write_state(event.state)
            if event.run.finished and not was_finished and self.phase == "output" and self.is_current:
                severity = "information" if event.run.status == "succeeded" else "warning"
                self.notify(f"{event.run.service}: {event.run.status}", severity=severity, timeout=3)
        elif event.kind == "output":
            self.query_one(OutputView).add(event.lines)

    def _write_state(self, state: str) -> None:
        path, self.state_out = self.state_out, ""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(state)
        except OSError as exc:
            self.notify(f"Cannot write the state to {path}: {exc.strerror or exc}", severity="error", timeout=6)
            return
        self.notify(f"State written to {path}", timeout=3)

    # ------------------------------------------------------------ status
    def _tick(self) -> None:
        if self.run is not None and not self.run.finished:
            self._update_status()
        self._update_search_count()

    def _update_status(self) -> None:
        run = self.run
        app: Any = self.app
        style = STYLE_VARIABLES.get(STATUS_STYLES.get(run.status, "muted"), "$foreground-muted")
        parts: list[Any] = [(status_label(run.status), f"bold {style}")]
        elapsed = run_duration(run, app.clock())
        if elapsed is not None:
            parts += ["   ", ("duration ", "$foreground-muted"), duration(elapsed)]
        if run.exit_code is not None:
            parts += ["   ", ("exit code ", "$foreground-muted"), str(run.exit_code)]
        if run.started_by:
            parts += ["   ", ("by ", "$foreground-muted"), run.started_by]
        if run.runner:
            parts += ["   ", ("runner ", "$foreground-muted"), run.runner]
        parts += ["\n", ("run ", "$foreground-muted"), run.id]
        if run.commit:
            parts += ["   ", ("commit ", "$foreground-muted"), run.commit[:10]]
        parts += ["   ", ("started ", "$foreground-muted"), full_time(run.created_at, app.tz)]
        reason = self.query_one("#run-reason", Static)
        reason.update(Content.styled(run.reason, "$text-warning" if not run.finished else "$foreground-muted"))
        reason.display = bool(run.reason)
        self.query_one("#run-status", Static).update(Content.assemble(*parts))

    def _update_search_count(self) -> None:
        search = self.query_one("#search", Input)
        view = self.query_one(OutputView)
        if search.display and view.search:
            search.border_title = f"{view.matches} of {len(view.output_lines)} lines"

    # ------------------------------------------------------------ output actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.role_allows(action):
            return None
        finished = self.run is None or self.run.finished
        if action == "start":
            return self.phase == "form"
        if action == "cancel_run":
            return self.phase == "output" and not finished
        if action in ("search", "follow", "toggle_follow", "toggle_wrap"):
            return self.phase == "output"
        if action == "again":
            return self.phase == "output" and self.run is not None and finished
        return True

    async def action_cancel_run(self) -> None:
        if self.run is None or self.run.finished:
            return
        try:
            await self.gateway.cancel_run(self.run.id)
        except GatewayError as exc:
            self.report(exc, "Cannot cancel the run")
            return
        self.cancelling = True  # until the run says it ended
        self.notify("Cancelling the run…", timeout=2)

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        view = self.query_one(OutputView)
        if len(view.output_lines) <= LIVE_SEARCH_LIMIT:
            view.set_search(event.value)
            self._update_search_count()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        view = self.query_one(OutputView)
        if view.search != event.value:
            view.set_search(event.value)
        self._update_search_count()
        view.focus()

    def action_follow(self) -> None:
        view = self.query_one(OutputView)
        view.follow = True
        view.scroll_end(animate=False)

    def action_toggle_follow(self) -> None:
        view = self.query_one(OutputView)
        view.follow = not view.follow

    def action_toggle_wrap(self) -> None:
        view = self.query_one(OutputView)
        view.wrapped = not view.wrapped

    def _show_toggles(self, _value: object = None) -> None:
        view = self.query_one(OutputView)

        def state(key: str, name: str, on: bool) -> list[Any]:
            return [(key, "bold $text-accent"), " ", (f"{name} {'on' if on else 'off'}",
                                                     "$text" if on else "$foreground-muted")]

        parts = [*state("f", "follow", view.follow), "   ", *state("w", "wrap", view.wrapped)]
        if not view.wrapped:
            parts += ["   ", ("← → scroll sideways", "$foreground-muted")]
        self.query_one("#output-toggles", Static).update(Content.assemble(*parts))

    def action_again(self) -> None:
        if self.run is None or not self.run.finished:
            return
        if self.form is not None:
            self.query_one("#form-error").display = False
            self._show_phase("form")
            self._focus_form()
        else:
            self.app.switch_screen(RunScreen(self.run.service, inputs=self.run.inputs, section=self.SECTION))

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.display and (search.has_focus or search.value):
            search.value = ""
            search.display = False
            self.query_one(OutputView).set_search("")
            self.query_one(OutputView).focus()
            return
        if self.run is not None and not self.run.finished:
            self.notify(f"{self.run.service} keeps running: see it in 2 Runs", timeout=4)
        self.dismiss()
