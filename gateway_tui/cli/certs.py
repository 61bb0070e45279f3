"""gateway cert-gen: TLS certificates, one command away.

With no TYPE (our form): a CA, a server certificate and a client certificate in --dir.
With TYPE (iagctl's form): one of ca, server, client or runner as NAME.pem and NAME-key.pem in --output;
the others are signed by the ca.pem and ca-key.pem found there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway_daemon.certificates import (CA_DAYS, LEAF_DAYS, check_key_choice, make_ca, make_certificate,
                                         write_pair)
from gateway_daemon.core import FailedPrecondition

from .parser import UsageError

PEM, KEY_PEM = ".pem", "-key.pem"
# TYPE -> (default common name, TLS server use, TLS client use). A server also dials runners, a runner serves.
_ROLES = {"server": ("localhost", True, True), "client": ("gateway-client", False, True),
          "runner": ("gateway-runner", True, True)}
_TYPED_ONLY = ("output", "name", "cn", "sans", "expiry", "key_size", "country", "state", "locality", "org", "ou")


def cert_gen(args: argparse.Namespace) -> int:
    if args.type:
        return _typed(args)
    given = [f"--{flag.replace('_', '-')}" for flag in _TYPED_ONLY if getattr(args, flag) is not None]
    if given or args.key_algo != "ecdsa":
        raise UsageError(f"{(given or ['--key-algo'])[0]} goes with a TYPE: gateway cert-gen ca|server|client|runner")
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
    print(f"server gateway.conf:  [application] ca_certificate_file = {ca[0].resolve()}; [server] use_tls = true, "
          f"certificate_file = {server[0].resolve()}, private_key_file = {server[1].resolve()} "
          "(client_cert_auth = true: clients must show their certificate)")
    print(f"client gateway.conf:  [application] ca_certificate_file = {ca[0].resolve()}; [client] use_tls = true, "
          f"certificate_file = {client[0].resolve()}, private_key_file = {client[1].resolve()}")
    return 0


def _sans(args: argparse.Namespace) -> list[str]:
    return [name.strip() for item in (args.sans or []) + (args.host or []) for name in item.split(",") if name.strip()]


def _typed(args: argparse.Namespace) -> int:
    try:
        check_key_choice(args.key_algo, args.key_size)
    except ValueError as exc:
        raise UsageError(f"--key-size: {exc}") from None
    if args.expiry is not None and args.expiry < 1:
        raise UsageError("--expiry is a number of days, at least 1")
    if args.country is not None and len(args.country) != 2:
        raise UsageError(f"--country is two letters (US, DE, ...), not {args.country!r}")
    folder = Path(args.output or ".")
    name = args.name or args.type
    if "/" in name or name in ("", ".", ".."):
        raise UsageError(f"--name {name!r} is a file name, not a path")
    subject = {field: getattr(args, field) for field in ("country", "state", "locality", "org", "ou")}
    key = dict(key_algo=args.key_algo, key_size=args.key_size, subject=subject)
    if args.type == "ca":
        target = folder / f"{name}{PEM}"
        if target.exists() and not args.force:
            raise FailedPrecondition(f"{target} already exists: a new CA would orphan every certificate it signed; "
                                     "use --force to replace it")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert, key_path = write_pair(folder, name, *make_ca(args.cn or "gateway CA", args.expiry or CA_DAYS, **key),
                                    cert_suffix=PEM, key_suffix=KEY_PEM)
        print(f"wrote the CA {cert} and its key {key_path} (mode 0600: keep it offline)")
        print(f"every part trusts it with: [application] ca_certificate_file = {cert.resolve()}")
        return 0
    ca_cert_path, ca_key_path = folder / f"ca{PEM}", folder / f"ca{KEY_PEM}"
    try:
        ca_cert, ca_key = ca_cert_path.read_bytes(), ca_key_path.read_bytes()
    except FileNotFoundError as exc:
        raise FailedPrecondition(f"{exc.filename} not found: make the CA first (gateway cert-gen ca --output "
                                 f"{folder})") from None
    common_name, server, client = _ROLES[args.type]
    sans = _sans(args) or ([] if args.type == "client" else ["localhost", "127.0.0.1"])
    common_name = args.cn or (sans[0] if server and sans else common_name)
    try:
        pair = make_certificate(ca_cert, ca_key, common_name, sans, client=client, server=server,
                                days=args.expiry or LEAF_DAYS, **key)
    except ValueError as exc:  # a CA key that does not match, or a file that is not PEM
        raise FailedPrecondition(f"cannot sign with {ca_cert_path} and {ca_key_path}: {exc}") from None
    cert, key_path = write_pair(folder, name, *pair, cert_suffix=PEM, key_suffix=KEY_PEM)
    print(f"wrote the {args.type} certificate {cert} and its key {key_path} (mode 0600), signed by {ca_cert_path}"
          + (f", for {', '.join(sans)}" if sans else ""))
    section = {"server": "server", "client": "client", "runner": "runner"}[args.type]
    print(f"gateway.conf: [{section}] use_tls = true, certificate_file = {cert.resolve()}, "
          f"private_key_file = {key_path.resolve()}")
    return 0
