"""The alert router: grouping, the storm guard, maintenance windows and flapping, in the
writer's transaction of each alert.

`Commands.trigger` and `Commands.act_on_key` hand an alert here when its integration groups,
guards storms or watches flapping, or (for a trigger) when a maintenance window covers it;
every other alert takes the plain path, untouched. The router reads what the store knows
(`rungs.store.alerts`), asks the pure core where the alert goes (`rungs.core.grouping.route`,
`rungs.core.flapping`, `rungs.core.maintenance`) and writes the decision through
`Commands.apply_in`. On PostgreSQL a group's (or storm's) decisions are serialised by a
transaction-scoped advisory lock on its key, so two engines never open one group twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from rungs.core import flapping, grouping, maintenance
from rungs.core.decide import open_case
from rungs.core.grouping import AlertSeen, Seen
from rungs.core.maintenance import Window
from rungs.core.model import ENDED, Case, Event, Refused
from rungs.policy import Policy
from rungs.policy.model import Integration
from rungs.store import alerts as rows
from rungs.store.cases import check_key, find_open, load_case, load_case_sent, new_case_id
from rungs.store.sql import Sql, sent

if TYPE_CHECKING:  # commands.py makes the router
    from rungs.engine.commands import Commands
    from rungs.engine.maintenance import Maintenance

__all__ = ["AlertRouter", "keys_ahead", "tracked"]


def tracked(integ: Integration | None) -> bool:
    """Whether the integration's alerts go through the router (grouping, storm or flap)."""
    if integ is None:
        return False
    o = integ.options
    return o.grouping is not None or o.storm is not None or o.flap is not None


def _integration(policy: Policy, data: dict[str, Any]) -> Integration | None:
    """The integration a trigger's data came by, when one did."""
    return policy.integrations.get((data.get("fields") or {}).get("integration", ""))


def keys_ahead(policy: Policy, data: dict[str, Any]) -> list[str | None]:
    """The dedup key of a trigger for a writer batch to read ahead (`Writer.looks_up`): none
    for a grouping integration's alert, which the router finds by its own rows, never by
    an open case's key (the read would be a round trip for nothing)."""
    integ = _integration(policy, data)
    if integ is not None and integ.options.grouping is not None:
        return []
    return [data.get("dedup_key")]


