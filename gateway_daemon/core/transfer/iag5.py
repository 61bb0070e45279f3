"""The export of Itential Automation Gateway 5 (``iagctl db export``), mapped onto our resources.

Such a document holds lists of repositories, decorators and services with IAG's field names.  Every key IAG
writes is either mapped onto ours or refused by name, saying what is not supported yet; keys IAG does not
write are reported as unknown (refused with --strict).

* OpenTofu ``action`` (plan, apply, destroy) becomes the service's first runtime argument, ``vars`` become
  ``-var NAME=VALUE`` and ``var-files`` ``-var-file=PATH`` runtime arguments (a run's inputs come after them,
  so an input overrides a var of the same name).  ``state-file`` is refused: a run keeps OpenTofu state where
  the plan's backend puts it.
* ``registries`` become registries; IAG 5's own ``default-pypi`` and ``default-galaxy`` match the built-in ones
  by name (core/transfer.py leaves them built in when they say what the built-in ones say).
* ``executable-objects`` become executable objects; a service's ``executable-object`` names the one it runs with.
* an ansible-playbook service's ``playbooks`` all run, in turn: the first is its filename, the others its playbooks.
* ``secrets``: their values are sealed with the other gateway's key, so each must exist here already (create it
  with ``gateway create secret``); core/transfer.py checks that (secret_names).  A secret that names a
  ``provider`` is an alias of a secret in an external secrets manager: it is imported as an alias when its
  provider is (or must exist here already when its provider cannot be).
* ``secret-providers`` become secret providers (core.resources.secret_providers); one that lacks what a provider here
  needs (its credential files, say) is left out with a warning naming what is missing.
* ``mcp_servers``, ``users`` and pyproj-script services are not imported: one warning line
  each says so (users are created here with a role: IAG 5 users are all superusers).

The other way, ``to_iag5`` writes our export in IAG 5's layout and names (``db export --format iag5``), with
what IAG 5 cannot express listed.

Reading only builds resources and notes problems; core/transfer.py validates and writes them.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from ..resources.decorators import Decorator
from .documents import Problems, build_resource, entries
from ..errors import InvalidArgument
from ..resources.executables import ExecutableObject
from ..resources.registries import BUILT_IN as BUILT_IN_REGISTRIES, Registry
from ..resources.repositories import Repository
from ..resources.base import Resource
from ..resources.secret_providers import SecretProvider
from ..resources.secrets import Secret
from ..resources.services import DEFAULT_ARG_FORMAT, SERVICE_TYPES, SecretRef, Service, _arg_format_parts

# IAG 5 field names -> ours.
_REPOSITORY_KEYS = {"name", "description", "url", "reference", "tags", "private-key-name", "username",
                    "password-name"}
_DECORATOR_KEYS = {"name", "description", "schema"}
_SERVICE_KEYS = {"name", "type", "description", "repository", "working-directory", "filename", "playbooks",
                 "decorator", "tags", "runtime", "secrets", "arg-format", "executable-object"}
_REGISTRY_KEYS = {"name", "type", "url", "default", "description", "username", "password-name", "token-name",
                  "insecure"}
_REGISTRY_NOT_YET = ("auth-url", "client-id")  # Galaxy's keycloak login
_EXECUTABLE_KEYS = {"name", "exec-command", "description", "arg-format", "tags"}
_SECRET_KEYS = {"name", "description", "provider", "secret", "key"}
# IAG 5's secret-provider keys -> ours (its flags' names)
_PROVIDER_FIELDS = {"name": "name", "type": "type", "url": "url", "auth-method": "auth_method",
                    "secrets-endpoint": "secrets_endpoint", "token": "token_file", "role-id": "role_id",
                    "secret-id-file": "secret_id_file", "app-id": "app_id", "certificate-file": "certificate_file",
                    "private-key-file": "private_key_file", "ca-file": "ca_file", "command": "command", "env": "env",
                    "description": "description"}
_TOP_KEYS = {"repositories", "decorators", "services", "secrets", "registries", "executable-objects",
             "secret-providers", "mcp_servers", "users"}
_RUNTIME_COMMON = {"env", "req-file"}
_RUNTIME_PYPROJECT = {"pyproj-script", "pyproj-optional-deps"}
_RUNTIME_ANSIBLE = {"inventory", "config-file", "check", "diff", "limit", "tags", "skip-tags", "verbose-level",
                    "forks", "extra-vars", "extra-vars-file"}
_RUNTIME_EXECUTABLE = {"arg-format"}
_RUNTIME_OPENTOFU = {"action", "vars", "var-files", "state-file"}  # also accepted beside runtime, on the service
_TOFU_ACTIONS = ("plan", "apply", "destroy")
_TOFU_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TYPES = {
    "python-script": "python-script", "python": "python-script",
    "ansible-playbook": "ansible-playbook", "ansible": "ansible-playbook",
    "opentofu-plan": "opentofu-plan", "opentofu": "opentofu-plan", "tofu": "opentofu-plan",
    "executable": "executable",
}
_TERRAFORM_TYPES = ("terraform-plan", "terraform")
_GO_TEMPLATE_RE = re.compile(r"\{\{\s*\.(Key|Value)\s*\}\}")



def _text_list(where: str, field: str, value: Any, problems: Problems) -> list[str] | None:
    """A string or a list of scalars, as a list of text."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    problems.errors.append(f"{where}: {field} must be text or a list of text")
    return None


