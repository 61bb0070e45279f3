"""The Gateway interface: what the TUI and the `gateway` verbs talk to.

`core.engine.Engine` implements it in-process (local mode, the server's own
use); `rpc.client.RemoteGateway` implements it over gRPC (client mode).  The
TUI never knows which one it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .access.audit import AuditEvent
    from .resources.base import Resource
    from .resources.runners import RunnerInfo
    from .runs.records import OutputLine, Run, RunEvent
    from .resources.services import SecretRef
    from .resources.secrets import Secret
    from .runs.tofu_state import StateSummary


@dataclass
class EngineInfo:
    mode: str
    data_dir: str
    store: str
    cluster_id: str
    distributed: bool = False  # runs go to runners, none run here


@dataclass
class ImportReport:
    """What an import did (or, with dry_run, would do)."""

    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (action, kind, name)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change[0] == action)

    def summary(self) -> str:
        created, updated, unchanged = self.count("create"), self.count("update"), self.count("unchanged")
        if self.dry_run:
            return (f"dry run: {created} to create, {updated} to update, {unchanged} unchanged; "
                    "nothing was changed")
        return f"imported: {created} created, {updated} updated, {unchanged} unchanged"

    def lines(self, with_warnings: bool = True) -> list[str]:
        """One line per resource ("create service deploy"), the warnings, then a summary."""
        result = [f"{action} {kind} {name}" for action, kind, name in self.changes]
        if with_warnings:
            result.extend(f"warning: {text}" for text in self.warnings)
        result.append(self.summary())
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [list(c) for c in self.changes], "warnings": list(self.warnings), "dry_run": self.dry_run}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        return cls([tuple(c) for c in data.get("changes", [])],  # type: ignore[misc]
                   list(data.get("warnings", [])), bool(data.get("dry_run", False)))


@dataclass(frozen=True)
class UserInfo:
    """A user as every caller may see it: never the password hash."""

    name: str
    admin: bool = False
    created_at: str = ""
    last_login_at: str = ""
    must_change_password: bool = False
    role: str = ""                  # admin, editor, operator, viewer (core.policy)
    scope: tuple[str, ...] = ()     # service tags the role is limited to; empty: every service
    locked_until: str = ""          # no login before this time after failed logins (ISO, UTC); "" when not


@dataclass(frozen=True)
class Identity:
    """Who the caller is: the user of the API key and when that key expires (0: never, local mode)."""

    username: str
    admin: bool
    expires_at: float = 0.0
    role: str = "admin"
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class Login:
    """A successful login: the API key (shown once) and whose it is, valid until `expires_at`."""

    api_key: str
    username: str
    admin: bool
    expires_at: float
    role: str = "admin"
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as its owner (or an admin) sees it: its id, never the key."""

    id: str
    user: str
    created_at: str
    last_used_at: str
    expires_at: float
    current: bool = False  # the key this gateway sends


