"""Which call is which action: one table, gRPC full method name -> what the call does.

The interceptor (rpc/interceptor.py) looks every incoming call up here before
the servicer sees it, and asks core/policy.py whether the caller's role allows
the action; a method missing from the table is refused, so a new rpc in
protos/ stays closed until it is given a line.  tests/test_rpc_policy.py
checks that every method of every service the server and the runner register
has one.  `audited` names the methods whose every call is an event of the
audit trail (core/audit.py) with its action word.
"""

from __future__ import annotations

import enum

from ..core.access.roles import Action


class Access(enum.Enum):
    """Calls that need no user's role."""

    PUBLIC = "public"    # nothing: logging in, changing a password, health, reflection
    CLUSTER = "cluster"  # the cluster's runner token: a server of this cluster calling a runner


PUBLIC, CLUSTER = Access.PUBLIC, Access.CLUSTER
SELF, READ, WRITE, RUN = Action.SELF, Action.READ, Action.WRITE, Action.RUN
REVEAL, EXPORT, IMPORT, USERS, AUDIT = Action.REVEAL, Action.EXPORT, Action.IMPORT, Action.USERS, Action.AUDIT
SYSTEM, PRUNE = Action.SYSTEM, Action.PRUNE
Rule = Access | Action

POLICY: dict[str, Rule] = {
    "/gateway.v1.AuthService/Login": PUBLIC,
    "/gateway.v1.AuthService/ChangePassword": PUBLIC,
    "/gateway.v1.AuthService/Logout": SELF,
    "/gateway.v1.AuthService/WhoAmI": SELF,
    "/gateway.v1.AuthService/ListApiKeys": SELF,    # yours; an admin's: all (core/auth.py)
    "/gateway.v1.AuthService/DeleteApiKey": SELF,   # yours; an admin: any

    "/gateway.v1.UserService/CreateUser": USERS,
    "/gateway.v1.UserService/ListUsers": USERS,
    "/gateway.v1.UserService/GetUser": USERS,
    "/gateway.v1.UserService/UpdateUser": USERS,
    "/gateway.v1.UserService/DeleteUser": USERS,

    "/gateway.v1.AuditService/ListAudit": AUDIT,

    "/gateway.v1.RepositoryService/CreateRepository": WRITE,
    "/gateway.v1.RepositoryService/GetRepository": READ,
    "/gateway.v1.RepositoryService/ListRepositories": READ,
    "/gateway.v1.RepositoryService/UpdateRepository": WRITE,
    "/gateway.v1.RepositoryService/DeleteRepository": WRITE,

    "/gateway.v1.DecoratorService/CreateDecorator": WRITE,
    "/gateway.v1.DecoratorService/GetDecorator": READ,
    "/gateway.v1.DecoratorService/ListDecorators": READ,
    "/gateway.v1.DecoratorService/UpdateDecorator": WRITE,
    "/gateway.v1.DecoratorService/DeleteDecorator": WRITE,
    "/gateway.v1.ServiceService/GetServiceState": READ,

    "/gateway.v1.ServiceService/CreateService": WRITE,
    "/gateway.v1.ServiceService/GetService": READ,
    "/gateway.v1.ServiceService/ListServices": READ,
    "/gateway.v1.ServiceService/ListServiceSummaries": READ,
    "/gateway.v1.ServiceService/UpdateService": WRITE,
    "/gateway.v1.ServiceService/DeleteService": WRITE,

    "/gateway.v1.SecretService/CreateSecret": WRITE,
    "/gateway.v1.SecretService/GetSecret": READ,
    "/gateway.v1.SecretService/ListSecrets": READ,
    "/gateway.v1.SecretService/UpdateSecret": WRITE,
    "/gateway.v1.SecretService/DeleteSecret": WRITE,
    "/gateway.v1.SecretService/RevealSecret": REVEAL,

    # secret providers: where aliases' values are fetched with the gateway host's credentials (admins)
    "/gateway.v1.SecretProviderService/CreateSecretProvider": SYSTEM,
    "/gateway.v1.SecretProviderService/GetSecretProvider": SYSTEM,
    "/gateway.v1.SecretProviderService/ListSecretProviders": SYSTEM,
    "/gateway.v1.SecretProviderService/UpdateSecretProvider": SYSTEM,
    "/gateway.v1.SecretProviderService/DeleteSecretProvider": SYSTEM,

    # registries: resources like repositories; executable objects: what interpreters services may run (admins)
    "/gateway.v1.RegistryService/CreateRegistry": WRITE,
    "/gateway.v1.RegistryService/GetRegistry": READ,
    "/gateway.v1.RegistryService/ListRegistries": READ,
    "/gateway.v1.RegistryService/UpdateRegistry": WRITE,
    "/gateway.v1.RegistryService/DeleteRegistry": WRITE,

    "/gateway.v1.ExecutableObjectService/CreateExecutableObject": SYSTEM,
    "/gateway.v1.ExecutableObjectService/GetExecutableObject": READ,
    "/gateway.v1.ExecutableObjectService/ListExecutableObjects": READ,
    "/gateway.v1.ExecutableObjectService/UpdateExecutableObject": SYSTEM,
    "/gateway.v1.ExecutableObjectService/DeleteExecutableObject": SYSTEM,

    "/gateway.v1.RunService/RunService": RUN,
    "/gateway.v1.RunService/CancelRun": RUN,
    "/gateway.v1.RunService/GetRun": READ,
    "/gateway.v1.RunService/ListRuns": READ,
    "/gateway.v1.RunService/GetRunOutput": READ,
    "/gateway.v1.RunService/FollowRun": READ,
    "/gateway.v1.RunService/DeleteRun": PRUNE,
    "/gateway.v1.RunService/PruneRuns": PRUNE,

    "/gateway.v1.InfoService/GetInfo": SELF,
    "/gateway.v1.InfoService/Watch": READ,
    "/gateway.v1.InfoService/ExportDb": EXPORT,
    "/gateway.v1.InfoService/ImportDb": IMPORT,
    "/gateway.v1.InfoService/ReadRepositoryFile": IMPORT,

    "/gateway.v1.RunnerService/ListRunners": READ,

    # served by runners, called by servers
    "/gateway.v1.ExecutionService/Execute": CLUSTER,
    "/gateway.v1.ExecutionService/CancelExecution": CLUSTER,

    # served by both, for load balancers and grpcurl
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/List": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PUBLIC,
}

