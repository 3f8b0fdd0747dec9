"""Alerts and the groups their cases stand for, as rows (see `rungs.core.grouping`).

An alert of an integration that groups, guards storms or watches flapping (or one held by a
maintenance window) has a row per case it joined: its own status, its recent changes, its
flapping state. `case_groups` says which group (or storm) each such case stands for, and
when it opened, which is also what the storm guard counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, or_, select, update

from rungs.core.grouping import GroupSeen
from rungs.core.model import ENDED
from rungs.store.tables import alerts, case_groups, cases
from rungs.time.instant import format_utc

__all__ = [
    "AlertRow",
    "add_alert",
    "add_group",
    "alert_count",
    "case_alerts",
    "firing_left",
    "group_case",
    "held_by",
    "holder",
    "unhold",
    "first_quiet",
    "latest",
    "recent_opened",
    "release_storm",
    "set_alert",
    "storm_case",
]

MAX_LISTED = 1000  # alerts a case shows (`alert_count` counts them all)


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    key: str
    integration: str
    case_id: str
    status: str
    summary: str
    flapping: bool
    changes: tuple[int, ...]
    held_by: int | None
    changed_at: int

    @classmethod
    def of(cls, r: Row[Any]) -> AlertRow:
        return cls(r.id, r.key, r.integration, r.case_id, r.status, r.summary,
                   bool(r.flapping), tuple(json.loads(r.changes)), r.held_by,
                   r.changed_at)  # fmt: skip


def latest(conn: Connection, key: str) -> AlertRow | None:
    """The alert's latest row (of the last case it joined), None when it never came."""
    q = select(alerts).where(alerts.c.key == key).order_by(alerts.c.id.desc()).limit(1)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    return None if row is None else AlertRow.of(row)


def add_alert(
    conn: Connection,
    *,
    key: str,
    integration: str,
    case_id: str,
    summary: str,
    now: int,
    held_by: int | None = None,
    changes: tuple[int, ...] = (),
    flapping: bool = False,
    quiet_due: int | None = None,
) -> None:
    conn.execute(
        insert(alerts).values(
            key=key, integration=integration, case_id=case_id, status="firing",
            summary=summary[:1024], flapping=int(flapping), changes=json.dumps(list(changes)),
            quiet_due=quiet_due, held_by=held_by, fired_at=now, changed_at=now,
        )
    )  # fmt: skip


def set_alert(conn: Connection, alert_id: int, **values: Any) -> None:
    """Change an alert's row: `changes` (a tuple) is stored as JSON, `flapping` as 0/1."""
    if "changes" in values:
        values["changes"] = json.dumps(list(values["changes"]))
    if "flapping" in values:
        values["flapping"] = int(values["flapping"])
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))


def firing_left(conn: Connection, case_id: str) -> int:
    """The case's alerts still firing (a flapping alert counts as firing)."""
    q = select(func.count()).where(
        alerts.c.case_id == case_id, or_(alerts.c.status == "firing", alerts.c.flapping == 1)
    )
    return int(conn.execute(q).scalar_one())


def alert_count(conn: Connection, case_id: str) -> int:
    return int(conn.execute(select(func.count()).where(alerts.c.case_id == case_id)).scalar_one())


def case_alerts(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """The case's alerts, first come first, each with its own status (at most MAX_LISTED)."""
    q = select(alerts).where(alerts.c.case_id == case_id).order_by(alerts.c.id).limit(MAX_LISTED)
    return [
        {
            "key": r.key,
            "status": r.status,
            "flapping": bool(r.flapping),
            "summary": r.summary,
            "fired_at": format_utc(r.fired_at),
            "changed_at": format_utc(r.changed_at),
        }
        for r in conn.execute(q)
    ]


def held_by(conn: Connection, window: int) -> list[AlertRow]:
    rows = conn.execute(select(alerts).where(alerts.c.held_by == window).order_by(alerts.c.id))
    return [AlertRow.of(r) for r in rows]


def _seen(conn: Connection, where: Any) -> GroupSeen | None:
    q = (
        select(case_groups.c.case_id, case_groups.c.opened_at, case_groups.c.released_at,
               cases.c.status)
        .join(cases, cases.c.id == case_groups.c.case_id)
        .where(where)
        .order_by(case_groups.c.opened_at.desc())
        .limit(1)
    )  # fmt: skip
    r = conn.execute(q).first()
    if r is None:
        return None
    return GroupSeen(r.case_id, r.opened_at, r.status not in ENDED, r.released_at is not None)


def group_case(conn: Connection, group_key: str) -> GroupSeen | None:
    """The latest case of a group."""
    return _seen(conn, case_groups.c.group_key == group_key)


def storm_case(conn: Connection, integration: str) -> GroupSeen | None:
    """The integration's latest storm case."""
    return _seen(
        conn, and_(case_groups.c.integration == integration, case_groups.c.kind == "storm")
    )


def recent_opened(conn: Connection, integration: str, since: int, cap: int) -> int:
    """Cases (storm cases aside) the integration opened after `since`, counted up to `cap`."""
    inner = (
        select(case_groups.c.case_id)
        .where(
            case_groups.c.integration == integration,
            case_groups.c.opened_at > since,
            case_groups.c.kind != "storm",
        )
        .limit(cap)
        .subquery()
    )
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


def add_group(
    conn: Connection, case_id: str, integration: str, group_key: str, kind: str, now: int
) -> None:
    conn.execute(
        insert(case_groups).values(case_id=case_id, integration=integration,
                                   group_key=group_key, kind=kind, opened_at=now)
    )  # fmt: skip


def release_storm(conn: Connection, case_id: str, now: int) -> None:
    conn.execute(
        update(case_groups).where(case_groups.c.case_id == case_id).values(released_at=now)
    )


def first_quiet(conn: Connection) -> int | None:
    found = conn.execute(select(func.min(alerts.c.quiet_due))).scalar()
    return None if found is None else int(found)


def holder(conn: Connection, case_id: str) -> int | None:
    """The maintenance window holding the case, if one does."""
    q = select(alerts.c.held_by).where(alerts.c.case_id == case_id, alerts.c.held_by.is_not(None))
    return conn.execute(q.limit(1)).scalar()


def unhold(conn: Connection, case_id: str, window: int | None) -> None:
    """The case's alerts held by one window now held by `window` (None: released)."""
    conn.execute(
        update(alerts)
        .where(alerts.c.case_id == case_id, alerts.c.held_by.is_not(None))
        .values(held_by=window)
    )