@runtime_checkable
class Gateway(Protocol):
    """Every operation the face needs.  Errors are core.errors.GatewayError subclasses:
    NotFound, AlreadyExists, InvalidArgument (with .fields), FailedPrecondition,
    Unauthenticated, PermissionDenied, Unavailable (the store or the server cannot be
    reached), Conflict."""

    async def info(self) -> EngineInfo:
        """The engine behind this gateway: mode, data dir (or server), store, cluster."""
        ...

    # resources: kind is "repository", "decorator", "service", "secret", "registry", "executable-object" or
    # "secret-provider"
    async def create(self, resource: "Resource") -> "Resource": ...
    async def get(self, kind: str, name: str) -> "Resource": ...
    async def list(self, kind: str, full: bool = False) -> list["Resource"]:
        """Every resource of `kind` the caller may see, with what a table of them shows; a server's services come
        with only that (their other fields at their defaults: get() has them) unless `full`."""
        ...

    async def update(self, kind: str, name: str, changes: dict[str, Any]) -> "Resource": ...
    async def delete(self, kind: str, name: str) -> None: ...
    def watch(self, kind: str) -> AsyncIterator[tuple[str, str]]: ...

    # secrets carry a value that only these calls see
    # an alias (provider, path, key: core.resources.secret_providers) has no value here: it is fetched when a run is prepared
    async def create_secret(self, name: str, value: str, description: str = "",
                            tags: list[str] | tuple[str, ...] = (), provider: str = "", path: str = "",
                            key: str = "") -> "Secret": ...
    async def update_secret(self, name: str, value: str | None = None, description: str | None = None,
                            tags: list[str] | tuple[str, ...] | None = None, provider: str | None = None,
                            path: str | None = None, key: str | None = None) -> "Secret": ...
    async def reveal_secret(self, name: str) -> str: ...

    # the whole database, secrets still sealed
    async def export_db(self) -> dict[str, Any]: ...
    async def import_db(self, document: Any, dry_run: bool = False, strict: bool = False) -> ImportReport: ...

    async def read_repository_file(self, url: str, reference: str = "", path: str = "",
                                   private_key_name: str = "", defaults: tuple[str, ...] = ()) -> tuple[str, str]:
        """A file of a git repository as the gateway fetches it (db import --repository): (path, text)."""
        ...

    # runs
    def run_service(self, name: str, inputs: dict[str, Any] | None = None, secrets: list["SecretRef"] | None = None,
                    timeout: int | None = None, options: dict[str, Any] | None = None, *, action: str = "",
                    state: str | None = None, state_out: bool = False) -> AsyncIterator["RunEvent"]:
        """Start a run and follow it; `options`: the run options of its type (core.run_options).
        opentofu-plan: `action` plan|apply|destroy (empty: the service's), `state` to start from instead of
        the stored one, `state_out`: the final status event carries the state the run ended with."""
        ...

    async def service_state(self, name: str) -> "StateSummary | None":
        """The summary of an opentofu-plan service's stored state (resources, serial, last change); None: none."""
        ...
    async def cancel_run(self, run_id: str) -> "Run": ...
    async def get_run(self, run_id: str) -> "Run": ...
    async def list_runs(self, service: str | None = None, status: str | None = None,
                        limit: int = 100, runner: str | None = None) -> list["Run"]: ...
    async def run_output(self, run_id: str) -> list["OutputLine"]: ...

    async def delete_run(self, run_id: str) -> None:
        """Remove a finished run with its output (FailedPrecondition while it runs). A server: admins only."""
        ...

    async def prune_runs(self, before: str, service: str = "") -> int:
        """Remove every finished run created before `before` (an ISO time or date, or an age: 2h, 7d), only
        `service`'s when given; how many went. A server: admins only."""
        ...
    def follow_run(self, run_id: str) -> AsyncIterator["RunEvent"]: ...

    # the cluster's live runners (empty unless runners announce in this store)
    async def list_runners(self) -> list["RunnerInfo"]: ...

    # who is calling; users and logins (server mode: through a client; local mode has no users)
    async def whoami(self) -> Identity:
        """The caller. Local mode: the operating-system user, admin, no expiry. Unauthenticated when the
        key expired or was revoked."""
        ...

    async def login(self, username: str, password: str, new_password: str = "") -> Login:
        """Log in; with `new_password`, change the password too (required when it must change). The
        returned key is what later calls send. Unauthenticated on a wrong password, FailedPrecondition
        when the password must be changed first or the mode has no login."""
        ...

    async def change_password(self, username: str, password: str, new_password: str) -> None:
        """Change a password knowing the current one; revokes the user's API keys."""
        ...

    async def logout(self) -> None:
        """Revoke the key this gateway sends. FailedPrecondition where there is no login."""
        ...

    async def list_users(self) -> list[UserInfo]:
        """Every user (admins only: PermissionDenied otherwise). FailedPrecondition in local mode."""
        ...

    async def get_user(self, name: str) -> UserInfo: ...

    async def create_user(self, name: str, password: str, admin: bool = False, temporary: bool = False,
                          role: str = "", scope: tuple[str, ...] = ()) -> UserInfo:
        """A new user (AlreadyExists; InvalidArgument for a bad name or a short password); with `temporary`,
        the password must be changed at the first login.  `role` (admin, editor, operator, viewer; `admin`
        is role admin; with neither: viewer) and `scope`, the service tags the role is limited to."""
        ...

    async def update_user(self, name: str, admin: bool | None = None, password: str | None = None,
                          role: str | None = None, scope: tuple[str, ...] | None = None,
                          unlock: bool = False) -> UserInfo:
        """Change a user's role, scope (() for none) or password (a new password revokes their keys); the
        last admin stays one; `unlock` lifts a lock after failed logins."""
        ...

    async def delete_user(self, name: str) -> None: ...

    # the audit trail (admins) and API keys (server mode; FailedPrecondition in local mode)
    async def list_audit(self, user: str = "", action: str = "", since: str = "",
                         limit: int = 0) -> list["AuditEvent"]:
        """Events newest first: of `user`, of `action`, since `since` (ISO time or an age: 30m, 2h, 7d)."""
        ...

    async def list_apikeys(self) -> list[ApiKeyInfo]:
        """Your API keys; an admin's: everyone's."""
        ...

    async def delete_apikey(self, key_id: str) -> None:
        """Revoke one API key by its id (yours; an admin: anyone's)."""
        ...

    async def close(self) -> None:
        """Release connections and stop what this gateway runs in-process (runs end as interrupted)."""
        ...
