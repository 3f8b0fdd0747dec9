"""`timezone`: the policy's own time zone (UTC unless given)."""

from __future__ import annotations

from rungs.policy.reader import Reader
from rungs.policy.values import zone

__all__ = ["compile_timezone"]


def compile_timezone(r: Reader) -> str:
    return zone(r, r.data.get("timezone", "UTC"), ("timezone",)) or "UTC"
