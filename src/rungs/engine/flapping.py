"""The flapping manager: a flapping alert quiet for its whole window stops flapping.

Each flapping alert row has `quiet_due` (its last change plus the window). When it comes due
the alert is flapping no more (`flap_ended`); one whose last word was "resolved" then counts
as resolved, and its case resolves as its group says (`AlertRouter.settle`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection

from rungs.core import flapping
from rungs.core.model import ENDED, Event
from rungs.engine.policies import PolicyStore
from rungs.store import alerts as rows
from rungs.store.cases import load_case
from rungs.store.claims import claim_due
from rungs.store.tables import alerts
from rungs.time.clock import Clock, VirtualClock

if TYPE_CHECKING:
    from rungs.engine.alerts import AlertRouter

__all__ = ["Flaps"]


class Flaps:
    """The engine manager of flapping alerts: `next_due(conn)`, `fire_due(conn, until)`."""

    name = "flaps"

    def __init__(
        self, router: AlertRouter, policies: PolicyStore, clock: Clock, *, batch: int = 500
    ) -> None:
        self.router = router
        self.policies = policies
        self.clock = clock
        self.batch = batch

    def next_due(self, conn: Connection) -> int | None:
        return rows.first_quiet(conn)

    def fire_due(self, conn: Connection, until: int) -> int:
        due = claim_due(conn, alerts, "quiet_due", until, limit=self.batch, order=("id",))
        for r in due:
            if isinstance(self.clock, VirtualClock):
                self.clock.set(max(self.clock.now(), r.quiet_due))
            now = max(self.clock.now(), r.quiet_due)
            rows.end_flapping(conn, r.id)
            loaded = load_case(conn, r.case_id, lock=True)
            if loaded is None or loaded[0].status in ENDED:
                continue
            case, version = loaded
            policy = self.policies.policy(version)
            c, effects = flapping.flap_ended(case, now, policy, r.key, r.status)
            self.router.commands.apply_in(conn, c, effects, version, policy, now)
            integ = policy.integrations.get(r.integration)
            if r.status == "resolved" and integ is not None:
                event = Event("resolve", by=f"integration:{integ.id}")
                self.router.settle(conn, integ, c, version, r.key, event, now)
        return len(due)
