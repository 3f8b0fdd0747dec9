"""The satisfaction survey page, `/s/{token}`: no sign-in and no CSRF token (the link's token
is the credential). `GET` only shows the form, with the rating of the link chosen (mail
scanners follow links: nothing is recorded); `POST` with `rating` and `comment` records
once (200); a second `POST`, or one after expiry, answers 410. Plain HTML forms: it works
without JavaScript and on a phone. `/s/{token}/opt_out` stops surveys to the requester."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from rungs.api.errors import ApiError
from rungs.engine import Commands
from rungs.engine.surveys import Gone
from rungs.store.views import Views

__all__ = ["MAX_COMMENT", "survey_router"]

MAX_COMMENT = 5000  # characters
MAX_TOKEN = 64
_WORDS = {5: ("very bad", "bad", "okay", "good", "very good"), 2: ("bad", "good")}
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _page(status: int, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("title", "Your opinion")
    html = _templates.get_template("survey.html").render(**ctx)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _rating(raw: str) -> int | None:
    """A rating as typed: ASCII digits only (`isdigit` takes "²", which `int` refuses), and
    few of them (a scale is at most 5; a long number is no rating)."""
    return int(raw) if raw.isascii() and raw.isdecimal() and len(raw) <= 3 else None


def survey_router(commands: Commands, views: Views) -> APIRouter:
    router = APIRouter(tags=["surveys"], include_in_schema=False)

    def live(token: str) -> dict[str, Any] | None:
        found = views.survey(token) if len(token) <= MAX_TOKEN else None
        if found is None or found["status"] != "sent":
            return None
        return found if views.clock.now() < (found["expires_at"] or 0) else None

    @router.get("/s/{token}")
    def show(token: str, rating: str | None = None) -> HTMLResponse:
        found = live(token)
        if found is None:
            return _page(410, state="gone")
        scale = int(found["scale"])
        chosen = _rating(rating) if rating else None
        if rating and (chosen is None or not 1 <= chosen <= scale):
            raise ApiError(422, f"rating must be a whole number from 1 to {scale}", "rating")
        case = views.case_state(found["case_id"])
        return _page(
            200, state="form", case=found["case_id"], case_title=case[0].title if case else "",
            choices=list(enumerate(_WORDS[scale], 1)), chosen=chosen, action=f"/s/{token}",
            max_comment=MAX_COMMENT,
        )  # fmt: skip

    @router.post("/s/{token}")
    async def answer(token: str, request: Request) -> HTMLResponse:
        form = _form(await request.body())
        rating = _rating(form.get("rating", "").strip())
        if rating is None:
            raise ApiError(422, "rating must be a whole number on the survey's scale", "rating")
        comment = form.get("comment", "").strip()
        if len(comment) > MAX_COMMENT:
            raise ApiError(422, f"comment is longer than {MAX_COMMENT} characters", "comment")
        if len(token) > MAX_TOKEN:
            return _page(410, state="gone")
        try:
            done = await commands.answer_survey(token, rating, comment)
        except Gone:
            return _page(410, state="gone")
        except ValueError as exc:
            raise ApiError(422, str(exc), "rating") from None
        policy = views.policy()
        low = policy.surveys.followup_at_or_below if policy.surveys else 0
        return _page(200, state="thanks", case=done["case_id"], followup=rating <= low)

    @router.get("/s/{token}/opt_out")
    def opt_out_form(token: str) -> HTMLResponse:
        found = views.survey(token) if len(token) <= MAX_TOKEN else None
        if found is None:
            return _page(410, state="gone")
        return _page(200, state="opt_out", requester=found["requester"],
                     action=f"/s/{token}/opt_out")  # fmt: skip

    @router.post("/s/{token}/opt_out")
    async def opt_out(token: str) -> HTMLResponse:
        if len(token) > MAX_TOKEN:
            return _page(410, state="gone")
        try:
            await commands.survey_opt_out(token)
        except Gone:
            return _page(410, state="gone")
        return _page(200, state="opted_out")

    return router


def _form(body: bytes) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (the first value of each field)."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "the body is not a form (UTF-8, urlencoded)", "body") from None
    return {k: v[0] for k, v in fields.items()}
