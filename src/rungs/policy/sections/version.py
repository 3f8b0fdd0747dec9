"""`version`: the policy format this file is written in (only 1 so far)."""

from __future__ import annotations

from rungs.policy.reader import Reader

__all__ = ["compile_version"]


def compile_version(r: Reader) -> int:
    version = r.data.get("version", 1)
    if version != 1:
        r.err(("version",), f"unsupported policy version {version!r} (this Rungs reads 1)")
    return 1
