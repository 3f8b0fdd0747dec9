"""Mail kept for cases: every message id in or out with its case (so replies thread), the
mail nobody could be matched to, and the attachments listed on a case.

`mail_messages` holds one row per message in (`direction = 'in'`) and out (`'out'`): the
`Message-ID` as written (with its angle brackets), the case it belongs to (None: it belongs
to none), its `kind` (`new`, `reply`, `escalation`, `auto`, `unmatched`, `answer`, `survey`),
and `peer`, the sender of a mail in or the recipient of a mail out (lower case): the last
automatic answer to a peer is how "one answer per sender per 10 minutes" is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from rungs.store.sql import Sql, run
from rungs.store.tables import metadata

__all__ = [
    "Attachment",
    "mail_attachments",
    "mail_messages",
    "mail_unmatched",
    "answered_once",
    "attachments_of",
    "case_of_ids",
    "keep_attachments",
    "keep_message",
    "keep_unmatched",
    "last_answer",
    "mark_answered",
    "seen_in",
    "thread_of",
    "unmatched",
]

mail_messages = Table(
    "mail_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(998), nullable=False),
    Column("direction", String(3), nullable=False),  # in | out
    Column("case_id", String(64)),
    Column("kind", String(16), nullable=False),
    Column("peer", String(320), nullable=False),
    Column("subject", Text, nullable=False, default=""),
    Column("date", String(200)),  # the Date header as the sender wrote it (never trusted)
    Column("at", BigInteger, nullable=False),  # arrival (in) or when it was queued (out)
    Index("ix_mail_messages_message_id", "message_id", "direction", unique=True),
    Index("ix_mail_messages_peer", "peer", "kind", "at"),
    Index("ix_mail_messages_case", "case_id"),
)

mail_unmatched = Table(  # mail from a sender no customer owns, without a default_customer
    "mail_unmatched",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(998), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("answered_at", BigInteger),  # the one answer its sender got (None: none)
    Index("ix_mail_unmatched_sender", "sender"),
)

mail_attachments = Table(  # files beside the database, content-addressed by SHA-256
    "mail_attachments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(64), nullable=False),
    Column("message_id", String(998), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_mail_attachments_case", "case_id"),
)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.filename, "type": self.content_type, "size": self.size,
                "sha256": self.sha256}  # fmt: skip


# Every mail runs these: straight on the driver's cursor (`rungs.store.sql`), as the hot
# statements of decisions do.
_SEEN = Sql("SELECT 1 FROM mail_messages WHERE message_id = :m AND direction = 'in' LIMIT 1")
_CASE_OF = Sql(
    "SELECT case_id FROM mail_messages WHERE message_id = :m AND case_id IS NOT NULL LIMIT 1"
)
_KEEP = Sql(
    "INSERT INTO mail_messages (message_id, direction, case_id, kind, peer, subject, date, at) "
    "VALUES (:message_id, :direction, :case_id, :kind, :peer, :subject, :date, :at)"
)
_LAST_ANSWER = Sql("SELECT max(at) FROM mail_messages WHERE peer = :p AND kind = 'answer'")


def seen_in(conn: Connection, message_id: str) -> bool:
    """Whether this mail was taken before (a sender's retry, a second poll): take it once."""
    return run(conn, _SEEN, {"m": message_id[:998]}) is not None


def case_of_ids(conn: Connection, ids: Sequence[str]) -> str | None:
    """The case of the latest of `ids` (In-Reply-To first, then References, newest first)
    that Rungs has kept, in or out; None when none belongs to a case."""
    for mid in ids:
        found = run(conn, _CASE_OF, {"m": mid[:998]})
        if found is not None:
            return str(found[0])
    return None


def keep_message(
    conn: Connection,
    message_id: str,
    direction: str,
    case_id: str | None,
    kind: str,
    peer: str,
    subject: str,
    at: int,
    date: str | None = None,
) -> None:
    run(conn, _KEEP, {
        "message_id": message_id[:998], "direction": direction, "case_id": case_id,
        "kind": kind, "peer": peer[:320], "subject": subject,
        "date": (date or None) and date[:200], "at": at,
    })  # fmt: skip


def last_answer(conn: Connection, peer: str) -> int | None:
    """When `peer` was last sent an automatic answer (None: never)."""
    found = run(conn, _LAST_ANSWER, {"p": peer[:320]})
    return None if found is None or found[0] is None else int(found[0])


def keep_unmatched(
    conn: Connection, message_id: str, sender: str, recipient: str, subject: str, text: str,
    at: int,
) -> int:  # fmt: skip
    res = conn.execute(
        insert(mail_unmatched).values(
            message_id=message_id[:998], sender=sender[:320], recipient=recipient[:320],
            subject=subject, text=text, received_at=at,
        )
    )  # fmt: skip
    return int(res.inserted_primary_key[0])  # type: ignore[index]


def answered_once(conn: Connection, sender: str) -> bool:
    """Whether an unmatched sender was answered before (they are answered once)."""
    q = select(mail_unmatched.c.id).where(
        mail_unmatched.c.sender == sender, mail_unmatched.c.answered_at.is_not(None)
    )
    return conn.execute(q.limit(1)).first() is not None


def mark_answered(conn: Connection, row_id: int, at: int) -> None:
    conn.execute(update(mail_unmatched).where(mail_unmatched.c.id == row_id).values(answered_at=at))


def unmatched(conn: Connection, *, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    """The unmatched mail, newest first (`before`: ids below it, to page on)."""
    t = mail_unmatched
    q = select(t).order_by(t.c.id.desc()).limit(limit)
    if before is not None:
        q = q.where(t.c.id < before)
    return [dict(r._mapping) for r in conn.execute(q)]


def keep_attachments(
    conn: Connection, case_id: str, message_id: str, found: Iterable[Attachment], at: int
) -> None:
    rows = [
        {"case_id": case_id, "message_id": message_id[:998], "filename": a.filename[:255],
         "content_type": a.content_type[:255], "size": a.size, "sha256": a.sha256, "at": at}
        for a in found
    ]  # fmt: skip
    if rows:
        conn.execute(insert(mail_attachments), rows)


def attachments_of(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    t = mail_attachments
    q = select(t.c.filename, t.c.content_type, t.c.size, t.c.sha256, t.c.at, t.c.message_id)
    rows = conn.execute(q.where(t.c.case_id == case_id).order_by(t.c.id))
    return [
        {"name": r.filename, "type": r.content_type, "size": r.size, "sha256": r.sha256,
         "at": r.at, "message_id": r.message_id}
        for r in rows
    ]  # fmt: skip


def thread_of(conn: Connection, case_id: str, limit: int = 20) -> list[str]:
    """The case's mail, in and out, as Message-IDs from the oldest (the last `limit`)."""
    t = mail_messages
    q = select(t.c.message_id).where(t.c.case_id == case_id).order_by(t.c.id.desc()).limit(limit)
    return [r[0] for r in conn.execute(q)][::-1]
