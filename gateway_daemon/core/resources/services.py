"""Services: a named automation in a repository, with its inputs, secrets and runtime."""

from __future__ import annotations

import dataclasses
import json
import string
import uuid
from typing import Any

from ..errors import InvalidArgument
from .base import (ENV_NAME_RE, Resource, check_name, check_relative_path, check_tags, check_text, field_error,
                        now)

SERVICE_TYPES = ("python-script", "ansible-playbook", "opentofu-plan", "executable")
TOFU_ACTIONS = ("plan", "apply", "destroy")  # what an opentofu-plan service does; apply and destroy change its state
SECRET_TARGET_TYPES = ("env",)
DEFAULT_ARG_FORMAT = "--{key} {value}"  # IAG 5's default, '--{{.Key}} {{.Value}}'
# The default before IAG 5's was taken: a service stored with it set nothing of its own either.
EARLIER_DEFAULT_ARG_FORMAT = "--{key}={value}"
# The file a service type runs, when the service names none.
DEFAULT_FILENAMES = {"python-script": "main.py", "ansible-playbook": "site.yml", "opentofu-plan": "", "executable": ""}


@dataclasses.dataclass
class SecretRef:
    """A secret put into a run's environment: name=SECRET,type=env,target=ENV_VAR.

    Its errors mark the field `secrets` (of a service, or of a run).
    """

    name: str
    target: str
    type: str = "env"

    @classmethod
    def parse(cls, text: str) -> "SecretRef":
        fields: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in ("name", "type", "target") or key in fields:
                raise field_error(
                    "secrets",
                    f"secret reference {text!r} is not valid: expected name=SECRET,type=env,target=ENV_VAR"
                )
            fields[key] = value.strip()
        if "name" not in fields or "target" not in fields:
            raise field_error(
                "secrets",
                f"secret reference {text!r} needs name= and target= (expected name=SECRET,type=env,target=ENV_VAR)"
            )
        ref = cls(name=fields["name"], target=fields["target"], type=fields.get("type", "env"))
        ref.validate()
        return ref

    def validate(self) -> None:
        check_name("secret", self.name, key="secrets")
        if self.type not in SECRET_TARGET_TYPES:
            raise field_error("secrets", f"secret {self.name}: type {self.type!r} is not supported; use type=env")
        if not ENV_NAME_RE.fullmatch(self.target or ""):
            raise field_error("secrets", f"secret {self.name}: target {self.target!r} is not a valid environment variable name")

    def __str__(self) -> str:
        return f"name={self.name},type={self.type},target={self.target}"


MAX_TIMEOUT = 7 * 86400  # seconds


def new_service_id() -> str:
    """A service's id: random, never reused."""
    return uuid.uuid4().hex


def valid_timeout(timeout: Any) -> bool:
    """A time limit a service or a run may have: a whole number of seconds, 1 to a week."""
    return isinstance(timeout, int) and not isinstance(timeout, bool) and 1 <= timeout <= MAX_TIMEOUT


ARG_FORMAT_FIELDS = ("key", "value")
MAX_ARG_FORMAT = 1024


def _arg_format_parts(fmt: Any) -> list[tuple[str, str | None]]:
    """(literal text, "key" | "value" | None) pieces of an arg-format; anything else raises InvalidArgument.

    Only the documented placeholders {key} and {value} (and {{ }} for a literal brace) are taken: no format spec
    ({value:>99999999999} would build a gigabyte string), no conversion, no attribute or index."""
    def refuse(why: str) -> InvalidArgument:
        message = (f"arg-format {fmt!r} is not valid: {why}; use only {{key}} and {{value}} (and {{{{ }}}} for a "
                   "literal brace), for example '--{key}={value}'")
        return InvalidArgument(message, {"arg_format": message})

    if not isinstance(fmt, str):
        raise refuse("it must be text")
    if len(fmt) > MAX_ARG_FORMAT or "\x00" in fmt:
        raise refuse(f"at most {MAX_ARG_FORMAT} characters and no NUL")
    parts: list[tuple[str, str | None]] = []
    try:
        for literal, field, spec, conversion in string.Formatter().parse(fmt):
            if field is not None and (field not in ARG_FORMAT_FIELDS or spec or conversion):
                shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise refuse(f"{shown} is not a placeholder it knows")
            parts.append((literal, field))
    except ValueError as exc:
        raise refuse(str(exc)) from None
    return parts


