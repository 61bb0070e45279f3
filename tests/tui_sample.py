"""A gateway full of realistic, fixed data for the TUI's snapshot tests, screenshots and bench.

The resources live in a real Engine (memory store) so the forms meet the real
rules; the run history is recorded here, and every timestamp is fixed, so a
screen looks the same on every machine, in every time zone, on every day.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Decorator, NotFound, Repository, SecretRef, Service
from gateway_daemon.core.resources.executables import ExecutableObject
from gateway_daemon.core.resources.registries import Registry
from gateway_daemon.core.resources.runners import RunnerInfo
from gateway_daemon.core.runs.records import OutputLine, Run, RunEvent

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc).timestamp()
STAMP = "2026-11-20T09:12:00Z"
CONTEXT = "local mode · ~/.gateway"

VLAN_SCHEMA = {
    "type": "object",
    "properties": {
        "vlan_id": {"type": "integer", "minimum": 1, "maximum": 4094, "description": "802.1Q VLAN id"},
        "name": {"type": "string", "minLength": 2, "maxLength": 32, "description": "VLAN name on the switches"},
        "site": {"enum": ["ams1", "fra2", "lon3"], "default": "ams1", "description": "data centre"},
        "tagged": {"type": "boolean", "default": False, "description": "tag the VLAN on the uplinks"},
        "ports": {"type": "array", "items": {"type": "string"}, "description": "access ports"},
    },
    "required": ["vlan_id", "name"],
    "additionalProperties": False,
}
BACKUP_SCHEMA = {
    "type": "object",
    "properties": {
        "hosts": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                  "description": "devices to back up"},
        "compress": {"type": "boolean", "default": True},
    },
    "required": ["hosts"],
}
LAB_SCHEMA = {
    "type": "object",
    "properties": {
        "workers": {"type": "integer", "minimum": 1, "maximum": 12, "default": 2},
        "flavor": {"enum": ["small", "medium", "large"], "default": "small"},
    },
}

REPOSITORIES = [
    Repository(name="netops-automations", url="https://git.example.com/netops/automations.git", reference="main",
               description="Network automation scripts", tags=["netops"]),
    Repository(name="infra-plans", url="ssh://git@git.example.com/platform/infra-plans.git", reference="v2.4.0",
               private_key_name="deploy-key", description="OpenTofu plans for the test lab"),
    Repository(name="playbooks", url="https://git.example.com/ops/playbooks.git",
               description="Ansible playbooks for the load balancers"),
]
SECRETS = [
    ("api-token", "nb-example-0000-not-a-real-token", "NetBox API token"),
    ("deploy-key", "-----BEGIN OPENSSH PRIVATE KEY----- example -----END OPENSSH PRIVATE KEY-----",
     "SSH deploy key for git.example.com"),
    ("switch-password", "example-password", "Read-only login on the core switches"),
]
DECORATORS = [
    Decorator(name="vlan-form", schema=VLAN_SCHEMA, description="A VLAN to create"),
    Decorator(name="backup-form", schema=BACKUP_SCHEMA, description="Which devices to back up"),
    Decorator(name="lab-size", schema=LAB_SCHEMA, description="How big a lab to build"),
]
SERVICES = [
    Service(name="add-vlan", type="python-script", repository="netops-automations", working_dir="vlans",
            filename="add_vlan.py", decorator="vlan-form",
            secrets=[SecretRef(name="api-token", target="NETBOX_TOKEN")], tags=["core", "dc1"],
            description="Create a VLAN on the core switches and record it in NetBox"),
    Service(name="backup-configs", type="python-script", repository="netops-automations", working_dir="backups",
            filename="backup.py", decorator="backup-form",
            secrets=[SecretRef(name="switch-password", target="SWITCH_PASSWORD")],
            description="Back up running configs to the archive"),
    Service(name="rotate-certs", type="ansible-playbook", repository="playbooks", filename="certs.yml",
            description="Renew TLS certificates on the load balancers"),
    Service(name="lab-up", type="opentofu-plan", repository="infra-plans", working_dir="lab",
            decorator="lab-size", tofu_action="apply", tofu_vars={"region": "ams1"}, tofu_var_files=["lab.tfvars"], description="Bring the test lab up"),
    Service(name="ping-sweep", type="executable", repository="netops-automations", filename="tools/sweep.sh",
            description="Ping every management address"),
    Service(name="dns-audit", type="python-script", repository="netops-automations", filename="dns/audit.py",
            description="Compare DNS records with the IPAM"),
]
# Listed with the built-in default-pypi and default-galaxy (5 registries).
REGISTRIES = [
    Registry(name="pypi-mirror", type="pypi", url="https://pypi.example.com/simple", default=True,
             description="Company PyPI mirror"),
    Registry(name="pypi-private", type="pypi", url="https://pkgs.example.com/private/simple", token_name="api-token",
             description="Internal Python packages"),
    Registry(name="galaxy-lab", type="ansible-galaxy", url="http://galaxy.lab.example.net", insecure=True,
             description="Galaxy server of the test lab (plain http)"),
]
EXECUTABLES = [
    ExecutableObject(name="python311", exec_command="/usr/bin/python3.11 -u", description="Python 3.11, unbuffered"),
    ExecutableObject(name="bash-strict", exec_command="/bin/bash -euo pipefail", arg_format="--{key} {value}",
                     description="Bash that stops at the first error"),
    ExecutableObject(name="pwsh", exec_command="/usr/bin/pwsh -NoProfile -NonInteractive -File",
                     arg_format="-{key} {value}", description="PowerShell 7 for the Windows jump hosts"),
]

ADD_VLAN_OUTPUT = [
    OutputLine("gateway", "fetching https://git.example.com/netops/automations.git (main)"),
    OutputLine("gateway", "checked out 3fa2c1d8e0"),
    OutputLine("gateway", "python environment ready (cached)"),
    OutputLine("stdout", "Connecting to core-sw1.ams1.example.net"),
    OutputLine("stdout", "Connecting to core-sw2.ams1.example.net"),
    OutputLine("stdout", "core-sw1: VLAN 120 'users' created"),
    OutputLine("stderr", "WARNING: core-sw2: port xe-0/0/12 is in use, skipped"),
    OutputLine("stdout", "core-sw2: VLAN 120 'users' created"),
    OutputLine("stdout", "NetBox: VLAN 120 recorded at site ams1 (token ******)"),
    OutputLine("stdout", "Done: VLAN 120 on 2 switches, 3 ports"),
]


def _run(run_id: str, service: str, status: str, minutes_ago: float, seconds: float | None, exit_code: int | None,
         inputs: dict[str, Any] | None = None, reason: str = "", kind: str = "python-script") -> Run:
    created = NOW - minutes_ago * 60
    return Run(id=run_id, service=service, service_type=kind, inputs=inputs or {}, started_by="ops",
               status=status, reason=reason, created_at=created, started_at=created + 0.4,
               ended_at=None if seconds is None else created + 0.4 + seconds, exit_code=exit_code,
               commit="3fa2c1d8e0b14c2a9e55" if kind != "opentofu-plan" else "8d0be7a1c3")


def history() -> list[tuple[Run, list[OutputLine]]]:
    """Newest first."""
    vlan = {"vlan_id": 120, "name": "users", "site": "ams1", "tagged": False, "ports": ["ge-0/0/1", "ge-0/0/2"]}
    return [
        (_run("20261124-102800-5e1f0a", "add-vlan", "succeeded", 2, 3.2, 0, vlan), ADD_VLAN_OUTPUT),
        (_run("20261124-101500-c41d9e", "backup-configs", "failed", 15, 41.7, 2,
              {"hosts": ["core-sw1", "core-sw3"], "compress": True}, "exited with code 2"),
         [OutputLine("stdout", "core-sw1: saved 48213 bytes"),
          OutputLine("stderr", "core-sw3: connection timed out after 30 s"),
          OutputLine("stderr", "1 of 2 devices failed")]),
        (_run("20261124-094000-0b7c33", "lab-up", "cancelled", 50, 12.0, -15, {"workers": 4, "flavor": "medium"},
              "cancelled", kind="opentofu-plan"),
         [OutputLine("stdout", "Plan: 9 to add, 0 to change, 0 to destroy.")]),
        (_run("20261124-090500-77aa10", "ping-sweep", "succeeded", 85, 8.4, 0, kind="executable"),
         [OutputLine("stdout", "214 of 214 addresses answer")]),
        (_run("20261123-171200-e2f4c8", "rotate-certs", "timed-out", 1038, 3600.0, None, {},
              "stopped after the 3600 s time limit", kind="ansible-playbook"),
         [OutputLine("stdout", "TASK [renew certificates] ****")]),
        (_run("20261123-160100-9d3e51", "add-vlan", "succeeded", 1109, 2.9, 0,
              {"vlan_id": 310, "name": "cameras", "site": "fra2", "tagged": True}), []),
    ]


class SampleGateway:
    """A real Engine for resources, with fixed timestamps and a recorded run history."""

    def __init__(self, engine: Any, runs: list[tuple[Run, list[OutputLine]]] | None = None,
                 live_output: list[OutputLine] | None = None, filled: bool = True):
        self.engine = engine
        self._unfilled = filled  # filled on first use, inside the app's own event loop
        self.history = list(runs if runs is not None else history())
        self.live_output = live_output if live_output is not None else ADD_VLAN_OUTPUT
        self.started: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    @staticmethod
    def _fixed(resource: Any) -> Any:
        if not resource.created_at:  # built in (default-pypi, default-galaxy): it has no times
            return resource
        return dataclasses.replace(resource, created_at=STAMP, updated_at=STAMP)

    async def _ready(self) -> None:
        if self._unfilled:
            self._unfilled = False
            await fill(self.engine)

    async def list(self, kind: str, full: bool = False) -> list[Any]:
        await self._ready()
        return [self._fixed(r) for r in await self.engine.list(kind)]

    async def get(self, kind: str, name: str) -> Any:
        await self._ready()
        return self._fixed(await self.engine.get(kind, name))

    async def list_runs(self, service: str | None = None, status: str | None = None, limit: int = 100,
                        runner: str | None = None) -> list[Run]:
        runs = [r for r, _ in self.history if (not service or r.service == service) and (not status or r.status == status)
                and (not runner or r.runner == runner)]
        return runs[:limit] if limit else runs

    async def get_run(self, run_id: str) -> Run:
        for run, _ in self.history:
            if run.id == run_id:
                return run
        raise NotFound(f"run {run_id!r} not found")

    async def run_output(self, run_id: str) -> list[OutputLine]:
        await self.get_run(run_id)
        return next(lines for run, lines in self.history if run.id == run_id)

    async def follow_run(self, run_id: str) -> AsyncIterator[RunEvent]:
        run = await self.get_run(run_id)
        yield RunEvent("status", run=run)
        lines = await self.run_output(run_id)
        if lines:
            yield RunEvent("output", lines=tuple(lines))

    async def run_service(self, name: str, inputs: dict[str, Any] | None = None, secrets: Any = None,
                          timeout: int | None = None, options: Any = None, **tofu: Any) -> AsyncIterator[RunEvent]:
        """A run that ends at once with the recorded output (the engine checks the inputs first)."""
        from gateway_daemon.core.runs.records import prepare_inputs

        service = await self.engine.get("service", name)
        schema = (await self.engine.get("decorator", service.decorator)).schema if service.decorator else None
        values = prepare_inputs(schema, inputs or {})
        self.started.append((name, values))
        run = _run("20261124-103000-a1b2c3", name, "queued", 0, None, None, values, kind=service.type)
        yield RunEvent("status", run=run)
        run = dataclasses.replace(run, status="running")
        yield RunEvent("status", run=run)
        for line in self.live_output:
            yield RunEvent("output", lines=(line,))
        await asyncio.sleep(0)
        yield RunEvent("status", run=dataclasses.replace(run, status="succeeded", exit_code=0,
                                                         ended_at=run.started_at + 3.2))

    async def cancel_run(self, run_id: str) -> Run:
        return await self.get_run(run_id)


def sample_engine(data_dir: Path) -> Any:
    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(data_dir),
                                        "GATEWAY_STORE_BACKEND": "memory"})
    return open_engine(config, announce=lambda _text: None)


async def fill(gateway: Any) -> None:
    for name, value, description in SECRETS:
        await gateway.create_secret(name, value, description)
    for resource in [*REPOSITORIES, *DECORATORS, *SERVICES, *REGISTRIES, *EXECUTABLES]:
        await gateway.create(resource)


def sample_gateway(data_dir: Path, filled: bool = True, runs: bool = True) -> SampleGateway:
    """A SampleGateway on a fresh memory store; `filled` with the sample resources, `runs` with the history."""
    return SampleGateway(sample_engine(data_dir), history() if runs else [], filled=filled)


# ---------------------------------------------------------------- client mode (stand-ins for a server)
SERVER_ADDRESS = "gateway.example.net:50051"
SAMPLE_PASSWORD = "correct-horse-battery"
TEMPORARY_PASSWORD = "Tmp-4f9a2c"


@dataclasses.dataclass
class SampleUser:
    name: str
    admin: bool = False
    created_at: str = STAMP
    last_login_at: str = ""
    must_change_password: bool = False
    role: str = "viewer"
    scope: tuple[str, ...] = ()
    locked_until: str = ""

    def __post_init__(self) -> None:
        if self.admin:
            self.role = "admin"


USERS = [
    SampleUser("admin", admin=True, created_at="2026-09-01T08:00:00Z", last_login_at="2026-11-24T10:25:00Z"),
    SampleUser("alice", admin=True, created_at="2026-09-14T13:40:00Z", last_login_at="2026-11-24T09:02:00Z"),
    SampleUser("bob", created_at="2026-10-02T07:15:00Z", last_login_at="2026-11-21T16:48:00Z", role="editor"),
    SampleUser("ci-runner", created_at="2026-11-20T09:12:00Z", role="operator", scope=("lab",)),
    SampleUser("dora", created_at="2026-11-22T11:03:00Z", last_login_at="2026-11-23T08:41:00Z",
               locked_until="2026-11-24T10:45:00Z"),
]


def _event(minutes_ago: float, user: str, action: str, target: str, outcome: str = "ok", detail: str = "",
           inputs: dict | None = None, source: str = "10.20.1.7") -> Any:
    from gateway_daemon.core.access.audit import AuditEvent, stamp

    return AuditEvent(stamp(NOW - minutes_ago * 60), user, source, action, target, outcome, detail, inputs)


AUDIT = [
    _event(1, "bob", "run.end", "service/add-vlan", "succeeded", "run r-7f3a1c"),
    _event(2, "bob", "run", "service/add-vlan", "started", "run r-7f3a1c", {"vlan": 120, "password": "******"}),
    _event(6, "dora", "login", "user/dora", "refused",
           "too many failed logins for dora: try again after 2026-11-24 10:45:00 UTC", source="203.0.113.9"),
    _event(7, "dora", "login", "user/dora", "failed", "wrong username or password", source="203.0.113.9"),
    _event(12, "ci-runner", "create", "secret", "refused",
           "ci-runner is an operator: creating, editing and deleting needs an admin or an editor", source="10.40.0.5"),
    _event(25, "alice", "reveal", "secret/netbox-token"),
    _event(31, "alice", "edit", "service/backup-configs"),
    _event(44, "admin", "edit", "user/ci-runner"),
    _event(45, "admin", "create", "user/dora"),
    _event(58, "admin", "export", "database"),
    _event(63, "admin", "login", "user/admin", source="10.20.1.2"),
]


def _runner(host: str, tags: list[str], capacity: int, load: int, seen_ago: float, up_hours: float,
            **more: Any) -> RunnerInfo:
    return RunnerInfo(id=f"{host}:50052", address=host, port=50052, tags=tags, capacity=capacity, load=load,
                      last_seen=NOW - seen_ago, started_at=NOW - up_hours * 3600, use_tls=True, version="0.1.0",
                      **more)


RUNNERS = [
    _runner("10.20.0.11", ["ams1", "core"], 4, 1, 1.0, 75.2),
    _runner("10.20.0.12", ["ams1"], 4, 0, 2.6, 75.1),
    _runner("10.40.0.21", ["fra2", "lab"], 2, 2, 0.4, 6.5),
    _runner("10.40.0.22", ["fra2"], 2, 1, 3.1, 30.0, draining=True),
    _runner("10.60.0.9", ["lon3"], 2, 0, 1.8, 0.2, problem="no secrets key: set [secrets] encrypt_key_file"),
]
# Which runner ran each run of the history, on a server with distributed execution.
RAN_ON = {"add-vlan": "10.20.0.11:50052", "backup-configs": "10.20.0.12:50052", "lab-up": "10.40.0.21:50052",
          "ping-sweep": "10.20.0.11:50052", "rotate-certs": "10.40.0.22:50052"}


def server_history() -> list[tuple[Run, list[OutputLine]]]:
    """The history as a server with runners has it: each run names its runner."""
    return [(dataclasses.replace(run, runner=RAN_ON.get(run.service, "")), lines) for run, lines in history()]


class SampleServerGateway(SampleGateway):
    """SampleGateway plus the server's user calls, with fixed users, and fixed runners."""

    def __init__(self, *args: Any, role: str = "admin", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.users = [dataclasses.replace(u) for u in USERS]
        self.role = role

    async def whoami(self) -> Any:
        from gateway_daemon.core.api import Identity

        return Identity("admin" if self.role == "admin" else f"a-{self.role}", self.role == "admin", NOW + 86400,
                        role=self.role)

    async def list_runners(self) -> list[RunnerInfo]:
        return list(RUNNERS)

    async def list_users(self) -> list[SampleUser]:
        return list(self.users)

    async def list_audit(self, user: str = "", action: str = "", since: str = "", limit: int = 0) -> list[Any]:
        if self.role != "admin":
            from gateway_daemon.core import PermissionDenied

            raise PermissionDenied(f"a-{self.role} is not an admin: the audit trail needs an admin")
        return list(AUDIT)

    async def create_user(self, name: str, password: str, admin: bool = False, temporary: bool = False,
                          role: str = "", scope: tuple[str, ...] = ()) -> SampleUser:
        user = SampleUser(name, admin, role=role or ("admin" if admin else "viewer"), scope=tuple(scope))
        self.users.append(user)
        return user

    async def update_user(self, name: str, admin: bool | None = None, password: str | None = None,
                          role: str | None = None, scope: tuple[str, ...] | None = None,
                          unlock: bool = False) -> SampleUser:
        user = next(u for u in self.users if u.name == name)
        if admin is not None:
            user.admin = admin
            user.role = "admin" if admin else "viewer"
        if role is not None:
            user.role, user.admin = role, role == "admin"
        if scope is not None:
            user.scope = tuple(scope)
        if unlock:
            user.locked_until = ""
        return user

    async def delete_user(self, name: str) -> None:
        self.users = [u for u in self.users if u.name != name]


class SampleServer:
    """A stand-in ServerConnection: a fixed address, `admin` / SAMPLE_PASSWORD logs in (TEMPORARY_PASSWORD must
    be changed first), and the gateway is a SampleServerGateway. For snapshots, which a real server's random
    port and timestamps would make different on every run."""

    def __init__(self, data_dir: Path, logged_in: bool = False, profile: str | None = None, role: str = "admin"):
        self.data_dir = data_dir
        self.profile = profile
        self.role = role
        self.address = SERVER_ADDRESS
        self.use_tls = True
        self.logged_in = logged_in

    def profiles(self) -> list[str]:
        return ["lab"]

    def for_profile(self, profile: str | None) -> "SampleServer":
        return SampleServer(self.data_dir, profile=profile)

    def stored(self) -> Any:
        from gateway_tui.connection import ServerLogin

        if not self.logged_in:
            return None
        return ServerLogin("admin" if self.role == "admin" else f"a-{self.role}", NOW + 86400, None)

    async def login(self, username: str, password: str, new_password: str = "") -> Any:
        from gateway_daemon.core import FailedPrecondition, Unauthenticated
        from gateway_tui.connection import ServerLogin

        if username == "admin" and password == TEMPORARY_PASSWORD and not new_password:
            raise FailedPrecondition("the password of admin is temporary and must be changed first")
        if username != "admin" or password not in (SAMPLE_PASSWORD, TEMPORARY_PASSWORD):
            raise Unauthenticated("wrong username or password")
        self.logged_in = True
        return ServerLogin("admin", NOW + 86400, True)

    def open(self, on_unauthenticated: Any = None) -> SampleServerGateway:
        return SampleServerGateway(sample_engine(self.data_dir), server_history(), role=self.role)

    def forget(self) -> None:
        self.logged_in = False
