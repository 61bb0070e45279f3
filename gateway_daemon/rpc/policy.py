"""Who may call what: one table, gRPC full method name -> the access it needs.

The interceptor (rpc/interceptor.py) looks every incoming call up here before
the servicer sees it; a method missing from the table is refused, so a new rpc
in protos/ stays closed until it is given a line.  tests/test_rpc_policy.py
checks that every method of every service the server and the runner register
has one.  Roles (issue 14) grow `Access`.
"""

from __future__ import annotations

import enum


class Access(enum.Enum):
    """What a caller must show to call a method."""

    PUBLIC = "public"    # nothing: logging in, changing a password, health, reflection
    USER = "user"        # the API key of any user
    ADMIN = "admin"      # the API key of an admin
    CLUSTER = "cluster"  # the cluster's runner token: a server of this cluster calling a runner


PUBLIC, USER, ADMIN, CLUSTER = Access.PUBLIC, Access.USER, Access.ADMIN, Access.CLUSTER

POLICY: dict[str, Access] = {
    "/gateway.v1.AuthService/Login": PUBLIC,
    "/gateway.v1.AuthService/ChangePassword": PUBLIC,
    "/gateway.v1.AuthService/Logout": USER,
    "/gateway.v1.AuthService/WhoAmI": USER,

    "/gateway.v1.UserService/CreateUser": ADMIN,
    "/gateway.v1.UserService/ListUsers": ADMIN,
    "/gateway.v1.UserService/GetUser": ADMIN,
    "/gateway.v1.UserService/UpdateUser": ADMIN,
    "/gateway.v1.UserService/DeleteUser": ADMIN,

    "/gateway.v1.RepositoryService/CreateRepository": USER,
    "/gateway.v1.RepositoryService/GetRepository": USER,
    "/gateway.v1.RepositoryService/ListRepositories": USER,
    "/gateway.v1.RepositoryService/UpdateRepository": USER,
    "/gateway.v1.RepositoryService/DeleteRepository": USER,

    "/gateway.v1.DecoratorService/CreateDecorator": USER,
    "/gateway.v1.DecoratorService/GetDecorator": USER,
    "/gateway.v1.DecoratorService/ListDecorators": USER,
    "/gateway.v1.DecoratorService/UpdateDecorator": USER,
    "/gateway.v1.DecoratorService/DeleteDecorator": USER,

    "/gateway.v1.ServiceService/CreateService": USER,
    "/gateway.v1.ServiceService/GetService": USER,
    "/gateway.v1.ServiceService/ListServices": USER,
    "/gateway.v1.ServiceService/UpdateService": USER,
    "/gateway.v1.ServiceService/DeleteService": USER,
    "/gateway.v1.ServiceService/GetServiceState": USER,

    "/gateway.v1.SecretService/CreateSecret": USER,
    "/gateway.v1.SecretService/GetSecret": USER,
    "/gateway.v1.SecretService/ListSecrets": USER,
    "/gateway.v1.SecretService/UpdateSecret": USER,
    "/gateway.v1.SecretService/DeleteSecret": USER,
    "/gateway.v1.SecretService/RevealSecret": USER,

    "/gateway.v1.RunService/RunService": USER,
    "/gateway.v1.RunService/CancelRun": USER,
    "/gateway.v1.RunService/GetRun": USER,
    "/gateway.v1.RunService/ListRuns": USER,
    "/gateway.v1.RunService/GetRunOutput": USER,
    "/gateway.v1.RunService/FollowRun": USER,

    "/gateway.v1.InfoService/GetInfo": USER,
    "/gateway.v1.InfoService/Watch": USER,
    "/gateway.v1.InfoService/ExportDb": USER,
    "/gateway.v1.InfoService/ImportDb": USER,

    "/gateway.v1.RunnerService/ListRunners": USER,

    # served by runners, called by servers
    "/gateway.v1.ExecutionService/Execute": CLUSTER,
    "/gateway.v1.ExecutionService/CancelExecution": CLUSTER,

    # served by both, for load balancers and grpcurl
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/List": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PUBLIC,
}


def access_for(method: str, table: dict[str, Access] | None = None) -> Access | None:
    """The access `method` (``/package.Service/Method``) needs; None for a method the table does not name."""
    return (POLICY if table is None else table).get(method)
