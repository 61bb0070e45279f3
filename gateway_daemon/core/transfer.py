"""Export every resource as one document, and import such a document, all or nothing.

Two formats are read:

* our own export (``format: automation-gateway/v1``): every resource as it is
  stored, secrets still sealed.  Importing it round-trips exactly; the sealed
  secrets open only with the same secrets key file.
* the export of Itential Automation Gateway 5 (``iagctl db export``): lists of
  repositories, decorators and services with IAG's field names, mapped onto
  ours.  IAG secrets are not in such a file (their values are sealed with the
  other gateway's key); services that use secrets need them here first.

An import first builds and validates every resource, and checks that every
reference resolves (in the document or in the store).  Only then does it
write, in the order secrets, repositories, decorators, services.  A write that
fails puts back what the import had already written, as far as the store lets
it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import posixpath
import re
from typing import TYPE_CHECKING, Any

from ..store import KeyExists, RevisionMismatch
from .decorators import Decorator
from .errors import Conflict, GatewayError, InvalidArgument
from .repositories import Repository
from .resources import Resource, now
from .secrets import Secret
from .services import SERVICE_TYPES, SecretRef, Service

if TYPE_CHECKING:
    from ..store import Entry
    from .engine import Engine

FORMAT = "automation-gateway/v1"
IAG_FORMAT = "iag5"
# The order of writes: what is referenced comes before what refers to it.
ORDER: tuple[type[Resource], ...] = (Secret, Repository, Decorator, Service)
_TIMESTAMPS = ("created_at", "updated_at")
_SEALED_FIELDS = ("kdf", "iterations", "salt", "nonce", "ciphertext")

# IAG 5 field names -> ours.
_IAG_REPOSITORY_KEYS = {"name", "description", "url", "reference", "tags", "private-key-name"}
_IAG_DECORATOR_KEYS = {"name", "description", "schema"}
_IAG_SERVICE_KEYS = {"name", "type", "description", "repository", "working-directory", "filename", "playbooks",
                     "decorator", "tags", "runtime", "secrets", "arg-format"}
_IAG_RUNTIME_COMMON = {"env", "req-file"}
_IAG_RUNTIME_ANSIBLE = {"inventory", "config-file", "check", "diff", "limit", "tags", "skip-tags", "verbose-level",
                        "forks", "extra-vars", "extra-vars-file"}
_IAG_RUNTIME_EXECUTABLE = {"arg-format"}
_IAG_TYPES = {
    "python-script": "python-script", "python": "python-script",
    "ansible-playbook": "ansible-playbook", "ansible": "ansible-playbook",
    "opentofu-plan": "opentofu-plan", "opentofu": "opentofu-plan", "tofu": "opentofu-plan",
    "executable": "executable",
}
_TERRAFORM_TYPES = ("terraform-plan", "terraform")
_GO_TEMPLATE_RE = re.compile(r"\{\{\s*\.(Key|Value)\s*\}\}")


# ---------------------------------------------------------------- the report
@dataclasses.dataclass
class ImportReport:
    """What an import did (or, with dry_run, would do)."""

    changes: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (action, kind, name)
    warnings: list[str] = dataclasses.field(default_factory=list)
    dry_run: bool = False

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change[0] == action)

    def summary(self) -> str:
        created, updated, unchanged = self.count("create"), self.count("update"), self.count("unchanged")
        if self.dry_run:
            return (f"dry run: {created} to create, {updated} to update, {unchanged} unchanged; "
                    "nothing was changed")
        return f"imported: {created} created, {updated} updated, {unchanged} unchanged"

    def lines(self, with_warnings: bool = True) -> list[str]:
        """One line per resource ("create service deploy"), the warnings, then a summary."""
        result = [f"{action} {kind} {name}" for action, kind, name in self.changes]
        if with_warnings:
            result.extend(f"warning: {text}" for text in self.warnings)
        result.append(self.summary())
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [list(c) for c in self.changes], "warnings": list(self.warnings), "dry_run": self.dry_run}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImportReport":
        return cls([tuple(c) for c in data.get("changes", [])],  # type: ignore[misc]
                   list(data.get("warnings", [])), bool(data.get("dry_run", False)))


# ---------------------------------------------------------------- export
async def export_document(engine: "Engine") -> dict[str, Any]:
    """Every resource as stored, secrets sealed. Loading it back with import_document round-trips."""
    document: dict[str, Any] = {"format": FORMAT}
    for cls in (Repository, Decorator, Service, Secret):
        resources = sorted(await engine._load_all(cls.KIND), key=lambda r: r.name)
        document[cls.PLURAL] = [r.to_dict() for r in resources]
    return document


# ---------------------------------------------------------------- reading a document
class _Problems:
    """Warnings and errors met while reading a document; errors are raised together, at the end."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def unknown(self, where: str, keys: Any, note: str = "") -> None:
        for key in sorted(str(k) for k in keys):
            if self.strict:
                self.errors.append(f"{where}: unknown key {key!r}{note} (refused by --strict)")
            else:
                self.warnings.append(f"{where}: unknown key {key!r} ignored{note}")

    def raise_if_any(self) -> None:
        if self.errors:
            first = self.errors[0]
            more = len(self.errors) - 1
            if more:
                first += f" (and {more} more problem{'s' if more > 1 else ''})"
            raise InvalidArgument(first)


