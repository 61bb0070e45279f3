"""From a Config to a working Gateway: the store, the secrets key, the engine."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config, private_data_dir
from .core.engine import Engine, EngineInfo
from .core.scheduler import Limits
from .core.secrets import SecretBox, create_key_file
from .store import Store, open_store

if TYPE_CHECKING:
    from .core.api import Gateway
    from .core.audit import AuditTrail
    from .core.integrity import RecordMacs
    from .core.jobs import Executor
    from .rpc.client import Endpoint

KEY_FILE_NAME = "secrets.key"


def secret_box(config: Config, announce=None) -> SecretBox:
    """The secrets key named by [secrets] encrypt_key_file.

    With none configured, local and server modes keep one in data_dir, made on
    first use with mode 0600 (and say where); a runner never makes its own,
    because every part of a cluster must share one key.
    """
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
    from .core.admission import Admission
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
    from .core.features import SETTINGS

    return frozenset(kind for kind, key in SETTINGS.items() if not config.get("features", key))


def dispatcher(config: Config, store: Store, macs: "RecordMacs") -> "Executor":
    """Sends each job to a runner of the cluster (a server with [server] distributed_execution)."""
    from .cluster.dispatch import Dispatcher
    from .cluster.registry import Registry, runner_token
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
    return Dispatcher(Registry(store, macs), link, ttl)


def open_engine(config: Config, announce=None, recover_first: bool = False) -> Engine:
    """The engine this configuration asks for: its store, its secrets key, and the executor of its mode
    (runners for a server with distributed_execution, this machine otherwise)."""
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
        from .core.integrity import RecordMacs

        executor = dispatcher(config, store, RecordMacs(box, store.namespace, audit))
    else:
        executor = local_executor(config, queue=config.mode != "runner")
    return Engine(store, box, info, _limits(config), executor, recover_first,
                  disabled_service_types(config), audit, secret_provider_clients(config, executor),
                  config.get("secrets", "provider_cache_seconds"))


def secret_provider_clients(config: Config, executor: "Executor | None" = None):
    """What fetches the values of secret aliases (core.secret_providers): a plugin runs in the runs' sandbox, the
    one of this machine's executor when it has one, which then hides the credential files providers use."""
    from .execution.sandbox import Sandbox, from_config
    from .execution.secret_providers import ProviderClients

    sandbox = getattr(executor, "sandbox", None)
    if not isinstance(sandbox, Sandbox):
        sandbox = from_config(config, hidden_from_runs(config))
    return ProviderClients(sandbox, config.data_dir / "provider-plugins")


def audit_trail(config: Config, store: Store) -> "AuditTrail":
    """A server's audit trail: in the store, bounded by [audit] retention; with [log] file_enabled also
    audit.log beside gateway.log ([log] server_dir)."""
    from .core.audit import AuditTrail
    from .log_setup import log_file_path

    age, count = config.get("audit", "retention")
    file = None
    if config.get("log", "file_enabled") and config.get("log", "level") != "DISABLED":
        file = Path(log_file_path(config, daemon=True)).parent / "audit.log"
    return AuditTrail(store, age, count, file)


async def open_gateway(config: Config, profile: str | None = None, announce=None, api_key: str | None = None,
                       key_given: bool = False):
    """The Gateway the operator's `gateway` command talks to in this mode.  `key_given`: the command names its
    own key file (IAG 5's --encryption-file), which is used as given rather than checked against the store's."""
    from .core.errors import FailedPrecondition

    mode = config.mode
    if mode == "local":
        engine = open_engine(config, announce, recover_first=True)  # runs left by a `gateway` that died end
        if not key_given:
            engine.secret_box.verify = functools.partial(_check_local_key, engine)
        await _prune_environments(engine)
        return engine
    if mode == "client":
        return remote_gateway(config, profile, api_key)
    raise FailedPrecondition(
        f"this configuration is for gateway-daemon (mode = {mode}); "
        "`gateway` works in local mode, or in client mode against a server"
    )


async def _check_local_key(engine: Engine) -> None:
    """Local mode's key is the store's, as a server's must be (cluster.keycheck): asked before the first seal
    or open of a command, so that a secret is never sealed with another key."""
    from .cluster.keycheck import check_secrets_key

    await check_secrets_key(engine, local=True)


async def _prune_environments(engine: Engine) -> None:
    """`gateway` in local mode removes the venvs unused for [application] venv_retention_period as it starts
    (a daemon's executor does it as it starts and then every venv_sweep_interval)."""
    import logging

    from .execution.local import LocalExecutor

    executor = engine.scheduler.executor
    if isinstance(executor, LocalExecutor):
        try:
            await executor.venvs.prune()
        except OSError as exc:  # a folder that cannot be removed now: next time
            logging.getLogger("gateway.venvs").warning("pruning unused environments: %s", exc)


def client_endpoint(config: Config, profile: str | None = None) -> "Endpoint":
    """The server a client-mode profile names: `.address` (host:port, what its key is kept under), `.use_tls`."""
    from .rpc.client import Endpoint

    return Endpoint.from_config(config, profile)


def remote_gateway(config: Config, profile: str | None = None, api_key: str | None = None) -> "Gateway":
    """The Gateway of a client-mode profile's server, sending `api_key`; with none, its login() gets one."""
    from .rpc.client import Connection, RemoteGateway

    return RemoteGateway(Connection(client_endpoint(config, profile), api_key))
