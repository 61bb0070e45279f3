"""The one place that composes: from a Config to a working gateway of each mode.

`open_local` gives `gateway`'s in-process Engine; `open_server` the server's Engine with its users, audit
trail and background tasks; `open_runner` a runner's intake (no Engine: a runner keeps no records, it
executes what a server sends).  `serve_daemon` composes the daemon of a server or runner configuration and
hands it to its gRPC face (rpc/).  Everything the `gateway` verbs need from the executor's or the store's
side (host keys, cached environments, a repository fetched for an import, a password reset on the server
host) comes from here too.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, private_data_dir

# What a mode composes is imported where it is composed: `gateway` in client mode needs no engine, executor or
# store (~25 ms of imports in every command).
if TYPE_CHECKING:
    from .core.engine import Engine
    from .core.resources.secrets import SecretBox
    from .core.runs.lifecycle import Limits
    from .store import Store
    from .cluster.intake import Intake
    from .core.access.auth import Auth
    from .core.api import Gateway
    from .core.engine import ServerEngine
    from .core.resources.runners import RunnerInfo
    from .core.access.audit import AuditTrail
    from .core.access.integrity import RecordMacs
    from .core.runs.jobs import Executor
    from .rpc.client import Endpoint

KEY_FILE_NAME = "secrets.key"


def secret_box(config: Config, announce=None) -> SecretBox:
    """The secrets key named by [secrets] encrypt_key_file.

    With none configured, local and server modes keep one in data_dir, made on
    first use with mode 0600 (and say where); a runner never makes its own,
    because every part of a cluster must share one key.
    """
    from .core.resources.secrets import SecretBox, create_key_file

    configured = config.get("secrets", "encrypt_key_file")
    if configured:
        return SecretBox(Path(configured))
    if config.mode == "runner":
        return SecretBox(None, "this runner has no secrets key: set [secrets] encrypt_key_file to the cluster's key")
    def create(path: Path) -> None:
        create_key_file(path)
        _say(announce, f"created a new secrets key at {path} (mode 0600); keep a copy, secrets cannot be read without it")

    return SecretBox(config.data_dir / KEY_FILE_NAME, create_missing=create)


def _say(announce, message: str) -> None:
    (announce or (lambda text: print(text, file=sys.stderr)))(message)


def _limits(config: Config) -> Limits:
    from .core.runs.lifecycle import Limits

    execution = config["execution"]
    return Limits(
        max_concurrent_runs=execution.max_concurrent_runs,
        default_timeout=execution.default_timeout,
        output_limit=execution.output_limit,
        kill_grace_period=execution.kill_grace_period,
        registry_overridable=bool(config.get("registry", "default_overridable")),
        retention_count=config.get("runs", "retention_count"),
        retention_age=config.get("runs", "retention_age"),
        output_budget=config.get("runs", "output_budget"),
    )


def hidden_from_runs(config: Config) -> list[Path]:
    """What a sandboxed run must never see: the data dir and every key file the configuration names (hidden
    even inside a folder the sandbox shows, such as /etc)."""
    paths = [config.data_dir]
    for section, key in (("secrets", "encrypt_key_file"), ("server", "private_key_file"),
                         ("runner", "private_key_file"), ("client", "private_key_file"),
                         ("store", "etcd_private_key_file")):
        value = config.get(section, key)
        if value:
            paths.append(Path(value).expanduser())
    return paths


def local_executor(config: Config, queue: bool = True) -> "Executor":
    """Runs jobs on this machine; with `queue`, at most [execution] max_concurrent_runs at once, the rest
    waiting (a runner refuses work when full instead).  A daemon says in its log which sandbox runs get."""
    from .core.runs.admission import Admission
    from .execution.local import LocalExecutor
    from .execution.sandbox import from_config
    from .execution.venvs import Venvs
    from .execution.workspace import Workspace

    limits = _limits(config)
    application = config["application"]
    sandbox = from_config(config, hidden_from_runs(config))
    venvs = Venvs(config.data_dir, application.venv_retention_period, application.venv_sweep_interval, sandbox)
    if config.mode in ("server", "runner"):
        log = logging.getLogger(f"gateway.{config.mode}")
        if sandbox.active:
            log.info("runs are sandboxed with %s", sandbox.status())
            if sandbox.refusal():
                log.error("%s", sandbox.refusal())
            (log.info if sandbox.isolated() else log.warning)("network: %s", sandbox.network_status())
        elif sandbox.mode == "bwrap":
            log.error("%s", sandbox.refusal())
        elif sandbox.mode == "auto":
            log.warning("sandbox: %s", sandbox.status())
        log.info("memory: %s", sandbox.memory.status(sandbox.active))
    return LocalExecutor(config.data_dir, Workspace(config.data_dir), venvs,
                         limits.kill_grace_period, Admission(limits.max_concurrent_runs) if queue else None,
                         config.get("python-script", "requirements_file"), sandbox,
                         warn_each_run=config.mode == "local")


def disabled_service_types(config: Config) -> frozenset[str]:
    """The service types [features] turns off (core.features)."""
    from .core.resources.features import SETTINGS

    return frozenset(kind for kind, key in SETTINGS.items() if not config.get("features", key))


def dispatcher(config: Config, store: Store, macs: "RecordMacs") -> "Executor":
    """Sends each job to a runner of the cluster (a server with [server] distributed_execution)."""
    from .cluster.dispatch import Dispatcher
    from .cluster.directory import RunnerDirectory, runner_token
    from .core.errors import FailedPrecondition
    from .rpc.runner_client import RunnerClient

    async def token() -> str:
        found = runner_token(macs)
        if found is None:
            raise FailedPrecondition("this server cannot read its secrets key: no runner token to call runners with")
        return found

    ttl = config.get("runner", "lease_ttl")
    link = RunnerClient(token, ttl, str(config.get("application", "ca_certificate_file") or ""),
                        bool(config.get("server", "allow_plaintext_runners")))
    return Dispatcher(RunnerDirectory(store, macs), link, ttl)


def open_engine(config: Config, announce=None, recover_first: bool = False) -> Engine:
    """The engine this configuration asks for: its store, its secrets key, and the executor of its mode
    (runners for a server with distributed_execution, this machine otherwise)."""
    from .core.engine import Engine, EngineInfo
    from .store import open_store

    note = private_data_dir(config.data_dir)  # the key, the database and run output live here
    if note:
        _say(announce, note)
    store = open_store(config)
    info = EngineInfo(
        mode=config.mode,
        data_dir=str(config.data_dir),
        store=config.get("store", "backend"),
        cluster_id=config.cluster_id,
        distributed=config.mode == "server" and bool(config.get("server", "distributed_execution")),
    )
    box = secret_box(config, announce)
    audit = audit_trail(config, store) if config.mode == "server" else None
    if config.mode == "server" and config.get("server", "distributed_execution"):
        from .core.access.integrity import RecordMacs

        executor = dispatcher(config, store, RecordMacs(box, store.namespace, audit))
    else:
        executor = local_executor(config, queue=config.mode != "runner")
    from .execution.workspace import ScratchReader

    parts = (store, box, info, _limits(config), executor, recover_first, disabled_service_types(config), audit,
             ScratchReader(config.data_dir), secret_provider_clients(config, executor),
             config.get("secrets", "provider_cache_seconds"))
    if config.mode == "server":
        from .core.access.auth import Auth
        from .core.engine import ServerEngine

        def users(macs: "RecordMacs") -> Auth:
            return Auth(store, config.get("server", "api_key_expiration"), login_throttle(config, store), macs,
                        config.get("server", "default_user_role"))

        return ServerEngine(users, *parts)
    return Engine(*parts)


def secret_provider_clients(config: Config, executor: "Executor | None" = None):
    """What fetches the values of secret aliases (core.resources.secret_providers): a plugin runs in the runs'
    sandbox, the one of this machine's executor when it has one, which then hides the credential files providers
    use."""
    from .execution.sandbox import Sandbox, from_config
    from .execution.secret_providers import ProviderClients

    sandbox = getattr(executor, "sandbox", None)
    if not isinstance(sandbox, Sandbox):
        sandbox = from_config(config, hidden_from_runs(config))
    return ProviderClients(sandbox, config.data_dir / "provider-plugins")


def audit_trail(config: Config, store: Store) -> "AuditTrail":
    """A server's audit trail: in the store, bounded by [audit] retention; with [log] file_enabled also
    audit.log beside gateway.log ([log] server_dir)."""
    from .core.access.audit import AuditTrail
    from .log_setup import log_file_path

    age, count = config.get("audit", "retention")
    file = None
    if config.get("log", "file_enabled") and config.get("log", "level") != "DISABLED":
        file = Path(log_file_path(config, daemon=True)).parent / "audit.log"
    return AuditTrail(store, age, count, file)


async def open_local(config: Config, announce=None, key_given: bool = False) -> Engine:
    """`gateway` in local mode: the engine in this process.  Runs left by a `gateway` that died are ended first;
    the key is checked against the store's before the first seal or open, unless `key_given` (IAG 5's
    --encryption-file names the command's own key file, used as given); unused environments are pruned."""
    engine = open_engine(config, announce, recover_first=True)
    if not key_given:
        engine.secret_box.verify = functools.partial(_check_local_key, engine)
    await _prune_environments(engine)
    return engine


