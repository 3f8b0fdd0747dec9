"""The outbox as `/metrics` shows it: rows waiting, in flight and given up, by status."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from rungs.store.tables import outbox

__all__ = ["outbox_depth"]

STATUSES = ("pending", "sending", "dead")  # `sent` rows are history, not depth


def outbox_depth(conn: Connection) -> list[tuple[str, int]]:
    """Rows by status (every status listed, 0 when none), read through `ix_outbox_due`."""
    q = (
        select(outbox.c.status, func.count())
        .where(outbox.c.status.in_(STATUSES))
        .group_by(outbox.c.status)
    )
    found = {s: int(n) for s, n in conn.execute(q).all()}
    return [(s, found.get(s, 0)) for s in STATUSES]