def _env_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _arg_format(where: str, value: Any, problems: Problems) -> str | None:
    """IAG's Go template ("--{{.Key}} {{.Value}}") as ours ("--{key} {value}")."""
    if not isinstance(value, str):
        problems.errors.append(f"{where}: arg-format must be text")
        return None
    if not _GO_TEMPLATE_RE.search(value) and ("{key}" in value or "{value}" in value):
        return value  # already in our spelling
    if "{{" in _GO_TEMPLATE_RE.sub("", value):
        problems.errors.append(f"{where}: arg-format {value!r} uses template parts other than {{{{.Key}}}} and "
                               "{{.Value}}")
        return None
    parts = _GO_TEMPLATE_RE.split(value)  # text, Key|Value, text, ...
    return "".join("{" + part.lower() + "}" if index % 2 else part.replace("{", "{{").replace("}", "}}")
                   for index, part in enumerate(parts))


def _repository(where: str, item: dict[str, Any], problems: Problems) -> Resource | None:
    problems.unknown(where, set(item) - _REPOSITORY_KEYS)
    fields = {"name": item.get("name"), "url": item.get("url", ""), "reference": item.get("reference", ""),
              "private_key_name": item.get("private-key-name", ""), "description": item.get("description", ""),
              "tags": item.get("tags", []), "username": item.get("username", ""),
              "password_name": item.get("password-name", "")}
    return build_resource(Repository, where, fields, problems)


def _decorator(where: str, item: dict[str, Any], problems: Problems) -> Resource | None:
    problems.unknown(where, set(item) - _DECORATOR_KEYS)
    fields = {"name": item.get("name"), "description": item.get("description", "")}
    if "schema" in item:
        fields["schema"] = item["schema"]
    else:
        problems.errors.append(f"{where}: a decorator needs a schema")
        return None
    return build_resource(Decorator, where, fields, problems)


def _secret_refs(where: str, value: Any, problems: Problems) -> list[SecretRef] | None:
    if not isinstance(value, list):
        problems.errors.append(f"{where}: secrets must be a list")
        return None
    refs = []
    for entry in value:
        try:
            if isinstance(entry, str):
                refs.append(SecretRef.parse(entry))
            elif isinstance(entry, dict):
                extra = set(entry) - {"name", "type", "target"}
                if extra:
                    problems.unknown(f"{where} secrets", extra)
                refs.append(SecretRef(name=entry.get("name"), target=entry.get("target"),
                                      type=entry.get("type") or "env"))
            else:
                raise InvalidArgument("a secret reference must be name=SECRET,type=env,target=ENV_VAR or a mapping")
        except InvalidArgument as exc:
            problems.errors.append(f"{where}: {exc}")
            return None
    return refs