async def open_gateway(config: Config, profile: str | None = None, announce=None, api_key: str | None = None,
                       key_given: bool = False):
    """The Gateway the operator's `gateway` command talks to in this mode.  `key_given`: see open_local."""
    check_gateway_mode(config)
    if config.mode == "local":
        return await open_local(config, announce, key_given)
    return remote_gateway(config, profile, api_key)


def check_gateway_mode(config: Config) -> None:
    """FailedPrecondition unless `gateway` works in this configuration's mode (local or client)."""
    from .core.errors import FailedPrecondition

    if config.mode not in ("local", "client"):
        raise FailedPrecondition(
            f"this configuration is for gateway-daemon (mode = {config.mode}); "
            "`gateway` works in local mode, or in client mode against a server"
        )


async def _check_local_key(engine: Engine) -> None:
    """Local mode's key is the store's, as a server's must be (cluster.keycheck): asked before the first seal
    or open of a command, so that a secret is never sealed with another key."""
    from .cluster.keycheck import check_secrets_key

    await check_secrets_key(engine.secret_box, engine.store, local=True)


async def _prune_environments(engine: Engine) -> None:
    """`gateway` in local mode removes the venvs unused for [application] venv_retention_period as it starts
    (a daemon's executor does it as it starts and then every venv_sweep_interval)."""
    import logging

    from .execution.local import LocalExecutor

    executor = engine.lifecycle.executor
    if isinstance(executor, LocalExecutor):
        try:
            await executor.venvs.prune()
        except OSError as exc:  # a folder that cannot be removed now: next time
            logging.getLogger("gateway.venvs").warning("pruning unused environments: %s", exc)


