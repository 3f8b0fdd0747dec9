"""The console's queue: cases by next SLA breach, filtered in SQL.

The order comes from `cases.sla_due` (`core.sla.next_breach`, stored with each decision), so a
queue of 10,000 open cases is one scan and sort in the database and one page of
rows, never a clock computed per case in Python. Cases with no running clock come last, by
age.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, func, or_, select

from rungs.core.targets import people_of
from rungs.policy import Policy
from rungs.store.tables import cases

__all__ = ["QueueRow", "holders", "queue_page"]


@dataclass(slots=True)
class QueueRow:
    id: str
    title: str | None  # None for a case stored before the column
    customer: str
    priority: str
    status: str
    level: int
    assignee: str | None
    opened_at: int
    sla_due: int | None
    policy_version: int
    matrix: str
    holder: str = ""  # the assignee, else who the current level pages now (see `holders`)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def queue_page(
    conn: Connection,
    *,
    statuses: Sequence[str],
    assignees: Sequence[str] | None,
    search: str | None,
    limit: int,
) -> tuple[list[QueueRow], int]:
    """The first `limit` cases in `statuses` (assigned to one of `assignees` when given,
    matching `search` in id, title or customer), soonest breach first; and how many match."""
    c = cases.c
    where = [c.status.in_(tuple(statuses))]
    if assignees is not None:
        where.append(c.assignee.in_(tuple(assignees)))
    if search:
        pattern = _like(search.lower())
        where.append(
            or_(
                func.lower(c.id).like(pattern, escape="\\"),
                func.lower(c.title).like(pattern, escape="\\"),
                func.lower(c.customer).like(pattern, escape="\\"),
            )
        )
    cols = (c.id, c.title, c.customer, c.priority, c.status, c.level, c.assignee, c.opened_at,
            c.sla_due, c.policy_version, c.state)  # fmt: skip
    q = (
        select(*cols)
        .where(*where)
        .order_by(c.sla_due.is_(None), c.sla_due, c.opened_at, c.id)
        .limit(limit)
    )
    rows = [QueueRow(*r[:-1], orjson.loads(r[-1])["matrix"]) for r in conn.execute(q)]
    total = conn.execute(select(func.count()).select_from(cases).where(*where)).scalar_one()
    return rows, int(total)


def holders(rows: list[QueueRow], policy_of: Callable[[int], Policy], now: int) -> list[QueueRow]:
    """Each row given its `holder`: its assignee (`person:ann` as `ann`), else the people its
    current level pages at `now` (looked up once per policy version, matrix and level)."""
    seen: dict[tuple[int, str, int], str] = {}
    for r in rows:
        if r.assignee:
            r.holder = r.assignee.removeprefix("person:")
            continue
        key = (r.policy_version, r.matrix, r.level)
        if key not in seen:
            seen[key] = _level_people(policy_of(r.policy_version), r.matrix, r.level, now)
        r.holder = seen[key]
    return rows


def _level_people(policy: Policy, matrix_id: str, level: int, now: int) -> str:
    m = next((x for x in policy.matrices if x.id == matrix_id), None)
    if m is None or not 1 <= level <= len(m.levels):
        return ""
    lv = m.levels[level - 1]
    names: list[str] = []
    for target in lv.notify:
        for p in people_of(policy, target, now, lv.fallback):
            if p not in names:
                names.append(p)
    return ", ".join(names)