def _ansible_args(where: str, runtime: dict[str, Any], env: dict[str, Any], problems: Problems) -> list[str]:
    """The ansible-playbook options of an IAG runtime, as runtime arguments."""
    args: list[str] = []
    for path in _text_list(where, "runtime inventory", runtime.get("inventory", []), problems) or []:
        args += ["-i", path]
    for flag in ("check", "diff"):
        value = runtime.get(flag, False)
        if not isinstance(value, bool):
            problems.errors.append(f"{where}: runtime {flag} must be true or false")
        elif value:
            args.append(f"--{flag}")
    for key in ("limit", "tags", "skip-tags"):
        if key in runtime:
            values = _text_list(where, f"runtime {key}", runtime[key], problems)
            if values:
                args += [f"--{key}", ",".join(values)]
    if "forks" in runtime:
        forks = runtime["forks"]
        if isinstance(forks, bool) or not isinstance(forks, int) or forks < 1:
            problems.errors.append(f"{where}: runtime forks must be a positive whole number")
        else:
            args += ["--forks", str(forks)]
    if "verbose-level" in runtime:
        level = runtime["verbose-level"]
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 6:
            problems.errors.append(f"{where}: runtime verbose-level must be a whole number from 0 to 6")
        elif level:
            args.append("-" + "v" * level)
    if "extra-vars" in runtime:
        extra = runtime["extra-vars"]
        if isinstance(extra, dict):
            try:
                args += ["--extra-vars", json.dumps(extra, sort_keys=True)]
            except (TypeError, ValueError):
                problems.errors.append(f"{where}: runtime extra-vars holds a value that is not JSON")
        elif isinstance(extra, str):
            args += ["--extra-vars", extra]
        else:
            problems.errors.append(f"{where}: runtime extra-vars must be a mapping or text")
    if "extra-vars-file" in runtime:
        for path in _text_list(where, "runtime extra-vars-file", runtime["extra-vars-file"], problems) or []:
            args += ["--extra-vars", f"@{path}"]
    if "config-file" in runtime:
        config_file = runtime["config-file"]
        if not isinstance(config_file, str):
            problems.errors.append(f"{where}: runtime config-file must be text")
        else:
            if env.get("ANSIBLE_CONFIG") not in (None, config_file):
                problems.warnings.append(f"{where}: runtime config-file {config_file!r} replaces env ANSIBLE_CONFIG")
            env["ANSIBLE_CONFIG"] = config_file
    return args


