"""Executable objects: an interpreter or binary an admin defines once and services use by name.

IAG 5: ``iagctl create executable-object NAME --exec-command ...``.  An executable service that names one
runs its command (split as a shell would, never through a shell), then the service's file when it has one,
its runtime arguments and its inputs in the object's arg-format (the service's own when it sets one).
"""

from __future__ import annotations

import dataclasses
import shlex

from .base import Resource, check_text, field_error, now
from .services import DEFAULT_ARG_FORMAT, check_arg_format

MAX_COMMAND = 4096


@dataclasses.dataclass
class ExecutableObject(Resource):
    KIND = "executable-object"
    PLURAL = "executable-objects"

    exec_command: str = ""
    arg_format: str = DEFAULT_ARG_FORMAT
    description: str = ""
    created_at: str = dataclasses.field(default_factory=now)
    updated_at: str = dataclasses.field(default_factory=now)

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.exec_command, str) or not self.exec_command.strip():
            raise field_error("exec_command", f"executable-object {self.name} needs --exec-command")
        if len(self.exec_command) > MAX_COMMAND or "\x00" in self.exec_command:
            raise field_error("exec_command", f"exec-command: at most {MAX_COMMAND} characters, no NUL")
        try:
            shlex.split(self.exec_command)
        except ValueError as exc:
            raise field_error("exec_command", f"exec-command {self.exec_command!r} cannot be split: {exc}") from None
        check_arg_format(self.arg_format)
        check_text("executable-object", "description", self.description)

    def argv(self) -> list[str]:
        return shlex.split(self.exec_command)

    def references(self) -> list[tuple[str, str]]:
        return []