def _plain(value: Any) -> Any:
    """YAML dates and times as ISO text; everything else as it is."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


def _where(plural: str, item: Any, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{plural}[{name}]" if isinstance(name, str) and name else f"{plural} item {index + 1}"


def _items(document: dict[str, Any], plural: str, problems: _Problems) -> list[tuple[str, dict[str, Any]]]:
    """The entries of one top-level list, each with where it is; entries that are not mappings are errors."""
    items = document.get(plural)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.errors.append(f"{plural}: expected a list, not {type(items).__name__}")
        return []
    result = []
    for index, item in enumerate(items):
        where = _where(plural, item, index)
        if not isinstance(item, dict):
            problems.errors.append(f"{where}: expected a mapping of fields, not {type(item).__name__}")
            continue
        result.append((where, {k: v for k, v in item.items() if v is not None}))
    return result


def _build(cls: type[Resource], where: str, fields: dict[str, Any], problems: _Problems) -> Resource | None:
    try:
        return cls.from_dict(fields)
    except (TypeError, ValueError) as exc:
        problems.errors.append(f"{where}: {exc}")
        return None


def _own_resources(document: dict[str, Any], problems: _Problems) -> list[tuple[str, Resource]]:
    unknown_top = set(document) - {"format", *(cls.PLURAL for cls in ORDER)}
    problems.unknown("document", unknown_top)
    result = []
    for cls in ORDER:
        known = set(cls.field_names())
        for where, item in _items(document, cls.PLURAL, problems):
            problems.unknown(where, set(item) - known)
            fields = {k: v for k, v in item.items() if k in known}
            for stamp in _TIMESTAMPS:
                if stamp in fields and not isinstance(fields[stamp], str):
                    problems.errors.append(f"{where}: {stamp} must be text")
                    fields.pop(stamp)
            if cls is Service:
                secrets = fields.get("secrets", [])
                if not isinstance(secrets, list) or not all(isinstance(s, dict) for s in secrets):
                    problems.errors.append(f"{where}: secrets must be a list of {{name, type, target}} mappings")
                    continue
                bad = [k for s in secrets for k in s if k not in ("name", "type", "target")]
                if bad:
                    problems.errors.append(f"{where}: a secret reference has unknown key {bad[0]!r}")
                    continue
            resource = _build(cls, where, fields, problems)
            if resource is not None:
                # Resources without timestamps get them when written.
                for stamp in _TIMESTAMPS:
                    if stamp not in fields:
                        setattr(resource, stamp, "")
                result.append((where, resource))
    return result


# ---------------------------------------------------------------- the IAG 5 format
def _text_list(where: str, field: str, value: Any, problems: _Problems) -> list[str] | None:
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


def _arg_format(where: str, value: Any, problems: _Problems) -> str | None:
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


def _iag_repository(where: str, item: dict[str, Any], problems: _Problems) -> Resource | None:
    problems.unknown(where, set(item) - _IAG_REPOSITORY_KEYS)
    fields = {"name": item.get("name"), "url": item.get("url", ""), "reference": item.get("reference", ""),
              "private_key_name": item.get("private-key-name", ""), "description": item.get("description", ""),
              "tags": item.get("tags", [])}
    return _build(Repository, where, fields, problems)


def _iag_decorator(where: str, item: dict[str, Any], problems: _Problems) -> Resource | None:
    problems.unknown(where, set(item) - _IAG_DECORATOR_KEYS)
    fields = {"name": item.get("name"), "description": item.get("description", "")}
    if "schema" in item:
        fields["schema"] = item["schema"]
    else:
        problems.errors.append(f"{where}: a decorator needs a schema")
        return None
    return _build(Decorator, where, fields, problems)


def _iag_secret_refs(where: str, value: Any, problems: _Problems) -> list[SecretRef] | None:
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


def _ansible_args(where: str, runtime: dict[str, Any], env: dict[str, Any], problems: _Problems) -> list[str]:
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


def _iag_service(where: str, item: dict[str, Any], problems: _Problems) -> Resource | None:
    problems.unknown(where, set(item) - _IAG_SERVICE_KEYS)
    raw_type = item.get("type")
    if not isinstance(raw_type, str):
        problems.errors.append(f"{where}: a service needs a type ({', '.join(SERVICE_TYPES)})")
        return None
    spelled = raw_type.strip().lower().replace("_", "-")
    if spelled in _TERRAFORM_TYPES:
        kind = "opentofu-plan"
        problems.warnings.append(f"{where}: type {raw_type!r} imported as opentofu-plan (run with OpenTofu)")
    elif spelled in _IAG_TYPES:
        kind = _IAG_TYPES[spelled]
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
        refs = _iag_secret_refs(where, item["secrets"], problems)
        if refs is None:
            return None
        fields["secrets"] = refs

    arg_format = item.get("arg-format")
    runtime = item.get("runtime", {})
    if not isinstance(runtime, dict):
        problems.errors.append(f"{where}: runtime must be a mapping, not {type(runtime).__name__}")
        return None
    runtime = {k: v for k, v in runtime.items() if v is not None}
    allowed = set(_IAG_RUNTIME_COMMON)
    if kind == "ansible-playbook":
        allowed |= _IAG_RUNTIME_ANSIBLE
    if kind == "executable":
        allowed |= _IAG_RUNTIME_EXECUTABLE
    unknown = set(runtime) - allowed
    misplaced = unknown & (_IAG_RUNTIME_ANSIBLE | _IAG_RUNTIME_EXECUTABLE)
    problems.unknown(f"{where} runtime", unknown - misplaced)
    problems.unknown(f"{where} runtime", misplaced, f" (it does not apply to a {kind} service)")

    env = runtime.get("env", {})
    if not isinstance(env, dict):
        problems.errors.append(f"{where}: runtime env must be a mapping of NAME: value")
        return None
    env = {str(k): _env_text(v) for k, v in env.items()}
    if kind == "ansible-playbook":
        fields["runtime_args"] = _ansible_args(where, runtime, env, problems)
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
    resource = _build(Service, where, fields, problems)
    if resource is not None:
        resource.created_at = resource.updated_at = ""
    return resource


def _iag_resources(document: dict[str, Any], problems: _Problems) -> list[tuple[str, Resource]]:
    unknown_top = set(document) - {"repositories", "decorators", "services", "secrets"}
    problems.unknown("document", unknown_top)
    if document.get("secrets"):
        problems.unknown("document", ["secrets"], " (IAG secrets are sealed with that gateway's key; "
                                                  "create them here with 'gateway create secret')")
    result: list[tuple[str, Resource]] = []
    for plural, build in (("repositories", _iag_repository), ("decorators", _iag_decorator),
                          ("services", _iag_service)):
        for where, item in _items(document, plural, problems):
            resource = build(where, item, problems)
            if resource is not None:
                if plural != "services":
                    resource.created_at = resource.updated_at = ""
                result.append((where, resource))
    return result


# ---------------------------------------------------------------- import
def _comparable(resource: Resource) -> dict[str, Any]:
    data = resource.to_dict()
    for stamp in _TIMESTAMPS:
        data.pop(stamp, None)
    data.pop("sealed", None)
    return data


def _same_secret(engine: "Engine", old: Secret, new: Secret) -> bool:
    if old.sealed == new.sealed:
        return True
    try:
        return engine.secret_box.open(old.name, old.sealed) == engine.secret_box.open(new.name, new.sealed)
    except GatewayError:
        return False


def _check_sealed(engine: "Engine", secret: Secret) -> None:
    sealed = secret.sealed
    if not isinstance(sealed, dict) or not sealed:
        raise InvalidArgument("the sealed value is missing (secrets are imported from our own export only)")
    missing = [f for f in _SEALED_FIELDS if f not in sealed]
    if missing:
        raise InvalidArgument(f"the sealed value has no {', '.join(missing)}")
    extra = sorted(set(sealed) - set(_SEALED_FIELDS))
    if extra:
        raise InvalidArgument(f"the sealed value has unknown field {extra[0]!r}")
    iterations = sealed["iterations"]
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1_000 <= iterations <= 10_000_000:
        raise InvalidArgument(f"the sealed value has an implausible iteration count {iterations!r}")
    # Refuse now what could never be read later: sealed with another key, or damaged.
    engine.secret_box.open(secret.name, sealed)


async def import_document(engine: "Engine", document: Any, dry_run: bool = False,
                          strict: bool = False) -> ImportReport:
    """Import our export or an IAG 5 export. All or nothing; raises InvalidArgument naming the first problem."""
    from .engine import store_errors

    if document is None:
        raise InvalidArgument("the document is empty")
    if not isinstance(document, dict):
        raise InvalidArgument(f"the document must be a mapping with repositories, decorators, services and secrets; "
                              f"found {type(document).__name__}")
    document = _plain(document)
    problems = _Problems(strict)
    marker = document.get("format")
    if marker is None:
        resources = _iag_resources(document, problems)
        own = False
    elif marker == FORMAT:
        resources = _own_resources(document, problems)
        own = True
    else:
        raise InvalidArgument(f"format {marker!r} is not supported; expected {FORMAT!r} or an IAG 5 export")

    # What is stored now, with revisions, to compare against and to resolve references.
    stored: dict[str, dict[str, tuple[Resource, "Entry"]]] = {}
    for cls in ORDER:
        with store_errors():
            entries = await engine.store.list(f"{cls.PLURAL}/")
        stored[cls.KIND] = {}
        for entry in entries:
            try:
                resource = cls.decode(entry.value)
            except (ValueError, TypeError):
                continue
            stored[cls.KIND][resource.name] = (resource, entry)

    # Validate each resource on its own, and find duplicates.
    incoming: dict[str, dict[str, Resource]] = {cls.KIND: {} for cls in ORDER}
    valid: list[tuple[str, Resource]] = []
    for where, resource in resources:
        try:
            resource.validate()
            if isinstance(resource, Secret):
                _check_sealed(engine, resource)
            resource.encode()
        except GatewayError as exc:
            problems.errors.append(f"{where}: {exc}")
            continue
        except (TypeError, ValueError) as exc:
            problems.errors.append(f"{where}: holds a value that cannot be stored ({exc})")
            continue
        if resource.name in incoming[resource.KIND]:
            problems.errors.append(f"{where}: the document has two {resource.PLURAL} named {resource.name!r}")
            continue
        incoming[resource.KIND][resource.name] = resource
        valid.append((where, resource))

    # Every reference must resolve, in the document or in the store.
    for where, resource in valid:
        for kind, name in resource.references():  # type: ignore[attr-defined]
            if name not in incoming[kind] and name not in stored[kind]:
                problems.errors.append(f"{where}: {kind} {name!r} does not exist and is not in the document")
    problems.raise_if_any()

    # Plan: create, update or leave each one.
    report = ImportReport(warnings=problems.warnings, dry_run=dry_run)
    plan: list[tuple[str, Resource, "Entry | None"]] = []
    stamp = now()
    for cls in ORDER:
        for name in sorted(incoming[cls.KIND]):
            new = incoming[cls.KIND][name]
            old_pair = stored[cls.KIND].get(name)
            if old_pair is None:
                action = "create"
                new.created_at = new.created_at or stamp
                new.updated_at = new.updated_at or stamp
            else:
                old, entry = old_pair
                if isinstance(new, Secret) and isinstance(old, Secret):
                    same = _same_secret(engine, old, new) and old.description == new.description
                else:
                    same = _comparable(old) == _comparable(new)
                action = "unchanged" if same else "update"
                if own and new.created_at:
                    new.updated_at = new.updated_at or stamp
                else:
                    new.created_at = old.created_at
                    new.updated_at = stamp
            report.changes.append((action, cls.KIND, name))
            if action != "unchanged":
                plan.append((action, new, old_pair[1] if old_pair else None))
    if dry_run:
        return report

    # Write, remembering what was there, to put it back if a write fails.
    written: list[tuple[str, "Entry | None"]] = []
    try:
        for _action, resource, entry in plan:
            key = engine._key(type(resource), resource.name)
            try:
                with store_errors():
                    if entry is None:
                        await engine.store.create(key, resource.encode())
                    else:
                        await engine.store.update(key, resource.encode(), entry.revision)
            except (KeyExists, RevisionMismatch):
                raise Conflict(f"{resource.KIND} {resource.name!r} was changed by someone else during the "
                               "import; nothing was imported, try again") from None
            written.append((key, entry))
    except BaseException as exc:
        failed = await _roll_back(engine, written)
        if failed and isinstance(exc, GatewayError):
            raise type(exc)(f"{exc}; putting back the earlier state also failed for {', '.join(failed)}") from None
        raise
    return report


async def _roll_back(engine: "Engine", written: list[tuple[str, "Entry | None"]]) -> list[str]:
    """Undo the writes, newest first. Returns the keys that could not be put back."""
    failed = []
    for key, previous in reversed(written):
        try:
            if previous is None:
                await engine.store.delete(key)
            else:
                await engine.store.put(key, previous.value)
        except Exception:
            failed.append(key)
    return failed