def _tofu_value(value: Any) -> str | None:
    """A var's value as -var takes it: text as it is, numbers and booleans spelled, lists and maps as JSON
    (which OpenTofu reads as HCL)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, (list, dict)):
        try:
            return json.dumps(value, separators=(",", ":"), sort_keys=True)
        except (TypeError, ValueError):
            return None
    return None


def _tofu_args(where: str, working_dir: Any, options: dict[str, Any], problems: Problems) -> list[str]:
    """The OpenTofu options of an IAG service (action, vars, var-files), as runtime arguments;
    state-file is refused by name."""
    args: list[str] = []
    if "action" in options:
        action = options["action"]
        if not isinstance(action, str) or action.strip().lower() not in _TOFU_ACTIONS:
            problems.errors.append(f"{where}: OpenTofu action {action!r} is not known; use one of "
                                   f"{', '.join(_TOFU_ACTIONS)}")
        elif action.strip().lower() != "plan":  # plan: what a run does when the service names no action
            args.append(action.strip().lower())
    files = options.get("var-files", [])
    for path in _text_list(where, "var-files", files, problems) or []:
        inside = posixpath.normpath(posixpath.join(working_dir if isinstance(working_dir, str) else ".", path))
        if posixpath.isabs(path) or inside == ".." or inside.startswith("../"):
            problems.errors.append(f"{where}: var-file {path!r} must be a path inside the repository, relative "
                                   "to the working directory")
        else:
            args.append(f"-var-file={path}")
    variables = options.get("vars", {})
    pairs: list[tuple[str, Any]] = []
    if isinstance(variables, dict):
        pairs = [(str(k), v) for k, v in variables.items()]
    elif isinstance(variables, list) and all(isinstance(v, str) and "=" in v for v in variables):
        pairs = [tuple(v.split("=", 1)) for v in variables]  # type: ignore[misc]  # iagctl --var NAME=VALUE
    else:
        problems.errors.append(f"{where}: vars must be a mapping of NAME: value (or a list of NAME=VALUE)")
    for name, value in pairs:
        text = _tofu_value(value)
        if not _TOFU_VAR_RE.fullmatch(name):
            problems.errors.append(f"{where}: var {name!r} is not a valid OpenTofu variable name")
        elif text is None or "\x00" in text:
            problems.errors.append(f"{where}: var {name} holds a value that is not text, a number, "
                                   "true/false, a list or a map")
        else:
            args += ["-var", f"{name}={text}"]
    state = options.get("state-file")
    if state not in (None, ""):
        problems.errors.append(f"{where}: state-file {state!r} is not supported yet: a run keeps OpenTofu state "
                               "where the plan's backend puts it; configure a backend in the plan "
                               "(for example s3 or pg) and remove state-file to import the rest")
    return args


def _service(where: str, item: dict[str, Any], problems: Problems) -> Resource | None:
    tofu_beside = set(item) & _RUNTIME_OPENTOFU
    problems.unknown(where, set(item) - _SERVICE_KEYS - _RUNTIME_OPENTOFU)
    raw_type = item.get("type")
    if not isinstance(raw_type, str):
        problems.errors.append(f"{where}: a service needs a type ({', '.join(SERVICE_TYPES)})")
        return None
    spelled = raw_type.strip().lower().replace("_", "-")
    runtime_given = item.get("runtime") if isinstance(item.get("runtime"), dict) else {}
    if spelled == "pyproj-script" or set(runtime_given) & _RUNTIME_PYPROJECT:
        problems.warnings.append(f"{where}: not imported: pyproj-script services are not supported yet (a "
                               "python-script service here runs the file its filename names)")
        return None
    if spelled in _TERRAFORM_TYPES:
        kind = "opentofu-plan"
        problems.warnings.append(f"{where}: type {raw_type!r} imported as opentofu-plan (run with OpenTofu)")
    elif spelled in _TYPES:
        kind = _TYPES[spelled]
    else:
        problems.errors.append(f"{where}: service type {raw_type!r} is not known; "
                               f"use one of {', '.join(SERVICE_TYPES)}")
        return None

    fields: dict[str, Any] = {"name": item.get("name"), "type": kind, "repository": item.get("repository", ""),
                              "decorator": item.get("decorator", ""), "description": item.get("description", ""),
                              "tags": item.get("tags", [])}
    working_dir = item.get("working-directory", ".")
    if isinstance(working_dir, str):
        working_dir = posixpath.normpath(working_dir) if working_dir.strip() else "."
    fields["working_dir"] = working_dir

    filename = item.get("filename", "")
    if kind == "ansible-playbook" and "playbooks" in item:
        playbooks = _text_list(where, "playbooks", item["playbooks"], problems)
        if playbooks:
            # All of them run, in turn: the first as the service's filename, the others after it.
            if filename and filename != playbooks[0]:
                problems.warnings.append(f"{where}: filename {filename!r} ignored; the playbooks "
                                         f"{', '.join(playbooks)} run")
            filename = playbooks[0]
            fields["playbooks"] = [p for p in dict.fromkeys(playbooks[1:]) if p != filename]
    elif "playbooks" in item:
        problems.unknown(where, ["playbooks"], " (only ansible-playbook services have playbooks)")
    fields["filename"] = filename
    if "executable-object" in item:
        fields["executable"] = item["executable-object"]

    if "secrets" in item:
        refs = _secret_refs(where, item["secrets"], problems)
        if refs is None:
            return None
        fields["secrets"] = refs

    arg_format = item.get("arg-format")
    runtime = item.get("runtime", {})
    if not isinstance(runtime, dict):
        problems.errors.append(f"{where}: runtime must be a mapping, not {type(runtime).__name__}")
        return None
    runtime = {k: v for k, v in runtime.items() if v is not None}
    allowed = set(_RUNTIME_COMMON)
    if kind == "ansible-playbook":
        allowed |= _RUNTIME_ANSIBLE
    if kind == "executable":
        allowed |= _RUNTIME_EXECUTABLE
    if kind == "opentofu-plan":
        allowed |= _RUNTIME_OPENTOFU
    unknown = set(runtime) - allowed
    misplaced = unknown & (_RUNTIME_ANSIBLE | _RUNTIME_EXECUTABLE | _RUNTIME_OPENTOFU)
    problems.unknown(f"{where} runtime", unknown - misplaced)
    problems.unknown(f"{where} runtime", misplaced, f" (it does not apply to a {kind} service)")
    if kind != "opentofu-plan":
        problems.unknown(where, tofu_beside, f" (it does not apply to a {kind} service)")

    env = runtime.get("env", {})
    if not isinstance(env, dict):
        problems.errors.append(f"{where}: runtime env must be a mapping of NAME: value")
        return None
    env = {str(k): _env_text(v) for k, v in env.items()}
    if kind == "ansible-playbook":
        fields["runtime_args"] = _ansible_args(where, runtime, env, problems)
    if kind == "opentofu-plan":
        both = sorted(tofu_beside & set(runtime))
        if both:
            problems.errors.append(f"{where}: {both[0]} is given both on the service and in its runtime; keep one")
        options = {**{k: item[k] for k in tofu_beside}, **{k: runtime[k] for k in _RUNTIME_OPENTOFU if k in runtime}}
        fields["runtime_args"] = _tofu_args(where, working_dir, options, problems)
    fields["env"] = env
    if "req-file" in runtime:
        fields["requirements_file"] = runtime["req-file"]
    if kind == "executable" and "arg-format" in runtime:
        arg_format = runtime["arg-format"]
    if arg_format is not None:
        if kind != "executable":
            problems.unknown(where, ["arg-format"], f" (it does not apply to a {kind} service)")
        else:
            converted = _arg_format(where, arg_format, problems)
            if converted is None:
                return None
            fields["arg_format"] = converted
    resource = build_resource(Service, where, fields, problems)
    if resource is not None:
        resource.created_at = resource.updated_at = ""
    return resource


def secret_names(document: dict[str, Any], problems: Problems) -> list[tuple[str, str, str]]:
    """The secrets the document lists that are not imported, each with where it is and, for an alias of a provider
    that could not be imported, that provider: they must exist here already, since values are sealed with the other
    gateway's key (core/transfer.py checks that).  Aliases of the providers imported are imported themselves."""
    names = []
    imported = _importable_providers(document)
    left_out = _listed_providers(document) - imported
    for where, item in entries(document, "secrets", problems):
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.errors.append(f"{where}: a secret needs a name")
            continue
        problems.unknown(where, set(item) - _SECRET_KEYS)
        provider = item.get("provider", "")
        if isinstance(provider, str) and provider and provider not in left_out:
            continue  # imported as an alias (its provider is in the document, or must be here)
        names.append((where, name, provider if isinstance(provider, str) else str(provider)))
    return names


