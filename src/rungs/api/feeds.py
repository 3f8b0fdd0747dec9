"""Calendar feeds: `GET /calendar/{token}.ics`, a person's on-call shifts to subscribe to.

A calendar application cannot sign in, so the address is the credential: the token names
the person and carries an HMAC-SHA256 signature (the installation's link secret, see
`rungs.notify.links`) over the person and the nonce their feed has now (`rungs.store.feeds`).
Renewing the nonce (`Commands.renew_feed`) revokes every address given out before; turning
the feed off (`Commands.revoke_feed`) answers 404 until it is made again. The route is
outside `/v1`: the signature is the credential, as for one-click links.
"""

from __future__ import annotations

import base64
import hmac

from fastapi import APIRouter
from fastapi.responses import Response

from rungs.api.errors import ApiError
from rungs.notify.links import Links, base_url_of
from rungs.store.views import Views
from rungs.time.instant import DAY

__all__ = ["Feeds", "feeds_router"]

PAST, AHEAD = 7 * DAY, 90 * DAY  # the shifts a feed holds, around now
_SEP = "\x1f"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Feeds:
    """Makes and checks feed addresses for one installation."""

    def __init__(self, links: Links, views: Views) -> None:
        self.links = links
        self.views = views

    def _sign(self, person: str, nonce: str) -> bytes:
        body = _SEP.join(("feed", person, nonce)).encode("utf-8", "surrogatepass")
        return hmac.new(self.links.secret, body, "sha256").digest()[:18]

    def token(self, person: str, nonce: str) -> str:
        who = _b64(person.encode("utf-8", "surrogatepass"))
        return f"{who}.{_b64(self._sign(person, nonce))}"

    def url(self, person: str) -> str | None:
        """The person's feed address now; None when their feed is off (never made)."""
        nonce = self.views.feed_nonce(person)
        if nonce is None:
            return None
        base = base_url_of(self.views.policy())
        return f"{base}/calendar/{self.token(person, nonce)}.ics"

    def person_of(self, token: str) -> str | None:
        """The person a token is valid for now; None when it is not (changed, revoked)."""
        who, _, sig = token.partition(".")
        try:
            person = _unb64(who).decode("utf-8")
            given = _unb64(sig)
        except (ValueError, UnicodeDecodeError):
            return None
        nonce = self.views.feed_nonce(person) if 0 < len(person) <= 200 else None
        if nonce is None or not hmac.compare_digest(given, self._sign(person, nonce)):
            return None
        return person


def feeds_router(feeds: Feeds) -> APIRouter:
    router = APIRouter(tags=["on-call"])

    @router.get("/calendar/{token}.ics", responses={404: {"description": "no such feed"}})
    def calendar(token: str) -> Response:
        """A person's shifts (a week back, 90 days ahead) in every schedule, as iCalendar."""
        person = feeds.person_of(token) if len(token) <= 400 else None
        if person is None:
            raise ApiError(404, "no such calendar feed (its link was renewed or turned off)",
                           "token")  # fmt: skip
        views = feeds.views
        if person not in views.policy().people:
            raise ApiError(404, "no such calendar feed (the person left the policy)", "token")
        now = views.clock.now()
        return Response(
            views.person_ics(person, now - PAST, now + AHEAD),
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    return router
