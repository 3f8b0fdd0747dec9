"""Calendar feeds: each person's on-call shifts as an iCalendar subscription.

A calendar application cannot sign in, so a feed's address is its credential: it carries a
signature over the person and a random nonce kept here (table `secrets`, one row per person
with a feed). Renewing the nonce revokes every address given out before; deleting it turns
the feed off. The signing is `rungs.api.feeds`'.
"""

from __future__ import annotations

import hashlib
import secrets as _random

from sqlalchemy import Connection, delete, insert, select, update

from rungs.store.tables import secrets

__all__ = ["feed_nonce", "renew_feed", "revoke_feed"]


def _name(person: str) -> str:
    """The row's name: person ids may be longer than the column, so a digest of it."""
    return "feed:" + hashlib.sha256(person.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def feed_nonce(conn: Connection, person: str) -> str | None:
    """The nonce of the person's feed, or None when they have none (or it was turned off)."""
    found = conn.execute(select(secrets.c.value).where(secrets.c.name == _name(person))).scalar()
    return None if found is None else str(found)


def renew_feed(conn: Connection, person: str, now: int) -> str:
    """A new nonce for the person's feed (made when there was none): older addresses stop."""
    nonce = _random.token_urlsafe(16)
    name = _name(person)
    done = conn.execute(
        update(secrets).where(secrets.c.name == name).values(value=nonce, created_at=now)
    ).rowcount
    if not done:
        conn.execute(insert(secrets).values(name=name, value=nonce, created_at=now))
    return nonce


def revoke_feed(conn: Connection, person: str) -> bool:
    """Turn the person's feed off; False when there was none."""
    return bool(conn.execute(delete(secrets).where(secrets.c.name == _name(person))).rowcount)