def _provider(where: str, item: dict[str, Any], problems: Problems) -> Resource | None:
    """An IAG 5 secret provider; one that cannot be one here is left out with a warning (its aliases must then
    exist here already)."""
    problems.unknown(where, set(item) - set(_PROVIDER_FIELDS))
    fields = {ours: item[theirs] for theirs, ours in _PROVIDER_FIELDS.items() if theirs in item}
    if isinstance(fields.get("env"), list):  # KEY=VALUE items, as the flag is given
        fields["env"] = dict(str(pair).partition("=")[::2] for pair in fields["env"])
    try:
        provider = SecretProvider(**fields)
        provider.validate()
    except (InvalidArgument, TypeError) as exc:
        problems.warnings.append(f"{where}: not imported: {exc}")
        return None
    return provider


def _importable_providers(document: dict[str, Any]) -> set[str]:
    scratch = Problems(False)
    return {resource.name for where, item in entries(document, "secret-providers", scratch)
            if (resource := _provider(where, item, scratch)) is not None}


def _listed_providers(document: dict[str, Any]) -> set[str]:
    scratch = Problems(False)
    return {item["name"] for _, item in entries(document, "secret-providers", scratch)
            if isinstance(item.get("name"), str)}


def _alias(where: str, item: dict[str, Any], problems: Problems, left_out: set[str]) -> Resource | None:
    """An alias of a provider imported with it or already here (not of one the document has but could not give)."""
    provider = item.get("provider")
    if not isinstance(provider, str) or not provider or provider in left_out:
        return None
    fields = {"name": item.get("name"), "description": item.get("description", ""), "provider": item["provider"],
              "path": item.get("secret", ""), "key": item.get("key", "")}
    return build_resource(Secret, where, fields, problems)


def _named(document: dict[str, Any], key: str, problems: Problems) -> list[str]:
    return [item["name"] if isinstance(item.get("name"), str) else where
            for where, item in entries(document, key, problems)]


def _not_imported(document: dict[str, Any], problems: Problems) -> None:
    """One line for each IAG 5 section this gateway has nothing for."""
    servers = _named(document, "mcp_servers", problems)
    if servers:
        problems.warnings.append(f"MCP servers are not supported: {', '.join(servers)}")
    users = _named(document, "users", problems)
    if users:
        problems.warnings.append(f"users are not imported: {', '.join(users)}; create each here with "
                                 "gateway create user NAME --role ROLE (IAG 5 users are all superusers)")