def client_endpoint(config: Config, profile: str | None = None) -> "Endpoint":
    """The server a client-mode profile names: `.address` (host:port, what its key is kept under), `.use_tls`."""
    from .rpc.client import Endpoint

    return Endpoint.from_config(config, profile)


def remote_gateway(config: Config, profile: str | None = None, api_key: str | None = None,
                   on_unauthenticated=None) -> "Gateway":
    """The Gateway of a client-mode profile's server, sending `api_key`; with none, its login() gets one.
    `on_unauthenticated(error)`: told when the server refuses that key (it expired or was revoked), before the
    call raises the error as usual: the terminal UI asks for a login again."""
    from .rpc.client import Connection, RemoteGateway

    return RemoteGateway(Connection(client_endpoint(config, profile), api_key, on_unauthenticated))


# ---------------------------------------------------------------- the daemons
class Background:
    """The tasks a daemon keeps beside its calls (a server's keepers, the runners' live view and the venv
    sweeper in its executor, the retention; a runner's announcement): started in the order added, stopped in
    the reverse order, every stop tried even when one before it failed."""

    def __init__(self) -> None:
        self._tasks: list[tuple[str, Any, Any]] = []
        self._running: list[tuple[str, Any]] = []

    def add(self, name: str, start: Any, stop: Any = None) -> None:
        """`start()` and `stop()` may be plain or async; `stop` None: nothing to stop (its owner closes it)."""
        self._tasks.append((name, start, stop))

    async def start(self) -> None:
        for name, start, stop in self._tasks[len(self._running):]:
            result = start()
            if inspect.isawaitable(result):
                await result
            self._running.append((name, stop))

    async def stop(self) -> None:
        while self._running:
            name, stop = self._running.pop()
            if stop is None:
                continue
            try:
                result = stop()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # the others still stop
                logging.getLogger("gateway").warning("stopping %s: %s", name, exc)


