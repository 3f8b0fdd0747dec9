"""API tokens: who may call `/v1`, with which role. Only a token's SHA-256 is stored.

A token is shown once, when it is created (`rungs token create` or `POST /v1/tokens`).
Roles are ordered: a `viewer` reads; a `responder` also opens cases and acts on them; an
`admin` also changes the policy, tokens, schedule overrides and the virtual clock. A token may
belong to a person of the policy (`person`): its actions are that person's unless it names
another (which only an admin may).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from rungs.policy import load_policy_text
from rungs.store.tables import api_tokens, policies

__all__ = [
    "ROLES",
    "RANK",
    "TokenError",
    "TokenInfo",
    "TokenCache",
    "check_person",
    "stored_people",
    "digest",
    "create_token",
    "revoke_token",
    "list_tokens",
    "lookup",
]

ROLES = ("viewer", "responder", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}
PREFIX = "rungs_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$")
MAX_TOKEN = 200  # longer Authorization values are refused without hashing them


class TokenError(ValueError):
    """A token that cannot be created or revoked; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    role: str
    created_at: int
    revoked_at: int | None = None
    person: str | None = None  # the policy's person it acts as; None for a bot or a service

    def as_dict(self) -> dict[str, Any]:
        from rungs.time.instant import format_utc

        return {
            "name": self.name,
            "role": self.role,
            "person": self.person,
            "created_at": format_utc(self.created_at),
            "revoked_at": format_utc(self.revoked_at) if self.revoked_at is not None else None,
        }


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check(name: str, role: str, person: str | None) -> None:
    if not NAME.match(name or ""):
        raise TokenError(
            "a token name is 1-100 letters, digits, '_', '.', '@' or '-', starting with a "
            "letter or digit",
            field="name",
        )
    if role not in ROLES:
        raise TokenError(f"unknown role '{role}' (use {', '.join(ROLES)})", field="role")
    if person is not None and not 0 < len(person) <= 200:
        raise TokenError("a token's person is a person id of the policy", field="person")


def check_person(people: Mapping[str, object], person: str | None) -> None:
    """A token's person must be one of the policy's people (`people`: the policy in force)."""
    if person is not None and person not in people:
        raise TokenError(f"unknown person '{person}' (not in the policy)", field="person")


def stored_people(conn: Connection) -> Mapping[str, object] | None:
    """The people of the newest stored policy version; None when none is stored (or it no
    longer compiles), so a token's person can be checked outside a running server."""
    row = conn.execute(
        select(policies.c.yaml, policies.c.source).order_by(policies.c.version.desc()).limit(1)
    ).first()
    if row is None:
        return None
    # accepted when stored: as `PolicyStore.policy` reads it, whatever the secret prefix now
    policy, _ = load_policy_text(row.yaml, row.source or "the stored policy", secret_prefix=None)
    return None if policy is None else policy.people


def create_token(
    conn: Connection, name: str, role: str, now: int, person: str | None = None
) -> str:
    """Store a new token's hash; returns the token, which is not kept anywhere. `person` is
    checked against the policy by the caller (`check_person`): the store holds no policy."""
    _check(name, role, person)
    taken = conn.execute(select(api_tokens.c.id).where(api_tokens.c.active_name == name)).first()
    if taken is not None:
        raise TokenError(f"a token named '{name}' exists; revoke it first", 409, "name")
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(
            name=name,
            active_name=name,
            role=role,
            hash=digest(token),
            created_at=now,
            person=person,
        )
    )
    return token


def revoke_token(conn: Connection, name: str, now: int) -> bool:
    """Revoke the active token called `name`; False when there is none."""
    n = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.active_name == name)
        .values(active_name=None, revoked_at=now)
    ).rowcount
    return bool(n)


def list_tokens(conn: Connection, *, revoked: bool = False) -> list[TokenInfo]:
    t = api_tokens.c
    q = select(t.name, t.role, t.created_at, t.revoked_at, t.person).order_by(t.id)
    if not revoked:
        q = q.where(t.revoked_at.is_(None))
    return [
        TokenInfo(r.name, r.role, r.created_at, r.revoked_at, r.person) for r in conn.execute(q)
    ]


def lookup(conn: Connection, token: str) -> TokenInfo | None:
    """The active token with this value, or None."""
    if not token or len(token) > MAX_TOKEN:
        return None
    t = api_tokens.c
    row = conn.execute(
        select(t.name, t.role, t.created_at, t.person).where(
            t.hash == digest(token), t.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else TokenInfo(row.name, row.role, row.created_at, None, row.person)


class TokenCache:
    """Token look-ups, remembered for `ttl` seconds (a revocation elsewhere shows within it).

    Revocations through this process clear the cache at once. Unknown tokens are remembered
    too, in a bounded map, so that guessing costs no database round trip per request.
    """

    def __init__(self, engine: Engine, ttl: float = 1.0, max_entries: int = 10_000) -> None:
        self.engine, self.ttl, self.max_entries = engine, ttl, max_entries
        self._seen: dict[str, tuple[TokenInfo | None, float]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> tuple[bool, TokenInfo | None]:
        """(True, info) when a fresh answer is remembered; (False, None) when it must be read."""
        if not token or len(token) > MAX_TOKEN:
            return True, None
        hit = self._seen.get(token)
        if hit is not None and hit[1] > time.monotonic():
            return True, hit[0]
        return False, None

    def was_valid(self, token: str) -> bool:
        """Whether the last answer for this token, fresh or not, named a valid token."""
        hit = self._seen.get(token)
        return hit is not None and hit[0] is not None

    def get(self, token: str) -> TokenInfo | None:
        known, info = self.cached(token)
        if known:
            return info
        with self.engine.connect() as conn:
            info = lookup(conn, token)
        with self._lock:
            if len(self._seen) >= self.max_entries:
                self._seen.clear()
            self._seen[token] = (info, time.monotonic() + self.ttl)
        return info

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