def _registry(where: str, item: dict[str, Any], problems: Problems) -> Resource | None:
    problems.unknown(where, set(item) - _REGISTRY_KEYS - set(_REGISTRY_NOT_YET))
    for key in _REGISTRY_NOT_YET:
        if item.get(key) not in (None, ""):
            problems.errors.append(f"{where}: {key} is not supported yet: a Galaxy server that signs in through "
                                   "an auth-url cannot be reached from here; give it a token-name instead")
    fields = {"name": item.get("name"), "type": item.get("type"), "url": item.get("url", ""),
              "username": item.get("username", ""), "password_name": item.get("password-name", ""),
              "token_name": item.get("token-name", ""), "insecure": item.get("insecure", False),
              "default": item.get("default", False), "description": item.get("description", "")}
    return build_resource(Registry, where, fields, problems)


def built_in_registry(resource: Resource) -> bool:
    """An IAG 5 registry that says what the built-in one of its name says (IAG 5 exports its defaults)."""
    if (not isinstance(resource, Registry) or not isinstance(resource.name, str) or not isinstance(resource.url, str)
            or resource.name not in BUILT_IN_REGISTRIES):
        return False
    kind, url = BUILT_IN_REGISTRIES[resource.name]
    return (resource.type == kind and resource.url.rstrip("/") == url.rstrip("/") and not resource.username
            and not resource.password_name and not resource.token_name and not resource.insecure)


def _executable(where: str, item: dict[str, Any], problems: Problems) -> Resource | None:
    problems.unknown(where, set(item) - _EXECUTABLE_KEYS)
    if item.get("tags"):
        problems.warnings.append(f"{where}: tags not kept (executable objects here have no tags)")
    fields: dict[str, Any] = {"name": item.get("name"), "exec_command": item.get("exec-command", ""),
                              "description": item.get("description", "")}
    if "arg-format" in item:
        converted = _arg_format(where, item["arg-format"], problems)
        if converted is None:
            return None
        fields["arg_format"] = converted
    return build_resource(ExecutableObject, where, fields, problems)


def read_resources(document: dict[str, Any], problems: Problems) -> list[tuple[str, Resource]]:
    problems.unknown("document", set(document) - _TOP_KEYS)
    _not_imported(document, problems)
    result: list[tuple[str, Resource]] = []
    for where, item in entries(document, "secret-providers", problems):
        provider = _provider(where, item, problems)
        if provider is not None:
            provider.created_at = provider.updated_at = ""
            result.append((where, provider))
    left_out = _listed_providers(document) - {resource.name for _, resource in result}
    for where, item in entries(document, "secrets", problems):
        alias = _alias(where, item, problems, left_out)
        if alias is not None:
            alias.created_at = alias.updated_at = ""
            result.append((where, alias))
    for plural, build in (("registries", _registry), ("executable-objects", _executable),
                          ("repositories", _repository), ("decorators", _decorator), ("services", _service)):
        for where, item in entries(document, plural, problems):
            resource = build(where, item, problems)
            if resource is not None:
                if plural != "services":
                    resource.created_at = resource.updated_at = ""
                result.append((where, resource))
    return result


def arg_format(text: str) -> str:
    """An arg-format as `create` takes it: ours ('--{key}={value}') or IAG 5's Go template
    ('--{{.Key}} {{.Value}}'), in our spelling; InvalidArgument (field arg_format) otherwise."""
    from .documents import Problems

    if not isinstance(text, str) or not _GO_TEMPLATE_RE.search(text):
        return text  # ours (checked by the service), or nothing IAG 5 would have written
    problems = Problems(False)
    converted = _arg_format("arg-format", text, problems)
    if converted is None:
        message = "; ".join(problems.errors)
        raise InvalidArgument(message, {"arg_format": message})
    return converted


# ---------------------------------------------------------------- the other way: our export in IAG 5's layout
def _go_template(fmt: str) -> str:
    """Our arg-format ('--{key}={value}') as IAG 5's Go template ('--{{.Key}}={{.Value}}')."""
    return "".join(literal + ("{{." + field.capitalize() + "}}" if field else "")
                   for literal, field in _arg_format_parts(fmt))


