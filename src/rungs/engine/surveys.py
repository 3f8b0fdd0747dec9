"""The survey manager: satisfaction surveys sent after resolution, expired when unanswered.

`watch` is called by `Commands.decide_in` after every decision: a resolution schedules the
case's survey (`policy.surveys.after` later) when the case has a requester, was never
reopened and has no survey yet; unless it is sampled out, its requester opted out, or was
surveyed within `per_contact` (then the row is kept as `skipped`: one survey per case, ever).
A reopen before the survey went out cancels it (`survey_cancelled`).

`next_due(conn)` / `fire_due(conn, until)` (the loop's manager shape, rows taken through
`rungs.store.claims`): a due `scheduled` row is sent (an outbox row of kind `mail`, threaded
with the case's mails, rendered by the dispatcher with one link per rating) and becomes
`sent` until it expires; a due `sent` row expires (`survey_expired`). `answer_in` records an
answer once (`survey_answered`); a rating at or below `followup_at_or_below` adds a
`survey_followup`, which pages the account owner (see `rungs.core.customer`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from rungs.core.model import Case, Event
from rungs.engine.mail import ACTOR, Answer, outgoing
from rungs.policy import Policy
from rungs.store import surveys as store
from rungs.store.cases import load_case
from rungs.store.claims import claim_due, first_due
from rungs.store.mail import thread_of
from rungs.time.clock import Clock, VirtualClock

if TYPE_CHECKING:  # a type-only import: Commands calls `watch` and `answer_in`
    from rungs.engine.commands import Commands

__all__ = ["Gone", "Surveys", "answer_in", "opt_out_in", "watch"]

ACTIVE = ("open", "acknowledged", "pending")


class Gone(Exception):
    """The survey was answered already, expired, or never was: its link answers 410."""


def watch(
    commands: Commands, conn: Connection, old: Case, new: Case, event: Event, now: int
) -> None:
    """After a decision: schedule the survey on resolution, cancel it on reopen."""
    if new.status == "resolved" and old.status in ACTIVE:
        _schedule(commands, conn, new, event, now)
    elif old.status == "resolved" and new.status == "open":
        row = store.survey_of_case(conn, new.id)
        if row is not None and row["status"] == "scheduled":
            store.set_survey(conn, row["token"], status="cancelled", due=None)
            _entry(commands, conn, new.id, now, "survey_cancelled", why="reopened")


def _schedule(commands: Commands, conn: Connection, case: Case, event: Event, now: int) -> None:
    policy = commands.policies.policy(commands.policies.current_version())
    s = policy.surveys
    requester = str(case.fields.get("requester") or "").lower()
    if s is None or not requester or case.epoch > 0:
        return
    if store.survey_of_case(conn, case.id) is not None:
        return
    recent = bool(s.per_contact) and store.recent_for(conn, requester, now - s.per_contact)
    sampled_out = _bucket(case.id) >= s.sample
    skip = sampled_out or recent or store.opted_out(conn, requester)
    status = "skipped" if skip else "scheduled"
    customer = policy.customer(case.customer)
    store.add_survey(
        conn,
        {
            "token": secrets.token_urlsafe(24), "case_id": case.id, "requester": requester,
            "customer": case.customer, "tier": customer.tier if customer else None,
            "escalated": int(case.level > 1), "resolved_by": event.by, "reason": event.reason,
            "status": status, "due": now + s.after if status == "scheduled" else None,
            "resolved_at": now, "scale": s.scale,
        },
    )  # fmt: skip


def _bucket(case_id: str) -> int:
    """The case's place in 0..99 for sampling: the same case always falls the same way."""
    return int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:4], "big") % 100


def _entry(commands: Commands, conn: Connection, case_id: str, now: int, kind: str,
           **fields: Any) -> None:  # fmt: skip
    event = Event("observed", data={"entry": kind, **fields}, actor=ACTOR)
    commands.decide_in(conn, case_id, event, now)


@dataclass
class Stats:
    sent: int = 0
    expired: int = 0


