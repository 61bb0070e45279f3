"""The service types a gateway may create and run ([features] in gateway.conf).

A disabled type is refused with one line naming the setting, wherever a
service of it would be created (create, update, import) or run, so local
mode, a server and its clients all obey the configuration of the process that
keeps the resources.
"""

from __future__ import annotations

from ..errors import FailedPrecondition

# Each service type a [features] key turns off; other types (executable) are always on.
SETTINGS = {"python-script": "python_enabled", "ansible-playbook": "ansible_enabled",
            "opentofu-plan": "opentofu_enabled"}


def check_enabled(service_type: str, disabled: frozenset[str]) -> None:
    """FailedPrecondition when `service_type` is among the `disabled` ones."""
    if service_type in disabled:
        raise FailedPrecondition(
            f"{service_type} services are disabled: [features] {SETTINGS.get(service_type, service_type)} = false")
