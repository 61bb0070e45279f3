"""What a server and a runner share to listen: TLS credentials, message limits, health and the version."""

from __future__ import annotations

import asyncio
from importlib import metadata

import grpc

from ..config import Config

MAX_MESSAGE = 32 * 1024 * 1024


def version() -> str:
    try:
        return metadata.version("automation-gateway")
    except metadata.PackageNotFoundError:
        return "0"


def server_credentials(config: Config, section: str = "server") -> grpc.ServerCredentials | None:
    """TLS of the server (or runner) section; a server with [server] client_cert_auth also requires every client
    to present a certificate signed by [application] ca_certificate_file (mutual TLS, as IAG 5)."""
    values = config[section]
    if not values.use_tls:
        return None
    with open(values.private_key_file, "rb") as key, open(values.certificate_file, "rb") as cert:
        pair = [(key.read(), cert.read())]
    if section == "server" and values.client_cert_auth:
        with open(config.get("application", "ca_certificate_file"), "rb") as ca:
            return grpc.ssl_server_credentials(pair, root_certificates=ca.read(), require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


async def set_health(servicer, name: str, status) -> None:
    result = servicer.set(name, status)
    if asyncio.iscoroutine(result):
        await result
