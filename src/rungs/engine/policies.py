"""The policy store: stored versions compiled once, with the schedule overrides folded in.

Every decision runs with its case's policy version; reads of "the current version" may be a
second stale, because other processes store versions too.

Two modes. File-managed (`managed_by` names the file `serve --policy` loaded): the file is the
source of truth, stored as a new version at start when its text changed, and `change` refuses
to store anything else. Database-managed (no file): `change` stores new versions, which later
starts serve. A broken file at start keeps the last stored version serving (`file_error`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from rungs.core.model import Refused
from rungs.engine.writer import Writer
from rungs.policy import Policy, PolicyError, Problem, load_policy_text
from rungs.policy.advice import advice
from rungs.policy.diff import PolicyDiff, diff_texts
from rungs.policy.secrets import secret_prefix
from rungs.schedules.oncall import Override, override_error
from rungs.store.sql import Sql, run
from rungs.store.tables import overrides, policies
from rungs.store.usage import in_use
from rungs.time.clock import Clock

__all__ = ["PolicyChange", "PolicyConflict", "PolicyStore", "RECENT_US", "VERSION_TTL_S"]

VERSION_TTL_S = 1.0  # how stale this process's idea of the current policy version may be
RECENT_US = 24 * 3600 * 1_000_000  # an integration that received events this recently is in use
_IN_USE_CHECKED = ("customers", "matrices", "people", "integrations")

log = logging.getLogger("rungs.policy")


class PolicyConflict(Exception):
    """A policy change refused as it stands (409): the policy is file-managed, or it removes
    what is in use. `extra` goes into the answer's JSON."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """What storing a policy text changes (`version` None: a dry run, nothing stored)."""

    current: int
    diff: PolicyDiff
    in_use: dict[str, list[str]]
    warnings: list[Problem] = field(default_factory=list)
    version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.version is None,
            "current_version": self.current,
            "version": self.version,
            "changes": self.diff.as_dict(),
            "in_use": self.in_use,
            "warnings": [p.as_dict() for p in self.warnings],
        }


def _in_use_words(used: dict[str, list[str]]) -> str:
    return "; ".join(f"{section} {', '.join(ids)}" for section, ids in used.items())


class PolicyStore:
    """`policy(version)` and `current_version()` for the engine, the views and the dispatcher."""

    def __init__(
        self, db: Engine, writer: Writer, clock: Clock, *, managed_by: str | None = None
    ) -> None:
        self.db = db
        self.writer = writer
        self.clock = clock
        self.managed_by = managed_by  # the policy file, when file-managed
        self.file_error: str | None = None  # the file's errors when it was refused at start
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
            # accepted when stored: its `*_env` names are checked where they are read
            found, problems = load_policy_text(
                row.yaml, row.source or f"version {version}", secret_prefix=None
            )
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
        policy = _checked(yaml_text, source)
        version = self._store(yaml_text, source, policy)
        return version, self._policies[version]  # with the overrides posted so far

    def _store(self, yaml_text: str, source: str, policy: Policy) -> int:
        now = self.clock.now()

        def write(conn: Connection) -> int:
            return conn.execute(
                insert(policies)
                .values(yaml=yaml_text, source=source, created_at=now)
                .returning(policies.c.version)
            ).scalar_one()

        version = self.writer.call(write)
        self._policies[version] = self._with_overrides(policy)
        self._current, self._checked = version, time.monotonic()
        return version

    def load_file(self, path: Path, *, strict: bool = False) -> int:
        """Start-up in file-managed mode: store the file's policy when its text changed.

        A file that does not read or compile is logged, error by error, and kept in
        `file_error` while the last stored version serves on: a typo must not stop paging.
        With `strict`, or when no version is stored yet, it raises `PolicyError` instead.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems = [Problem(str(path), 1, 1, f"cannot read file: {exc}")]
        else:
            prefix = secret_prefix(os.environ)
            policy, problems = load_policy_text(
                text, str(path), str(path.parent), secret_prefix=prefix
            )
            if policy is not None:
                self.file_error = None
                return self.ensure(text, str(path))
        errors = [p for p in problems if p.severity == "error"]
        if strict:
            raise PolicyError(errors)
        try:
            version = self.current_version()
        except RuntimeError:
            raise PolicyError(errors) from None
        for p in errors:
            log.error("%s", p)
        log.error(
            "the policy file %s has errors: serving the stored policy version %d", path, version
        )
        self.file_error = "\n".join(str(p) for p in errors)
        return version

    def change(
        self, yaml_text: str, source: str, *, dry_run: bool = False, force: bool = False
    ) -> PolicyChange:
        """What `PUT /v1/policy` does: validate (PolicyError), compare with the current
        version, and store unless a dry run. Refused (PolicyConflict) when the policy is
        file-managed, or when it removes a customer, matrix or person that open cases use, or
        an integration that received events within a day, unless `force`."""
        prefix = secret_prefix(os.environ)
        policy, problems = load_policy_text(yaml_text, source, secret_prefix=prefix)
        if policy is None:
            raise PolicyError(problems)
        if self.managed_by is not None and not dry_run:
            raise PolicyConflict(
                f"the policy is managed by the file {self.managed_by} (rungs serve --policy): "
                "edit the file and restart, or serve without --policy to manage it here",
                file=self.managed_by,
            )
        current = self.current_version()
        diff = diff_texts(self.text(current), yaml_text)
        removed = {s: diff.removed[s] for s in _IN_USE_CHECKED if diff.removed[s]}
        used: dict[str, list[str]] = {}
        if removed:
            with self.db.connect() as conn:
                used = in_use(conn, removed, self.clock.now() - RECENT_US)
        warnings = [p for p in problems if p.severity == "warning"]
        warnings += advice(yaml_text, source, policy)
        if dry_run:
            return PolicyChange(current, diff, used, warnings)
        if used and not force:
            raise PolicyConflict(
                f"this policy removes what is in use ({_in_use_words(used)}); "
                "PUT it with ?force=true to store it anyway",
                in_use=used,
                changes=diff.as_dict(),
            )
        version = self._store(yaml_text, source, policy)
        return PolicyChange(current, diff, used, warnings, version)

    def ensure(self, yaml_text: str, source: str) -> int:
        """Store the policy unless the current version already holds exactly this text."""
        try:
            current = self.current_version()
            if self.text(current) == yaml_text:
                _checked(yaml_text, source)  # as a new version is: the prefix may be new
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

    def refresh_overrides(self, conn: Connection | None = None) -> None:
        """Drop cached policies when another process (or this one) stored an override. On
        the driver's cursor, with the engine loop's `conn` (once per tick): SQLAlchemy's
        compiling of the statement cost more than the query."""
        if conn is None:
            with self.db.connect() as own:
                self.refresh_overrides(own)
            return
        latest = run(conn, _LATEST_OVERRIDE, {})[0] or 0
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


_LATEST_OVERRIDE = Sql(f"SELECT max(id) FROM {overrides.name}")


def _checked(yaml_text: str, source: str) -> Policy:
    """The policy a text compiles to, `*_env` names checked against this deployment's
    prefix (`rungs.policy.secrets`); PolicyError with every problem otherwise."""
    policy, problems = load_policy_text(yaml_text, source, secret_prefix=secret_prefix(os.environ))
    if policy is None:
        raise PolicyError(problems)
    return policy
