"""create / get / describe / edit / delete for repositories, decorators, services and secrets."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from gateway_daemon.core import Decorator, Gateway, InvalidArgument, Repository, SecretRef, Service
from gateway_daemon.core.resources.executables import ExecutableObject
from gateway_daemon.core.resources.registries import Registry
from gateway_daemon.core.resources.decorators import MAX_DEPTH
from gateway_daemon.core.resources.base import Resource
from gateway_daemon.core.resources.services import DEFAULT_ARG_FORMAT
from gateway_daemon.core.resources.secret_providers import SecretProvider
from gateway_daemon.core.resources.secrets import MASKING, MAX_VALUE_BYTES, MIN_MASKED
from gateway_daemon.inputfiles import MIB, InputFileError, load_yaml, read_text

from gateway_daemon.console import emit
from .parser import UsageError, kind_word
from .tables import table


# The most a command reads from a file it is given (see gateway_daemon.inputfiles).
SCHEMA_FILE_LIMIT = 2 * MIB  # a decorator's schema is at most 1 MiB as compact JSON; a file may be laid out
VALUE_FILE_LIMIT = MAX_VALUE_BYTES + 1  # the trailing newline a file may add


def _read_text(path: str, what: str, limit: int) -> str:
    """The file's text, at most `limit` bytes: a bigger one is refused (exit 1), one that cannot be opened is a
    usage error (exit 2)."""
    try:
        return read_text(path, limit, what)
    except InputFileError as exc:
        raise InvalidArgument(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _load_schema(given: str) -> Any:
    """--schema: a file (FILE, or @FILE as IAG 5 writes it; - for stdin), or the schema itself as JSON."""
    if given.lstrip().startswith(("{", "[")):  # the JSON itself, in quotes on the line (IAG 5's inline form)
        if len(given.encode()) > SCHEMA_FILE_LIMIT:
            raise InvalidArgument(f"the --schema value is larger than {SCHEMA_FILE_LIMIT // MIB} MiB")
        return _parse_schema(given, "the --schema value")
    path = given[1:] if given.startswith("@") and len(given) > 1 else given
    text = _read_text(path, "schema file", SCHEMA_FILE_LIMIT)
    return _parse_schema(text, "schema file " + ("standard input" if path == "-" else path))


def _parse_schema(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidArgument(f"{where} nests objects or arrays more than {MAX_DEPTH} levels deep; "
                              f"at most {MAX_DEPTH} levels are allowed") from None
    except json.JSONDecodeError as json_error:
        try:
            return load_yaml(text, where)
        except InputFileError as yaml_error:
            if "alias" in str(yaml_error) or "too deep" in str(yaml_error):
                raise InvalidArgument(str(yaml_error)) from None
            raise InvalidArgument(
                f"{where} is neither JSON nor YAML: line {json_error.lineno}, column {json_error.colno}: "
                f"{json_error.msg}"
            ) from None


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            # Like --set and --secret: a malformed value is an invalid request (exit 1), not bad usage.
            raise InvalidArgument(f"{flag} {item!r} is not KEY=VALUE")
        result[key] = value
    return result


def _secret_value(args: argparse.Namespace, required: bool) -> str | None:
    if args.value is not None and args.value.startswith("@") and len(args.value) > 1:
        value = _read_text(args.value[1:], "value file", VALUE_FILE_LIMIT)  # IAG 5's --value @FILE
        return value[:-1] if value.endswith("\n") else value
    if args.value is not None:
        return args.value
    if args.value_file is not None:
        value = _read_text(args.value_file, "value file", VALUE_FILE_LIMIT)
    elif not required:
        return None
    elif sys.stdin.isatty():
        value = getpass.getpass(f"value of secret {args.name}: ")
    else:
        value = _read_text("-", "secret value on", VALUE_FILE_LIMIT)
    # A trailing newline from a file or a pipe is never part of the value.
    return value[:-1] if value.endswith("\n") else value


def _note_short(name: str, value: str | None) -> None:
    if value is not None and len(value) < MIN_MASKED:
        print(f"note: the value of secret {name} is shorter than {MIN_MASKED} characters: it is not masked in "
              "run output", file=sys.stderr)


_CLEARABLE = {
    "repository": {"reference": "", "private-key-name": "", "description": "", "tag": [], "username": "",
                   "password-name": "", "token-name": ""},
    "service": {"decorator": "", "env": {}, "secret": [], "runtime-arg": [], "requirements-file": "", "tag": [],
                "runner-tag": [], "arg-format": DEFAULT_ARG_FORMAT, "timeout": None, "description": "", "filename": "",
                "working-dir": ".", "playbook": [], "inventory": [], "extra-vars": [], "extra-vars-file": [],
                "config-file": "", "pypi-registry": "", "galaxy-registry": "", "executable": "", "action": "",
                "var": {}, "var-file": [], "backend-config": []},
    "registry": {"username": "", "password-name": "", "token-name": "", "description": ""},
    "secret": {"tag": [], "description": ""},
}
_FIELD_OF_FLAG = {"private-key-name": "private_key_name", "tag": "tags", "runner-tag": "runner_tags", "secret": "secrets",
                  "runtime-arg": "runtime_args", "requirements-file": "requirements_file", "arg-format": "arg_format",
                  "working-dir": "working_dir", "playbook": "playbooks", "inventory": "inventories",
                  "extra-vars": "extra_vars", "extra-vars-file": "extra_vars_files", "config-file": "config_file",
                  "pypi-registry": "pypi_registry", "galaxy-registry": "galaxy_registry",
                  "password-name": "password_name", "token-name": "token_name",
                  "action": "tofu_action", "var": "tofu_vars", "var-file": "tofu_var_files",
                  "backend-config": "tofu_backend_config"}


def _arg_format(text: str) -> str:
    """An arg-format in our spelling ('--{key}={value}') or IAG 5's ('--{{.Key}} {{.Value}}')."""
    from gateway_daemon.core.transfer.iag5 import arg_format

    return arg_format(text)


