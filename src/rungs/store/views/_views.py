"""`Views`: the read side. Every GET of the API (and the console to come) reads here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Engine

from rungs.core import sla
from rungs.core.model import Case
from rungs.policy import Policy
from rungs.policy.redact import public_yaml
from rungs.policy.versions import PolicyVersions
from rungs.schedules.oncall import Schedule
from rungs.store.cases import load_case
from rungs.store.maintenance import windows
from rungs.store.tokens import TokenCache
from rungs.store.views._cases import (
    case_json,
    case_page,
    filter_error,
    handoff_of,
    paged,
    timeline_rows,
)
from rungs.store.views._oncall import ics, on_call_now, shift_rows
from rungs.store.views._ops import counts, heartbeat_states, ping, token_list
from rungs.store.views._outbox import outbox_depth
from rungs.store.views._storms import alerts_of, open_count, window_by_id
from rungs.time.clock import Clock

__all__ = ["Policies", "Views"]


class Policies(PolicyVersions, Protocol):
    """The policy versions the views read with (the engine's `PolicyStore`), and their text."""

    def text(self, version: int) -> str: ...

    @property
    def file_error(self) -> str | None:
        """The policy file's errors when it was refused at start (the last version serves)."""
        ...


class Views:
    """Reads on their own connections; answers are JSON-ready, None when a thing is absent."""

    def __init__(self, db: Engine, policies: Policies, clock: Clock) -> None:
        self.db = db
        self.policies = policies
        self.clock = clock
        self.tokens = TokenCache(db)  # API token look-ups, remembered a second

    # cases -------------------------------------------------------------------------------

    def case_state(self, case_id: str) -> tuple[Case, int] | None:
        """The stored case and its policy version."""
        with self.db.connect() as conn:
            return load_case(conn, case_id, lock=False)

    def case_json(self, case: Case, version: int) -> dict[str, Any]:
        return case_json(case, version, self.policies.policy(version), self.clock.now())

    def case(self, case_id: str) -> dict[str, Any] | None:
        found = self.case_state(case_id)
        if found is None:
            return None
        with self.db.connect() as conn:  # `alert_count` and its alerts (issue 17)
            return {**self.case_json(*found), **alerts_of(conn, case_id)}

    def sla(self, case_id: str) -> dict[str, dict[str, object]] | None:
        """The case's SLA clocks now (`core.sla.clocks`, as in the case's JSON)."""
        found = self.case_state(case_id)
        if found is None:
            return None
        case, version = found
        return sla.clocks(case, self.policies.policy(version), self.clock.now())

    def case_card(self, case_id: str) -> dict[str, Any] | None:
        """The few fields a one-click link page shows."""
        found = self.case_state(case_id)
        if found is None:
            return None
        c = found[0]
        return {
            "id": c.id,
            "title": c.title,
            "priority": c.priority,
            "status": c.status,
            "level": c.level,
            "customer": c.customer,
        }

    def outbox_depth(self) -> list[tuple[str, int]]:
        """Outbox rows pending, sending and dead, for `/metrics`."""
        with self.db.connect() as conn:
            return outbox_depth(conn)

    def cases(self, filters: Mapping[str, object], limit: int, offset: int) -> dict[str, Any]:
        with self.db.connect() as conn:
            page, total = case_page(conn, filters, limit, offset)
        items = [self.case_json(case, version) for case, version in page]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    def filter_error(self, filters: Mapping[str, object]) -> tuple[str, str] | None:
        """(filter, why) for a list filter value that can match no case, else None."""
        with self.db.connect() as conn:
            return filter_error(conn, filters, self.policy())

    def timeline(self, case_id: str) -> list[dict[str, Any]] | None:
        with self.db.connect() as conn:
            if load_case(conn, case_id, lock=False) is None:
                return None
            return timeline_rows(conn, case_id)

    def handoff(self, case_id: str, level: int | None = None) -> dict[str, Any] | None:
        with self.db.connect() as conn:
            return handoff_of(conn, case_id, self.policies.policy, self.clock.now(), level)

    def paged(self, case_id: str) -> set[str]:
        """Everyone the case has paged."""
        with self.db.connect() as conn:
            return paged(conn, case_id)

    # policy and on-call ------------------------------------------------------------------

    def policy(self) -> Policy:
        """The current policy version."""
        return self.policies.current()

    def policy_yaml(self, *, redact: bool) -> tuple[int, str]:
        """The current version and its YAML as stored, or, with `redact`, rebuilt from the
        parsed policy with every secret removed (`rungs.policy.redact`)."""
        version = self.policies.current_version()
        text = self.policies.text(version)
        if redact:
            text = public_yaml(text, self.policies.policy(version), f"version {version}")
        return version, text

    def policy_file_error(self) -> str | None:
        """Why the policy file was not loaded at start (None when it was, or there is none)."""
        return self.policies.file_error

    def schedule(self, sid: str) -> Schedule | None:
        return self.policy().schedules.get(sid)

    def on_call(self, at: int) -> list[dict[str, Any]]:
        return on_call_now(self.policy(), at)

    def shifts(self, schedule: Schedule, start: int, end: int) -> list[dict[str, Any]]:
        return shift_rows(schedule, start, end)

    def ics(self, schedule: Schedule, start: int, end: int, person: str | None) -> bytes:
        return ics(schedule, start, end, person)

    # operations --------------------------------------------------------------------------

    def health(self) -> None:
        """Raises when the database does not answer."""
        with self.db.connect() as conn:
            ping(conn)

    def maintenance(self, limit: int) -> list[dict[str, Any]]:
        """Maintenance windows, the latest first."""
        with self.db.connect() as conn:
            return windows(conn, self.clock.now(), limit)

    def maintenance_window(self, window: int) -> dict[str, Any] | None:
        with self.db.connect() as conn:
            return window_by_id(conn, window, self.clock.now())

    def maintenance_open(self) -> int:
        with self.db.connect() as conn:
            return open_count(conn, self.clock.now())

    def counts(self) -> tuple[list[tuple[str, int]], int]:
        """(cases by status, timers pending), for `/metrics`."""
        with self.db.connect() as conn:
            return counts(conn)

    def token_list(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return token_list(conn)

    def heartbeats(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return heartbeat_states(conn)
