"""Alerts and the groups their cases stand for, as rows (see `rungs.core.grouping`).

An alert of an integration that groups, guards storms or watches flapping (or one held by a
maintenance window) has a row per case it joined: its own status, its recent changes, its
flapping state. `case_groups` says which group (or storm) each such case stands for, and
when it opened, which is also what the storm guard counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from rungs.core.grouping import GroupSeen
from rungs.core.model import ENDED
from rungs.store.sql import Sql, no_nul, run, run_all, sent
from rungs.store.tables import alerts, case_groups
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
    "end_flapping",
    "first_quiet",
    "latest",
    "recent_opened",
    "release_storm",
    "set_alert",
    "storm_case",
]

MAX_LISTED = 1000  # alerts a case shows (`alert_count` counts them all)


_COLS = "id, key, integration, case_id, status, summary, flapping, changes, held_by, changed_at"
_LATEST = Sql(f"SELECT {_COLS} FROM alerts WHERE key = :key ORDER BY id DESC LIMIT 1")
_LATEST_LOCKED = Sql(_LATEST.named + " FOR UPDATE")
_ADD = Sql(
    "INSERT INTO alerts (key, integration, case_id, status, summary, flapping, changes,"
    " quiet_due, held_by, fired_at, changed_at) VALUES (:key, :integration, :case_id,"
    " 'firing', :summary, :flapping, :changes, :quiet_due, :held_by, :now, :now)"
)
_SET = Sql(
    "UPDATE alerts SET status = :status, changes = :changes, flapping = :flapping,"
    " quiet_due = :quiet_due, changed_at = :changed_at WHERE id = :id"
)
_FIRING = Sql(
    "SELECT count(*) FROM alerts WHERE case_id = :case_id AND (status = 'firing' OR flapping = 1)"
)
_COUNT = Sql("SELECT count(*) FROM alerts WHERE case_id = :case_id")
_HOLDER = Sql("SELECT held_by FROM alerts WHERE case_id = :case_id AND held_by IS NOT NULL LIMIT 1")
_SEEN = (
    "SELECT g.case_id, g.opened_at, g.released_at, c.status FROM case_groups g"
    " JOIN cases c ON c.id = g.case_id WHERE {} ORDER BY g.opened_at DESC, g.case_id DESC"
    " LIMIT 1"
)
_GROUP = Sql(_SEEN.format("g.group_key = :key"))
_STORM = Sql(_SEEN.format("g.integration = :integration AND g.kind = 'storm'"))
_RECENT = Sql(
    "SELECT count(*) FROM (SELECT 1 FROM case_groups WHERE integration = :integration"
    " AND opened_at > :since AND kind <> 'storm' LIMIT :cap) AS recent"
)
_RECENT_IN = Sql(
    "SELECT count(*) FROM (SELECT 1 FROM alerts WHERE case_id = :case_id"
    " AND fired_at > :since ORDER BY id DESC LIMIT :cap) AS recent"
)
_FIRST_QUIET = Sql("SELECT min(quiet_due) FROM alerts")
_LOCK_OF_CASE = Sql("SELECT id FROM alerts WHERE case_id = :case_id ORDER BY id FOR UPDATE")
_ADD_GROUP = Sql(
    "INSERT INTO case_groups (case_id, integration, group_key, kind, opened_at)"
    " VALUES (:case_id, :integration, :group_key, :kind, :now)"
)


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
    def of(cls, r: Sequence[Any]) -> AlertRow:
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), tuple(json.loads(r[7])),
                   r[8], r[9])  # fmt: skip


def latest(conn: Connection, key: str) -> Callable[[], AlertRow | None]:
    """The alert's latest row (of the last case it joined), None when it never came; read
    when called (`rungs.store.sql.sent`: look-ups sent together cost one round trip)."""
    pg = conn.dialect.name == "postgresql"
    read = sent(conn, _LATEST_LOCKED if pg else _LATEST, {"key": key})

    def row() -> AlertRow | None:
        r = read()
        return None if r is None else AlertRow.of(r)

    return row


def add_alert(
    conn: Connection,
    *,
    key: str,
    integration: str,
    case_id: str,
    summary: str,
    now: int,
    held_by: int | None = None,
) -> None:
    run(conn, _ADD, {"key": key, "integration": integration, "case_id": case_id,
                     "summary": no_nul(summary[:1024]), "flapping": 0, "changes": "[]",
                     "quiet_due": None, "held_by": held_by, "now": now})  # fmt: skip


def set_alert(
    conn: Connection,
    alert_id: int,
    *,
    status: str,
    changes: tuple[int, ...],
    flapping: bool,
    quiet_due: int | None,
    changed_at: int,
) -> None:
    """An alert's new status, recent changes and flapping state."""
    run(conn, _SET, {"id": alert_id, "status": status, "changes": json.dumps(list(changes)),
                     "flapping": int(flapping), "quiet_due": quiet_due,
                     "changed_at": changed_at})  # fmt: skip


def end_flapping(conn: Connection, alert_id: int) -> None:
    """A flapping alert quiet for its window: flapping no more."""
    conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id)
        .values(flapping=0, quiet_due=None, changes="[]")
    )


