"""What readers of policy versions need (the engine's `PolicyStore` provides it)."""

from __future__ import annotations

from typing import Protocol

from rungs.policy.model import Policy

__all__ = ["PolicyVersions"]


class PolicyVersions(Protocol):
    """Compiled policy versions: a stored one, and the current one."""

    def policy(self, version: int) -> Policy: ...

    def current_version(self) -> int: ...

    def current(self) -> Policy: ...
