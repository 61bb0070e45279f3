"""Services: the home screen (a table of every service), its form and its details."""

from __future__ import annotations

from typing import Any, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Input, Label, Select, Static, TextArea

from gateway_daemon.core import SERVICE_TYPES, GatewayError, InvalidArgument, SecretRef, Service
from gateway_daemon.core.resources.services import TOFU_ACTIONS

from ..formatting import STATUS_STYLES, ago, full_time, sort_value, status_label
from ..widgets.form import FormField
from ..widgets.resource_table import Column, ResourceTable, TableRow
from ..widgets.run_table import RunTable
from .details import DetailsScreen
from .form import FormScreen, split_words
from .resource_list import ResourceListScreen, list_bindings

DEFAULT_FILENAMES = {"python-script": "main.py", "ansible-playbook": "site.yml", "opentofu-plan": "(none)",
                     "executable": "(required)"}
ANSIBLE_FIELDS = ("playbooks", "inventories", "extra_vars", "extra_vars_files", "config_file", "galaxy_registry")
# The fields only some types have (the form shows them for those only; the others are every type's).
TYPE_FIELDS = {
    "python-script": ("pypi_registry",),
    "ansible-playbook": (*ANSIBLE_FIELDS, "pypi_registry"),
    "executable": ("executable",),
    "opentofu-plan": ("tofu_action", "tofu_vars", "tofu_var_files", "tofu_backend_config"),
}
TYPED_FIELDS = {field for fields in TYPE_FIELDS.values() for field in fields}
# The form's text fields: name -> (label, help, placeholder). Lists show separated by spaces, except in
# LINES_FIELDS (one item, or KEY=VALUE, a line).
TEXT_FIELDS = {
    "working_dir": ("Working dir", "folder in the repository the service runs in", ""),
    "filename": ("Filename", "the file it runs, relative to the working dir", ""),  # placeholder: by type
    "env": ("Environment", "one KEY=VALUE a line", ""),
    "secrets": ("Secrets", "one name=SECRET,target=ENV_VAR a line: the secret goes into that variable", ""),
    "tags": ("Tags", "separated by spaces", ""),
    "timeout": ("Timeout", "seconds; empty: the gateway's default", "default"),
    "playbooks": ("More playbooks", "ansible: run in turn after the filename; separated by spaces", ""),
    "inventories": ("Inventories", "ansible: files, folders or scripts in the working dir; separated by spaces", ""),
    "extra_vars": ("Extra vars", "ansible: one KEY=VALUE ... or JSON object a line", ""),
    "extra_vars_files": ("Extra vars files", "ansible: YAML or JSON files in the working dir; separated by spaces",
                         ""),
    "config_file": ("Config file", "ansible: the ansible.cfg to use", "ansible.cfg"),
    "galaxy_registry": ("Galaxy registry", "ansible: where requirements.yml installs from", "default"),
    "pypi_registry": ("PyPI registry", "where requirements.txt / pyproject.toml install from", "default"),
    "executable": ("Executable object", "executable: the interpreter or binary that runs it", "none"),
    "tofu_vars": ("Variables", "one KEY=VALUE a line: -var", ""),
    "tofu_var_files": ("Var files", "-var-file, relative to the working dir", ""),
    "tofu_backend_config": ("Backend config", "one KEY=VALUE or file a line: init's -backend-config", ""),
    "description": ("Description", "", ""),
}
LINES_FIELDS = {"env", "secrets", "extra_vars", "tofu_vars", "tofu_backend_config"}
FIELD_ORDER = ("name", "type", "repository", "working_dir", "filename", "decorator", "env", "secrets", "tags",
               "timeout", *ANSIBLE_FIELDS, "pypi_registry", "executable", "tofu_action", "tofu_vars",
               "tofu_var_files", "tofu_backend_config", "description")  # description: every type's, last
RECENT_RUNS = 500  # how far back the home screen looks for each service's last run