def check_arg_format(fmt: str) -> None:
    parts = _arg_format_parts(fmt)
    for piece in fmt.split():  # an arg-format with spaces makes several arguments, each formatted on its own
        _arg_format_parts(piece)
    if not any(field for _, field in parts):
        message = f"arg-format {fmt!r} uses neither {{key}} nor {{value}}"
        raise InvalidArgument(message, {"arg_format": message})


def format_arg(fmt: str, key: str, value: str) -> str:
    """One argument from an arg-format (checked: only {key} and {value} are filled in)."""
    values = {"key": key, "value": value}
    return "".join(literal + (values[field] if field else "") for literal, field in _arg_format_parts(fmt))


def _relative_path(flag: str, field: str, path: Any) -> None:
    if not isinstance(path, str) or not path:
        raise field_error(field, f"service {flag} must be a file name")
    try:
        check_relative_path("service", flag, path)
    except InvalidArgument as exc:
        raise field_error(field, str(exc)) from None


@dataclasses.dataclass
class Service(Resource):
    KIND = "service"
    PLURAL = "services"

    type: str = "python-script"
    repository: str = ""
    working_dir: str = "."
    filename: str = ""
    decorator: str = ""
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    secrets: list[SecretRef] = dataclasses.field(default_factory=list)
    runtime_args: list[str] = dataclasses.field(default_factory=list)
    requirements_file: str = ""  # empty: requirements.txt / requirements.yml when present
    tags: list[str] = dataclasses.field(default_factory=list)
    runner_tags: list[str] = dataclasses.field(default_factory=list)  # distributed: runners must have all
    arg_format: str = DEFAULT_ARG_FORMAT
    timeout: int | None = None  # seconds; None: [execution] default
    # ansible-playbook: more playbooks run in turn after `filename` (all relative to the working dir),
    # inventories (-i), extra vars (k=v or a JSON object each), extra vars files (@file), an ansible.cfg
    playbooks: list[str] = dataclasses.field(default_factory=list)
    inventories: list[str] = dataclasses.field(default_factory=list)
    extra_vars: list[str] = dataclasses.field(default_factory=list)
    extra_vars_files: list[str] = dataclasses.field(default_factory=list)
    config_file: str = ""
    # where dependencies come from: registry names (empty: the default registry of that type)
    pypi_registry: str = ""
    galaxy_registry: str = ""
    executable: str = ""  # an executable object: the interpreter or binary that runs this service
    # opentofu-plan: the action a run takes when it names none (empty: plan), -var KEY=VALUE, -var-file FILE
    # (relative to the working dir) and init's -backend-config (KEY=VALUE or a file)
    tofu_action: str = ""
    tofu_vars: dict[str, str] = dataclasses.field(default_factory=dict)
    tofu_var_files: list[str] = dataclasses.field(default_factory=list)
    tofu_backend_config: list[str] = dataclasses.field(default_factory=list)
    description: str = ""
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)
    # Given when the service is made (new_service_id), never changed: its runs record it, so a service made again
    # under a deleted one's name is another service.  Empty: stored before services had ids (given at its next
    # edit or run).
    id: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Service":
        data = dict(data)
        data["secrets"] = [s if isinstance(s, SecretRef) else SecretRef(**s) for s in data.get("secrets") or []]
        return super().from_dict(data)  # type: ignore[return-value]

    def validate(self) -> None:
        super().validate()
        if self.type not in SERVICE_TYPES:
            raise field_error("type", f"service type {self.type!r} is not valid; use one of {', '.join(SERVICE_TYPES)}")
        check_name("service", self.repository, "repository")
        if self.decorator:
            check_name("service", self.decorator, "decorator")
        check_relative_path("service", "working-dir", self.working_dir or ".")
        if self.filename:
            check_relative_path("service", "filename", self.filename)
        elif self.type in ("python-script", "ansible-playbook", "executable") and not DEFAULT_FILENAMES[self.type]:
            raise field_error("filename", f"service {self.name}: an {self.type} service needs --filename")
        if self.requirements_file:
            check_relative_path("service", "requirements-file", self.requirements_file)
        if not isinstance(self.env, dict):
            raise field_error("env", "service env must be KEY=VALUE pairs")
        for key, value in self.env.items():
            if not ENV_NAME_RE.fullmatch(key):
                raise field_error("env", f"service env {key!r} is not a valid environment variable name")
            if not isinstance(value, str) or "\x00" in value:
                raise field_error("env", f"service env {key}: the value must be text without NUL bytes")
        targets = set()
        for ref in self.secrets:
            ref.validate()
            if ref.target in targets:
                raise field_error("secrets", f"service {self.name}: two secrets target {ref.target}")
            targets.add(ref.target)
        if not isinstance(self.runtime_args, list) or not all(
            isinstance(a, str) and "\x00" not in a for a in self.runtime_args
        ):
            raise field_error("runtime_args", "service runtime arguments must be a list of text without NUL bytes")
        check_tags("service", self.tags)
        check_tags("service runner", self.runner_tags, "runner_tags")
        check_arg_format(self.arg_format)
        if self.timeout is not None and not valid_timeout(self.timeout):
            raise field_error("timeout", f"service timeout {self.timeout!r} is not valid: 1 to 604800 seconds")
        check_ansible_fields(self)
        for field, value in (("pypi_registry", self.pypi_registry), ("galaxy_registry", self.galaxy_registry),
                             ("executable", self.executable)):
            if value:
                check_name("service", value, field.replace("_", "-"))
        check_text("service", "description", self.description)
        if not isinstance(self.id, str) or len(self.id) > 64 or not all(c in string.hexdigits for c in self.id):
            raise field_error("id", f"service {self.name}: id {self.id!r} is not one the gateway gives (hex digits)")
        self._validate_tofu()

    def _validate_tofu(self) -> None:
        """The opentofu-plan fields: only on such a service, and each well formed."""
        given = [(flag, field) for flag, field in (("action", "tofu_action"), ("var", "tofu_vars"),
                                                   ("var-file", "tofu_var_files"),
                                                   ("backend-config", "tofu_backend_config")) if getattr(self, field)]
        if given and self.type != "opentofu-plan":
            flag, field = given[0]
            raise field_error(field, f"service {self.name}: --{flag} is for opentofu-plan services, and this is "
                                     f"a {self.type}")
        if self.tofu_action and self.tofu_action not in TOFU_ACTIONS:
            raise field_error("tofu_action", f"service {self.name}: action {self.tofu_action!r} is not one of "
                                             f"{', '.join(TOFU_ACTIONS)}")
        if not isinstance(self.tofu_vars, dict):
            raise field_error("tofu_vars", "service --var must be KEY=VALUE pairs")
        for key, value in self.tofu_vars.items():
            if not isinstance(key, str) or not key or "=" in key or any(c.isspace() or c == "\x00" for c in key):
                raise field_error("tofu_vars", f"service --var {key!r}: not a variable name")
            if not isinstance(value, str) or "\x00" in value:
                raise field_error("tofu_vars", f"service --var {key}: the value must be text without NUL bytes")
        if not isinstance(self.tofu_var_files, list):
            raise field_error("tofu_var_files", "service --var-file must be a list of files")
        for path in self.tofu_var_files:
            _relative_path("var-file", "tofu_var_files", path)
        if not isinstance(self.tofu_backend_config, list) or not all(
                isinstance(item, str) and item and "\x00" not in item for item in self.tofu_backend_config):
            raise field_error("tofu_backend_config", "service --backend-config must be KEY=VALUE or files")
        for item in self.tofu_backend_config:
            if "=" not in item:
                _relative_path("backend-config", "tofu_backend_config", item)

    @property
    def playbook_files(self) -> list[str]:
        """An ansible-playbook service's playbooks in the order they run: its filename (else site.yml, when it
        names no other playbook), then the others."""
        first = [self.filename] if self.filename else ([] if self.playbooks else [self.script])
        return first + [p for p in self.playbooks if p not in first]

    @property
    def script(self) -> str:
        """The file this service runs: its filename, else the type's default."""
        return self.filename or DEFAULT_FILENAMES[self.type]

    def references(self) -> list[tuple[str, str]]:
        refs = [("repository", self.repository)]
        if self.decorator:
            refs.append(("decorator", self.decorator))
        refs.extend(("secret", ref.name) for ref in self.secrets)
        # $gateway_secret_(name) in text the service hands its runs (core.resources.secret_providers)
        from .secret_providers import referenced_aliases, texts_of

        named = {ref.name for ref in self.secrets}
        for text in texts_of([self.env, self.runtime_args, self.extra_vars, self.tofu_vars]):
            for name in referenced_aliases(text):
                if name not in named:
                    named.add(name)
                    refs.append(("secret", name))
        refs.extend(("registry", name) for name in (self.pypi_registry, self.galaxy_registry)
                    if name and name not in BUILT_IN_REGISTRIES)
        if self.executable:
            refs.append(("executable-object", self.executable))
        return refs