class AlertRouter:
    def __init__(self, commands: Commands, windows: Maintenance) -> None:
        self.commands = commands
        self.windows = windows

    # which alerts come here ------------------------------------------------------------------

    def window(self, integ: str, customer: str | None, now: int) -> Window | None:
        return maintenance.covering(self.windows.current, integ, customer, now)

    def takes_trigger(
        self, policy: Policy, data: dict[str, Any], now: int
    ) -> tuple[Integration, Window | None] | None:
        """The alert's integration and the window covering it, when the router decides it;
        else None. The window is looked up once: the loop may replace the list meanwhile."""
        integ = _integration(policy, data)
        if integ is None:
            return None
        window = self.window(integ.id, data.get("customer"), now) if self.windows.current else None
        return (integ, window) if tracked(integ) or window is not None else None

    def takes_act(self, policy: Policy, dedup_key: str) -> Integration | None:
        integ = policy.integrations.get(dedup_key.partition(":")[0])
        return integ if tracked(integ) else None

    # a trigger -------------------------------------------------------------------------------

    def trigger_in(
        self,
        conn: Connection,
        integ: Integration,
        data: dict[str, Any],
        repeat: dict[str, Any],
        version: int,
        policy: Policy,
        now: int,
        window: Window | None,
    ) -> tuple[Case, bool]:
        """Decide one firing alert (`window`: the one covering it, from `takes_trigger`);
        (its case, whether a case was opened for it)."""
        cmds, opts, key = self.commands, integ.options, str(data["dedup_key"])
        check_key(key)  # before any statement reads it
        summary = str(repeat.get("summary") or data.get("title") or "")
        if not tracked(integ):  # a maintenance window covers it: held, or suppressed on its case
            assert window is not None
            existing = find_open(conn, key)
            if existing is None:
                return self._open(conn, integ, data, version, policy, now, window, key, "alert")
            return self._suppress(conn, existing, policy, window, summary, now), False
        # the alert's and its group's locks and rows: sent together, one round trip
        gkey = grouping.group_key(integ.id, opts.grouping, data) if opts.grouping else None
        locked = _lock(conn, key, gkey)
        latest = rows.latest(conn, key)
        group_read = rows.group_case(conn, gkey) if gkey is not None else None
        row = latest()
        group = group_read() if group_read is not None else None
        locked()
        case = self._load(conn, row.case_id) if row is not None else None
        seen_alert = None
        if row is not None and case is not None:
            seen_alert = AlertSeen(row.case_id, case[0].status not in ENDED, row.status,
                                   row.changed_at, row.held_by is not None,
                                   case[0].status == "closed")  # fmt: skip
        seen = Seen(seen_alert, group)
        where = grouping.route(opts, seen, now)
        if where == "open" and opts.storm is not None:
            locked = _lock(conn, f"{integ.id}:storm")
            since, cap = now - opts.storm.window, opts.storm.cases + 1
            recent = rows.recent_opened(conn, integ.id, since, cap)
            storm = rows.storm_case(conn, integ.id)
            if storm is not None and storm.active and not storm.released and recent < cap:
                # the alerts the storm case took would have opened cases: the rate goes on
                recent += rows.recent_in(conn, storm.case_id, since, cap - recent)
            seen = Seen(seen_alert, group, storm, recent)
            locked()
            where = grouping.route(opts, seen, now)
        if where == "reopen" and window is not None:
            where = "open"  # not reopened (and paged) during maintenance: held anew
        if where in ("repeat", "refire", "reopen"):
            assert row is not None and case is not None
            try:
                return self._again(conn, integ, row, case, where, repeat, policy, now,
                                   window), False  # fmt: skip
            except Refused:  # refused before writing: the case cannot reopen (matrix gone)
                if where != "reopen":
                    raise
                where = "open"  # a case of its own
        ended = None  # the case an attach found ended
        if where in ("attach", "attach_storm"):  # its group's case, or the storm's
            target = seen.group if where == "attach" else seen.storm_case
            assert target is not None
            via = "group" if where == "attach" else "storm"
            attached = self._attach(conn, integ, target.case_id, key, summary, via, policy, now,
                                    window)  # fmt: skip
            if isinstance(attached, Case):
                return attached, False
            # it ended meanwhile: a case of its own; held by a window not covering this alert:
            # a case of its own, or, for the storm's case, a storm case of its own (one page)
            ended = target.case_id
            where = "storm" if attached == HELD and where == "attach_storm" else "open"
        storm, storm_over = seen.storm_case, None
        if (where == "open" and storm is not None and storm.active and not storm.released
                and storm.case_id != ended):  # fmt: skip
            storm_over = partial(self._storm_over, conn, integ, storm.case_id, seen.recent,
                                 policy, now)  # fmt: skip
        if where == "storm":
            assert opts.storm is not None
            sdata = grouping.storm_data(data, integ.id, opts.storm, seen.recent)
            case_, new = self._open(conn, integ, sdata, version, policy, now, window,
                                    f"{integ.id}:storm", "storm", alert=(key, summary))  # fmt: skip
            c, effects = grouping.storm_started(case_, now, policy, integ.id, opts.storm,
                                                seen.recent)  # fmt: skip
            cmds.apply_in(conn, c, effects, version, policy, now)
            return c, new
        if gkey is None and find_open(conn, key) is not None:  # opened before it was tracked
            opened = cmds.open_in(conn, data, version, policy, now, repeat=repeat)
            if storm_over is not None:  # after: open_in may be refused (a case ended meanwhile)
                storm_over()
            return opened
        if gkey is not None:
            values = grouping.group_values(opts.grouping.by, data)  # type: ignore[union-attr]
            fields = {**data.get("fields", {}), "group": values, "alert": key}
            data = {**data, "dedup_key": None, "fields": fields}
        kind = "group" if gkey else "alert"
        return self._open(conn, integ, data, version, policy, now, window, gkey or key, kind,
                          alert=(key, summary), before=storm_over)  # fmt: skip

    def _load(self, conn: Connection, case_id: str) -> tuple[Case, int] | None:
        return load_case(conn, case_id, lock=True)

    def _open(
        self,
        conn: Connection,
        integ: Integration,
        data: dict[str, Any],
        version: int,
        policy: Policy,
        now: int,
        window: Window | None,
        group_key: str,
        kind: str,
        *,
        alert: tuple[str, str] | None = None,
        before: Callable[[], None] | None = None,
    ) -> tuple[Case, bool]:
        """A case of its own for the alert (held, during a window), paged as usual. `before`
        writes what goes first (the storm's end) once the core has not refused the case: a
        refused alert leaves nothing behind (the writer does not roll `Refused` back)."""
        case_id = new_case_id(conn)
        if window is not None:
            case, effects = maintenance.hold(case_id, data, now, policy, window)
        else:
            case, effects = open_case(case_id, data, now, policy)
        if before is not None:
            before()
        self.commands.apply_in(conn, case, effects, version, policy, now, fresh=True)
        if tracked(integ):
            rows.add_group(conn, case_id, integ.id, group_key, kind, now)
        key, summary = alert or (str(data.get("dedup_key")), str(data.get("title") or ""))
        if alert is not None or window is not None:
            rows.add_alert(conn, key=key, integration=integ.id, case_id=case_id, summary=summary,
                           now=now, held_by=window.id if window else None)  # fmt: skip
        return case, True

    def _suppress(
        self, conn: Connection, case_id: str, policy: Policy, window: Window, summary: str, now: int
    ) -> Case:
        loaded = self._load(conn, case_id)
        assert loaded is not None
        case, version = loaded
        c, effects = maintenance.suppress(case, now, self.commands.policies.policy(version),
                                          window, summary)  # fmt: skip
        self.commands.apply_in(conn, c, effects, version, policy, now)
        return c

    def _again(
        self,
        conn: Connection,
        integ: Integration,
        row: rows.AlertRow,
        loaded: tuple[Case, int],
        where: str,
        repeat: dict[str, Any],
        policy: Policy,
        now: int,
        window: Window | None,
    ) -> Case:
        """The alert fires again: in its open case (repeat, refire) or its reopened one."""
        cmds, (case, version) = self.commands, loaded
        if where == "repeat":
            if window is not None:
                return self._suppress(conn, case.id, policy, window, row.summary, now)
            return cmds.decide_in(conn, case.id, Event("alert_repeated", data=repeat), now)[0]
        st = flapping.changed(row.changes, now, integ.options.flap)
        if where == "reopen":  # as this change turns it flapping: reopened, nobody paged
            by, flaps = f"integration:{integ.id}", {"flapping": True} if st.flapping else None
            case, _ = cmds.decide_in(conn, case.id, Event("reopen", by=by, data=flaps), now)
            version = cmds.policies.current_version()
        on = st.flapping or row.flapping
        quiet = now + integ.options.flap.window if on and integ.options.flap else None
        rows.set_alert(conn, row.id, status="firing", changes=st.changes, flapping=on,
                       quiet_due=quiet, changed_at=now)  # fmt: skip
        cmds.wake.timer_set(conn, quiet or 0)
        case_policy = cmds.policies.policy(version)
        if on:
            c, effects = flapping.flapping(case, now, case_policy, row.key, "firing",
                                           len(st.changes))  # fmt: skip
        elif where == "refire":
            c, effects = grouping.alert_fired(case, now, case_policy, row.key, row.summary)
        else:
            return case
        cmds.apply_in(conn, c, effects, version, case_policy, now)
        return c

    def _attach(
        self,
        conn: Connection,
        integ: Integration,
        case_id: str,
        key: str,
        summary: str,
        via: str,
        policy: Policy,
        now: int,
        covered: Window | None,
    ) -> Case | str | None:
        """Attach the alert to the case; None, writing nothing, when the case has ended since
        the group was read (another engine resolved it before this one took its row lock);
        `HELD`, writing nothing, when a maintenance window holds the case and none covers the
        alert (a window for one customer holds no other customer's alerts)."""
        loading = load_case_sent(conn, case_id, lock=True)
        holder = rows.holder(conn, case_id)  # sent with the case: one round trip
        loaded, window = loading(), holder()
        assert loaded is not None
        case, version = loaded
        if case.status in ENDED:
            return None
        if window is not None and covered is None:
            return HELD
        c, effects = grouping.attach(case, now, self.commands.policies.policy(version), key,
                                     summary, via)  # fmt: skip
        self.commands.apply_in(conn, c, effects, version, policy, now)
        rows.add_alert(conn, key=key, integration=integ.id, case_id=case_id, summary=summary,
                       now=now, held_by=window)  # fmt: skip
        return c

    def _storm_over(
        self, conn: Connection, integ: Integration, case_id: str, recent: int, policy: Policy,
        now: int,
    ) -> None:  # fmt: skip
        loaded = self._load(conn, case_id)
        assert loaded is not None
        case, version = loaded
        c, effects = grouping.storm_ended(case, now, self.commands.policies.policy(version),
                                          integ.id, recent)  # fmt: skip
        self.commands.apply_in(conn, c, effects, version, policy, now)
        rows.release_storm(conn, case_id, now)

    # acknowledge, resolve ----------------------------------------------------------------

    def act_in(
        self, conn: Connection, integ: Integration, dedup_key: str, event: Event, now: int
    ) -> tuple[Case | None, bool] | None:
        """Acknowledge or resolve one alert; None when the router never saw it."""
        check_key(dedup_key)
        locked = _lock(conn, dedup_key)
        row = rows.latest(conn, dedup_key)()
        locked()
        if row is None:
            return None
        loaded = self._load(conn, row.case_id)
        if loaded is None:
            return None
        case, version = loaded
        if case.status in ENDED:
            if event.kind == "resolve" and row.status == "firing":  # its own status, still
                rows.set_alert(conn, row.id, status="resolved", changes=row.changes,
                               flapping=False, quiet_due=None, changed_at=now)  # fmt: skip
            return case, False
        cmds = self.commands
        if event.kind != "resolve":
            try:
                return cmds.decide_in(conn, case.id, event, now)[0], True
            except Refused:
                return case, False
        if row.status == "resolved":
            return case, False
        flap = integ.options.flap
        st = flapping.changed(row.changes, now, flap)
        on = st.flapping or row.flapping
        quiet = now + flap.window if on and flap else None
        rows.set_alert(conn, row.id, status="resolved", changes=st.changes, flapping=on,
                       quiet_due=quiet, changed_at=now)  # fmt: skip
        cmds.wake.timer_set(conn, quiet or 0)
        policy = cmds.policies.policy(version)
        if on:
            c, effects = flapping.flapping(case, now, policy, row.key, "resolved", len(st.changes))
            cmds.apply_in(conn, c, effects, version, policy, now)
            return c, True
        return self.settle(conn, integ, case, version, row.key, event, now), True

    def settle(
        self,
        conn: Connection,
        integ: Integration,
        case: Case,
        version: int,
        alert: str,
        event: Event,
        now: int,
    ) -> Case:
        """One alert of the case has resolved: the case resolves as its group says."""
        cmds, policy = self.commands, self.commands.policies.policy(version)
        left = rows.firing_left(conn, case.id)
        many = rows.alert_count(conn, case.id) > 1
        # a storm case resolves when all its alerts have, whatever its integration's groups do
        grouped = integ.options.grouping
        mode = grouped.resolve if grouped and not case.fields.get("storm") else "all"
        if many:
            c, effects = grouping.alert_resolved(case, now, policy, alert, left)
            cmds.apply_in(conn, c, effects, version, policy, now)
            case = c
        if grouping.resolves(mode, left):
            return cmds.decide_in(conn, case.id, event, now)[0]
        return case


_LOCK = Sql("SELECT pg_advisory_xact_lock(:n)")
HELD = "held"  # `_attach`: the case is held by a window that does not cover the alert


def _lock(conn: Connection, *keys: str | None) -> Callable[[], None]:
    """Serialise decisions on each key (None: none) across engines until commit, in this
    order (PostgreSQL; SQLite has one writer at a time already). In pipeline mode the locks
    are sent, not waited for: what is sent after them runs after them, and their answers
    come with its first read (`rungs.store.sql.sent`); outside it they are taken at once.
    Call the answer to see their errors."""
    if conn.dialect.name != "postgresql":
        return lambda: None
    answers = [
        sent(conn, _LOCK, {"n": int.from_bytes(hashlib.sha256(k.encode()).digest()[:8],
                                               "big", signed=True)})
        for k in keys
        if k is not None
    ]  # fmt: skip

    def read() -> None:
        for answer in answers:
            answer()

    return read
