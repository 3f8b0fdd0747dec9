"""Importers: another tool's saved API responses -> a Rungs policy and a plan.

One module per vendor reads its dump into a `plan.Draft`; `yamlout` writes the policy text,
which is compiled by `rungs.policy` (so what is written validates) and checked against the
vendor's own final schedules (`shiftcheck`). Pure: the command reads the file and the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from rungs.importers.common import DumpError, Node
from rungs.importers.plan import Draft
from rungs.importers.shiftcheck import check
from rungs.importers.yamlout import to_yaml
from rungs.policy import Problem, load_policy_text

__all__ = ["VENDORS", "DumpError", "Imported", "import_dump"]

# vendor -> its module here, each with `read(dump: Node, now: int) -> Draft`
VENDORS = {
    "pagerduty": "pagerduty",
    "opsgenie": "opsgenie",
    "goalert": "goalert",
    "grafana-oncall": "grafana_oncall",
}


@dataclass
class Imported:
    """The draft, its policy text, the problems compiling it found (none when all is well) and
    the shift check's differences."""

    draft: Draft
    text: str
    problems: list[Problem]
    differences: list[str]

    @property
    def ok(self) -> bool:
        """Something usable was read, the text validates, and the shift check passed."""
        errors = [p for p in self.problems if p.severity == "error"]
        return self.draft.usable() and not errors and not self.differences


def import_dump(vendor: str, data: Any, now: int, *, source: str = "the dump") -> Imported:
    """Translate `data` (the parsed JSON of a dump) from `vendor`; raises `DumpError` when a
    value has the wrong shape. `now` (µs) is when the policy takes over."""
    if not isinstance(data, dict):
        raise DumpError("$", "a dump is one JSON object whose keys hold the API's list responses")
    draft = import_module(f"rungs.importers.{VENDORS[vendor]}").read(Node(data), now)
    text = to_yaml(draft, f"Imported from {vendor} ({source}) by `rungs import`.")
    policy, problems = load_policy_text(text, "<imported policy>")
    differences = check(policy, draft.finals) if policy is not None else []
    return Imported(draft, text, problems, differences)
