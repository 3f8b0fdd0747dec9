"""`links`: the base URL and lifetime of one-click action links."""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.reader import Reader

__all__ = ["compile_links"]


def compile_links(r: Reader) -> dict[str, Any]:
    if "links" not in r.data:
        return {}
    p: Path = ("links",)
    m = r.fields(r.data["links"], p, "links", ("base_url", "ttl"), ()) or {}
    out: dict[str, Any] = dict(m)
    if "ttl" in m:
        out["ttl"] = r.duration(m, "ttl", p)
    return out
