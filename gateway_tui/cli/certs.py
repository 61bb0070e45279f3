"""gateway cert-gen: a CA, a server certificate and a client certificate, so TLS is one command away."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway_daemon.certificates import make_ca, make_certificate, write_pair
from gateway_daemon.core import FailedPrecondition


def cert_gen(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    hosts = args.host or ["localhost", "127.0.0.1"]
    names = ("ca", "server", "client")
    existing = [str(folder / f"{n}.{ext}") for n in names for ext in ("crt", "key") if (folder / f"{n}.{ext}").exists()]
    if existing and not args.force:
        raise FailedPrecondition(f"{existing[0]} already exists; use --force to replace the certificates in {folder}")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert, ca_key = make_ca("automation-gateway CA")
    ca = write_pair(folder, "ca", ca_cert, ca_key)
    server = write_pair(folder, "server", *make_certificate(ca_cert, ca_key, hosts[0], hosts, client=False))
    client = write_pair(folder, "client", *make_certificate(ca_cert, ca_key, "gateway-client", [], server=False))
    print(f"wrote into {folder} (keys mode 0600), for {', '.join(hosts)}:")
    print(f"  CA           {ca[0]}  (its key {ca[1]}: keep it offline)")
    print(f"  server       {server[0]}  {server[1]}")
    print(f"  client       {client[0]}  {client[1]}")
    print("server gateway.conf:  [server] use_tls = true, certificate_file = "
          f"{server[0].resolve()}, private_key_file = {server[1].resolve()}")
    print(f"client gateway.conf:  [client] use_tls = true, certificate_file = {ca[0].resolve()}")
    return 0
