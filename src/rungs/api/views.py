"""Cases and timelines as JSON for the API."""

from __future__ import annotations

import json
from typing import Any

from rungs.calendar import WALL_CLOCK
from rungs.core import sla
from rungs.core.ctx import Ctx
from rungs.core.model import Case
from rungs.instant import format_duration, format_utc
from rungs.policy import Policy
from rungs.policy.model import METRICS
from rungs.sim.output import timeline_json

__all__ = ["case_json", "timeline_rows_json"]


def case_json(case: Case, version: int, policy: Policy, now: int) -> dict[str, Any]:
    ctx = Ctx(case, now, policy)
    sp = sla.policy_of(ctx)
    clocks = {}
    for name in METRICS:
        m = case.metrics.get(name)
        target = sla.target_of(sp, case.priority, name)
        if m is None or m.state == "idle" or target is None:
            continue
        elapsed = sla.elapsed(m, now, sp.calendar if sp else WALL_CLOCK)
        due = sla.due(m, target, sp)
        clocks[name] = {
            "state": m.state,
            "target": format_duration(target),
            "elapsed": format_duration(elapsed),
            "remaining": format_duration(max(0, target - elapsed)),
            "breached": m.breached,
            "due": format_utc(due) if due is not None else None,
        }
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
        "sla": clocks,
    }


def timeline_rows_json(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        entry = json.loads(row.entry)
        (formatted,) = timeline_json([entry])
        formatted["policy_version"] = row.policy_version
        out.append(formatted)
    return out
