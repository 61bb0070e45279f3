"""Engine: the Gateway interface in-process, over a Store. Local mode and the server use it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from ..store import KeyExists, RevisionMismatch, Store
from .resources.registries import BUILT_IN as BUILT_IN_REGISTRIES, Registry, built_in as built_in_registry
from .errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound, OutOfScope
from .resources.features import check_enabled
from .access.integrity import RecordMacs, Untrusted
from .access.users import ServerUsers
from .resources.repositories import Repository, drop_moved_credentials
from .resources.base import Resource, check_name, now
from .resources.catalog import SCOPED_KINDS, Catalog, resource_class, store_errors, visible
from .resources.runners import RUNNERS_PREFIX, RunnerInfo
from .runs.records import OutputLine, Run, RunEvent
from .runs.jobs import Executor
from .access.roles import (check_reveal, check_service_scope, check_users_in_scope, refuse_attaching,
                     scoped_caller)
from .runs.retention import Retention, before_time
from .runs import keepers
from .runs.lifecycle import Limits, RunLifecycle
from .resources.secret_providers import ProviderClient, ProviderSecrets
from .resources.secrets import CHECK_KEY, Secret, SecretBox, check_value
from .resources.services import SecretRef, Service, new_service_id
from .runs.tofu_state import ServiceStates, StateSummary

from .api import ApiKeyInfo, EngineInfo, Identity, ImportReport, Login, UserInfo

if TYPE_CHECKING:
    from .access.audit import AuditEvent, AuditTrail
    from .access.auth import Auth
    from .resources.repositories import RepositoryFiles
    from .transfer.native import Database

log = logging.getLogger("gateway.engine")
# Fields a caller may not set through update(): identity, bookkeeping, the sealed value.
_FIXED_FIELDS = {"name", "id", "created_at", "updated_at", "sealed"}
_UPDATE_RETRIES = 8
IMPORT_FILE_LIMIT = 32 * 1024 * 1024  # what one import document may take, read here or sent to a server
NO_USERS = "user management needs a server: in local mode there are no users (set mode = client and log in)"




class Engine:
    """Implements core.api.Gateway against a Store."""

    def __init__(self, store: Store, secret_box: SecretBox, info: EngineInfo, limits: Limits, executor: Executor,
                 recover_first: bool = False, disabled_types: frozenset[str] = frozenset(),
                 audit: "AuditTrail | None" = None, repository_files: "RepositoryFiles | None" = None,
                 providers: ProviderClient | None = None, provider_cache_seconds: float = 0):
        """`executor` runs the prepared jobs (core.runs.jobs.Executor); `recover_first`: end the runs that a
        dead process of this machine left unfinished before the first reading of runs (local mode);
        `disabled_types`: service types that cannot be created or run ([features], see core.resources.features);
        `audit`: the server's audit trail (core.access.audit); local mode keeps none; `repository_files`: reads a
        file of a repository (db import --repository), None where this engine fetches no repositories;
        `providers`: what fetches the values of secret aliases from their providers
        (core.resources.secret_providers), kept `provider_cache_seconds`."""
        self.store = store
        self.catalog = Catalog(store)
        self.secret_box = secret_box
        self._info = info
        self.disabled_types = disabled_types
        owner = keepers.this_process()
        self.states = ServiceStates(store, secret_box, owner)  # opentofu-plan services' states
        self.provider_secrets = ProviderSecrets(providers, provider_cache_seconds, audit)  # aliases' values
        self.lifecycle = RunLifecycle(self.catalog, self.reveal_secret, self.states, limits, executor, owner,
                                      recover_first, disabled_types, audit, self.provider_secrets)
        self.audit = audit
        self.repository_files = repository_files
        self.record_macs = RecordMacs(secret_box, store.namespace, audit)  # users, API keys, announcements
        self.retention = Retention(self.lifecycle, limits, audit)  # [runs] retention, the output budget, the quota
        self.lifecycle.ended_hooks.append(self.retention.run_ended)

    async def info(self) -> EngineInfo:
        return self._info

    async def close(self) -> None:
        await self.lifecycle.shutdown()
        await self.retention.close()
        await self.lifecycle.executor.close()
        await self.provider_secrets.close()
        await self.store.close()

    # ------------------------------------------------------------ checks
    async def _check_references(self, resource: Resource, kept: frozenset[tuple[str, str]] = frozenset()) -> None:
        """What `resource` names exists; for a scoped caller, what it newly names (not in `kept`, the references it
        had) is within their scope too: attaching another scope's secret or repository is as if it did not exist."""
        scoped = scoped_caller() is not None
        for kind, name in resource.references():
            if scoped and (kind, name) not in kept and kind in ("repository", "secret"):
                try:
                    await self.catalog.read_visible(kind, name)
                except NotFound:
                    raise NotFound(f"{resource.KIND} {resource.name}: {kind} {name!r} does not exist") from None
            elif scoped and (kind, name) not in kept and kind == "registry" and await self.catalog.exists(kind, name):
                await self._check_registry_credentials(resource, name)
            elif not await self.catalog.exists(kind, name):
                raise NotFound(f"{resource.KIND} {resource.name}: {kind} {name!r} does not exist")

    async def _check_registry_credentials(self, resource: Resource, name: str) -> None:
        """A registry's credentials reach every run that installs from it (pip, ansible-galaxy): a scoped caller
        attaches one only when its credential secrets are within their scope."""
        registry, _ = await self.catalog.read("registry", name)
        for kind, secret in registry.references():
            try:
                await self.catalog.read_visible(kind, secret)
            except NotFound:
                refuse_attaching(resource.KIND, resource.name, f"registry {name}",
                                 "its credentials are a secret outside the scope")

    async def _users_of(self, kind: str, name: str) -> list[str]:
        users = []
        for user_kind in ("repository", "service", "registry", "secret", "decorator"):
            for resource in await self.catalog.read_all(user_kind):
                if (kind, name) in resource.references():
                    users.append(f"{user_kind} {resource.name}")
        return users

    @staticmethod
    def _public(resource: Resource) -> Resource:
        if isinstance(resource, Secret):
            return dataclasses.replace(resource, sealed={})
        return resource

    def check_enabled(self, resource: Resource) -> None:
        """A service of a type [features] turned off cannot be created or changed (core.features)."""
        if isinstance(resource, Service):
            check_enabled(resource.type, self.disabled_types)

    async def _check_default(self, resource: Resource) -> None:
        """One default registry per type: another one that is already the default says so."""
        if isinstance(resource, Registry) and resource.default:
            for other in await self.catalog.read_all("registry"):
                if other.name != resource.name and other.type == resource.type and other.default:  # type: ignore[attr-defined]
                    raise FailedPrecondition(f"registry {other.name} is already the default {resource.type} registry; "
                                             f"edit it with --no-default first")

    async def _insert(self, resource: Resource) -> Resource:
        self.check_enabled(resource)
        await asyncio.to_thread(resource.validate)  # a decorator's schema can take a second to check
        await self._check_references(resource)
        await self._check_default(resource)
        try:
            with store_errors():
                await self.store.create(self.catalog.key(type(resource), resource.name), resource.encode())
        except KeyExists:
            raise AlreadyExists(f"{resource.KIND} {resource.name!r} already exists") from None
        return self._public(resource)

    async def _modify(self, kind: str, name: str, change: Any) -> Resource:
        """Read, apply `change(resource)`, validate, compare-and-set; retried on a concurrent write."""
        for _ in range(_UPDATE_RETRIES):
            current, revision = await self.catalog.read(kind, name)
            updated = dataclasses.replace(current)
            change(updated)
            updated.updated_at = now()
            self.check_enabled(updated)
            await asyncio.to_thread(updated.validate)
            await self._check_references(updated, frozenset(current.references()))
            await self._check_default(updated)
            try:
                with store_errors():
                    await self.store.update(self.catalog.key(type(updated), name), updated.encode(), revision)
            except RevisionMismatch:
                continue
            return self._public(updated)
        raise Conflict(f"{kind} {name!r} kept changing while it was being edited; try again")

    # ------------------------------------------------------------ the Gateway interface: resources
    async def create(self, resource: Resource) -> Resource:
        if isinstance(resource, Secret):
            raise InvalidArgument("secrets are created with create_secret (they need a value)")
        if isinstance(resource, SCOPED_KINDS):
            check_service_scope(resource.name, resource.tags, resource.KIND)  # type: ignore[attr-defined]
        resource = dataclasses.replace(resource, created_at=now(), updated_at=now())
        if isinstance(resource, Service):
            resource.id = new_service_id()  # never the caller's: a new service is another one
        warning = ""
        if isinstance(resource, Repository):  # git reads it now, not at the first run (git's reason kept)
            resource.validate()
            if self.repository_files is not None:
                warning = await self.repository_files.check(resource)
        created = await self._insert(resource)
        if warning:
            log.info("%s", warning)  # the caller says it (the CLI on stderr, the TUI as a notification)
            created.warning = warning  # type: ignore[attr-defined]  # for the caller to say (not stored)
        return created

    async def get(self, kind: str, name: str) -> Resource:
        try:
            resource, _ = await self.catalog.read_visible(kind, name)
        except NotFound:
            if kind == "registry" and name in BUILT_IN_REGISTRIES:
                return built_in_registry(name)
            raise
        return self._public(resource)

    async def list(self, kind: str, full: bool = False) -> list[Resource]:  # in process, every field costs nothing
        resources = [self._public(r) for r in await self.catalog.read_all(kind) if visible(r)]
        if kind == "registry":  # the built-in ones, unless a stored one took the name
            stored = {r.name for r in resources}
            resources += [built_in_registry(name) for name in BUILT_IN_REGISTRIES if name not in stored]
        return resources

    async def _refuse_built_in(self, kind: str, name: str, doing: str) -> None:
        if kind == "registry" and name in BUILT_IN_REGISTRIES and not await self.catalog.exists(kind, name):
            raise FailedPrecondition(f"registry {name} is built in and cannot be {doing}; create a registry named "
                                     f"{name} to replace it, or another one with --default")

    # ---- roles (issue 14): a caller scoped to tags sees only the services, repositories and secrets with one of
    # them, and the runs of those services (core.policy)
    async def _check_run_visible(self, run: Run) -> Run:
        visible = await self.catalog.visible_service_ids()
        if visible is not None and run.service_id not in visible:
            raise OutOfScope(f"run {run.id!r} not found", f"run/{run.id}")
        return run

    async def _outside_users(self, kind: str, name: str) -> int:
        """How many services outside the caller's scope use this resource, directly or through a repository or a
        registry that names it (0 for an unscoped caller)."""
        if scoped_caller() is None or kind == "service":
            return 0
        services = await self.catalog.read_all("service")
        names = {(kind, name)}
        if kind == "secret":  # through the repositories and registries that hold it as their credential
            for through in ("repository", "registry"):
                names |= {(through, r.name) for r in await self.catalog.read_all(through)
                          if (kind, name) in r.references()}
        return sum(1 for s in services if not visible(s) and names & set(s.references()))

    # ---- end roles

    async def update(self, kind: str, name: str, changes: dict[str, Any]) -> Resource:
        cls = resource_class(kind)
        allowed = set(cls.field_names()) - _FIXED_FIELDS
        unknown = sorted(set(changes) - allowed)
        await self._refuse_built_in(kind, name, "changed")
        if unknown:
            raise InvalidArgument(f"{kind} has no editable field {', '.join(unknown)}; editable: {', '.join(sorted(allowed))}")
        if "secrets" in changes:
            changes = dict(changes, secrets=[r if isinstance(r, SecretRef) else SecretRef(**r) for r in changes["secrets"]])

        dropped: list[str] = []

        def apply(resource: Resource) -> None:
            old_url = getattr(resource, "url", "")
            for field, value in changes.items():
                setattr(resource, field, value)
            if isinstance(resource, SCOPED_KINDS):
                check_service_scope(name, resource.tags, kind)  # type: ignore[attr-defined]
            if isinstance(resource, Service) and not resource.id:
                resource.id = new_service_id()
            if isinstance(resource, (Repository, Registry)) and "url" in changes:
                dropped[:] = drop_moved_credentials(resource, old_url, set(changes))

        await self.catalog.read_visible(kind, name)
        check_users_in_scope(kind, name, await self._outside_users(kind, name))
        updated = await self._modify(kind, name, apply)
        if dropped:
            log.info("%s %s moved to %s: its credentials (%s) are no longer used until they are set again",
                     kind, name, getattr(updated, "url", ""), ", ".join(dropped))
        return updated

    async def delete(self, kind: str, name: str) -> None:
        cls = resource_class(kind)
        await self._refuse_built_in(kind, name, "deleted")
        await self.catalog.read_visible(kind, name)
        check_users_in_scope(kind, name, await self._outside_users(kind, name), "delete")
        users = await self._users_of(kind, name)
        if users:
            raise FailedPrecondition(f"{kind} {name!r} is in use by {', '.join(users)}; change or delete those first")
        with store_errors():
            await self.store.delete(self.catalog.key(cls, name))
            if kind == "service":
                await self.states.delete(name)  # its state goes with it (db export keeps a copy)

    # ------------------------------------------------------------ secrets
    async def create_secret(self, name: str, value: str, description: str = "",
                            tags: list[str] | tuple[str, ...] = (), provider: str = "", path: str = "",
                            key: str = "") -> Secret:
        """A secret sealed here, or with `provider` an alias of the value at `path` (field `key`) there."""
        check_name("secret", name)
        secret = Secret(name=name, description=description, tags=list(tags), provider=provider, path=path, key=key)
        if (path or key) and not provider:
            raise InvalidArgument(f"secret {name}: --secret and --key make an alias, which needs --provider",
                                  {"provider": "needed with --secret and --key"})
        secret.validate()
        check_service_scope(name, secret.tags, "secret")
        if provider:
            if value:
                raise InvalidArgument(f"secret {name}: an alias has no value here (it is fetched from provider "
                                      f"{provider}); give --provider and --secret, or a value", {"value": "not for an alias"})
            return await self._insert(secret)  # type: ignore[return-value]
        check_value(name, value)
        secret.sealed = await self._seal(name, value)
        return await self._insert(secret)  # type: ignore[return-value]

    async def _seal(self, name: str, value: str) -> dict[str, Any]:
        """Seal with the store's key; a key file lost while the store holds secrets is never replaced."""
        if self.secret_box.makes_key():
            with store_errors():
                held = await self.store.get(CHECK_KEY) is not None or bool(await self.store.list("secrets/"))
            if held and self.secret_box.makes_key():
                raise self.secret_box.lost()
        with store_errors():
            await self.secret_box.ready()  # never sealed with a key that is not the store's
        return self.secret_box.seal(name, value)

    async def update_secret(self, name: str, value: str | None = None, description: str | None = None,
                            tags: list[str] | tuple[str, ...] | None = None, provider: str | None = None,
                            path: str | None = None, key: str | None = None) -> Secret:
        """`provider`, `path`, `key`: an alias's; a value makes an alias a secret sealed here again, and a provider
        makes a sealed secret an alias."""
        current, _ = await self.catalog.read_visible("secret", name)
        check_users_in_scope("secret", name, await self._outside_users("secret", name))
        alias = (provider if provider is not None else current.provider) if value is None else ""  # type: ignore[attr-defined]
        if value is not None and provider:
            raise InvalidArgument(f"secret {name}: give a value or --provider, not both", {"value": "not for an alias"})
        if not alias and value is None and (path or key) and not current.provider:  # type: ignore[attr-defined]
            raise InvalidArgument(f"secret {name}: --secret and --key are for an alias (give --provider too)",
                                  {"provider": "needed with --secret and --key"})
        if value is not None:
            check_value(name, value)
            sealed = await self._seal(name, value)

        def apply(secret: Resource) -> None:
            assert isinstance(secret, Secret)
            if value is not None:
                secret.sealed = sealed
                secret.provider = secret.path = secret.key = ""
            elif alias:
                secret.provider = alias
                secret.path = path if path is not None else secret.path
                secret.key = key if key is not None else secret.key
                secret.sealed = {}
            if description is not None:
                secret.description = description
            if tags is not None:
                secret.tags = list(tags)
            check_service_scope(name, secret.tags, "secret")

        return await self._modify("secret", name, apply)  # type: ignore[return-value]

    async def reveal_secret(self, name: str) -> str:
        """The value of a secret: opened with the key, or fetched from its provider (an alias)."""
        secret, _ = await self.catalog.read("secret", name)
        assert isinstance(secret, Secret)
        if secret.provider:
            try:
                provider, _ = await self.catalog.read("secret-provider", secret.provider)
            except NotFound:
                raise FailedPrecondition(f"secret {name}: its provider {secret.provider} does not exist") from None
            return await self.provider_secrets.fetch(secret, provider)  # type: ignore[arg-type]
        with store_errors():
            await self.secret_box.ready()
        return self.secret_box.open(name, secret.sealed)

    # ------------------------------------------------------------ database export / import
    async def export_db(self) -> dict[str, Any]:
        from .transfer.native import export_document

        return await export_document(self._database())

    async def import_db(self, document: Any, dry_run: bool = False, strict: bool = False) -> "ImportReport":
        from .transfer.native import import_document

        return await import_document(self._database(), document, dry_run=dry_run, strict=strict)

    async def read_repository_file(self, url: str, reference: str = "", path: str = "",
                                   private_key_name: str = "", defaults: tuple[str, ...] = ()) -> tuple[str, str]:
        """iagctl's `db import --repository URL [FILE]`: the file as it is in that repository, fetched by this
        gateway with its trusted ssh host keys and the ssh key in the secret `private_key_name`; without
        `path`, the first of `defaults` found at its top.  Returns (the path read, its text)."""
        if path and (path.startswith("/") or ".." in path.split("/")):
            raise InvalidArgument(f"with --repository, FILE is a path inside the repository: {path!r} is not")
        if self.repository_files is None:
            raise FailedPrecondition("this gateway fetches no repositories")
        repository = Repository(name="import", url=url, reference=reference)
        repository.validate()
        key = ""
        if private_key_name:
            await self.catalog.read_visible("secret", private_key_name)
            key = await self.reveal_secret(private_key_name)
        found = await self.repository_files.read(repository, (path,) if path else defaults, key,
                                                 IMPORT_FILE_LIMIT)
        if found is None:
            if path:
                raise InvalidArgument(f"{path} is not a file in {url}")
            raise InvalidArgument(f"{url} has no {' or '.join(defaults)} at its top; name the file: "
                                  "db import --repository URL FILE")
        return found

    def _database(self) -> "Database":
        from .transfer.native import Database

        return Database(self.catalog, self.states, self.secret_box, self.disabled_types)

    # ------------------------------------------------------------ runs
    async def run_service(self, name: str, inputs: dict[str, Any] | None = None,
                          secrets: list[SecretRef] | None = None, timeout: int | None = None,
                          started_by: str | None = None,
                          options: dict[str, Any] | None = None, *, action: str = "", state: str | None = None,
                          state_out: bool = False) -> AsyncIterator[RunEvent]:
        """Start a run and follow it: a status event first (queued, with the run id), output as it comes,
        and a final status event. Leaving the iteration early does not stop the run.  opentofu-plan:
        `action` (plan, apply, destroy; empty: the service's), `state` to start from instead of the stored
        one, `state_out`: the final event carries the state the run ended with (the whole state, secret values
        and all: it needs the right to reveal them)."""
        if state_out:
            check_reveal("--state-out (the OpenTofu state, its secrets too)")
        await self.catalog.read_visible("service", name)
        with store_errors():
            run, queue = await self.lifecycle.start(name, inputs or {}, secrets or [], timeout, started_by, options,
                                                    action=action, state=state, state_out=state_out)
        if self.audit is not None:
            await self.audit.record("run", f"service/{name}", "started", f"run {run.id}", inputs=run.inputs)
        yield RunEvent("status", run=run)
        while True:
            event = await queue.get()
            if event is None:
                return
            yield event

    async def service_state(self, name: str) -> StateSummary | None:
        """The summary of an opentofu-plan service's stored state (None: it has none)."""
        await self.catalog.read_visible("service", name)
        with store_errors():
            return await self.states.summary(name)

    async def cancel_run(self, run_id: str) -> Run:
        with store_errors():
            await self._check_run_visible(await self.lifecycle.get(run_id))
            return await self.lifecycle.cancel(run_id)

    async def get_run(self, run_id: str) -> Run:
        with store_errors():
            return await self._check_run_visible(await self.lifecycle.get(run_id))

    async def list_runs(self, service: str | None = None, status: str | None = None, limit: int = 100,
                        runner: str | None = None) -> list[Run]:
        with store_errors():
            visible = await self.catalog.visible_service_ids()
            if visible is None:
                return await self.lifecycle.list(service, status, limit, runner)
            runs = [r for r in await self.lifecycle.list(service, status, 0, runner) if r.service_id in visible]
            return runs[:limit] if limit else runs

    async def run_output(self, run_id: str) -> list[OutputLine]:
        with store_errors():
            await self._check_run_visible(await self.lifecycle.get(run_id))
            return await self.lifecycle.output(run_id)

    async def delete_run(self, run_id: str) -> None:
        """Remove a finished run, its record and its output (a server: admins only, audited)."""
        with store_errors():
            run = await self._check_run_visible(await self.lifecycle.get(run_id))
            await self.lifecycle.delete(run)

    async def prune_runs(self, before: str, service: str = "") -> int:
        """Remove every finished run created before `before` (an ISO time or an age: 7d), of `service` when
        given: how many went (a server: admins only, audited)."""
        cutoff = before_time(before)
        with store_errors():
            deleted = await self.retention.prune_before(cutoff, service, await self.catalog.visible_service_ids())
        if self.audit is not None:
            await self.audit.record("prune", f"service/{service}" if service else "runs", "ok",
                                    f"{deleted} finished run{'' if deleted == 1 else 's'} created before {before} "
                                    "deleted with their output")
        return deleted

    async def follow_run(self, run_id: str) -> AsyncIterator[RunEvent]:
        if await self.catalog.visible_service_ids() is not None:
            await self._check_run_visible(await self.lifecycle.get(run_id))
        async for event in self.lifecycle.follow(run_id):
            yield event

    # ------------------------------------------------------------ runners
    async def list_runners(self) -> list[RunnerInfo]:
        """The runners announced in this store now (each entry lives as long as its runner's lease)."""
        with store_errors():
            entries = await self.store.list(RUNNERS_PREFIX)
        runners = []
        for entry in entries:
            try:
                info = RunnerInfo.decode(entry.value)
            except (ValueError, TypeError, AttributeError):
                continue
            try:
                self.record_macs.open(entry.key, entry.value)
            except Untrusted as exc:  # listed, so that it is seen; a server never sends it a run
                untrusted = f"not trusted ({exc}): no run is sent to it"
                info.problem = f"{info.problem}; {untrusted}" if info.problem else untrusted
            runners.append(info)
        return sorted(runners, key=lambda r: r.id)

    # ------------------------------------------------------------ watching
    async def watch(self, kind: str) -> AsyncIterator[tuple[str, str]]:
        """(event, name) for every change of `kind` from now on.  A scoped caller hears only of what is in their
        scope: a put of what they may see, and a delete of what they saw (a resource whose tags leave their scope
        is a delete to them)."""
        cls = resource_class(kind)
        prefix = f"{cls.PLURAL}/"
        if scoped_caller() is None or cls not in SCOPED_KINDS:
            async for event in self.store.watch(prefix):
                yield event.kind, event.key[len(prefix):]
            return
        watch = self.store.watch(prefix)
        try:
            seen = {r.name for r in await self.catalog.read_all(kind) if visible(r)}
            async for event in watch:
                name = event.key[len(prefix):]
                if event.kind == "put":
                    try:
                        seen_now = visible(cls.decode(event.value or b""))
                    except (ValueError, TypeError):
                        seen_now = False
                    if seen_now:
                        seen.add(name)
                        yield "put", name
                        continue
                if name in seen:
                    seen.discard(name)
                    yield "delete", name
        finally:
            with contextlib.suppress(Exception):
                await watch.aclose()  # type: ignore[attr-defined]

    # ------------------------------------------------------------ who is calling; users and logins live on a server
    async def whoami(self) -> "Identity":
        """The operating-system user, admin of everything here, with no key to expire."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no login name in the environment and no passwd entry
            user = "unknown"
        return Identity(username=user, admin=True, expires_at=0.0, role="admin")

    def _no_login(self) -> FailedPrecondition:
        return FailedPrecondition(f"login is for client mode (this configuration is mode = {self._info.mode}); "
                                  "local mode needs no login")

    async def login(self, username: str, password: str, new_password: str = "") -> "Login":
        raise self._no_login()

    async def change_password(self, username: str, password: str, new_password: str) -> None:
        raise self._no_login()

    async def logout(self) -> None:
        raise self._no_login()

    async def list_users(self) -> list["UserInfo"]:
        raise FailedPrecondition(NO_USERS)

    async def get_user(self, name: str) -> "UserInfo":
        raise FailedPrecondition(NO_USERS)

    async def create_user(self, name: str, password: str, admin: bool = False, temporary: bool = False,
                          role: str = "", scope: tuple[str, ...] = ()) -> "UserInfo":
        raise FailedPrecondition(NO_USERS)

    async def update_user(self, name: str, admin: bool | None = None, password: str | None = None,
                          role: str | None = None, scope: tuple[str, ...] | None = None,
                          unlock: bool = False) -> "UserInfo":
        raise FailedPrecondition(NO_USERS)

    async def delete_user(self, name: str) -> None:
        raise FailedPrecondition(NO_USERS)

    # ---- the audit trail and API keys (issue 14): a server keeps them; local mode has neither
    async def list_audit(self, user: str = "", action: str = "", since: str = "",
                         limit: int = 0) -> list["AuditEvent"]:
        raise FailedPrecondition("the audit trail is kept by a server: in local mode there is none "
                                 "(set mode = client and log in)")

    async def list_apikeys(self) -> list["ApiKeyInfo"]:
        raise FailedPrecondition(NO_USERS.replace("user management", "API keys"))

    async def delete_apikey(self, key_id: str) -> None:
        raise FailedPrecondition(NO_USERS.replace("user management", "API keys"))
    # ---- end audit trail and API keys


class ServerEngine(ServerUsers, Engine):
    """A server's Engine: the same, composed with its users, logins and API keys (`auth`) and its audit trail
    (core.access.users), so that the whole Gateway is one object behind the server's face."""

    def __init__(self, users: "Callable[[RecordMacs], Auth]", *args: Any, **kwargs: Any):
        """`users(record_macs)`: the server's Auth, signing users and keys with the engine's MACs; the rest as
        Engine's."""
        Engine.__init__(self, *args, **kwargs)
        ServerUsers.__init__(self, users(self.record_macs), self.audit)
