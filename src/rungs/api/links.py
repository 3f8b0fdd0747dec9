"""One-click actions and SMS replies: nobody needs to log in at 3 a.m.

- `GET /a/{token}`: a confirmation page (mail scanners that follow links change nothing);
- `POST /a/{token}`: acknowledge or resolve, as the person the link was sent to; the link is
  then used up. A used or expired link gets 410 and a page that says why; a link Rungs did not
  make (or one that was changed) gets 404.
- `POST /inbound/sms`: the SMS provider's inbound webhook (Twilio's form fields `From`, `Body`).
  A reply holding a case's short code (`12`, `ACK 12`) acknowledges it, when the sender's
  number is that of a person paged for the case. With `channels.sms.inbound_verify` (the
  default), the request must carry a valid `X-Twilio-Signature` made with the SMS token.

These routes are outside `/v1`: the signature is the credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from rungs.core.model import Event, Refused
from rungs.engine import Commands
from rungs.notify.links import Link, LinkError, Links, base_url_of, case_of_code
from rungs.notify.messages import Renderer
from rungs.policy.channels import channels_of
from rungs.policy.secrets import SecretRefused, read_secret
from rungs.store.links import AlreadyUsed
from rungs.store.views import Views
from rungs.time.instant import format_utc

__all__ = ["links_router", "twilio_signature"]

_DONE = {"acknowledge": "acknowledged", "resolve": "resolved"}
_CODE = re.compile(r"^\s*(?:ack(?:nowledge)?\s*)?#?\s*([A-Za-z]?\d+|[A-Za-z][\w.-]*)\s*$", re.I)


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL and the sorted form fields."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _secret(name: str | None) -> str:
    """The SMS token `token_env` names ("" when unset, or when the name lacks the
    deployment's prefix: the signature check then fails)."""
    try:
        return read_secret(name or "", os.environ) or ""
    except SecretRefused:
        return ""


def _digits(number: str) -> str:
    return re.sub(r"[^\d]", "", number)


def links_router(commands: Commands, views: Views, links: Links) -> APIRouter:
    router = APIRouter(tags=["links"])
    renderer = Renderer()
    policy = views.policy

    def page(status: int, title: str, message: str, state: str, **extra: Any) -> HTMLResponse:
        html = renderer.render(
            policy(), "link.html", title=title, message=message, state=state, **extra
        )
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                   "Content-Security-Policy": "frame-ancestors 'none'"}  # fmt: skip
        return HTMLResponse(html, status_code=status, headers=headers)

    case_view = views.case_card

    def refused_page(exc: LinkError) -> HTMLResponse:
        link = exc.link
        if exc.status == 404 or link is None:
            return page(404, "Unknown link", exc.reason, "refused")
        case = case_view(link.case_id)
        if exc.reason == "used":
            used = links.used(link)
            when = format_utc(used.used_at) if used is not None else "earlier"
            return page(
                410, "This link was already used",
                f"It was used at {when} to {link.action} {link.case_id} as {link.person}. "
                "Each link works once; open the case to see what happened since.",
                "refused", case=case,
            )  # fmt: skip
        return page(
            410, "This link has expired",
            f"It expired at {format_utc(link.expires)}. Use a link from a newer message, or "
            "the console.",
            "refused", case=case,
        )  # fmt: skip

    def check(token: str) -> Link:
        return links.check(token, views.clock.now())

    # plain `def` routes run in FastAPI's thread pool (they read the database); `act` awaits
    # its command, with its reads in the thread pool
    @router.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    def confirm(token: str) -> HTMLResponse:
        try:
            link = check(token)
        except LinkError as exc:
            return refused_page(exc)
        case = case_view(link.case_id)
        if case is None:
            return page(404, "Unknown case", f"There is no case {link.case_id}.", "refused")
        verb = link.action.capitalize()
        return page(
            200, f"{verb} {link.case_id}?",
            f"You are about to {link.action} {link.case_id} as {link.person}.",
            "ask", case=case, confirm=f"{verb} {link.case_id}",
            expires=format_utc(link.expires),
        )  # fmt: skip

    @router.post("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def act(token: str) -> HTMLResponse:
        try:
            link = await run_in_threadpool(check, token)
        except LinkError as exc:
            return await run_in_threadpool(refused_page, exc)
        event = Event(link.action, by=link.person, actor="link")  # the signed link is the proof
        try:  # the action and the link's use commit together, or neither does
            await commands.act(link.case_id, event, link=links.use_of(link))
        except AlreadyUsed:  # used by a request that raced this one
            return await run_in_threadpool(refused_page, LinkError(410, "used", link))
        except Refused as exc:
            status = 404 if exc.status == 404 else 409
            return await run_in_threadpool(done_page, link, status, exc.message)
        return await run_in_threadpool(done_page, link, 200, None)

    def done_page(link: Link, status: int, refusal: str | None) -> HTMLResponse:
        if refusal is not None:
            return page(status, f"Could not {link.action} {link.case_id}", refusal,
                        "refused", case=case_view(link.case_id))  # fmt: skip
        return page(
            200, f"{link.case_id} {_DONE[link.action]}",
            f"{link.case_id} is {_DONE[link.action]} by {link.person}. The timeline says so, and "
            "everyone else who was paged is told.",
            "done", case=case_view(link.case_id),
        )  # fmt: skip

    def twiml(text: str, status: int = 200) -> Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Message>{escape(text)}</Message></Response>"
        )
        return Response(body, status_code=status, media_type="text/xml")

    @router.post("/inbound/sms", include_in_schema=False)
    async def inbound_sms(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        current = await run_in_threadpool(policy)
        cfg = channels_of(current).configs.get("sms")
        if cfg is None:
            return twiml("SMS replies are not configured.", 404)
        if cfg.inbound_verify:
            token = _secret(cfg.token_env)
            url = base_url_of(current) + request.url.path
            if request.url.query:
                url += "?" + request.url.query
            # compared as bytes: a header is any Latin-1 text, and `compare_digest` refuses
            # non-ASCII strings (the header's raw bytes, as sent)
            given = request.headers.get("x-twilio-signature", "").encode("latin-1")
            want = twilio_signature(token, url, form).encode() if token else b""
            if not token or not hmac.compare_digest(given, want):
                return twiml("Signature check failed.", 403)
        sender = _digits(form.get("From", ""))
        people = [p for p in current.people.values()
                  if sender and any(_digits(current_contact) == sender
                                    for m, current_contact in p.contacts.items()
                                    if m in ("sms", "voice"))]  # fmt: skip
        if not people:
            return twiml("This number is not known to Rungs.", 403)
        found = _CODE.match(form.get("Body", ""))
        if found is None:
            return twiml("Reply with the case number to acknowledge it, e.g. 12.")
        case_id = case_of_code(found.group(1))

        who = await run_in_threadpool(views.paged, case_id)
        person = next((p for p in people if p.id in who), None)
        if person is None:
            return twiml(f"{case_id}: no case paged you under that number.")
        try:
            await commands.act(case_id, Event("acknowledge", by=person.id, actor="sms"))
        except Refused as exc:
            return twiml(f"{case_id}: {exc.message}")
        return twiml(f"{case_id} acknowledged by {person.name}.")

    return router
