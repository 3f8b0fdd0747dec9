"""Taking one customer mail, in one writer transaction: which case, and what it does there.

`api/inbound` parses and classifies the mail (`Inbound`: sender's customer, the address it
was written to, auto-reply or not); this decides against the store, in the same transaction
as the decisions it leads to, so a mail is answered `250` (or marked seen) only once all of
it is committed:

- a mail taken before (the same `Message-ID` in) changes nothing;
- its case is the one any of its `In-Reply-To`/`References` ids belongs to, else the one its
  subject names (`[C12]`) when that case is the sender's customer's;
- an auto-reply or bulk mail is recorded on its case (`auto_reply`) and never answered;
- on an open case: a `customer_reply`, or on an `escalate` address a `request_escalation`
  (at the last level: recorded, the level paged again); a resolved case is reopened first
  when it was resolved within `reopen_within`; otherwise a new case is opened, linked to it;
- no case: a known sender's mail (or anyone's, with a `default_customer`, corrected) opens
  one; an unknown sender's is kept as unmatched;
- new cases and unmatched mail are answered at once through the outbox ("we received your
  request", `[C12]` in the subject), at most once per sender per `ANSWER_EVERY`, and an
  unmatched sender only once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from rungs.core.model import Case, Event
from rungs.policy import Policy
from rungs.store import mail as store
from rungs.store.cases import load_case
from rungs.store.outbox import NewRow

if TYPE_CHECKING:  # a type-only import: Commands calls `take_in`
    from rungs.engine.commands import Commands

__all__ = ["ANSWER_EVERY", "ACTOR", "Answer", "Compose", "Inbound", "Taken", "outgoing", "take_in"]

ANSWER_EVERY = 600_000_000  # µs: at most one automatic answer per sender in 10 minutes
ACTOR = "email"  # the `actor` of entries a mail led to
ACTIVE = ("open", "acknowledged", "pending")


@dataclass(frozen=True, slots=True)
class Inbound:
    """One parsed, classified mail (see `rungs.api.inbound`)."""

    message_id: str
    sender: str  # lower case
    recipient: str  # the inbound address written to (lower case; "" when none is listed)
    subject: str
    text: str  # quoted replies and signatures stripped
    date: str | None  # the Date header as written: recorded, never used for the SLA
    ids: tuple[str, ...] = ()  # In-Reply-To, then References, newest first
    case_hint: str | None = None  # `[C12]` in the subject
    auto: bool = False  # an auto-reply or bulk mail: never answered
    customer: str | None = None  # the policy customer the sender belongs to
    escalate: bool = False
    category: str | None = None
    priority: str | None = None
    attachments: tuple[store.Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    subject: str
    text: str


# (mail, the case opened, or None for unmatched mail) -> the answer's subject and text
Compose = Callable[[Inbound, str | None], Answer]


@dataclass(slots=True)
class Taken:
    outcome: str  # new, reply, escalation, reopened, linked, auto, unmatched, duplicate
    case_id: str | None = None
    answered: bool = False
    rows: list[NewRow] = field(default_factory=list)


def take_in(
    conn: Connection, commands: Commands, mail: Inbound, now: int, compose: Compose
) -> Taken:
    """Decide and write everything `mail` leads to; the answer's outbox rows in `Taken.rows`
    (the caller writes them in this transaction)."""
    if store.seen_in(conn, mail.message_id):
        return Taken("duplicate", store.case_of_ids(conn, [mail.message_id]))
    version = commands.policies.current_version()
    policy = commands.policies.policy(version)
    case = _case_of(conn, mail)
    if mail.auto:
        if case is not None:
            data = {"entry": "auto_reply", "sender": mail.sender, "subject": mail.subject,
                    "message_id": mail.message_id}  # fmt: skip
            commands.decide_in(conn, case.id, Event("observed", data=data, actor=ACTOR), now)
        _keep(conn, mail, case.id if case else None, "auto", now)
        return Taken("auto", case.id if case else None)
    if case is not None and case.status in ACTIVE:
        return _act(conn, commands, mail, case.id, policy, now, "reply")
    if case is not None and case.status == "resolved" and _recent(case, policy, now):
        commands.decide_in(conn, case.id, Event("reopen", actor=ACTOR), now)
        return _act(conn, commands, mail, case.id, policy, now, "reopened")
    data = _open_data(mail, policy, case)
    if data is None:
        return _unmatched(conn, mail, now, compose)
    new, _ = commands.open_in(conn, data, version, policy, now)
    taken = Taken("linked" if case is not None else "new", new.id)
    if mail.escalate:
        _decide(conn, commands, mail, new.id, policy, now)
    _keep(conn, mail, new.id, "escalation" if mail.escalate else "new", now)
    store.keep_attachments(conn, new.id, mail.message_id, mail.attachments, now)
    _answer(conn, mail, new.id, now, compose, taken)
    return taken


def _case_of(conn: Connection, mail: Inbound) -> Case | None:
    case_id = store.case_of_ids(conn, mail.ids)
    if case_id is not None:
        loaded = load_case(conn, case_id, lock=True)
        return loaded[0] if loaded else None
    if mail.case_hint and mail.customer is not None:
        loaded = load_case(conn, mail.case_hint, lock=True)
        if loaded is not None and loaded[0].customer == mail.customer:
            return loaded[0]
    return None


def _recent(case: Case, policy: Policy, now: int) -> bool:
    within = policy.inbound_email.reopen_within if policy.inbound_email else 7 * 86_400_000_000
    return case.resolved_at is not None and now - case.resolved_at <= within


def _act(
    conn: Connection, commands: Commands, mail: Inbound, case_id: str, policy: Policy, now: int,
    outcome: str,
) -> Taken:  # fmt: skip
    _decide(conn, commands, mail, case_id, policy, now)
    kind = "escalation" if mail.escalate else "reply"
    _keep(conn, mail, case_id, kind, now)
    store.keep_attachments(conn, case_id, mail.message_id, mail.attachments, now)
    return Taken("escalation" if mail.escalate and outcome == "reply" else outcome, case_id)


def _decide(
    conn: Connection, commands: Commands, mail: Inbound, case_id: str, policy: Policy, now: int
) -> None:
    data: dict[str, Any] = {"text": mail.text, "sender": mail.sender, "message_id": mail.message_id}
    if mail.attachments:
        data["attachments"] = [a.filename for a in mail.attachments]
    if mail.escalate:
        reason = policy.inbound_email.escalation_reason if policy.inbound_email else None
        event = Event("request_escalation", reason=reason, data={**data, "at_top": "page"},
                      actor=ACTOR)  # fmt: skip
    else:
        event = Event("customer_reply", data=data, actor=ACTOR)
    commands.decide_in(conn, case_id, event, now)


def _open_data(mail: Inbound, policy: Policy, linked: Case | None) -> dict[str, Any] | None:
    """What the case opens with; None for an unknown sender without a `default_customer`."""
    fields: dict[str, Any] = {"requester": mail.sender, "source": "email"}
    if mail.date:
        fields["mail_date"] = mail.date
    if linked is not None:
        fields["linked_to"] = linked.id
    data: dict[str, Any] = {
        "title": mail.subject or "(no subject)",
        "description": mail.text,
        "category": mail.category or (linked.category if linked else None) or "general",
        "priority": mail.priority or (linked.priority if linked else None) or "P3",
        "fields": fields,
        "actor": ACTOR,
    }
    customer = mail.customer or (linked.customer if linked else None)
    if customer is not None:
        return {**data, "customer": customer}
    if policy.default_customer is None:
        return None
    used = "default"
    correction = {"field": "customer", "received": mail.sender, "used": used}
    return {**data, "customer": used, "corrections": [correction]}


def _unmatched(conn: Connection, mail: Inbound, now: int, compose: Compose) -> Taken:
    row = store.keep_unmatched(
        conn, mail.message_id, mail.sender, mail.recipient, mail.subject, mail.text, now
    )
    _keep(conn, mail, None, "unmatched", now)
    taken = Taken("unmatched")
    if not store.answered_once(conn, mail.sender):
        _answer(conn, mail, None, now, compose, taken)
        if taken.answered:
            store.mark_answered(conn, row, now)
    return taken


def _keep(conn: Connection, mail: Inbound, case_id: str | None, kind: str, now: int) -> None:
    store.keep_message(
        conn, mail.message_id, "in", case_id, kind, mail.sender, mail.subject, now, mail.date
    )


def _answer(
    conn: Connection, mail: Inbound, case_id: str | None, now: int, compose: Compose, taken: Taken
) -> None:
    last = store.last_answer(conn, mail.sender)
    if last is not None and now - last < ANSWER_EVERY:
        return
    answer = compose(mail, case_id)
    refs = (mail.message_id, *reversed(mail.ids))
    row = outgoing(
        conn, case_id, mail.sender, answer, mail.recipient, "answer", now,
        in_reply_to=mail.message_id, references=refs, auto="auto-replied",
    )  # fmt: skip
    taken.rows.append(row)
    taken.answered = True


def outgoing(
    conn: Connection,
    case_id: str | None,
    to: str,
    answer: Answer,
    sender: str,
    kind: str,
    now: int,
    *,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    auto: str = "auto-generated",
) -> NewRow:
    """A mail to a customer as an outbox row (kind `mail`) with a Message-ID made and
    remembered now, so a reply to it threads to `case_id`."""
    domain = sender.rpartition("@")[2] or "rungs.invalid"
    mid = make_msgid("rungs", domain=domain)
    store.keep_message(conn, mid, "out", case_id, kind, to, answer.subject, now)
    payload = {
        "person": to, "channel": "email", "to": to, "from": sender, "subject": answer.subject,
        "text": answer.text, "message_id": mid, "in_reply_to": in_reply_to,
        "references": list(dict.fromkeys(references))[-20:], "auto_submitted": auto,
    }  # fmt: skip
    key = "mail-" + hashlib.sha256(mid.encode()).hexdigest()[:40]
    return NewRow(case_id or "", "mail", key, payload)