def _changes(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The fields the flags set. Used by create (all given fields) and edit (only these change)."""
    changes: dict[str, Any] = {}
    for flag in getattr(args, "clear", []) or []:
        if flag not in _CLEARABLE.get(kind, {}):
            raise UsageError(f"--clear {flag}: not a field of a {kind} that can be emptied; "
                             f"use one of {', '.join(_CLEARABLE.get(kind, {}))}")
        changes[_FIELD_OF_FLAG.get(flag, flag)] = _CLEARABLE[kind][flag]

    def take(attr: str, field: str | None = None, convert=lambda v: v) -> None:
        value = getattr(args, attr, None)
        if value is not None:
            changes[field or attr] = convert(value)

    take("description")
    if kind == "repository":
        take("url")
        take("reference")
        take("private_key_name")
        take("username")
        take("password_name")
        take("token_name")
        take("tag", "tags")
    elif kind == "decorator":
        take("schema", convert=_load_schema)
    elif kind == "service":
        take("repository")
        take("working_dir")
        take("filename")
        take("decorator")
        take("env", convert=lambda v: _pairs(v, "--env"))
        take("secret", "secrets", convert=lambda v: [SecretRef.parse(s) for s in v])
        take("runtime_arg", "runtime_args")
        take("requirements_file")
        take("tag", "tags")
        take("runner_tag", "runner_tags")
        take("arg_format", convert=_arg_format)
        take("timeout")
        take("playbook", "playbooks")
        take("inventory", "inventories")
        take("extra_vars")
        take("extra_vars_file", "extra_vars_files")
        take("config_file")
        take("pypi_registry")
        take("galaxy_registry")
        take("executable")
        take("action", "tofu_action")
        take("var", "tofu_vars", convert=lambda v: _pairs(v, "--var"))
        take("var_file", "tofu_var_files")
        take("backend_config", "tofu_backend_config")
    elif kind == "registry":
        for flag in ("url", "username", "password_name", "token_name", "insecure", "default"):
            take(flag)
    elif kind == "secret":
        take("tag", "tags")
    elif kind == "secret-provider":
        for flag in ("url", "auth_method", "secrets_endpoint", "token_file", "role_id", "secret_id_file", "app_id",
                     "certificate_file", "private_key_file", "ca_file", "command"):
            take(flag)
        take("env", convert=lambda v: _pairs(v, "--env"))
    elif kind == "executable-object":
        take("exec_command")
        take("arg_format", convert=_arg_format)
    return changes


# ---------------------------------------------------------------- views
def view(resource: Resource) -> dict[str, Any]:
    """The resource as shown to people and scripts: secrets never carry their sealed value."""
    data = resource.to_dict()
    data.pop("sealed", None)
    if isinstance(resource, Service):
        data["secrets"] = [str(ref) for ref in resource.secrets]
    return {"kind": resource.KIND, **data}


def state_view(summary: Any, brief: bool) -> Any:
    """What `describe service` shows of an opentofu-plan service's state (never a value from it)."""
    if summary is None:
        return "none yet (an apply stores it)" if brief else None
    data = summary.to_dict()
    if brief:
        count = len(summary.resources)
        return (f"{count} resource{'' if count == 1 else 's'}" + (f" ({', '.join(summary.resources[:20])}"
                f"{', ...' if count > 20 else ''})" if count else "") + f", serial {summary.serial}, "
                f"last changed {summary.updated_at}" + (f" by run {summary.run}" if summary.run else ""))
    return data


# ---------------------------------------------------------------- verbs
async def create(gateway: Gateway, args: argparse.Namespace) -> int:
    kind = args.kind
    if kind == "secret" and (args.provider or args.path or args.key):
        if args.value is not None or args.value_file is not None:
            raise UsageError("an alias (--provider, --secret, --key) has no value here: drop --value/--value-file")
        if not args.provider or not args.path:
            raise UsageError("an alias needs --provider PROVIDER and --secret PATH")
        resource = await gateway.create_secret(args.name, "", args.description or "", args.tag or [],
                                               provider=args.provider, path=args.path, key=args.key or "")
    elif kind == "secret":
        value = _secret_value(args, required=True)
        resource = await gateway.create_secret(args.name, value, args.description or "", args.tag or [])
        _note_short(args.name, value)
    else:
        fields = _changes(kind, args)
        if kind in ("service", "registry", "secret-provider"):
            fields["type"] = args.type
        cls = {"repository": Repository, "decorator": Decorator, "service": Service, "registry": Registry,
               "executable-object": ExecutableObject, "secret-provider": SecretProvider}[kind]
        resource = await gateway.create(cls(name=args.name, **fields))
        warning = getattr(resource, "warning", "")  # a remote git could not reach: created, and said so
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    if args.output == "table":
        print(f"{kind} {resource.name} created")
    else:
        emit(view(resource), args.output)
    return 0


async def get(gateway: Gateway, args: argparse.Namespace) -> int:
    kind = kind_word(args.kind)
    resources = await gateway.list(kind, full=args.output != "table")  # a table shows what a list carries
    if args.type:
        resources = [r for r in resources if r.type == args.type]
    if args.tag:  # all given tags; decorators carry none
        wanted = set(args.tag)
        resources = [r for r in resources if wanted <= set(getattr(r, "tags", None) or [])]
    emit([view(r) for r in resources], args.output, table(kind, resources))
    return 0


def inputs_text(service: Service) -> str:
    """How `--set KEY=value` reaches the service's script, in one sentence (describe service)."""
    how = {"python-script": "as --KEY=value" + (" (a boolean the decorator declares: a bare --KEY when true)"
                                                 if service.decorator else ""),
           "executable": f"as {service.arg_format} (its arg format)",
           "ansible-playbook": "in --extra-vars as JSON",
           "opentofu-plan": "as -var KEY=value"}.get(service.type, "")
    if service.decorator:
        return f"checked against decorator {service.decorator}, then each input reaches the script {how}"
    return f"no decorator: each input reaches the script {how}, unchecked"


async def describe(gateway: Gateway, args: argparse.Namespace) -> int:
    kind = kind_word(args.kind)
    if args.reveal and kind != "secret":
        raise UsageError("--reveal is for secrets only")
    if args.editor and kind != "secret":
        raise UsageError("--editor is for secrets only")
    resource = await gateway.get(kind, args.name)
    if args.editor:
        return show_in_editor(args.name, await gateway.reveal_secret(args.name))
    data = view(resource)
    if isinstance(resource, Service) and args.output == "table":  # for people; -o json stays the resource
        data = {k: v for pair in data.items()
                for k, v in ([pair, ("inputs", inputs_text(resource))] if pair[0] == "decorator" else [pair])}
    if kind == "secret" and not getattr(resource, "provider", "") and args.output == "table":
        for field in ("provider", "path", "key"):  # sealed here: no alias fields to show people
            data.pop(field, None)
    if isinstance(resource, Service) and resource.type == "opentofu-plan":
        data["state"] = state_view(await gateway.service_state(args.name), args.output == "table")
    if args.reveal:
        data["value"] = await gateway.reveal_secret(args.name)
    emit(data, args.output)
    if kind == "secret" and args.output == "table":
        print(f"masking: {MASKING}")
    return 0


async def edit(gateway: Gateway, args: argparse.Namespace) -> int:
    kind = args.kind
    if kind == "secret":
        value = _secret_value(args, required=False)
        changes = _changes(kind, args)  # --description, --tag, --clear
        alias = {field: getattr(args, field) for field in ("provider", "path", "key")
                 if getattr(args, field) is not None}
        if value is None and not changes and not alias:
            raise UsageError("nothing to change: give --value, --value-file, --provider, --secret, --key, "
                             "--description or --tag")
        resource = await gateway.update_secret(args.name, value=value, description=changes.get("description"),
                                               tags=changes.get("tags"), **alias)
        _note_short(args.name, value)
    else:
        changes = _changes(kind, args)
        if not changes:
            raise UsageError(f"nothing to change: give one of the flags of 'gateway edit {kind} --help'")
        before = (await gateway.get(kind, args.name) if kind in ("repository", "registry") and "url" in changes
                  else None)
        resource = await gateway.update(kind, args.name, changes)
        if before is not None:
            _note_dropped_credentials(before, resource, changes)
    if args.output == "table":
        print(f"{kind} {resource.name} updated")
    else:
        emit(view(resource), args.output)
    return 0


def _note_dropped_credentials(before: Resource, after: Resource, changes: dict[str, Any]) -> None:
    """A repository or registry moved to another host keeps no credentials (core.repositories): say which it no
    longer uses."""
    dropped = [(flag, getattr(before, field)) for flag, field in (("--private-key-name", "private_key_name"),
                                                                  ("--password-name", "password_name"),
                                                                  ("--token-name", "token_name"))
               if getattr(before, field, "") and not getattr(after, field, "") and field not in changes]
    if dropped:
        names = ", ".join(f"{name} ({flag})" for flag, name in dropped)
        print(f"note: {after.KIND} {after.name} moved to another host ({after.url}): its credentials {names} are no "
              f"longer used and nothing is sent to the new host; set them again with "
              f"{' / '.join(flag for flag, _ in dropped)} if they belong there", file=sys.stderr)


async def delete(gateway: Gateway, args: argparse.Namespace) -> int:
    kind = kind_word(args.kind)
    await gateway.delete(kind, args.name)
    print(f"{kind} {args.name} deleted")
    return 0


def show_in_editor(name: str, value: str) -> int:
    """IAG 5's describe secret: the value in $EDITOR (vi when unset), from a file only the owner can read, in a
    folder of its own, removed when the editor ends; the value is never printed."""
    import os
    import shlex
    import shutil
    import subprocess
    import tempfile

    from gateway_daemon.core import FailedPrecondition

    chosen = os.environ.get("EDITOR") or os.environ.get("VISUAL")
    if not chosen and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise FailedPrecondition(f"cannot open secret {name}: no terminal for vi; set EDITOR, or use --reveal")
    command = shlex.split(chosen or "vi")
    if not command or not shutil.which(command[0]):
        raise FailedPrecondition(f"cannot open secret {name}: the editor {command[0] if command else '(empty)'!r} "
                                 "is not a command here; set EDITOR")
    folder = tempfile.mkdtemp(prefix="gateway-secret-")  # mode 0700
    path = os.path.join(folder, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        code = subprocess.run([*command, path]).returncode
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"secret {name} was shown in {command[0]}; the temporary file is removed", file=sys.stderr)
    return 0 if code == 0 else 1
