"""Case numbers on PostgreSQL, drawn for a writer batch at once.

A new case's number is read before anything of it is written (its id is in every row), so
drawing one number per case costs the writer a round trip per case, even in pipeline mode.
The writer instead lends its transaction a `CaseNumbers`: the first case of a batch draws as
many numbers as the batch has commands left, in one statement, and the rest wait for the
next cases (of this batch or the next ones). The numbers come from the table's sequence, so
they are unique across processes whatever becomes of the transaction; the ones still spare
when the process ends are never used (a gap, as a sequence's cache leaves one). SQLite, and
any transaction not the writer's: one number at a time, as before.
"""

from __future__ import annotations

from collections import deque

from sqlalchemy import Connection

from rungs.store.sql import Sql, run_all

__all__ = ["KEY", "CaseNumbers", "expect", "lend", "take"]

KEY = "rungs_case_numbers"  # conn.info: the writer's CaseNumbers during its transaction
_DRAW = Sql("INSERT INTO case_numbers SELECT FROM generate_series(1, :k) RETURNING n")


class CaseNumbers:
    """The writer's spare numbers (its thread only); `want`: how many to draw next time."""

    __slots__ = ("spare", "want")

    def __init__(self) -> None:
        self.spare: deque[int] = deque()
        self.want = 1

    def take(self, conn: Connection) -> int:
        if not self.spare:
            drawn = run_all(conn, _DRAW, {"k": max(1, self.want)})
            self.spare.extend(sorted(int(r[0]) for r in drawn))
        return self.spare.popleft()


def lend(conn: Connection, numbers: CaseNumbers | None) -> None:
    """Lend (or, with None, take back) the writer's numbers to this transaction."""
    if numbers is None:
        conn.info.pop(KEY, None)
    else:
        conn.info[KEY] = numbers


def expect(conn: Connection, cases: int) -> None:
    """The command under way may open up to `cases` cases (an Alertmanager group's alerts,
    in one command): the next draw covers them too, not one case per round trip."""
    numbers = conn.info.get(KEY)
    if numbers is not None and cases > 1:
        numbers.want += cases - 1


def take(conn: Connection) -> int | None:
    """A number from the writer's batch (PostgreSQL), or None: draw one as before."""
    numbers = conn.info.get(KEY)
    return None if numbers is None else numbers.take(conn)