# The audit trail: method -> (action word, kind of its target).  Runs' starts and ends are recorded by the
# engine (with their masked inputs); a run call that fails before it starts is recorded here.
AUDITED: dict[str, tuple[str, str]] = {
    "/gateway.v1.AuthService/Login": ("login", "user"),
    "/gateway.v1.AuthService/ChangePassword": ("password", "user"),
    "/gateway.v1.AuthService/Logout": ("logout", "user"),
    "/gateway.v1.AuthService/DeleteApiKey": ("delete", "apikey"),
    "/gateway.v1.UserService/CreateUser": ("create", "user"),
    "/gateway.v1.UserService/UpdateUser": ("edit", "user"),
    "/gateway.v1.UserService/DeleteUser": ("delete", "user"),
    "/gateway.v1.SecretService/RevealSecret": ("reveal", "secret"),
    "/gateway.v1.InfoService/ExportDb": ("export", "database"),
    "/gateway.v1.InfoService/ImportDb": ("import", "database"),
    "/gateway.v1.InfoService/ReadRepositoryFile": ("fetch", "repository"),
    "/gateway.v1.RunService/RunService": ("run", "service"),
    "/gateway.v1.RunService/CancelRun": ("cancel", "run"),
    "/gateway.v1.RunService/DeleteRun": ("delete", "run"),
    "/gateway.v1.RunService/PruneRuns": ("prune", "runs"),
    **{f"/gateway.v1.{service}Service/{verb}{kind.title()}": (word, kind)
       for service, kind in (("Repository", "repository"), ("Decorator", "decorator"), ("Service", "service"),
                             ("Secret", "secret"), ("Registry", "registry"))
       for verb, word in (("Create", "create"), ("Update", "edit"), ("Delete", "delete"))},
    **{f"/gateway.v1.ExecutableObjectService/{verb}ExecutableObject": (word, "executable-object")
       for verb, word in (("Create", "create"), ("Update", "edit"), ("Delete", "delete"))},
    **{f"/gateway.v1.SecretProviderService/{verb}SecretProvider": (word, "secret-provider")
       for verb, word in (("Create", "create"), ("Update", "edit"), ("Delete", "delete"))},
}
# Calls recorded only when they fail (their success is recorded elsewhere).
AUDITED_ON_FAILURE = {"/gateway.v1.RunService/RunService", "/gateway.v1.RunService/PruneRuns"}


def access_for(method: str, table: dict[str, Rule] | None = None) -> Rule | None:
    """What `method` (``/package.Service/Method``) needs; None for a method the table does not name."""
    return (POLICY if table is None else table).get(method)
