"""What a new policy changes: added, removed and changed entries of the sections people
review before storing a policy (customers, matrices, integrations, schedules, people).

Entries are compared as written (the parsed YAML of each entry, whichever of the list or
mapping forms the section uses), so reformatting changes nothing and any edited field is a
change. Other top-level sections are named when they differ, never shown: `channels` may hold
what an operator would not print. `rungs policy diff` and `PUT /v1/policy?dry_run=true` show
this; the API's check of removals in use reads `removed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rungs.policy.loader import Located, load_yaml
from rungs.policy.reader import Reader

__all__ = ["DIFF_SECTIONS", "PolicyDiff", "diff_policies", "diff_texts", "render_diff"]

DIFF_SECTIONS = ("customers", "matrices", "integrations", "schedules", "people")
_SINGULAR = {
    "customers": "customer",
    "matrices": "matrix",
    "integrations": "integration",
    "schedules": "schedule",
    "people": "person",
}


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """Per section of `DIFF_SECTIONS`, the ids added, removed and changed (sorted); `other`:
    the other top-level sections that differ."""

    added: Mapping[str, tuple[str, ...]]
    removed: Mapping[str, tuple[str, ...]]
    changed: Mapping[str, tuple[str, ...]]
    other: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.other and not any(
            self.added[s] or self.removed[s] or self.changed[s] for s in DIFF_SECTIONS
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON: `{section: {added, removed, changed}, ..., "other_sections": [...]}`."""
        out: dict[str, Any] = {
            s: {
                "added": list(self.added[s]),
                "removed": list(self.removed[s]),
                "changed": list(self.changed[s]),
            }
            for s in DIFF_SECTIONS
        }
        out["other_sections"] = list(self.other)
        return out


def _entries(loc: Located, section: str) -> dict[str, Any]:
    """id -> the entry as written, without its `id` (the same in the list and mapping forms)."""
    return {
        ident: {k: v for k, v in m.items() if k != "id"}
        for ident, m, _ in Reader(loc).entries(section)
    }


def diff_policies(old: Located, new: Located) -> PolicyDiff:
    """The changes from `old` to `new` (both parsed policies; meant for valid ones)."""
    added: dict[str, tuple[str, ...]] = {}
    removed: dict[str, tuple[str, ...]] = {}
    changed: dict[str, tuple[str, ...]] = {}
    for s in DIFF_SECTIONS:
        a, b = _entries(old, s), _entries(new, s)
        added[s] = tuple(sorted(b.keys() - a.keys()))
        removed[s] = tuple(sorted(a.keys() - b.keys()))
        changed[s] = tuple(sorted(k for k in a.keys() & b.keys() if a[k] != b[k]))
    od = old.data if isinstance(old.data, dict) else {}
    nd = new.data if isinstance(new.data, dict) else {}
    other = tuple(
        sorted(
            str(k)
            for k in od.keys() | nd.keys()
            if k not in DIFF_SECTIONS and od.get(k) != nd.get(k)
        )
    )
    return PolicyDiff(added, removed, changed, other)


def diff_texts(old: str, new: str) -> PolicyDiff:
    """`diff_policies` of two policy texts."""
    return diff_policies(load_yaml(old, "old"), load_yaml(new, "new"))


def render_diff(diff: PolicyDiff) -> list[str]:
    """One line per change: `+ customer globex`, `- matrix infra`, `~ person alice`, then
    `~ section channels` for the others; `no changes` when there are none."""
    lines: list[str] = []
    for s in DIFF_SECTIONS:
        what = _SINGULAR[s]
        lines += [f"+ {what} {i}" for i in diff.added[s]]
        lines += [f"- {what} {i}" for i in diff.removed[s]]
        lines += [f"~ {what} {i}" for i in diff.changed[s]]
    lines += [f"~ section {k}" for k in diff.other]
    return lines or ["no changes"]