def _ansible_runtime(service: dict[str, Any], notes: list[str], where: str) -> dict[str, Any]:
    """An ansible-playbook service's options as IAG 5's runtime (the inverse of _ansible_args)."""
    runtime: dict[str, Any] = {}
    inventory = list(service.get("inventories") or [])
    extra_vars = list(service.get("extra_vars") or [])
    extra_files = list(service.get("extra_vars_files") or [])
    args = list(service.get("runtime_args") or [])
    left: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        value = args[index + 1] if index + 1 < len(args) else None
        if word in ("-i", "--inventory") and value is not None:
            inventory.append(value)
            index += 2
            continue
        if word in ("--check", "--diff"):
            runtime[word[2:]] = True
        elif word in ("--limit", "--tags", "--skip-tags") and value is not None:
            runtime[word[2:]] = value
            index += 1
        elif word == "--forks" and value is not None and value.isdigit():
            runtime["forks"] = int(value)
            index += 1
        elif re.fullmatch(r"-v{1,6}", word):
            runtime["verbose-level"] = len(word) - 1
        elif word in ("-e", "--extra-vars") and value is not None:
            (extra_files.append(value[1:]) if value.startswith("@") else extra_vars.append(value))
            index += 1
        else:
            left.append(word)
        index += 1
    if inventory:
        runtime["inventory"] = inventory
    if len(extra_vars) == 1:
        try:
            parsed = json.loads(extra_vars[0])
        except ValueError:
            parsed = None
        runtime["extra-vars"] = parsed if isinstance(parsed, dict) else extra_vars[0]
    elif extra_vars:
        notes.append(f"{where}: {len(extra_vars)} extra vars ({'; '.join(extra_vars)}): IAG 5 takes one")
    if extra_files:
        runtime["extra-vars-file"] = extra_files
    if service.get("config_file"):
        runtime["config-file"] = service["config_file"]
    if left:
        notes.append(f"{where}: runtime arguments {' '.join(left)} (IAG 5 has no runtime arguments)")
    return runtime


def _tofu_options(service: dict[str, Any], notes: list[str], where: str) -> dict[str, Any]:
    """An opentofu-plan service's action, vars and var-files (the inverse of _tofu_args)."""
    action = service.get("tofu_action") or ""
    variables = dict(service.get("tofu_vars") or {})
    files = list(service.get("tofu_var_files") or [])
    args = list(service.get("runtime_args") or [])
    if args and args[0] in _TOFU_ACTIONS:
        action = action or args[0]
        args = args[1:]
    left: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word.startswith("-var-file="):
            files.append(word[len("-var-file="):])
        elif word == "-var" and index + 1 < len(args) and "=" in args[index + 1]:
            name, value = args[index + 1].split("=", 1)
            variables[name] = value
            index += 1
        else:
            left.append(word)
        index += 1
    if left:
        notes.append(f"{where}: runtime arguments {' '.join(left)} (IAG 5 has no runtime arguments)")
    if service.get("tofu_backend_config"):
        notes.append(f"{where}: backend-config {', '.join(service['tofu_backend_config'])}")
    options: dict[str, Any] = {"action": action or "plan"}
    if variables:
        options["vars"] = variables
    if files:
        options["var-files"] = files
    return options


