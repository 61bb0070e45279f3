"""The export of Itential Automation Gateway 5 (``iagctl db export``), mapped onto our resources.

Such a document holds lists of repositories, decorators and services with IAG's field names.  Every key IAG
writes is either mapped onto ours or refused by name, saying what is not supported yet; keys IAG does not
write are reported as unknown (refused with --strict).

* OpenTofu ``action`` (plan, apply, destroy) becomes the service's first runtime argument, ``vars`` become
  ``-var NAME=VALUE`` and ``var-files`` ``-var-file=PATH`` runtime arguments (a run's inputs come after them,
  so an input overrides a var of the same name).  ``state-file`` is refused: a run keeps OpenTofu state where
  the plan's backend puts it.
* ``registries`` (package indexes) are refused: not supported yet.
* ``secrets``: their values are sealed with the other gateway's key, so each must exist here already (create it
  with ``gateway create secret``); core/transfer.py checks that (secret_names).

Reading only builds resources and notes problems; core/transfer.py validates and writes them.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from .decorators import Decorator
from .documents import Problems, build_resource, entries
from .errors import InvalidArgument
from .repositories import Repository
from .resources import Resource
from .services import SERVICE_TYPES, SecretRef, Service

# IAG 5 field names -> ours.
_REPOSITORY_KEYS = {"name", "description", "url", "reference", "tags", "private-key-name"}
_DECORATOR_KEYS = {"name", "description", "schema"}
_SERVICE_KEYS = {"name", "type", "description", "repository", "working-directory", "filename", "playbooks",
                 "decorator", "tags", "runtime", "secrets", "arg-format"}
_RUNTIME_COMMON = {"env", "req-file"}
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
              "tags": item.get("tags", [])}
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
        else:
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
            if len(playbooks) > 1:
                problems.warnings.append(
                    f"{where}: {len(playbooks)} playbooks given ({', '.join(playbooks)}); "
                    f"only the first, {playbooks[0]}, is run"
                )
            if filename and filename != playbooks[0]:
                problems.warnings.append(f"{where}: filename {filename!r} ignored; the playbook {playbooks[0]} is run")
            filename = playbooks[0]
    elif "playbooks" in item:
        problems.unknown(where, ["playbooks"], " (only ansible-playbook services have playbooks)")
    fields["filename"] = filename

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


def secret_names(document: dict[str, Any], problems: Problems) -> list[tuple[str, str]]:
    """The secrets the document lists, each with where it is: they must exist here already, since their
    values are sealed with the other gateway's key (core/transfer.py checks that)."""
    names = []
    for where, item in entries(document, "secrets", problems):
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.errors.append(f"{where}: a secret needs a name")
        else:
            names.append((where, name))
    return names


def read_resources(document: dict[str, Any], problems: Problems) -> list[tuple[str, Resource]]:
    unknown_top = set(document) - {"repositories", "decorators", "services", "secrets", "registries"}
    problems.unknown("document", unknown_top)
    registries = document.get("registries")
    if registries:
        count = len(registries) if isinstance(registries, list) else 1
        problems.errors.append(
            f"document: registries ({count}) are not supported yet: runs install packages from the default "
            "indexes (pip, ansible-galaxy) or what a service's requirements file names; remove the registries "
            "list to import the rest")
    result: list[tuple[str, Resource]] = []
    for plural, build in (("repositories", _repository), ("decorators", _decorator),
                          ("services", _service)):
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