ANSIBLE_ONLY = ("playbooks", "inventories", "extra_vars", "extra_vars_files", "config_file", "galaxy_registry")
BUILT_IN_REGISTRIES = ("default-pypi", "default-galaxy")
MAX_EXTRA_VARS = 64 * 1024


def check_extra_vars(text: Any, field: str = "extra_vars") -> None:
    """One --extra-vars value: KEY=VALUE pairs (separated by spaces, as ansible-playbook reads them) or a JSON
    object."""
    if not isinstance(text, str) or "\x00" in text or len(text) > MAX_EXTRA_VARS:
        raise field_error(field, f"extra vars must be text without NUL bytes, at most {MAX_EXTRA_VARS} characters")
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise field_error(field, f"extra vars {text!r} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise field_error(field, f"extra vars {text!r} must be a JSON object, not a list")
        return
    if stripped.startswith("@"):
        raise field_error(field, f"extra vars {text!r}: name a file with --extra-vars-file, not @")
    words = stripped.split()
    if not words or any("=" not in w or w.startswith("=") for w in words):
        raise field_error(field, f"extra vars {text!r} is not KEY=VALUE (or a JSON object)")


def check_ansible_fields(service: "Service") -> None:
    for field in ("playbooks", "inventories", "extra_vars", "extra_vars_files"):
        value = getattr(service, field)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise field_error(field, f"service {field.replace('_', '-')} must be a list of text")
    if not isinstance(service.config_file, str):
        raise field_error("config_file", "service config-file must be text")
    if service.type != "ansible-playbook":
        given = [f.replace("_", "-") for f in ANSIBLE_ONLY if getattr(service, f)]
        if given:
            message = f"service {service.name}: {', '.join(given)} only apply to an ansible-playbook service"
            raise InvalidArgument(message, {f: message for f in ANSIBLE_ONLY if getattr(service, f)})
        return
    for path in service.playbooks:
        check_relative_path("service", "playbooks", path)
    for path in service.inventories:
        check_relative_path("service", "inventories", path)
    for path in service.extra_vars_files:
        check_relative_path("service", "extra-vars-files", path)
    if service.config_file:
        check_relative_path("service", "config-file", service.config_file)
    for text in service.extra_vars:
        check_extra_vars(text)