def _iag5_service(service: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    where = f"services[{service['name']}]"
    kind = service["type"]
    item: dict[str, Any] = {"name": service["name"], "type": kind}
    if service.get("description"):
        item["description"] = service["description"]
    if kind == "ansible-playbook":
        playbooks = [service["filename"]] if service.get("filename") else []
        playbooks += [p for p in service.get("playbooks") or [] if p not in playbooks]
        item["playbooks"] = playbooks or ["site.yml"]
    elif service.get("filename"):
        item["filename"] = service["filename"]
    item["working-directory"] = service.get("working_dir") or "."
    item["repository"] = service["repository"]
    if service.get("decorator"):
        item["decorator"] = service["decorator"]
    if service.get("tags"):
        item["tags"] = list(service["tags"])
    if service.get("secrets"):
        item["secrets"] = [{"name": s["name"], "type": s.get("type") or "env", "target": s["target"]}
                           for s in service["secrets"]]
    if service.get("executable"):
        item["executable-object"] = service["executable"]
    runtime: dict[str, Any] = {}
    if kind == "ansible-playbook":
        runtime.update(_ansible_runtime(service, notes, where))
    elif kind == "opentofu-plan":
        item.update(_tofu_options(service, notes, where))
    elif service.get("runtime_args"):
        notes.append(f"{where}: runtime arguments {' '.join(service['runtime_args'])} (IAG 5 has no runtime "
                     "arguments)")
    if kind == "executable":
        item["arg-format"] = _go_template(service.get("arg_format") or DEFAULT_ARG_FORMAT)
    if service.get("env"):
        runtime["env"] = dict(service["env"])
    if service.get("requirements_file"):
        runtime["req-file"] = service["requirements_file"]
    if runtime:
        item["runtime"] = runtime
    for field, what in (("timeout", "timeout"), ("runner_tags", "runner tags"), ("pypi_registry", "pypi registry"),
                        ("galaxy_registry", "galaxy registry")):
        value = service.get(field)
        if value:
            shown = ", ".join(value) if isinstance(value, list) else value
            notes.append(f"{where}: {what} {shown}")
    return item


def to_iag5(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Our export (core/transfer.py export_document) in IAG 5's layout, names and types, for IAG 5's own
    `iagctl db import`; and one note for each thing IAG 5 cannot express (left out)."""
    notes: list[str] = []
    result: dict[str, Any] = {}
    result["decorators"] = [{k: v for k, v in (("name", d["name"]), ("description", d.get("description")),
                                                ("schema", d.get("schema"))) if v not in (None, "")}
                            for d in document.get("decorators") or []]
    repositories = []
    for repo in document.get("repositories") or []:
        item = {"name": repo["name"], "description": repo.get("description") or "", "url": repo["url"]}
        if repo.get("reference"):
            item["reference"] = repo["reference"]
        if repo.get("tags"):
            item["tags"] = list(repo["tags"])
        if repo.get("private_key_name"):
            item["private-key-name"] = repo["private_key_name"]
        for field in ("username", "password_name"):
            if repo.get(field):
                item[field.replace("_", "-")] = repo[field]
        if repo.get("token_name"):
            notes.append(f"repositories[{repo['name']}]: token-name {repo['token_name']} (IAG 5 takes a username "
                         "and password-name)")
        repositories.append({k: v for k, v in item.items() if v != ""})
    result["repositories"] = repositories
    result["services"] = [_iag5_service(s, notes) for s in document.get("services") or []]
    registries = []
    stored = {r["name"]: r for r in document.get("registries") or []}
    defaults = {r["type"] for r in stored.values() if r.get("default")}
    for name, (kind, url) in BUILT_IN_REGISTRIES.items():  # IAG 5 lists its default registries too
        if name not in stored:
            registries.append({"name": name, "type": kind, "url": url, "default": kind not in defaults})
    for registry in stored.values():
        item = {"name": registry["name"], "type": registry["type"], "url": registry["url"],
                "default": bool(registry.get("default"))}
        for field in ("description", "username", "password_name", "token_name"):
            if registry.get(field):
                item[field.replace("_", "-")] = registry[field]
        if registry.get("insecure"):
            item["insecure"] = True
        registries.append(item)
    result["registries"] = registries
    executables = []
    for obj in document.get("executable-objects") or []:
        item = {"name": obj["name"], "exec-command": obj["exec_command"]}
        if obj.get("description"):
            item["description"] = obj["description"]
        if obj.get("arg_format") and obj["arg_format"] != DEFAULT_ARG_FORMAT:
            notes.append(f"executable-objects[{obj['name']}]: arg-format {obj['arg_format']} (in IAG 5 a "
                         "service carries its arg-format)")
        executables.append(item)
    result["executable-objects"] = executables
    providers = []
    for provider in document.get("secret-providers") or []:
        item = {theirs: provider[ours] for theirs, ours in _PROVIDER_FIELDS.items() if provider.get(ours)}
        if "env" in item:
            item["env"] = [f"{k}={v}" for k, v in item["env"].items()]
        providers.append(item)
    if providers:
        result["secret-providers"] = providers
    aliases = [{k: v for k, v in (("name", s["name"]), ("description", s.get("description")),
                                  ("provider", s["provider"]), ("secret", s.get("path")), ("key", s.get("key")))
                if v} for s in document.get("secrets") or [] if s.get("provider")]
    if aliases:
        result["secrets"] = aliases
    secrets = [s["name"] for s in document.get("secrets") or [] if not s.get("provider")]
    if secrets:
        notes.append(f"secrets {', '.join(secrets)}: their values are sealed with this gateway's key; create "
                     "each on the IAG 5 gateway (iagctl create secret NAME) before importing there")
    if document.get("service_states"):  # tofu_state.EXPORT_KEY
        notes.append("OpenTofu states: IAG 5 keeps a state file of its own")
    return result, notes