def firing_left(conn: Connection, case_id: str) -> int:
    """The case's alerts still firing (a flapping alert counts as firing)."""
    return int(run(conn, _FIRING, {"case_id": case_id})[0])


def alert_count(conn: Connection, case_id: str) -> int:
    return int(run(conn, _COUNT, {"case_id": case_id})[0])


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
    q = select(*(alerts.c[c] for c in _COLS.split(", "))).where(alerts.c.held_by == window)
    return [AlertRow.of(r) for r in conn.execute(q.order_by(alerts.c.id))]


def _seen(r: Sequence[Any] | None) -> GroupSeen | None:
    if r is None:
        return None
    return GroupSeen(r[0], r[1], r[3] not in ENDED, r[2] is not None)


def group_case(conn: Connection, group_key: str) -> Callable[[], GroupSeen | None]:
    """The latest case of a group, read when called (as `latest`)."""
    read = sent(conn, _GROUP, {"key": group_key})
    return lambda: _seen(read())


def storm_case(conn: Connection, integration: str) -> GroupSeen | None:
    """The integration's latest storm case."""
    return _seen(run(conn, _STORM, {"integration": integration}))


def recent_opened(conn: Connection, integration: str, since: int, cap: int) -> int:
    """Cases (storm cases aside) the integration opened after `since`, counted up to `cap`."""
    return int(run(conn, _RECENT, {"integration": integration, "since": since, "cap": cap})[0])


def recent_in(conn: Connection, case_id: str, since: int, cap: int) -> int:
    """Alerts that joined the case (a storm case) after `since`, counted up to `cap`."""
    return int(run(conn, _RECENT_IN, {"case_id": case_id, "since": since, "cap": cap})[0])


def add_group(
    conn: Connection, case_id: str, integration: str, group_key: str, kind: str, now: int
) -> None:
    run(conn, _ADD_GROUP, {"case_id": case_id, "integration": integration,
                           "group_key": group_key, "kind": kind, "now": now})  # fmt: skip


_OPENED_AGAIN = Sql(
    "UPDATE case_groups SET opened_at = :now WHERE case_id = :case_id AND NOT EXISTS"
    " (SELECT 1 FROM case_groups newer WHERE newer.group_key = case_groups.group_key"
    " AND (newer.opened_at > case_groups.opened_at OR (newer.opened_at = case_groups.opened_at"
    " AND newer.case_id > case_groups.case_id)))"  # newer in the group look-up's order
)


def opened_again(conn: Connection, case_id: str, now: int) -> None:
    """The case counts as opened at `now` (a held case opened at its window's end): its group
    window, and the storm guard's count, run from then; unless its group has a newer case
    (an alert no window covered opened one), which stays the group's."""
    run(conn, _OPENED_AGAIN, {"case_id": case_id, "now": now})


def release_storm(conn: Connection, case_id: str, now: int) -> None:
    conn.execute(
        update(case_groups).where(case_groups.c.case_id == case_id).values(released_at=now)
    )


def holder(conn: Connection, case_id: str) -> Callable[[], int | None]:
    """The maintenance window holding the case, if one does; read when called (as `latest`)."""
    read = sent(conn, _HOLDER, {"case_id": case_id})

    def window() -> int | None:
        r = read()
        return None if r is None else r[0]

    return window


_STALE_FROM = (  # by the held_by index: held alerts are few, and every alert is a row
    " FROM alerts JOIN maintenance ON maintenance.id = alerts.held_by"
    " WHERE alerts.held_by IS NOT NULL AND maintenance.ended_at IS NOT NULL"
)
_FIRST_STALE = Sql("SELECT min(maintenance.ended_at)" + _STALE_FROM)
_STALE = Sql(
    "SELECT alerts.case_id, alerts.held_by"
    + _STALE_FROM
    + " GROUP BY alerts.held_by, alerts.case_id LIMIT :n"
)


def first_stale_hold(conn: Connection) -> int | None:
    """When the first window that ended while still holding alerts ended (None: none did)."""
    row = run(conn, _FIRST_STALE, {})
    return None if row is None or row[0] is None else int(row[0])


def stale_holds(conn: Connection, limit: int) -> list[tuple[str, int]]:
    """Up to `limit` (case, window) held by a window already ended."""
    return [(r[0], int(r[1])) for r in run_all(conn, _STALE, {"n": limit})]


def lock_alerts_of(conn: Connection, case_id: str) -> None:
    """PostgreSQL: the case's alert rows locked, in id order, before the case itself is: the
    order a trigger or resolve of one of its alerts takes them (its row, then its case), so
    the two cannot deadlock. SQLite has one writer at a time already."""
    if conn.dialect.name == "postgresql":
        run_all(conn, _LOCK_OF_CASE, {"case_id": case_id})


def unhold(conn: Connection, case_id: str, window: int | None) -> None:
    """The case's alerts held by one window now held by `window` (None: released)."""
    conn.execute(
        update(alerts)
        .where(alerts.c.case_id == case_id, alerts.c.held_by.is_not(None))
        .values(held_by=window)
    )


def first_quiet(conn: Connection) -> int | None:
    """When the first flapping alert stops flapping, without a further change."""
    row = run(conn, _FIRST_QUIET, {})
    return None if row is None or row[0] is None else int(row[0])