def latest_runs(runs: Iterable[Any]) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for run in runs:  # newest first
        latest.setdefault(run.service, run)
    return latest


def state_line(summary: Any, tz: Any = None) -> str:
    """An opentofu-plan service's state in one line: never a value from it."""
    if summary is None:
        return "none yet: an apply stores it"
    count = len(summary.resources)
    names = f" ({', '.join(summary.resources[:5])}{', …' if count > 5 else ''})" if count else ""
    return (f"{count} resource{'' if count == 1 else 's'}{names} · serial {summary.serial} · changed "
            f"{full_time(summary.updated_at, tz)}" + (f" by run {summary.run}" if summary.run else ""))


class ServicesScreen(ResourceListScreen):
    SECTION = "services"
    KIND, NOUN, PLURAL = "service", "service", "services"
    COLUMNS = [
        Column("name", "Name", min_width=8, max_width=32, priority=0),
        Column("type", "Type", min_width=6, max_width=16, whole=True),
        Column("repository", "Repository", min_width=6, max_width=24, priority=2),
        Column("decorator", "Decorator", min_width=6, max_width=20, whole=True, priority=3),
        Column("status", "Last run", min_width=8, max_width=14, whole=True, priority=0),
        Column("when", "When", min_width=6, max_width=10, whole=True),
        Column("description", "Description", min_width=0, max_width=60, grow=True, priority=4),
    ]
    EMPTY = ("No services yet.\n\nA service runs a script, playbook or plan from a repository. "
             "Press [b]n[/b] to create one (add its repository first in [b]3[/b] Repositories).")
    BINDINGS = [
        Binding("r", "run", "Run", tooltip="Run the selected service"),
        *list_bindings("service"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.last_runs: dict[str, Any] = {}

    async def fetch(self) -> list[Any]:
        services = await self.gateway.list("service")
        try:
            self.last_runs = latest_runs(await self.gateway.list_runs(limit=RECENT_RUNS))
        except GatewayError as exc:
            self.report(exc, "Cannot read the run history")
        return services

    def rows(self, resources: list[Any]) -> Iterable[TableRow]:
        now = self.app.clock()  # type: ignore[attr-defined]
        for service in resources:
            run = self.last_runs.get(service.name)
            status = run.status if run else ""
            yield TableRow(
                service.name,
                (service.name, service.type, service.repository, service.decorator, status_label(status),
                 ago(run.created_at, now) if run else "", service.description.splitlines()[0]
                 if service.description else ""),
                (None, None, None, None, STATUS_STYLES.get(status), "muted", "muted"),
                (None, None, None, None, None, sort_value(run.created_at) if run else "", None),
            )

    def form(self, resource: Any | None) -> ServiceFormScreen:
        return ServiceFormScreen(resource)

    @work(exclusive=True, group="edit")
    async def action_edit(self) -> None:
        """A list carries what its table shows (a server sends summaries): the form gets the whole service."""
        service = self._need_selection()
        if service is None:
            return
        try:
            whole = await self.gateway.get("service", service.name)
        except GatewayError as exc:
            self.report(exc, f"Cannot open service {service.name}")
            return
        self.app.push_screen(self.form(whole), self._saved)

    def details(self, resource: Any) -> ServiceDetailsScreen:
        return ServiceDetailsScreen(resource.name)

    def action_run(self) -> None:
        service = self._need_selection()
        if service is not None:
            self.app.open_run(service.name)  # type: ignore[attr-defined]


class ServiceFormScreen(FormScreen):
    SECTION = "services"
    NOUN = "service"
    FLAG_FIELDS = {"--var": "tofu_vars", "--var-file": "tofu_var_files", "--backend-config": "tofu_backend_config",
                   "--extra-vars": "extra_vars", "--extra-vars-file": "extra_vars_files", "--playbook": "playbooks",
                   "--inventory": "inventories", "--action": "tofu_action", "--pypi-registry": "pypi_registry",
                   "--galaxy-registry": "galaxy_registry", "--config-file": "config_file"}

    def fields(self) -> ComposeResult:
        """Every type's fields and those of the type it starts with; another type's are built when it is chosen
        (`_show_type_fields`)."""
        self.shown_type = self.resource.type if self.resource is not None else SERVICE_TYPES[0]
        own = TYPE_FIELDS.get(self.shown_type, ())
        for name in FIELD_ORDER:
            if name in own or name not in TYPED_FIELDS:
                yield self._field(name)

    def _field(self, name: str) -> FormField:
        s: Service = self.resource or Service(name="")
        match name:
            case "name":
                return FormField("name", "Name", Input(s.name, placeholder="add-vlan", id="name", compact=True,
                                                       disabled=self.editing),
                                 "letters, digits, - _ . (1-64)", required=True)
            case "type":
                return FormField("type", "Type", Select([(t, t) for t in SERVICE_TYPES], value=s.type,
                                                        allow_blank=False, id="type", compact=True), required=True)
            case "repository":
                return FormField("repository", "Repository", Select([], id="repository", compact=True,
                                                                    prompt="choose a repository"), required=True)
            case "decorator":
                return FormField("decorator", "Decorator", Select([], id="decorator", compact=True, prompt="none"),
                                 "the JSON Schema of its inputs (optional)")
            case "tofu_action":
                action = Select([(a, a) for a in TOFU_ACTIONS], id="tofu_action", compact=True,
                                prompt="plan (default)", **({"value": s.tofu_action} if s.tofu_action else {}))
                return FormField("tofu_action", "Action", action, "what a run does when it names nothing")
        label, help, placeholder = TEXT_FIELDS[name]
        value = getattr(s, name)
        if name in LINES_FIELDS:  # a TextArea, one item a line
            items = [f"{k}={v}" for k, v in value.items()] if isinstance(value, dict) else [str(v) for v in value]
            return FormField(name, label, TextArea("\n".join(items), id=name, compact=True, soft_wrap=False), help)
        text = " ".join(value) if isinstance(value, list) else "" if value is None else str(value)
        options: dict[str, Any] = {"placeholder": placeholder} if placeholder else {}
        if name == "working_dir":
            text = text or "."
        elif name == "filename":
            options["placeholder"] = DEFAULT_FILENAMES[s.type]
        elif name == "timeout":
            options["type"] = "integer"
        return FormField(name, label, Input(text, id=name, compact=True, **options), help)

    shown_type = ""  # the type whose own fields show (settled: once its fields are built)

    async def _show_type_fields(self) -> None:
        """Only the chosen type's own fields and every type's: those of a type not chosen before are built now,
        and what was typed in the others stays for a move back. Keys wait meanwhile (`_builds`)."""
        try:
            await self._build_type_fields()
        finally:
            self._builds -= 1

    async def _build_type_fields(self) -> None:
        await self.built.wait()
        async with self.building:
            kind = self.query_one("#type", Select).value
            if not isinstance(kind, str) or kind == self.shown_type or not self.showing:
                return
            self.shown_type = kind
            own = set(TYPE_FIELDS.get(kind, ()))
            built = {field.field: field for field in self.query(FormField)}
            form = self.query_one("#form")
            added = False
            for name in FIELD_ORDER:
                if name in own and name not in built:
                    before = next(built[later] for later in FIELD_ORDER[FIELD_ORDER.index(name):] if later in built)
                    built[name] = self._field(name)
                    await form.mount(built[name], before=before)
                    added = True
            if added:
                self.started_with(self.values())  # their first values
            for name in TYPED_FIELDS & built.keys():
                built[name].display = name in own

    async def load(self) -> None:
        try:
            repositories = sorted(r.name for r in await self.gateway.list("repository"))
            decorators = sorted(d.name for d in await self.gateway.list("decorator"))
        except GatewayError as exc:
            self.report(exc, "Cannot list repositories and decorators")
            return
        if not self.showing:  # the form was left while the list was read
            return
        s = self.resource
        repository = self.query_one("#repository", Select)
        repository.set_options([(r, r) for r in repositories])
        if s is not None and s.repository in repositories:
            repository.value = s.repository
        elif len(repositories) == 1:
            repository.value = repositories[0]
        if not repositories:
            self.query_one("#field-repository", FormField).set_error(
                "no repositories yet: create one first (3 Repositories)")
        decorator = self.query_one("#decorator", Select)
        decorator.set_options([(d, d) for d in decorators])
        if s is not None and s.decorator in decorators:
            decorator.value = s.decorator

    @on(Select.Changed, "#type")
    def _type_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#filename", Input).placeholder = DEFAULT_FILENAMES.get(event.value, "")
            if self.shown_type != event.value:
                self._builds += 1
                self.run_worker(self._show_type_fields(), group="type-fields")

    def collect(self) -> dict[str, Any]:
        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        def choice(widget_id: str) -> str:
            value = self.query_one(f"#{widget_id}", Select).value
            return value if isinstance(value, str) else ""

        env: dict[str, str] = {}
        for number, line in enumerate(self.query_one("#env", TextArea).text.splitlines(), 1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                self.fail("env", f"line {number}: {line.strip()!r} is not KEY=VALUE")
            else:
                env[key.strip()] = value
        secrets: list[SecretRef] = []
        for line in self.query_one("#secrets", TextArea).text.splitlines():
            if line.strip():
                try:
                    secrets.append(SecretRef.parse(line.strip()))
                except InvalidArgument as exc:
                    self.fail_with(exc)
        timeout: int | None = None
        if text("timeout"):
            try:
                timeout = int(text("timeout"))
            except ValueError:
                self.fail("timeout", "a whole number of seconds")
        tofu: dict[str, Any] = dict(tofu_action="", tofu_vars={}, tofu_var_files=[], tofu_backend_config=[])
        if choice("type") == "opentofu-plan":
            for number, line in enumerate(self.query_one("#tofu_vars", TextArea).text.splitlines(), 1):
                if line.strip():
                    key, sep, value = line.partition("=")
                    if not sep or not key.strip():
                        self.fail("tofu_vars", f"line {number}: {line.strip()!r} is not KEY=VALUE")
                    else:
                        tofu["tofu_vars"][key.strip()] = value
            tofu.update(tofu_action=choice("tofu_action"), tofu_var_files=split_words(text("tofu_var_files")),
                        tofu_backend_config=[line.strip() for line in
                                             self.query_one("#tofu_backend_config", TextArea).text.splitlines()
                                             if line.strip()])
        values = dict(
            name=text("name"), type=choice("type"), repository=choice("repository"),
            working_dir=text("working_dir") or ".", filename=text("filename"), decorator=choice("decorator"),
            env=env, secrets=secrets, tags=split_words(text("tags")), timeout=timeout, **tofu,
            description=self.query_one("#description", Input).value,
            pypi_registry=text("pypi_registry") if "pypi_registry" in TYPE_FIELDS.get(choice("type"), ()) else "",
        )
        ansible = values["type"] == "ansible-playbook"
        values.update(
            playbooks=split_words(text("playbooks")) if ansible else [],
            inventories=split_words(text("inventories")) if ansible else [],
            extra_vars=[line.strip() for line in self.query_one("#extra_vars", TextArea).text.splitlines()
                        if line.strip()] if ansible else [],
            extra_vars_files=split_words(text("extra_vars_files")) if ansible else [],
            config_file=text("config_file") if ansible else "",
            galaxy_registry=text("galaxy_registry") if ansible else "",
            executable=text("executable") if values["type"] == "executable" else "",
        )
        if not values["name"]:
            self.fail("name", "a name is required")
        if not values["repository"]:
            self.fail("repository", "choose the repository the service lives in")
        if not self.errors:
            try:
                Service(**values).validate()  # the engine's own rules, before a round trip
            except InvalidArgument as exc:
                self.fail_with(exc)
        return values

    async def save(self, values: dict[str, Any]) -> str:
        if self.editing:
            changes = {k: v for k, v in values.items() if k != "name"}
            await self.gateway.update("service", self.resource.name, changes)
            return self.resource.name
        created = await self.gateway.create(Service(**values))
        return created.name


class ServiceDetailsScreen(DetailsScreen):
    SECTION = "services"
    KIND, NOUN = "service", "service"
    BINDINGS = [
        Binding("r", "run", "Run", tooltip="Run this service"),
        *DetailsScreen.BINDINGS,
        Binding("enter", "open_run", "Open run", tooltip="Show the output of the selected run"),
    ]

    def compose_extra(self) -> ComposeResult:
        yield Static("", id="tofu-state")
        yield Label("Recent runs", classes="section-title")
        yield RunTable(["id", "status", "when", "duration", "exit", "reason"], id="recent-runs")

    def pairs(self, s: Any) -> Iterable[tuple[str, Any]]:
        return [
            ("type", s.type), ("repository", s.repository), ("working dir", s.working_dir),
            ("filename", s.filename or f"{s.script or '—'} (default)"), ("decorator", s.decorator),
            ("environment", " ".join(f"{k}={v}" for k, v in s.env.items())),
            ("secrets", [f"{r.name} → ${r.target}" for r in s.secrets]), ("tags", s.tags),
            ("timeout", f"{s.timeout} s" if s.timeout else "default"),
            *([("playbooks", s.playbook_files), ("inventories", s.inventories), ("extra vars", s.extra_vars),
               ("extra vars files", s.extra_vars_files), ("config file", s.config_file),
               ("galaxy registry", s.galaxy_registry or "default")] if s.type == "ansible-playbook" else []),
            *([("pypi registry", s.pypi_registry or "default")] if s.type in ("python-script", "ansible-playbook")
              else []),
            *([("executable object", s.executable)] if s.executable else []),
            *([("action", s.tofu_action or "plan (default)"),
               ("variables", " ".join(f"{k}={v}" for k, v in s.tofu_vars.items())),
               ("var files", s.tofu_var_files), ("backend config", s.tofu_backend_config)]
              if s.type == "opentofu-plan" else []),
            ("description", s.description),
            ("created", full_time(s.created_at, self.app.tz)),  # type: ignore[attr-defined]
            ("updated", full_time(s.updated_at, self.app.tz)),  # type: ignore[attr-defined]
        ]

    async def load_extra(self) -> None:
        state = self.query_one("#tofu-state", Static)
        state.display = getattr(self.resource, "type", "") == "opentofu-plan"
        if state.display:
            try:
                summary = await self.gateway.service_state(self.name_)
            except GatewayError as exc:
                self.report(exc, "Cannot read the state")
                summary = None
            state.update(Content.assemble(("State  ", "bold"), state_line(summary, self.app.tz)))  # type: ignore[attr-defined]
        try:
            runs = await self.gateway.list_runs(service=self.name_, limit=50)
        except GatewayError as exc:
            self.report(exc, "Cannot read the run history")
            return
        app: Any = self.app
        table = self.query_one("#recent-runs", RunTable)
        table.set_runs(runs, app.tz, app.clock())
        table.display = bool(runs)
        self.query_one(".section-title", Label).update(
            Content("Recent runs" if runs else "No runs yet: press r to run it"))

    def form(self) -> ServiceFormScreen:
        return ServiceFormScreen(self.resource)

    def action_run(self) -> None:
        self.app.open_run(self.name_)  # type: ignore[attr-defined]

    def action_open_run(self) -> None:
        key = self.query_one("#recent-runs", ResourceTable).cursor_key
        if key:
            self.app.open_run_output(key)  # type: ignore[attr-defined]

    @on(ResourceTable.Selected, "#recent-runs")
    def _run_selected(self, event: ResourceTable.Selected) -> None:
        self.app.open_run_output(event.key)  # type: ignore[attr-defined]
