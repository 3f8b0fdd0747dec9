"""The storms' own commands (issue 17): maintenance windows, and an Alertmanager group's
alerts taken in one transaction. A part of `Commands` (its mixin), kept apart so the command
object stays readable; the router (`engine/alerts.py`) writes through `Commands.apply_in`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from rungs.core.model import Case, Refused
from rungs.engine.alerts import keys_ahead
from rungs.engine.policies import PolicyStore
from rungs.engine.wake import Wake
from rungs.engine.writer import Writer, looks_up
from rungs.store.maintenance import add_window, cancel_window
from rungs.store.numbers import expect as expect_cases
from rungs.store.sql import DUPLICATE, pipeline
from rungs.time.clock import Clock

if TYPE_CHECKING:  # the router is made by the engine, given the command object
    from rungs.engine.alerts import AlertRouter

__all__ = ["AlertCall", "AlertOutcome", "StormCommands"]

AlertCall = tuple[str, Any, Any]  # ("trigger", data, repeat) or ("act", dedup_key, event)
AlertOutcome = tuple[Case | None, bool] | Refused


class StormCommands:
    """The storms' commands; `Commands` provides these attributes and methods."""

    writer: Writer
    policies: PolicyStore
    clock: Clock
    wake: Wake
    alerts: AlertRouter | None
    trigger_in: Callable[..., tuple[Case, bool]]
    act_on_key_in: Callable[..., tuple[Case | None, bool]]

    async def add_maintenance(self, window: dict[str, Any]) -> int:
        """A maintenance window (`rungs.store.maintenance.add_window` arguments); its id.
        The router sees it at once in this process, within a tick in the others."""
        now = self.clock.now()

        def run(conn: Connection) -> int:
            found = add_window(conn, **window, now=now)
            if self.alerts is not None:
                self.alerts.windows.refresh(conn)
            return found

        made = await self.writer.submit_async(run)
        self.wake.set()  # its end may be the next thing due
        return int(made)

    async def cancel_maintenance(self, window: int) -> bool:
        """End a window now (its held cases are released by the engine); False when there
        is no such window under way or to come."""
        now = self.clock.now()

        def run(conn: Connection) -> bool:
            done = cancel_window(conn, window, now)
            if done and self.alerts is not None:
                self.alerts.windows.refresh(conn)
            return done

        done = bool(await self.writer.submit_async(run))
        self.wake.set()
        return done

    async def alerts_at_once(self, batch: list[AlertCall]) -> list[AlertOutcome]:
        """Many alerts (an Alertmanager group) in ONE transaction: each a trigger
        `("trigger", data, repeat)` or an act `("act", dedup_key, event)`, answered in order
        with its (case, new or applied), or the `Refused` that left it out (it wrote
        nothing; the others are taken). One commit serves the whole group."""
        version = self.policies.current_version()
        policy = self.policies.policy(version)

        triggers = sum(1 for kind, _, _ in batch if kind == "trigger")

        def run(conn: Connection) -> list[AlertOutcome]:
            expect_cases(conn, triggers)  # PostgreSQL: their case numbers in one draw
            with pipeline(conn):  # PostgreSQL: the writes of one alert ride with the next read
                return [one(conn, kind, first, second) for kind, first, second in batch]

        def one(conn: Connection, kind: str, first: Any, second: Any) -> AlertOutcome:
            try:
                if kind == "trigger":
                    return self.trigger_in(conn, first, second, version, policy)
                return self.act_on_key_in(conn, first, second)
            except Refused as exc:  # refused before anything of it was written
                return exc

        keys = [keys_ahead(policy, first) if kind == "trigger" else [first]
                for kind, first, _ in batch]  # fmt: skip
        looks_up(run, [k for each in keys for k in each])
        try:
            return await self.writer.submit_async(run)
        except DUPLICATE:  # another process opened one of its keys at the same moment
            return await self.writer.submit_async(run)
