"""`Views`: the read side. Every GET of the API (and the console to come) reads here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Engine

from rungs.core import sla
from rungs.core.model import Case
from rungs.policy import Policy, Problem, load_policy_text
from rungs.policy.advice import advice
from rungs.policy.redact import public_yaml
from rungs.policy.secrets import secret_prefix
from rungs.policy.versions import PolicyVersions
from rungs.schedules.oncall import Schedule
from rungs.sim.explain import explain
from rungs.store.cases import load_case
from rungs.store.compensation import ledger, ledger_csv
from rungs.store.credentials import Credential, credential
from rungs.store.deliveries import DeadRow, TestSend, dead_rows, test_sends
from rungs.store.feeds import feed_nonce
from rungs.store.maintenance import windows
from rungs.store.tokens import TokenCache
from rungs.store.views import inbound
from rungs.store.views._admin import held_cases, integration_states
from rungs.store.views._board import board, person_shifts
from rungs.store.views._cases import (
    case_json,
    case_page,
    entries,
    filter_error,
    handoff_of,
    paged,
    timeline_rows,
    timeline_tail,
)
from rungs.store.views._oncall import ics, on_call_now, person_ics, shift_rows
from rungs.store.views._ops import counts, heartbeat_states, ping, token_list
from rungs.store.views._outbox import outbox_depth
from rungs.store.views._policies import history, version_diff
from rungs.store.views._storms import alerts_of, open_count, window_by_id
from rungs.store.views.queue import QueueRow, holders, queue_page
from rungs.store.views.report_open import value_at_risk
from rungs.store.views.reports import Window, report
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

    def timeline_tail(
        self, case_id: str, kinds: list[str], limit: int, before: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None, list[str]]:
        """A page of the case's timeline, newest first (see `_cases.timeline_tail`)."""
        with self.db.connect() as conn:
            return timeline_tail(conn, case_id, kinds, limit, before)

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

    # reports -----------------------------------------------------------------------------

    def report(self, section: str, window: Window) -> dict[str, Any]:
        """One report section over `case_facts` (`rungs.store.views.reports`)."""
        with self.db.connect() as conn:
            return report(conn, section, window, self.policy(), self.clock.now())

    def value_at_risk(self, horizon: int) -> dict[str, Any]:
        """Open cases near or past breach, by customer value (`report_open.value_at_risk`)."""
        with self.db.connect() as conn:
            return value_at_risk(conn, self.policy(), self.clock.now(), horizon)

    def compensation(self, customer: str | None, period: str | None) -> list[dict[str, Any]]:
        """The compensation ledger (`rungs.store.compensation`)."""
        with self.db.connect() as conn:
            return ledger(conn, customer, period)

    def compensation_csv(self, rows: list[dict[str, Any]]) -> str:
        return ledger_csv(rows)

    # console -----------------------------------------------------------------------------

    def queue(
        self,
        *,
        statuses: tuple[str, ...],
        assignees: tuple[str, ...] | None = None,
        search: str | None = None,
        limit: int = 200,
    ) -> tuple[list[QueueRow], int]:
        """The console's queue (`store.views.queue`): a page of rows soonest breach first,
        each with who holds it now, and how many cases match."""
        with self.db.connect() as conn:
            rows, total = queue_page(
                conn, statuses=statuses, assignees=assignees, search=search, limit=limit
            )
        return holders(rows, self.policies.policy, self.clock.now()), total

    def explain(self, case_id: str) -> dict[str, Any] | None:
        """Why each SLA clock of the case stands where it does: the report of
        `rungs simulate --explain` (`sim.explain.explain`), from the stored timeline."""
        with self.db.connect() as conn:
            found = load_case(conn, case_id, lock=False)
            if found is None:
                return None
            stored = entries(conn, case_id, ("sla_warning", "sla_breached"))
        case, version = found
        return explain(case, self.policies.policy(version), stored, self.clock.now())

    def credential(self, person: str) -> Credential | None:
        """A person's console password hash and lockout state (`store.credentials`)."""
        with self.db.connect() as conn:
            return credential(conn, person)

    # the console's pages (issue 13) ------------------------------------------------------

    def oncall_board(self, at: int) -> dict[str, Any]:
        """Who is on call at `at` per schedule and per matrix level, and the shifts ahead."""
        return board(self.policy(), at)

    def person_shifts(self, person: str, at: int) -> list[dict[str, Any]]:
        """The person's shifts in every schedule over the next two weeks."""
        return person_shifts(self.policy(), person, at)

    def held_cases(self, person: str) -> list[dict[str, Any]]:
        """The open cases assigned to the person, or paging them this round."""
        with self.db.connect() as conn:
            return held_cases(conn, person)

    def test_sends(self, person: str) -> list[TestSend]:
        """The person's latest test notifications and how each went."""
        with self.db.connect() as conn:
            return test_sends(conn, person)

    def dead_letters(self, limit: int = 100) -> tuple[list[DeadRow], int]:
        """The newest outbox rows given up for good, and how many there are."""
        with self.db.connect() as conn:
            return dead_rows(conn, limit)

    def integration_states(self, unset: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Each integration's last event and health (`unset`: `Engine.keys_unset()`)."""
        with self.db.connect() as conn:
            return integration_states(conn, self.policy(), unset)

    def policy_history(self, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
        """The newest stored policy versions, who stored each and when, and the count."""
        with self.db.connect() as conn:
            return history(conn, limit)

    def policy_diff(self, version: int) -> dict[str, Any] | None:
        """What a stored version changed from the one before it."""
        with self.db.connect() as conn:
            return version_diff(conn, version)

    def check_policy(self, text: str, source: str) -> tuple[Policy | None, list[Problem]]:
        """A policy text as `rungs validate` checks it: every error and warning, located."""
        policy, problems = load_policy_text(text, source, secret_prefix=secret_prefix(os.environ))
        if policy is not None:
            problems = problems + advice(text, source, policy)
        return policy, problems

    def feed_nonce(self, person: str) -> str | None:
        """The nonce of the person's calendar feed (`rungs.store.feeds`), None when off."""
        with self.db.connect() as conn:
            return feed_nonce(conn, person)

    def person_ics(self, person: str, start: int, end: int) -> bytes:
        """The person's shifts in every schedule over [start, end), as one iCalendar feed."""
        return person_ics(self.policy(), person, start, end)

    # customers' mail and surveys (issue 15; `rungs.store.views.inbound`) ---------------------

    def unmatched_mail(self, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return inbound.unmatched(conn, limit=limit, before=before)

    def attachments(self, case_id: str) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return inbound.attachments(conn, case_id)

    def survey(self, token: str) -> dict[str, Any] | None:
        with self.db.connect() as conn:
            return inbound.survey(conn, token)

    def csat(self, since: int | None = None, until: int | None = None) -> dict[str, Any]:
        teams: dict[str, list[str]] = {}
        for team in self.policy().teams.values():
            for person in team.members:
                teams.setdefault(person, []).append(team.id)
        with self.db.connect() as conn:
            return inbound.csat(conn, since, until, teams)