class Surveys:
    """The engine manager of survey sends and expiries."""

    name = "surveys"

    def __init__(self, commands: Commands, clock: Clock, *, batch: int = 200) -> None:
        self.commands = commands
        self.clock = clock
        self.batch = batch
        self.stats = Stats()

    def next_due(self, conn: Connection) -> int | None:
        return first_due(conn, store.surveys, "due")

    def fire_due(self, conn: Connection, until: int) -> int:
        rows = claim_due(conn, store.surveys, "due", until, limit=self.batch, order=("token",))
        for row in rows:
            if isinstance(self.clock, VirtualClock):
                self.clock.set(max(self.clock.now(), row.due))
            now = max(self.clock.now(), row.due)
            if row.status == "scheduled":
                self._send(conn, row._asdict(), now)  # a SQLAlchemy Row or claims' namedtuple
            else:
                store.set_survey(conn, row.token, status="expired", due=None)
                _entry(self.commands, conn, row.case_id, now, "survey_expired")
                self.stats.expired += 1
        return len(rows)

    def _send(self, conn: Connection, row: Any, now: int) -> None:
        policy = self.commands.policies.policy(self.commands.policies.current_version())
        loaded = load_case(conn, row["case_id"], lock=True)
        s = policy.surveys
        if loaded is None or loaded[0].status in ACTIVE or s is None:
            store.set_survey(conn, row["token"], status="cancelled", due=None)
            return
        if store.opted_out(conn, row["requester"]):
            store.set_survey(conn, row["token"], status="skipped", due=None)
            return
        case = loaded[0]
        thread = thread_of(conn, case.id)
        answer = Answer(f"[{case.id}] How did we do? {case.title}", "")  # rendered on delivery
        out = outgoing(
            conn, case.id, row["requester"], answer, _reply_address(policy), "survey", now,
            in_reply_to=thread[-1] if thread else None, references=tuple(thread),
            auto="auto-generated",
        )  # fmt: skip
        out.payload["survey"] = {"token": row["token"], "scale": row["scale"], "case": case.id,
                                 "title": case.title}  # fmt: skip
        self.commands.queue_in(conn, [out], now)
        store.set_survey(conn, row["token"], status="sent", sent_at=now,
                         expires_at=now + s.expire, due=now + s.expire)  # fmt: skip
        _entry(self.commands, conn, case.id, now, "survey_sent", to=row["requester"])
        self.stats.sent += 1


def _reply_address(policy: Policy) -> str:
    """Where a reply to a survey goes: the first inbound address that does not escalate."""
    mail = policy.inbound_email
    if mail is None:
        return ""
    return next((a for a, s in mail.addresses.items() if not s.escalate), "")


def answer_in(
    commands: Commands, conn: Connection, token: str, rating: int, comment: str, now: int
) -> dict[str, Any]:
    """Record one answer (Gone when answered before, expired, or unknown); ValueError for a
    rating outside the survey's scale."""
    row = store.by_token(conn, token, lock=True)
    if row is None or row["status"] != "sent" or now >= (row["expires_at"] or 0):
        raise Gone(token)
    if not 1 <= rating <= row["scale"]:
        raise ValueError(f"rating must be from 1 to {row['scale']}")
    store.set_survey(conn, token, status="answered", answered_at=now, rating=rating,
                     comment=comment or None, due=None)  # fmt: skip
    _entry(commands, conn, row["case_id"], now, "survey_answered", rating=rating, comment=comment)
    policy = commands.policies.policy(commands.policies.current_version())
    low = policy.surveys.followup_at_or_below if policy.surveys else 0
    if rating <= low:
        _entry(commands, conn, row["case_id"], now, "survey_followup", rating=rating,
               comment=comment)  # fmt: skip
    return {**row, "status": "answered", "rating": rating}


def opt_out_in(commands: Commands, conn: Connection, token: str, now: int) -> str:
    """The requester of this survey asks for no more surveys (honoured from now on; a
    `survey_opt_out` entry on the survey's case the first time)."""
    row = store.by_token(conn, token)
    if row is None:
        raise Gone(token)
    if store.opt_out(conn, row["requester"], now):
        _entry(commands, conn, row["case_id"], now, "survey_opt_out", requester=row["requester"])
    return str(row["requester"])