@dataclasses.dataclass
class Server:
    """A server: the engine composed with its users (Auth) and audit trail, and its background tasks."""

    engine: "ServerEngine"
    background: Background

    @property
    def auth(self) -> "Auth":
        return self.engine.auth

    async def drain(self, grace: float) -> None:
        """Runs in flight get `grace` seconds to finish."""
        await self.engine.lifecycle.drain(grace)

    async def close(self) -> None:
        """What is still running ends as interrupted; the background stops; the store closes."""
        await self.engine.lifecycle.shutdown()
        if self.engine.audit is not None:
            await self.engine.audit.flush()  # the counts of repeated failed logins not written yet
        await self.background.stop()
        await self.engine.close()


@dataclasses.dataclass
class Runner:
    """A runner: its intake (what servers call), the token servers present, its announcement (in `background`,
    started once it listens), and what to close.  No Engine: a runner keeps no records."""

    runner_id: str
    info: "RunnerInfo"
    intake: "Intake"
    token: str | None
    background: Background
    store: Store
    executor: "Executor"

    async def drain(self, grace: float) -> None:
        await self.intake.drain(grace)

    async def close(self) -> None:
        await self.background.stop()
        await self.executor.close()
        await self.store.close()


def login_throttle(config: Config, store: Store):
    """The server's login throttle ([server] login_failures_per_user and the rest)."""
    from .core.access.throttle import LoginThrottle, ThrottleLimits

    server = config["server"]
    return LoginThrottle(store, ThrottleLimits(server.login_failures_per_user, server.login_failures_per_address,
                                               float(server.login_lock_seconds),
                                               float(server.login_lock_max_seconds)))


def _reap(executor: "Executor", log: logging.Logger) -> None:
    """End what a predecessor on this machine that died left running (its scripts, its run folders)."""
    cleared = executor.reap()
    if cleared:
        log.warning("ended the processes and removed the folders of %d runs left by a gateway process "
                    "that died", cleared)


def _warn_unprotected(config: Config, log: logging.Logger) -> None:
    from .config import unprotected_store

    unprotected = unprotected_store(config)
    if unprotected:
        log.warning("%s", unprotected)


async def open_server(config: Config) -> Server:
    """The server of this configuration, its store checked (the cluster's key, the records sealed), its first
    admin made, and its background started."""
    from .cluster.keycheck import check_secrets_key
    from .cluster.owners import Keepers
    from .core.access.integrity import seal_unsigned
    from .core.engine import ServerEngine
    from .core.errors import FailedPrecondition, Unavailable
    from .store import StoreError

    log = logging.getLogger("gateway.server")
    engine = open_engine(config, announce=log.warning)
    assert isinstance(engine, ServerEngine)
    store, auth = engine.store, engine.auth
    background = Background()
    keepers = Keepers(engine.lifecycle, config.get("runner", "lease_ttl"))
    background.add("the keepers of runs", keepers.start, keepers.close)
    background.add("the executor", engine.lifecycle.executor.start)  # a dispatcher's live view of the runners
    background.add("the retention", engine.retention.start)  # [runs] retention, the output budget, the quota
    try:
        await check_secrets_key(engine.secret_box, store)  # makes the key file of a first start: users are signed
        await seal_unsigned(store, engine.record_macs)
        temporary = await auth.ensure_admin()
        _reap(engine.lifecycle.executor, log)
        await background.start()
    except (StoreError, FailedPrecondition) as exc:
        await background.stop()
        await engine.close()
        if isinstance(exc, StoreError):
            raise Unavailable(str(exc)) from None
        raise
    _warn_unprotected(config, log)
    if config.get("server", "allow_plaintext_runners"):
        log.warning("[server] allow_plaintext_runners = true: jobs, with their secret values and the cluster's "
                    "token, go in clear to runners that serve without TLS; anyone on the network between can read "
                    "them and run anything on the runners (set it to false and give runners certificates)")
    if temporary:
        # Printed once, here, to the terminal only: stored nowhere in clear, and never in a log (a log file, or
        # whatever collects the log lines, would keep it).
        log.warning("created user admin with a temporary password, printed on standard output; it must be "
                    "changed at the first login (gateway login --username admin --change-password)")
        print(f"created user admin with the temporary password {temporary}; it must be changed at the first "
              "login (gateway login --username admin --change-password)", flush=True)
    return Server(engine, background)


