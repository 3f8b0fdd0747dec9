"""The maintenance manager: windows in memory for the router, and their ends.

`current` holds every window not yet released, read at most once a second by the loop
(`next_due`) and at once after this process adds or cancels one, so neither the ingest path
nor a loop tick asks a query for it. At a window's
end (`fire_due`), each case it held is released (`rungs.core.maintenance.release`): opened
anew at that instant, as if its alert had just arrived, unless another window still covers
it (then that one holds it) or it was resolved meanwhile; one worked by hand meanwhile runs
on from where it is (`resume`). It is released under the policy in force, or, when that can
no longer open it (its matrix or customer removed while it was held), under the version that
held it; one that cannot be opened even so is logged and no longer held, so that it fails
neither the window's other cases nor every tick after.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from rungs.core import maintenance as core
from rungs.core.model import ENDED, Refused
from rungs.engine.policies import PolicyStore
from rungs.engine.writer import unavailable
from rungs.store import alerts as rows
from rungs.store.cases import load_case
from rungs.store.claims import claim_due
from rungs.store.maintenance import mark_ended, open_windows
from rungs.store.tables import maintenance
from rungs.time.clock import Clock, VirtualClock

if TYPE_CHECKING:
    from rungs.engine.commands import Commands

__all__ = ["Maintenance"]

log = logging.getLogger("rungs.engine")
REFRESH_S = 1.0  # windows added by other processes are seen within this (and a tick)


class Maintenance:
    """The engine manager of maintenance windows: `next_due(conn)`, `fire_due(conn, until)`."""

    name = "maintenance"

    def __init__(
        self, decisions: Commands, policies: PolicyStore, clock: Clock, *, batch: int = 100
    ) -> None:
        self.decisions = decisions
        self.policies = policies
        self.clock = clock
        self.batch = batch
        self.current: list[core.Window] = []  # replaced whole, never changed: read unlocked
        self._stale: int | None = None  # when the first ended window still holding alerts ended
        self._read_at = -REFRESH_S  # monotonic: when `current` was last read
        self._stale_at = -REFRESH_S  # monotonic: when `_stale` was last read (by the loop)

    def refresh(self, conn: Connection, *, stale: bool = True) -> None:
        """Read the windows (and, for the loop, whether an ended one still holds alerts)."""
        current = open_windows(conn)
        if stale:
            self._stale, self._stale_at = rows.first_stale_hold(conn), time.monotonic()
        self.current, self._read_at = current, time.monotonic()

    def fresh(self, conn: Connection) -> None:
        """Read the windows again when they were read over `REFRESH_S` ago, for each trigger
        the router decides: a process serving the API only (`--role api`, no loop) then sees
        windows other processes add or cancel."""
        if time.monotonic() - self._read_at >= REFRESH_S:
            self.refresh(conn, stale=False)

    def next_due(self, conn: Connection) -> int | None:
        """The earliest end of a window not yet released, or of an ended one still holding
        alerts: from memory, which is read again at most every `REFRESH_S`."""
        if time.monotonic() - min(self._read_at, self._stale_at) >= REFRESH_S:
            self.refresh(conn)  # (the router's reads, at every trigger, read no stale holds)
        ends = [w.end for w in self.current]
        if self._stale is not None:
            ends.append(self._stale)
        return min(ends, default=None)

    def fire_due(self, conn: Connection, until: int) -> int:
        """Release the cases of each window ended at or before `until` (one batch); then the
        cases still held by a window already ended. Those were held by a process whose list of
        windows was a moment behind (the window cancelled or ended meanwhile by another), and
        would otherwise stay held, unpaged, for good."""
        due = claim_due(conn, maintenance, "ends_at", until, limit=self.batch, order=("id",),
                        where=(maintenance.c.ended_at.is_(None),))  # fmt: skip
        for r in due:
            if isinstance(self.clock, VirtualClock):
                self.clock.set(max(self.clock.now(), r.ends_at))
            now = max(self.clock.now(), r.ends_at)
            mark_ended(conn, r.id, now)
            others = [w for w in self.current if w.id != r.id]
            for case_id in dict.fromkeys(a.case_id for a in rows.held_by(conn, r.id)):
                self._release_one(conn, case_id, r.id, others, now)
        stale = rows.stale_holds(conn, self.batch)
        now = self.clock.now()
        for case_id, window in stale:
            others = [w for w in self.current if w.id != window]
            self._release_one(conn, case_id, window, others, now)
        self.refresh(conn)
        return len(due) + len(stale)

    def _release_one(
        self, conn: Connection, case_id: str, window: int, others: list[core.Window], now: int
    ) -> None:
        """`_release`, alone: a case that cannot be opened is logged and no longer held,
        rather than failing the window's end (and every tick after it) for its other cases.
        The database being unavailable (a lock not granted in time, a deadlock, a lost
        connection) fails the tick instead: the next one tries again."""
        try:
            with self.decisions.undoable(conn, "rungs_release"):
                self._release(conn, case_id, window, others, now)
        except Exception as exc:
            if unavailable(exc) is not None:  # a lock not granted in time, a connection lost
                raise
            log.exception("maintenance window %s: case %s could not be opened at its end; it "
                          "is no longer held", window, case_id)  # fmt: skip
            rows.unhold(conn, case_id, None)

    def _release(
        self, conn: Connection, case_id: str, window: int, others: list[core.Window], now: int
    ) -> None:
        rows.lock_alerts_of(conn, case_id)  # first, as a trigger of one of them does
        if rows.holder(conn, case_id)() is None:  # released meanwhile (another engine's sweep)
            return
        loaded = load_case(conn, case_id, lock=True)
        if loaded is None:
            rows.unhold(conn, case_id, None)
            return
        case = loaded[0]
        integration = str(case.fields.get("integration") or "")
        still = core.covering(others, integration, case.customer, now)
        rows.unhold(conn, case_id, still.id if still else None)
        if still is not None or case.status in ENDED:
            return
        if case.status != "open":  # acknowledged (or pending) meanwhile: someone has it
            return
        # worked by hand meanwhile (escalated, assigned, reopened, back from pending): its
        # ladder runs on from where it is; untouched: opened anew, as if it had just arrived
        decide = core.resume if core.worked(case) else core.release
        version = self.policies.current_version()
        policy = self.policies.policy(version)
        try:
            c, effects = decide(case, now, policy, window)
        except Refused:  # the policy changed under the held case (its matrix or customer gone)
            version, policy = loaded[1], self.policies.policy(loaded[1])  # the one it was held by
            c, effects = decide(case, now, policy, window)
        self.decisions.apply_in(conn, c, effects, version, policy, now)
        rows.opened_again(conn, case_id, now)
