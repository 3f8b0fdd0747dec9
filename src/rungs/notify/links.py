"""One-click action links: signed, expiring, single-use.

A link is `{base_url}/a/{token}`; the token carries the case, the action, the person it was
sent to, its expiry and a nonce (the notification's idempotency key), signed with HMAC-SHA256.
The secret comes from `RUNGS_LINK_SECRET`, or is generated once and kept in the database
(table `secrets`), so that every process of one installation signs alike. A link is used at
most once: the table `link_uses` holds one row per link used, keyed by its signature.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets as _random
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from rungs.store.links import LinkUse, link_secret, link_use
from rungs.time.clock import SystemClock

__all__ = [
    "LINK_SECRET_ENV",
    "ACTIONS",
    "DEFAULT_TTL",
    "Link",
    "LinkError",
    "Links",
    "base_url_of",
    "ttl_of",
    "sms_code",
    "case_of_code",
]

LINK_SECRET_ENV = "RUNGS_LINK_SECRET"
BASE_URL_ENV = "RUNGS_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TTL = 24 * 3600 * 1_000_000
ACTIONS = {"a": "acknowledge", "r": "resolve"}
_CODES = {v: k for k, v in ACTIONS.items()}
_SEP = "\x1f"


class LinkError(Exception):
    """A link that cannot be used: `status` 404 (not ours), 410 (used or expired)."""

    def __init__(self, status: int, reason: str, link: Link | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.link = status, reason, link


@dataclass(frozen=True, slots=True)
class Link:
    case_id: str
    action: str  # acknowledge | resolve
    person: str
    expires: int  # µs since the epoch
    nonce: str
    token_id: str  # the signature, hex: what `link_uses` records


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def base_url_of(policy: Any) -> str:
    links = getattr(policy, "links", None) or {}
    url = links.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return str(url).rstrip("/")


def ttl_of(policy: Any) -> int:
    links = getattr(policy, "links", None) or {}
    ttl = links.get("ttl")
    return int(ttl) if isinstance(ttl, int) and ttl > 0 else DEFAULT_TTL


def sms_code(case_id: str) -> str:
    """The short code an SMS reply names a case by: `C12` -> `12`."""
    return case_id[1:] if case_id[:1] == "C" and case_id[1:].isdigit() else case_id


def case_of_code(code: str) -> str:
    code = code.strip()
    return f"C{code}" if code.isdigit() else code.upper() if code[:1] in "cC" else code


class Links:
    """Makes and checks the links of one database (the secret is read or created once)."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    self._secret = self._load_secret()
        return self._secret

    def _load_secret(self) -> bytes:
        env = os.environ.get(LINK_SECRET_ENV)
        if env:
            return env.encode()
        made = link_secret(self.db, lambda: _random.token_urlsafe(32), SystemClock().now())
        return made.encode()

    def _sign(self, payload: str) -> bytes:
        # not hmac.digest(): that one lets go of the GIL on every call, and getting it back
        # in a busy server can take another thread's whole switch interval (5 ms)
        return hmac.new(self.secret, payload.encode(), "sha256").digest()[:18]

    def token(self, case_id: str, action: str, person: str, expires: int, nonce: str) -> str:
        body = _SEP.join((case_id, _CODES[action], person, str(expires // 1_000_000), nonce))
        payload = _b64(body.encode())
        return f"{payload}.{_b64(self._sign(payload))}"

    def url(
        self, base: str, case_id: str, action: str, person: str, expires: int, nonce: str
    ) -> str:
        return f"{base}/a/{self.token(case_id, action, person, expires, nonce)}"

    def parse(self, token: str) -> Link:
        """The link a token stands for; LinkError(404) when it is not one of ours."""
        payload, _, sig = token.partition(".")
        try:
            given = _unb64(sig)
            fields = _unb64(payload).decode().split(_SEP)
        except (ValueError, UnicodeDecodeError):
            raise LinkError(404, "this is not a link Rungs made") from None
        if len(fields) != 5 or not hmac.compare_digest(given, self._sign(payload)):
            raise LinkError(404, "this is not a link Rungs made (or it was changed)")
        case_id, code, person, expires, nonce = fields
        if code not in ACTIONS or not expires.isdigit():
            raise LinkError(404, "this is not a link Rungs made")
        return Link(case_id, ACTIONS[code], person, int(expires) * 1_000_000, nonce, given.hex())

    def check(self, token: str, now: int) -> Link:
        """The link, if it can still be used; LinkError(410) when used or expired."""
        link = self.parse(token)
        used = self.used(link)
        if used is not None:
            raise LinkError(410, "used", link)
        if now >= link.expires:
            raise LinkError(410, "expired", link)
        return link

    def used(self, link: Link) -> Any:
        """When and by whom the link was used (`used_at`, `person`), or None."""
        return link_use(self.db, link.token_id)

    @staticmethod
    def use_of(link: Link) -> LinkUse:
        """The use to record with the link's action (`Commands.act(..., link=...)`)."""
        return LinkUse(link.token_id, link.case_id, link.action, link.person)