def runner_identity(config: Config) -> tuple[str, str]:
    """(id, address servers reach it at)."""
    import socket

    runner = config["runner"]
    address = runner.announcement_address or runner.listen_address
    if address in ("0.0.0.0", "::", "[::]"):
        address = socket.getfqdn()
    return f"{address}:{runner.port}", address


async def open_runner(config: Config) -> Runner:
    """The runner of this configuration: its local executor behind an intake, announced once serving
    (`Runner.background`), refusing every run when it lacks the cluster's key."""
    from .cluster.directory import Announcer, runner_token
    from .cluster.intake import Intake
    from .cluster.keycheck import check_secrets_key
    from .core.access.integrity import RecordMacs
    from .core.errors import FailedPrecondition, Unavailable
    from .core.resources.runners import RunnerInfo
    from .rpc.listening import version
    from .store import StoreError, open_store

    log = logging.getLogger("gateway.runner")
    note = private_data_dir(config.data_dir)
    if note:
        log.warning("%s", note)
    store = open_store(config)
    box = secret_box(config, log.warning)
    executor = local_executor(config, queue=False)
    _reap(executor, log)
    runner = config["runner"]
    runner_id, address = runner_identity(config)
    info = RunnerInfo(id=runner_id, address=address, port=runner.port, tags=list(runner.tags),
                      capacity=config.get("execution", "max_concurrent_runs"), use_tls=bool(runner.use_tls),
                      version=version())
    macs = RecordMacs(box, store.namespace)
    announcer = Announcer(store, info, runner.lease_ttl, macs)
    intake = Intake(executor, box, runner_id, info.capacity, announcer)
    background = Background()
    background.add("the announcement", announcer.start, announcer.stop)
    try:
        await executor.start()  # prunes unused venvs now and every [application] venv_sweep_interval
        if not intake.problem():
            try:
                await check_secrets_key(box, store)
            except FailedPrecondition as exc:
                intake.key_problem = str(exc)
        token = runner_token(macs)
    except StoreError as exc:
        await executor.close()
        await store.close()
        raise Unavailable(str(exc)) from None
    _warn_unprotected(config, log)
    problem = intake.problem()
    if problem:
        log.error("this runner will refuse every run: %s", problem)
        announcer.update(problem=problem)
    return Runner(runner_id, info, intake, token, background, store, executor)


async def serve_daemon(config: Config, ready=None) -> None:
    """`gateway-daemon`: the server or the runner of this configuration, served until SIGTERM."""
    if config.mode == "server":
        from .rpc.server import serve

        await serve(config, await open_server(config), ready)
    else:
        from .rpc.runner import serve_runner

        await serve_runner(config, await open_runner(config), ready)


async def reset_password(config: Config, name: str, password: str | None) -> tuple[list[str], str]:
    """`gateway-daemon user reset-password` on the server host, with the key: the user's record is signed as a
    server signs it, and a store no server has sealed yet is sealed first, as a starting server would.
    Returns (the records signed now, the password set: `password`, or a temporary one when None)."""
    from .core.access.auth import Auth
    from .core.access.integrity import RecordMacs, seal_unsigned
    from .core.errors import Unavailable
    from .store import StoreError, open_store

    store = open_store(config)
    try:
        macs = RecordMacs(secret_box(config), store.namespace)
        signed = await seal_unsigned(store, macs)
        chosen = await Auth(store, macs=macs).reset_password(name, password)
    except StoreError as exc:
        raise Unavailable(str(exc)) from None
    finally:
        await store.close()
    return signed, chosen


# ---------------------------------------------------------------- what the `gateway` verbs need of this machine
def host_keys(config: Config):
    """The ssh host keys this gateway trusts for git over ssh (data_dir/known_hosts)."""
    from .execution.hostkeys import HostKeys

    return HostKeys(config.data_dir)


def cached_environments(config: Config):
    """The venvs and Galaxy folders cached on this machine (`.size()`, `.root`)."""
    from .execution.venvs import Venvs

    return Venvs(config.data_dir)


def sandbox_note(config: Config) -> str:
    """What sandbox and network runs get with this configuration, for `gateway config`."""
    from .execution.sandbox import describe

    return describe(config)
