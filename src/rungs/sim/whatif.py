"""What a draft policy would have changed: before (the stored timeline) against after (the
draft's re-run), counted per customer, as `rungs replay` and `POST /v1/policy/replay` answer.

The JSON is pinned: `cases` (how many were replayed), `changed_cases` (sorted ids whose
timeline differs), `summary` with `escalations`, `pages` and `sla_breaches`, each
`{"before": n, "after": n}`, and `by_customer` with the same three per customer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from rungs.core.timeline import Entry
from rungs.sim.replay import Encode, compact, same_entries

__all__ = ["COUNTED", "Changed", "WhatIf", "entry_line", "side_by_side"]

COUNTED = {"escalated": "escalations", "notified": "pages", "sla_breached": "sla_breaches"}
"""Entry kinds counted, and the summary's name for each."""

SHOWN = 5  # changed cases kept with their entries, for the table


@dataclass(slots=True)
class Changed:
    case: str
    before: list[Entry]
    after: list[Entry]


def _decoded(texts: Sequence[str]) -> list[Entry]:
    return [json.loads(t) for t in texts]


def _zero() -> dict[str, dict[str, int]]:
    return {name: {"before": 0, "after": 0} for name in COUNTED.values()}


@dataclass
class WhatIf:
    """Accumulates cases one by one (`add`), then `as_dict()`."""

    cases: int = 0
    not_replayable: int = 0
    changed: list[str] = field(default_factory=list)
    shown: list[Changed] = field(default_factory=list)
    summary: dict[str, dict[str, int]] = field(default_factory=_zero)
    by_customer: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    encode: Encode = compact  # the store's JSON of an entry (see `same_entry`)

    def add(
        self,
        case: str,
        customer: str,
        before: Sequence[str],
        kinds: Sequence[str],
        after: Sequence[Entry],
    ) -> None:
        """One case: its stored entries (JSON texts) and their kinds, and the re-run's."""
        self.cases += 1
        mine = self.by_customer.get(customer)
        if mine is None:
            mine = self.by_customer[customer] = _zero()
        for side, names in (("before", kinds), ("after", [e["kind"] for e in after])):
            for kind in names:
                name = COUNTED.get(kind)
                if name is not None:
                    self.summary[name][side] += 1
                    mine[name][side] += 1
        if not same_entries(before, after, self.encode):
            self.changed.append(case)
            if len(self.shown) < SHOWN:
                self.shown.append(Changed(case, _decoded(before), list(after)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "changed_cases": sorted(self.changed),
            "summary": self.summary,
            "by_customer": {c: self.by_customer[c] for c in sorted(self.by_customer)},
        }


def entry_line(e: Entry) -> str:
    """An entry in one line: kind, then its fields (but `at` and `case`)."""
    rest = " ".join(f"{k}={v}" for k, v in e.items() if k not in ("at", "case", "kind"))
    return f"{e['kind']} {rest}".strip()


def side_by_side(c: Changed) -> list[tuple[Entry | None, Entry | None]]:
    """The entries that differ, paired where one replaced the other (None: no counterpart)."""
    key = [(e["at"], entry_line(e)) for e in c.before]
    key2 = [(e["at"], entry_line(e)) for e in c.after]
    rows: list[tuple[Entry | None, Entry | None]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=key, b=key2, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        a, b = c.before[i1:i2], c.after[j1:j2]
        for k in range(max(len(a), len(b))):
            rows.append((a[k] if k < len(a) else None, b[k] if k < len(b) else None))
    return rows
