"""Who is looking: the signed session cookie, the trusted proxy header, and roles.

The cookie (`rungs_session`, HttpOnly, SameSite=Lax, Secure over TLS) is signed with the
installation's web secret (`itsdangerous`) and holds a random nonce (the CSRF token's seed),
the person once signed in, and a fingerprint of their password hash, so that a new password
ends every session of the person. It expires after `IDLE` without a request (it is renewed
at most once a minute) and `LIFETIME` after sign-in whatever.

With `--trusted-header` (e.g. `X-Forwarded-Email`, oauth2-proxy's), a request from a
`--trusted-proxy` address is the person the header names (id or e-mail); from anywhere else
the header is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from rungs.api.web.csrf import check_csrf
from rungs.policy.model import CONSOLE_ROLES
from rungs.store.credentials import person_named
from rungs.store.views import Views
from rungs.time.clock import SystemClock

__all__ = [
    "COOKIE",
    "IDLE",
    "RANK",
    "Sessions",
    "Viewer",
    "WebSettings",
    "current_person",
    "fingerprint",
    "require",
    "session_of",
]

COOKIE = "rungs_session"
IDLE = 2 * 3600  # seconds without a request before a session ends
LIFETIME = 7 * 24 * 3600  # seconds after sign-in before it ends anyway
RENEW = 60  # re-sign the cookie (sliding idle expiry) at most this often
RANK = {role: i for i, role in enumerate(CONSOLE_ROLES)}
_WALL = SystemClock()  # sessions expire in real time, also under the engine's virtual clock


def _seconds() -> int:
    return _WALL.now() // 1_000_000


@dataclass(frozen=True, slots=True)
class WebSettings:
    """`rungs serve` options of the console."""

    trusted_header: str | None = None  # e.g. X-Forwarded-Email; None: off
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks the header is taken from
    secret: str | None = None  # RUNGS_WEB_SECRET; None: generated once, kept in the database


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person as a page sees them."""

    person: str
    name: str
    role: str
    csrf: str
    via: str = "password"  # or "proxy"

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


@dataclass(slots=True)
class Session:
    nonce: str
    person: str | None = None
    fp: str | None = None
    since: int = 0  # sign-in, seconds since the epoch
    issued: int = 0  # when the cookie was signed
    dirty: bool = field(default=False)  # re-sign on the answer


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class Sessions:
    """Reads and writes the session of a request (the pages' dependency `require` uses it)."""

    def __init__(self, secret: str, views: Views, settings: WebSettings) -> None:
        self.views = views
        self.settings = settings
        self.signer = URLSafeTimedSerializer(secret, salt="rungs-web-session")
        self.csrf_key = hashlib.sha256(b"rungs-csrf\x1f" + secret.encode()).digest()
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    def read(self, request: Request) -> Session:
        """The request's session: its valid cookie, or a new anonymous one (sent back)."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data, signed = self.signer.loads(raw, max_age=IDLE, return_timestamp=True)
                now = _seconds()
                s = Session(data["n"], data.get("p"), data.get("f"), data.get("s", 0))
                s.issued = int(signed.timestamp())
                if s.person is None or now - s.since <= LIFETIME:
                    s.dirty = now - s.issued >= RENEW
                    return s
            except (BadSignature, KeyError, TypeError, ValueError):
                pass
        return self.signed_out()

    def signed_in(self, person: str, password_hash: str | None) -> Session:
        """A new session for `person` (a new nonce: no token from before sign-in is good)."""
        fp = fingerprint(password_hash) if password_hash else None
        return Session(secrets.token_urlsafe(18), person, fp, _seconds(), dirty=True)

    def signed_out(self) -> Session:
        return Session(secrets.token_urlsafe(18), dirty=True)

    def cookie(self, s: Session) -> str:
        return self.signer.dumps({"n": s.nonce, "p": s.person, "f": s.fp, "s": s.since})

    def csrf_token(self, s: Session) -> str:
        return hmac.new(self.csrf_key, s.nonce.encode(), "sha256").hexdigest()

    def proxy_person(self, request: Request) -> str | None:
        """The person the trusted header names, when it comes from a trusted proxy."""
        header = self.settings.trusted_header
        if header is None or request.client is None:
            return None
        value = request.headers.get(header)
        if not value:
            return None
        try:
            addr = ipaddress.ip_address(request.client.host)
        except ValueError:
            return None
        if not any(addr in net for net in self.proxies):
            return None
        return person_named(self.views.policy().people, value.strip())

    def viewer(self, request: Request, s: Session) -> Viewer | None:
        """The person of this request: the proxy's header, else the cookie's (still valid:
        in the policy, with the password it signed in with)."""
        people = self.views.policy().people
        via = "proxy"
        who = self.proxy_person(request)
        if who is None:
            via = "password"
            who = s.person
            if who is None or who not in people:
                return None
            cred = self.views.credential(who)
            if cred is None or fingerprint(cred.hash) != s.fp:
                return None
        person = people[who]
        role = getattr(person, "console_role", "responder")
        return Viewer(who, person.name, role, self.csrf_token(s), via)


def session_of(request: Request) -> tuple[Sessions, Session]:
    sessions: Sessions = request.state.web_sessions
    s = getattr(request.state, "web_session", None)
    if s is None:
        s = request.state.web_session = sessions.read(request)
    return sessions, s


def current_person(request: Request) -> Viewer | None:
    """The signed-in person, or None (pages that anyone may see, like /login)."""
    if hasattr(request.state, "viewer"):
        return request.state.viewer  # type: ignore[no-any-return]
    sessions, s = session_of(request)
    request.state.viewer = sessions.viewer(request, s)
    return request.state.viewer  # type: ignore[no-any-return]


def _signed_out(request: Request) -> HTTPException:
    """303 to /login?next=<this page>; htmx requests get HX-Redirect (XHR follows 303s)."""
    path = request.url.path
    if request.url.query and request.method == "GET":
        path += "?" + request.url.query
    target = "/login" + ("" if path == "/" else "?next=" + quote(path, safe="/"))
    if request.headers.get("hx-request"):
        return HTTPException(401, "signed out", headers={"HX-Redirect": target})
    return HTTPException(303, "sign in first", headers={"Location": target})


def require(role: str = "viewer") -> Callable[[Request], Awaitable[Viewer]]:
    """Dependency: the signed-in person with at least `role` (viewer < responder < admin).
    Signed out: redirect to /login. A POST must carry the session's CSRF token (403)."""
    if role not in RANK:
        raise ValueError(f"unknown console role '{role}'")

    async def dependency(request: Request) -> Viewer:
        viewer = await run_in_threadpool(current_person, request)
        sessions, s = session_of(request)
        await check_csrf(request, sessions.csrf_token(s))  # before anything else
        if viewer is None:
            raise _signed_out(request)
        if not viewer.can(role):
            raise HTTPException(403, f"{viewer.person} has the console role {viewer.role}; "
                                f"this needs {role}")  # fmt: skip
        return viewer

    return dependency


def session_cookie_args(request: Request) -> dict[str, Any]:
    """HttpOnly, SameSite=Lax, Secure when the request came over TLS."""
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": request.url.scheme == "https",
        "path": "/",
        "max_age": IDLE,
    }
