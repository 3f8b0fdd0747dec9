"""The policy store: stored versions compiled once, with the schedule overrides folded in.

Every decision runs with its case's policy version; reads of "the current version" may be a
second stale, because other processes store versions too.
"""

from __future__ import annotations

import time
from dataclasses import replace

from sqlalchemy import Connection, Engine, func, insert, select

from rungs.core.model import Refused
from rungs.engine.writer import Writer
from rungs.policy import Policy, PolicyError, load_policy_text
from rungs.schedules.oncall import Override, override_error
from rungs.store.tables import overrides, policies
from rungs.time.clock import Clock

__all__ = ["PolicyStore", "VERSION_TTL_S"]

VERSION_TTL_S = 1.0  # how stale this process's idea of the current policy version may be


class PolicyStore:
    """`policy(version)` and `current_version()` for the engine, the views and the dispatcher."""

    def __init__(self, db: Engine, writer: Writer, clock: Clock) -> None:
        self.db = db
        self.writer = writer
        self.clock = clock
        self._policies: dict[int, Policy] = {}
        self._overrides_seen = 0
        self._current: int | None = None
        self._checked = 0.0

    def policy(self, version: int) -> Policy:
        """The compiled policy of a version, with the overrides posted through the API."""
        found = self._policies.get(version)
        if found is None:
            with self.db.connect() as conn:
                row = conn.execute(
                    select(policies.c.yaml, policies.c.source).where(policies.c.version == version)
                ).first()
            if row is None:
                raise KeyError(f"policy version {version} is not stored")
            found, problems = load_policy_text(row.yaml, row.source or f"version {version}")
            if found is None:
                raise PolicyError(problems)
            found = self._with_overrides(found)
            self._policies[version] = found
        return found

    def current(self) -> Policy:
        """The policy of the current version."""
        return self.policy(self.current_version())

    def current_version(self) -> int:
        """The newest stored version; re-read at most every second (other processes PUT too)."""
        tick = time.monotonic()
        if self._current is None or tick - self._checked > VERSION_TTL_S:
            with self.db.connect() as conn:
                v = conn.execute(select(func.max(policies.c.version))).scalar()
            if v is None:
                raise RuntimeError("no policy is stored; start with --policy FILE")
            self._current, self._checked = v, tick
        return self._current

    def text(self, version: int) -> str:
        """The YAML a version was stored from."""
        with self.db.connect() as conn:
            return conn.execute(
                select(policies.c.yaml).where(policies.c.version == version)
            ).scalar_one()

    def store(self, yaml_text: str, source: str) -> tuple[int, Policy]:
        """Validate and store a new version (raises PolicyError with every problem)."""
        policy, problems = load_policy_text(yaml_text, source)
        if policy is None:
            raise PolicyError(problems)
        now = self.clock.now()

        def write(conn: Connection) -> int:
            return conn.execute(
                insert(policies)
                .values(yaml=yaml_text, source=source, created_at=now)
                .returning(policies.c.version)
            ).scalar_one()

        version = self.writer.call(write)
        self._policies[version] = policy
        self._current, self._checked = version, time.monotonic()
        return version, policy

    def ensure(self, yaml_text: str, source: str) -> int:
        """Store the policy unless the current version already holds exactly this text."""
        try:
            current = self.current_version()
            if self.text(current) == yaml_text:
                self.policy(current)
                return current
        except RuntimeError:
            pass
        return self.store(yaml_text, source)[0]

    def add_override(
        self, schedule_id: str, start: int, end: int, who: str, note: str | None
    ) -> int:
        """Store a temporary on-call override; every cached version sees it from now on.

        Refused (nothing written) for an unknown schedule (404) or person, an instant out of
        range, a `to` not after `from`, or a NUL in the note (422 naming the field)."""
        if note is not None and "\x00" in note:  # PostgreSQL's text cannot hold it
            raise Refused("note: a NUL character cannot be stored", 422, "note")
        problem = override_error(Override(start, end, who))
        if problem is not None:
            field, why = problem
            raise Refused(why, 422, field)
        current = self.current()
        if schedule_id not in current.schedules:
            raise Refused(f"unknown schedule '{schedule_id}'", 404, "id")
        if who not in current.people:
            raise Refused(f"unknown person '{who}'", 422, "who")
        now = self.clock.now()

        def write(conn: Connection) -> int:
            return conn.execute(
                insert(overrides)
                .values(
                    schedule_id=schedule_id,
                    start=start,
                    end=end,
                    who=who,
                    created_at=now,
                    note=note,
                )
                .returning(overrides.c.id)
            ).scalar_one()

        oid = self.writer.call(write)
        self._policies.clear()
        return int(oid)

    def refresh_overrides(self) -> None:
        """Drop cached policies when another process (or this one) stored an override."""
        with self.db.connect() as conn:
            latest = conn.execute(select(func.max(overrides.c.id))).scalar() or 0
        if latest != self._overrides_seen:
            self._policies.clear()

    def _with_overrides(self, policy: Policy) -> Policy:
        with self.db.connect() as conn:
            rows = conn.execute(select(overrides).order_by(overrides.c.id)).all()
        self._overrides_seen = max((r.id for r in rows), default=0)
        extra: dict[str, list[Override]] = {}
        for r in rows:
            extra.setdefault(r.schedule_id, []).append(Override(r.start, r.end, r.who))
        if not extra:
            return policy
        schedules = {
            sid: replace(s, overrides=(*s.overrides, *extra.get(sid, ())))
            for sid, s in policy.schedules.items()
        }
        return replace(policy, schedules=schedules)
