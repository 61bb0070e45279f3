"""Which inputs of an Ansible playbook run may become its variables.

A playbook's inputs reach Ansible as extra vars, which win over every other variable: an input named
`ansible_connection`, `ansible_python_interpreter`, `hostvars` or `omit` would change how and where the play
runs rather than what it does.  Such a name is taken only when the service's decorator declares it (the
service's author chose it); any other is refused in one line.  The names are Ansible's own reserved names
(`ansible.vars.reserved`: play keywords and template globals), its magic variables, and everything starting
with `ansible_`.  They are written out here rather than imported: importing Ansible is slow and has side effects
(its temporary folder in the gateway's HOME), and a server need not have Ansible when its runners do; a test
holds this list to the installed Ansible's.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgument

RESERVED_PREFIX = "ansible_"
# The play keywords and template globals (ansible.vars.reserved) and the magic variables, as Ansible 2.19 has them.
RESERVED = frozenset({
    "action", "always", "any_errors_fatal", "args", "async", "async_val", "become", "become_exe", "become_flags",
    "become_method", "become_user", "block", "changed_when", "check_mode", "collections", "connection", "cycler",
    "debugger", "delay", "delegate_facts", "delegate_to", "dict", "diff", "environment", "failed_when",
    "fact_path", "force_handlers", "gather_facts", "gather_timeout", "handlers", "hosts", "ignore_errors",
    "ignore_unreachable", "joiner", "lipsum", "local_action", "lookup", "loop", "loop_control", "loop_with",
    "max_fail_percentage",
    "module_defaults", "name", "namespace", "no_log", "notify", "now", "omit", "order", "poll", "port", "post_tasks",
    "pre_tasks", "q", "query", "range", "register", "remote_user", "rescue", "retries", "roles", "run_once",
    "serial", "strategy", "tags", "tasks", "throttle", "timeout", "undef", "until", "vars", "vars_files",
    "vars_prompt", "when", "with_",
    "groups", "group_names", "hostvars", "inventory_dir", "inventory_file", "inventory_hostname",
    "inventory_hostname_short", "playbook_dir", "play_hosts", "role_name", "role_names", "role_path", "role_uuid",
})


def is_reserved(name: str) -> bool:
    return name.startswith(RESERVED_PREFIX) or name in RESERVED


def check_playbook_inputs(service_name: str, inputs: dict[str, Any], schema: dict[str, Any] | None) -> None:
    """Refuse an input named as a variable Ansible reserves, unless the decorator declares that input."""
    properties = (schema or {}).get("properties", {}) if isinstance(schema, dict) else {}
    declared = set(properties) if isinstance(properties, dict) else set()
    for name in inputs:
        if name not in declared and is_reserved(name):
            message = (f"input {name}: {name} is a variable name Ansible has reserved; service {service_name} "
                       "takes it only when its decorator declares it")
            raise InvalidArgument(message, {f"inputs.{name}": message})
