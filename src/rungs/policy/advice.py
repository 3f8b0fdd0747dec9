"""Warnings about a valid policy that would quietly escalate to nobody.

A policy without matrices or without people compiles (a first draft often is one), but stored
by mistake it empties the system: cases open and nobody is paged. `rungs validate` and
`PUT /v1/policy?dry_run=true` say so as warnings; nothing is refused for it.
"""

from __future__ import annotations

from rungs.policy.loader import Problem, load_yaml
from rungs.policy.model import Policy

__all__ = ["advice"]


def advice(text: str, file: str, policy: Policy) -> list[Problem]:
    """Warnings for `policy`, compiled from `text`, located at the empty section (or 1:1)."""
    loc = load_yaml(text, file)
    data = loc.data if isinstance(loc.data, dict) else {}
    found: list[Problem] = []
    for section, empty, message in (
        ("matrices", not policy.matrices, "the policy has no matrices: no case is escalated"),
        ("people", not policy.people, "the policy has no people: nobody can be paged"),
    ):
        if empty:
            line, col = loc.where((section,), key=True) if section in data else (1, 1)
            found.append(Problem(file, line, col, message, "warning"))
    return found
