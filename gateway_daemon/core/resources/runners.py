"""Runners as the cluster sees them: what each announces in the store under ``runners/<id>``.

The entry lives under the runner's lease, so it disappears within the lease's
TTL after the runner dies.  Servers read it to choose where a run goes;
clients read it through ``Gateway.list_runners()``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from .base import from_fields, plain

RUNNERS_PREFIX = "runners/"


def runner_key(runner_id: str) -> str:
    return f"{RUNNERS_PREFIX}{runner_id}"


@dataclasses.dataclass
class RunnerInfo:
    id: str  # host:port, unique in the cluster
    address: str  # where servers reach it: [runner] announcement_address, else its listen address
    port: int
    tags: list[str] = dataclasses.field(default_factory=list)
    capacity: int = 1  # runs at once ([execution] max_concurrent_runs)
    load: int = 0  # runs in flight now
    last_seen: float = dataclasses.field(default_factory=time.time)  # its last heartbeat
    started_at: float = dataclasses.field(default_factory=time.time)
    use_tls: bool = False
    draining: bool = False  # stopping: finishes what it has, takes nothing new
    problem: str = ""  # why it would refuse work (no secrets key), else empty
    version: str = ""

    @property
    def target(self) -> str:
        host = self.address
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.load)

    def has_tags(self, wanted: list[str]) -> bool:
        return set(wanted) <= set(self.tags)

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunnerInfo":
        return from_fields(cls, data)

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "RunnerInfo":
        return cls.from_dict(json.loads(raw))
