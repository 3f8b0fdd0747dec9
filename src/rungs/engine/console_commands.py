"""The console's own commands (issue 13): sign-in attempts, test notifications, retries of
dead-lettered deliveries, calendar feeds. A part of `Commands` (its mixin), kept apart so
the command object stays readable; each runs on the writer like every command."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from rungs.core.model import Refused
from rungs.engine.policies import PolicyStore
from rungs.engine.writer import Writer
from rungs.store.credentials import record_sign_in
from rungs.store.deliveries import TEST_WINDOW, insert_test, retry_dead, test_refused
from rungs.store.feeds import renew_feed, revoke_feed
from rungs.store.outbox import Row
from rungs.time.clock import Clock

if TYPE_CHECKING:
    from rungs.engine.commands import Deliveries
    from rungs.policy import Policy

__all__ = ["ConsoleCommands"]


class ConsoleCommands:
    """The console's commands; `Commands` provides these attributes."""

    writer: Writer
    policies: PolicyStore
    clock: Clock
    deliveries: Deliveries | None
    _claimed: list[Row]

    def _claim_until(self, policy: Policy) -> int | None:
        """The lease to insert a test or retried row claimed with; None: pending (the claim
        loop then marks it skipped under a policy without channels, as before)."""
        lease = None if self.deliveries is None else self.deliveries.lease(policy)
        return lease if isinstance(lease, int) else None

    async def record_sign_in(self, person: str, ok: bool) -> int | None:
        """Count a console sign-in attempt (`store.credentials.record_sign_in`): the instant
        the person is locked out until, or None."""
        now = self.clock.now()
        return await self.writer.submit_async(lambda conn: record_sign_in(conn, person, ok, now))

    # the console's (issue 13) ----------------------------------------------------------------

    async def send_test(self, person: str, channel: str, by: str | None) -> int:
        """A test notification to one of `person`'s contacts, through the outbox and the
        channel as a page goes; its outcome stays on the row (`rungs.store.deliveries`), no
        case is touched. Refused for an unknown person or contact, while a test to the same
        contact is still on its way, or past `MAX_TESTS` to the person in ten minutes."""
        policy = await asyncio.to_thread(self.policies.current)
        found = policy.people.get(person)
        if found is None:
            raise Refused(f"unknown person '{person}'", 404, "person")
        if not found.contacts.get(channel):
            raise Refused(f"{person} has no {channel} contact", 422, "channel")
        now = self.clock.now()
        lease = self._claim_until(policy)

        def run(conn: Connection) -> int:
            refused = test_refused(conn, person, channel, now - TEST_WINDOW)
            if refused is not None:
                raise Refused(refused[1], refused[0], "channel")
            rid, row = insert_test(conn, person, channel, by, now, lease)
            if row is not None:
                self._claimed.append(row)
            return rid

        return await self.writer.submit_async(run)

    async def retry_delivery(self, row_id: int) -> bool:
        """Send a dead-lettered outbox row again, with a fresh count of attempts; its result
        reaches the case's timeline as any delivery's does. False when no dead row has this
        id (retried already)."""
        policy = await asyncio.to_thread(self.policies.current)
        lease = self._claim_until(policy)
        now = self.clock.now()

        def run(conn: Connection) -> bool:
            found, row = retry_dead(conn, row_id, now, lease)
            if row is not None:
                self._claimed.append(row)
            return found

        return await self.writer.submit_async(run)

    async def renew_feed(self, person: str) -> str:
        """A new calendar feed nonce for `person` (`rungs.store.feeds`): older links stop."""
        policy = await asyncio.to_thread(self.policies.current)
        if person not in policy.people:
            raise Refused(f"unknown person '{person}'", 404, "person")
        now = self.clock.now()
        return await self.writer.submit_async(lambda conn: renew_feed(conn, person, now))

    async def revoke_feed(self, person: str) -> bool:
        """Turn `person`'s calendar feed off; False when there was none."""
        return await self.writer.submit_async(lambda conn: revoke_feed(conn, person))
