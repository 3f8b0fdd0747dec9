"""What one-click links keep in the database: the signing secret and the uses.

The secret (table `secrets`, name `links`) is generated once per installation, so every
process signs alike; `link_uses` holds one row per link used, keyed by its signature, so a
link is used at most once (`AlreadyUsed` when a racing request recorded it first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from rungs.store.tables import link_uses, secrets

__all__ = ["AlreadyUsed", "LinkUse", "link_secret", "link_use", "record_use", "stored_secret"]


class AlreadyUsed(Exception):
    """The link's use was recorded by another request first."""


@dataclass(frozen=True, slots=True)
class LinkUse:
    """One use of a link: its signature (hex), and the case, action and person it was for."""

    token_id: str
    case_id: str
    action: str
    person: str


def link_secret(db: Engine, make: Callable[[], str], now: int) -> str:
    """The installation's link secret (see `stored_secret`)."""
    return stored_secret(db, "links", make, now)


def stored_secret(db: Engine, name: str, make: Callable[[], str], now: int) -> str:
    """The installation's secret `name`, made with `make` and stored on first use (another
    process that stored one at the same moment wins, and both use its value)."""
    query = select(secrets.c.value).where(secrets.c.name == name)
    with db.connect() as conn:
        found = conn.execute(query).scalar()
    if found is not None:
        return str(found)
    value = make()
    try:
        with db.begin() as conn:
            conn.execute(insert(secrets).values(name=name, value=value, created_at=now))
    except IntegrityError:  # another process made it first: use theirs
        with db.connect() as conn:
            return str(conn.execute(query).scalar_one())
    return value


def link_use(db: Engine, token_id: str) -> Any:
    """When and by whom the link was used (a row with `used_at`, `person`), or None."""
    with db.connect() as conn:
        return conn.execute(
            select(link_uses.c.used_at, link_uses.c.person).where(link_uses.c.token_id == token_id)
        ).first()


def record_use(conn: Connection, use: LinkUse, now: int) -> None:
    """Record the use in the action's transaction; AlreadyUsed if it was used already (the
    writer then rolls the action back with it: both commit, or neither)."""
    try:
        conn.execute(
            insert(link_uses).values(
                token_id=use.token_id,
                case_id=use.case_id,
                action=use.action,
                person=use.person,
                used_at=now,
            )
        )
    except IntegrityError:
        raise AlreadyUsed(use.token_id) from None
