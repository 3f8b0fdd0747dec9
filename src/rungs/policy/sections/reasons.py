"""`reasons`: the closing reasons a resolve may give (listed once each)."""

from __future__ import annotations

from rungs.policy.reader import Reader

__all__ = ["compile_reasons"]


def compile_reasons(r: Reader) -> tuple[str, ...]:
    if "reasons" not in r.data:
        return ()
    raw = r.data["reasons"]
    found = r.strings(raw, ("reasons",), "reasons")
    seen: set[str] = set()
    for i, reason in enumerate(found):
        if reason in seen:
            at = ("reasons", i) if isinstance(raw, list) else ("reasons",)
            r.err(at, f"duplicate reason '{reason}'")
        seen.add(reason)
    return tuple(dict.fromkeys(found))
