"""Console passwords: argon2id hashes per person, and the lockout after failed sign-ins.

The lockout state is stored with the hash, so it survives a restart and holds across every
process of one installation: after `MAX_FAILURES` failed sign-ins in a row a person is
refused for `LOCKOUT` (µs), then may try again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from rungs.store.tables import credentials

__all__ = [
    "LOCKOUT",
    "MAX_FAILURES",
    "Credential",
    "credential",
    "hash_password",
    "person_named",
    "record_sign_in",
    "set_password",
    "verify_password",
]

MAX_FAILURES = 5
LOCKOUT = 15 * 60 * 1_000_000  # 15 minutes
_hasher = PasswordHasher()  # argon2id, the library's recommended parameters
# verified against when the username is unknown, so both answers take as long
_DUMMY = _hasher.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class Credential:
    person: str
    hash: str
    failures: int
    locked_until: int | None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the hash; with no hash, False after the same work."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def person_named(people: Mapping[str, object], username: str) -> str | None:
    """The person a username names: a person's id, or their e-mail (either case)."""
    if username in people:
        return username
    wanted = username.strip().lower()
    for pid, person in people.items():
        contacts = getattr(person, "contacts", {}) or {}
        if str(contacts.get("email", "")).lower() == wanted and wanted:
            return pid
    return None


def credential(conn: Connection, person: str) -> Credential | None:
    row = conn.execute(select(credentials).where(credentials.c.person == person)).first()
    if row is None:
        return None
    return Credential(row.person, row.hash, row.failures, row.locked_until)


def set_password(conn: Connection, person: str, password: str, now: int) -> None:
    """Store (or replace) the person's password hash; a new password lifts a lockout."""
    values = {"hash": hash_password(password), "failures": 0, "locked_until": None}
    done = conn.execute(
        update(credentials).where(credentials.c.person == person).values(changed_at=now, **values)
    )
    if done.rowcount == 0:
        conn.execute(insert(credentials).values(person=person, changed_at=now, **values))


def record_sign_in(conn: Connection, person: str, ok: bool, now: int) -> int | None:
    """Count a sign-in attempt: success clears the count; the `MAX_FAILURES`th failure in a
    row locks the person out until the instant returned (None when not locked)."""
    found = credential(conn, person)
    if found is None:
        return None
    if ok:
        values: dict[str, object] = {"failures": 0, "locked_until": None}
    elif found.failures + 1 >= MAX_FAILURES:
        values = {"failures": 0, "locked_until": now + LOCKOUT}
    else:
        values = {"failures": found.failures + 1}
    conn.execute(update(credentials).where(credentials.c.person == person).values(**values))
    locked = values.get("locked_until", found.locked_until)
    return locked if isinstance(locked, int) else None
