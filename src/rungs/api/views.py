"""Cases and timelines as JSON for the API."""

from __future__ import annotations

import json
from typing import Any

from rungs.core import sla
from rungs.core.model import Case
from rungs.policy import Policy
from rungs.sim.output import timeline_json
from rungs.time.instant import format_utc

__all__ = ["case_json", "timeline_rows_json"]


def case_json(case: Case, version: int, policy: Policy, now: int) -> dict[str, Any]:
    return {
        "id": case.id,
        "status": case.status,
        "customer": case.customer,
        "category": case.category,
        "priority": case.priority,
        "title": case.title,
        "description": case.description,
        "level": case.level,
        "matrix": case.matrix,
        "assignee": case.assignee,
        "acknowledged": case.acknowledged,
        "dedup_key": case.dedup_key,
        "fields": dict(case.fields),
        "tags": list(case.tags),
        "opened_at": format_utc(case.opened_at),
        "updated_at": format_utc(case.updated_at),
        "policy_version": version,
        "sla": sla.clocks(case, policy, now),
    }


def timeline_rows_json(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        entry = json.loads(row.entry)
        (formatted,) = timeline_json([entry])
        formatted["policy_version"] = row.policy_version
        out.append(formatted)
    return out
