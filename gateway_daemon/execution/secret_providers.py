"""The clients of secret providers (core.resources.secret_providers.ProviderClient): HashiCorp Vault or OpenBao (KV v2,
token or AppRole), CyberArk's Central Credential Provider over mutual TLS, and plugin programs.

Credentials are read from the files on this host the provider names, at each fetch (a rotated file is used
at once); an AppRole token is kept in memory only, renewed before it expires and replaced by a new login when
it can no longer be renewed.  TLS is 1.2 or later and verified, against the provider's --ca-file when it has
one.  Errors are one line naming the cause and never a credential or a value: the HTTP libraries' own texts are
not passed on, only what they mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..core.resources.secret_providers import ProviderError, SecretProvider
from .launch import ended
from .sandbox import Sandbox, _forms, gateway_environment
from .venvs import base_python
from .process import SUPERVISOR

HTTP_TIMEOUT = 10.0  # seconds for one request to a provider
PLUGIN_TIMEOUT = 30.0  # seconds a plugin may take
PLUGIN_OUTPUT = 256 * 1024  # bytes of stdout (and of stderr) read from a plugin
MAX_CREDENTIAL_FILE = 64 * 1024
MAX_ANSWER = 1024 * 1024  # bytes of a credential provider's answer read
RENEW_WHEN_LEFT = 0.5  # an AppRole token is renewed once less than this share of its time is left


def _read_credential(provider: SecretProvider, path: str, what: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CREDENTIAL_FILE + 1)
    except OSError as exc:
        raise ProviderError(f"cannot read the {what} file {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_CREDENTIAL_FILE:
        raise ProviderError(f"the {what} file {path} is larger than {MAX_CREDENTIAL_FILE // 1024} KiB")
    text = data.decode("utf-8", errors="replace").strip()
    if not text:
        raise ProviderError(f"the {what} file {path} is empty")
    return text


def _pick(data: Any, key: str, where: str) -> str:
    """The value of field `key` of what the provider holds at a path (empty key: its only field)."""
    if not isinstance(data, dict):
        raise ProviderError(f"{where} does not hold key/value fields")
    if key:
        if key not in data:
            raise ProviderError(f"{where} has no key {key!r}")
        value = data[key]
    elif len(data) == 1:
        value = next(iter(data.values()))
    else:
        raise ProviderError(f"{where} holds {len(data)} keys: give the alias --key")
    return value if isinstance(value, str) else json.dumps(value)


def _http_cause(exc: BaseException, url: str) -> str:
    """What a requests error means, in words that hold no credential (its own text may quote a URL with a
    query, which for CyberArk names the object)."""
    import requests

    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return f"TLS: the certificate of {url} is not trusted (give the provider --ca-file with its CA)"
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
            return f"TLS: {url} does not answer TLS (an http:// server?)"
        if "hostname" in text.lower() or "doesn't match" in text:
            return f"TLS: the certificate of {url} is for another host name"
        if "PROTOCOL_VERSION" in text or "UNSUPPORTED_PROTOCOL" in text:
            return f"TLS: {url} offers no TLS 1.2 or later"
        if "CERTIFICATE_REQUIRED" in text or "certificate required" in text or "BAD_CERTIFICATE" in text:
            return f"TLS: {url} did not accept the client certificate"
        return f"TLS handshake with {url} failed"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{url} did not answer within {HTTP_TIMEOUT:g} s"
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "Connection refused" in text:
            return f"cannot reach {url}: connection refused"
        if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
            return f"cannot reach {url}: the host name does not resolve"
        if "CERTIFICATE_REQUIRED" in text or "certificate required" in text or "Connection reset" in text:
            return f"{url} closed the connection (does it want a client certificate it was not given?)"
        return f"cannot reach {url}"
    return f"request to {url} failed ({type(exc).__name__})"


def _session(ca_file: str, client_cert: tuple[str, str] | None = None):
    """A requests session that speaks TLS 1.2 or later, verified (against `ca_file` when given)."""
    import requests
    from requests.adapters import HTTPAdapter

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            context = ssl.create_default_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            kwargs["ssl_context"] = context
            return super().init_poolmanager(*args, **kwargs)

    class _Session(requests.Session):
        """Reads at most MAX_ANSWER bytes of an answer (a provider gone wrong cannot fill the gateway's memory)."""

        def request(self, *args, **kwargs):
            if kwargs.get("stream"):
                return super().request(*args, **kwargs)
            response = super().request(*args, **{**kwargs, "stream": True})
            try:
                body = response.raw.read(MAX_ANSWER + 1, decode_content=True)
            except Exception as exc:  # urllib3's errors while reading: the answer broke off
                raise ProviderError(f"the answer of {response.url.split('?')[0]} broke off "
                                    f"({type(exc).__name__})") from None
            finally:
                response.close()
            if len(body) > MAX_ANSWER:
                raise ProviderError(f"{response.url.split('?')[0]} answered more than {MAX_ANSWER // 1024} KiB")
            response._content = body
            return response

    session = _Session()
    session.mount("https://", _Adapter())
    session.verify = ca_file or True
    session.trust_env = False  # no proxy or CA bundle from the environment: what the provider says
    if client_cert is not None:
        session.cert = client_cert
    return session


class _AppRoleToken:
    """The token of one AppRole login, kept in memory: renewed, or replaced by a new login, before it ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token = ""
        self.ttl = 0.0
        self.expires = 0.0
        self.renewable = False
        self.role: tuple[str, str, str] = ("", "", "")  # what it was made for: url, role id, secret id file
        self.logins = 0
        self.renewals = 0


class VaultClient:
    """KV v2 reads with hvac, token or AppRole auth."""

    def __init__(self) -> None:
        self._approle: dict[str, _AppRoleToken] = {}

    def fetch(self, provider: SecretProvider, path: str, key: str) -> str:
        import hvac
        import requests

        mount = provider.mount
        inner = path.strip("/")
        for prefix in (f"{mount}/data/", f"{mount}/"):  # IAG 5 also writes the mount and data/ in the path
            if inner.startswith(prefix):
                inner = inner[len(prefix):]
                break
        where = f"{mount}/{inner}"
        session = _session(provider.ca_file)
        try:
            client = hvac.Client(url=provider.url, session=session, timeout=HTTP_TIMEOUT)
            if provider.auth_method == "token":
                client.token = _read_credential(provider, provider.token_file, "token")
            else:
                client.token = self._approle_token(provider, client)
            try:
                data = self._read(client, mount, inner)
            except hvac.exceptions.Forbidden:
                if provider.auth_method != "approle":
                    raise
                client.token = self._approle_token(provider, client, force=True)  # revoked meanwhile: log in
                data = self._read(client, mount, inner)
        except hvac.exceptions.Forbidden:
            how = (f"the token in {provider.token_file}" if provider.auth_method == "token"
                   else f"the AppRole token of role id {provider.role_id}")
            raise ProviderError(f"permission denied: {how} is not accepted or may not read {where}") from None
        except hvac.exceptions.InvalidPath:
            raise ProviderError(f"no secret at {where} (KV v2 mount {mount})") from None
        except hvac.exceptions.VaultError as exc:
            raise ProviderError(f"vault refused reading {where} ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise ProviderError(_http_cause(exc, provider.url)) from None
        except ValueError:
            raise ProviderError(f"{provider.url} did not answer with JSON (is it a vault?)") from None
        finally:
            session.close()
        return _pick(data, key, f"the secret at {where}")

    @staticmethod
    def _read(client, mount: str, path: str) -> Any:
        answer = client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount,
                                                          raise_on_deleted_version=True)
        return ((answer or {}).get("data") or {}).get("data")

    def _approle_token(self, provider: SecretProvider, client, force: bool = False) -> str:
        import hvac

        state = self._approle.setdefault(provider.name, _AppRoleToken())
        role = (provider.url, provider.role_id, provider.secret_id_file)
        with state.lock:
            now = time.monotonic()
            if state.role != role:
                state.token, state.role = "", role
            if state.token and not force:
                left = state.expires - now
                if left > state.ttl * RENEW_WHEN_LEFT or state.ttl == 0:
                    return state.token
                if state.renewable and left > 1:
                    client.token = state.token
                    try:
                        answer = client.auth.token.renew_self()
                        auth = answer.get("auth") or {}
                        ttl = float(auth.get("lease_duration") or 0)
                        # A renewal capped by the token's max TTL gives less than asked: log in again then.
                        if ttl > state.ttl * RENEW_WHEN_LEFT:
                            state.expires, state.renewals = now + ttl, state.renewals + 1
                            return state.token
                    except hvac.exceptions.VaultError:
                        pass  # not renewable any more: log in again
            secret_id = _read_credential(provider, provider.secret_id_file, "secret id")
            try:
                answer = client.auth.approle.login(role_id=provider.role_id, secret_id=secret_id,
                                                   use_token=False)
            except hvac.exceptions.InvalidRequest:
                raise ProviderError(f"AppRole login refused: role id {provider.role_id} with the secret id in "
                                    f"{provider.secret_id_file} is not accepted") from None
            auth = answer.get("auth") or {}
            state.token = auth.get("client_token") or ""
            if not state.token:
                raise ProviderError("AppRole login gave no token")
            state.ttl = float(auth.get("lease_duration") or 0)
            state.renewable = bool(auth.get("renewable"))
            state.expires = time.monotonic() + state.ttl
            state.logins += 1
            return state.token


class CyberArkClient:
    """The Central Credential Provider's REST API (GET /AIMWebService/api/Accounts), over mutual TLS."""

    def fetch(self, provider: SecretProvider, path: str, key: str) -> str:
        import requests
        import urllib3

        safe, sep, obj = path.partition("/")
        if not sep or not safe or not obj:
            raise ProviderError(f"the path {path!r} is not SafeName/ObjectName")
        for label, file in (("certificate", provider.certificate_file), ("private key", provider.private_key_file)):
            if not os.access(file, os.R_OK):
                raise ProviderError(f"cannot read the {label} file {file}")
        session = _session(provider.ca_file, (provider.certificate_file, provider.private_key_file))
        url = provider.url.rstrip("/") + "/AIMWebService/api/Accounts"
        try:
            answer = session.get(url, params={"AppID": provider.app_id, "Safe": safe, "Object": obj},
                                 timeout=HTTP_TIMEOUT, stream=True)
            body = answer.raw.read(MAX_ANSWER + 1, decode_content=True)
            answer.close()
        except requests.exceptions.RequestException as exc:
            raise ProviderError(_http_cause(exc, provider.url)) from None
        except urllib3.exceptions.HTTPError as exc:  # the answer broke off while it was read
            raise ProviderError(f"the answer of {provider.url} broke off ({type(exc).__name__})") from None
        except (OSError, ssl.SSLError) as exc:  # a client key that does not load
            raise ProviderError(f"cannot use the client certificate {provider.certificate_file}: "
                                f"{type(exc).__name__}") from None
        finally:
            session.close()
        if len(body) > MAX_ANSWER:
            raise ProviderError(f"the credential provider answered more than {MAX_ANSWER // 1024} KiB for {path}")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if answer.status_code != 200:
            code = (data or {}).get("ErrorCode", "") if isinstance(data, dict) else ""
            text = (data or {}).get("ErrorMsg", "") if isinstance(data, dict) else ""
            detail = f" {code}: {text[:200]}" if code or text else ""
            raise ProviderError(f"the credential provider answered {answer.status_code} for {path}{detail}")
        if not isinstance(data, dict):
            raise ProviderError(f"{provider.url} did not answer with JSON")
        return _pick(data, key or "Content", f"the account {path}")


class PluginClient:
    """Runs `COMMAND get` in the runs' sandbox with a time limit; the request on its stdin, the answer on its
    stdout ({"value": ...}); bounded output; a non-zero exit is an error with its stderr."""

    def __init__(self, sandbox: Sandbox | None = None, python: str = "", timeout: float = PLUGIN_TIMEOUT,
                 scratch: Path | None = None) -> None:
        """`scratch`: where each call's private folders are made (as runs' are, in the data dir)."""
        self.sandbox = sandbox
        self.scratch = scratch
        self.python = python or base_python()
        self.timeout = timeout

    async def fetch(self, provider: SecretProvider, path: str, key: str) -> str:
        command = provider.command
        if not os.path.isfile(command) or not os.access(command, os.X_OK):
            raise ProviderError(f"the plugin {command} is not an executable file")
        request = json.dumps({"path": path, "key": key, "config": {"env": provider.env}}).encode()
        if self.scratch is not None:
            self.scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="plugin-", dir=self.scratch))
        scratch.chmod(0o711)  # the sandbox's user reaches its own folders in it, and lists nothing
        try:
            code, out, err = await self._run(command, request, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if code is None:
            raise ProviderError(f"the plugin {command} did not answer within {self.timeout:g} s")
        if code != 0:
            lines = [line.strip() for line in err.decode("utf-8", errors="replace").splitlines() if line.strip()]
            said = lines[-1][:300] if lines else ""  # its last word: the error, not a traceback's frames
            raise ProviderError(f"the plugin {command} exited with code {code}" + (f": {said}" if said else ""))
        if len(out) > PLUGIN_OUTPUT:
            raise ProviderError(f"the plugin {command} wrote more than {PLUGIN_OUTPUT // 1024} KiB")
        try:
            answer = json.loads(out)
        except ValueError:
            raise ProviderError(f"the plugin {command} did not write a JSON object to its stdout") from None
        value = answer.get("value") if isinstance(answer, dict) else None
        if not isinstance(value, str):
            raise ProviderError(f"the plugin {command} wrote no text \"value\"")
        return value

    async def _run(self, command: str, request: bytes, scratch: Path) -> tuple[int | None, bytes, bytes]:
        sandbox = self.sandbox
        tmp, home, tree = scratch / "tmp", scratch / "home", scratch / "tree"
        for folder in (tmp, home, tree):
            folder.mkdir(mode=0o755)  # as a run's (the sandbox makes folders inside them before it drops root)
        argv = [command, "get"]
        prefix: list[str] = []
        launch = None
        fds: tuple[int, ...] = ()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
        if sandbox is not None and sandbox.active:
            sandbox.give(tmp, home, tree)
            box = sandbox.command(tree=tree, tmp=tmp, home=home, cwd=str(tree),
                                  readable=[*gateway_environment(), SUPERVISOR, command])
            launch = sandbox.launch(memory=True, command_waits=True)
            options = [*(["--user", "%d:%d" % sandbox.user()] if sandbox.user() else []),  # type: ignore[str-format]
                       *(["--network"] if launch is not None and launch.slirp else []), "--exec"]
            supervised = [self.python, "-I", "-S", "-B", SUPERVISOR, *options, "--"]
            if launch is not None:
                box, fds = [box[0], *launch.bwrap_args(), *box[1:]], launch.pass_fds
            prefix = [*box, *supervised]
            env["HOME"] = str(home)
        try:
            process = await asyncio.create_subprocess_exec(
                *prefix, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, cwd=str(tree), pass_fds=fds, start_new_session=True)
        except OSError as exc:
            if launch is not None:
                await launch.close()
            raise ProviderError(f"cannot start the plugin {command}: {exc.strerror or exc}") from None
        try:
            if launch is not None:
                await launch.attach()
            return await asyncio.wait_for(self._talk(process, request), self.timeout)
        except asyncio.TimeoutError:
            return None, b"", b""
        except Exception as exc:
            raise ProviderError(f"the plugin {command} could not be started in the sandbox: {exc}") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                await process.wait()
            if launch is not None:
                await launch.close()

    @staticmethod
    async def _talk(process, request: bytes) -> tuple[int | None, bytes, bytes]:
        async def read(stream) -> bytes:
            data = b""
            while chunk := await stream.read(65536):
                if len(data) <= PLUGIN_OUTPUT:
                    data += chunk[:PLUGIN_OUTPUT + 1 - len(data)]
            return data

        async def write() -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.write(request)
                await process.stdin.drain()
            process.stdin.close()

        _, out, err = await asyncio.gather(write(), read(process.stdout), read(process.stderr))
        return await process.wait(), out, err


class ProviderClients:
    """core.resources.secret_providers.ProviderClient: each provider type's client; the HTTP ones run in threads.  The
    credential files providers name are hidden from runs in `sandbox` (the executor's): every provider's when a
    job is prepared (guard), and a provider's at its every use."""

    def __init__(self, sandbox: Sandbox | None = None, scratch: Path | None = None):
        self.vault = VaultClient()
        self.cyberark = CyberArkClient()
        self.plugin = PluginClient(sandbox, scratch=scratch)
        self.sandbox = sandbox

    def _hide_credentials(self, provider: SecretProvider) -> None:
        if self.sandbox is None:
            return
        for path in (provider.token_file, provider.secret_id_file, provider.private_key_file):
            if path:
                for form in _forms(path):
                    if form not in self.sandbox.hidden:
                        self.sandbox.hidden.append(form)

    def guard(self, providers: list[SecretProvider]) -> None:
        for provider in providers:
            self._hide_credentials(provider)

    async def fetch(self, provider: SecretProvider, path: str, key: str) -> str:
        self._hide_credentials(provider)
        if provider.type == "vault":
            return await asyncio.to_thread(self.vault.fetch, provider, path, key)
        if provider.type == "cyberark":
            return await asyncio.to_thread(self.cyberark.fetch, provider, path, key)
        if provider.type == "plugin":
            return await self.plugin.fetch(provider, path, key)
        raise ProviderError(f"unknown provider type {provider.type!r}")

    async def close(self) -> None:
        await ended()  # a plugin's network
