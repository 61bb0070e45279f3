"""Options of one run that are not inputs: how the runtime runs this time (ansible-playbook's --limit,
--tags and --check).  Each service type takes its own; any other is refused in one line."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgument
from ..resources.services import Service

MAX_OPTION = 4096
# type -> option -> what it is ("text" or "flag": "true" when given)
RUN_OPTIONS: dict[str, dict[str, str]] = {
    "ansible-playbook": {"limit": "text", "tags": "text", "check": "flag"},
}


def check_run_options(service: Service, options: Any) -> dict[str, str]:
    """The options as the job carries them (text by name; a flag that is off is left out)."""
    if not options:
        return {}
    if not isinstance(options, dict):
        raise InvalidArgument("run options must be NAME: value pairs", {"options": "run options must be pairs"})
    known = RUN_OPTIONS.get(service.type, {})
    result: dict[str, str] = {}
    for name, value in options.items():
        kind = known.get(name)
        if kind is None:
            flags = ", ".join(f"--{n}" for n in known) or "none"
            message = f"service {service.name} is a {service.type}: --{name} does not apply (its run options: {flags})"
            raise InvalidArgument(message, {"options": message})
        text = "true" if value is True else "" if value in (False, None) else value
        if not isinstance(text, str) or "\x00" in text or len(text) > MAX_OPTION or text.startswith("-"):
            message = f"--{name} {value!r} is not valid: text up to {MAX_OPTION} characters, not starting with '-'"
            raise InvalidArgument(message, {"options": message})
        if kind == "flag":
            if text.lower() not in ("true", "false", ""):
                message = f"--{name} is on or off (true or false), not {value!r}"
                raise InvalidArgument(message, {"options": message})
            if text.lower() == "true":
                result[name] = "true"
        elif text.strip():
            result[name] = text.strip()
    return result
