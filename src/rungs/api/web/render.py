"""Pages and fragments: one Jinja2 template renders a whole page or one of its blocks.

`page(request, "queue.html", ctx, block="rows")` answers an htmx request (`HX-Request`) with
the block only (`jinja2_fragments`) and any other request with the whole page. `redirect`
answers a form's POST (303, then the page is fetched again). A toast (a message in the page's
`aria-live` region) travels with a redirect in a short-lived cookie. Both renew the session
cookie when it is due.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2_fragments import render_block

from rungs.api.web import timefmt
from rungs.api.web.csrf import csrf_field
from rungs.api.web.session import COOKIE, current_person, session_cookie_args, session_of

__all__ = ["TEMPLATES", "Toast", "env", "is_htmx", "page", "redirect"]

TEMPLATES = Path(__file__).parent / "templates"
FLASH = "rungs_toast"
NAV = (
    ("/", "Queue"),
    ("/oncall", "On call"),
    ("/policy", "Policy"),
    ("/people", "People"),
    ("/admin", "Admin"),
    ("/reports", "Reports"),
)

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["csrf_field"] = csrf_field
env.globals["nav"] = NAV
env.filters.update(timefmt.FILTERS)

Toast = tuple[str, str]  # (kind: "ok" | "error", text)
# no page of the console in another site's frame (clickjacking its action buttons)
NO_FRAMING = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _context(request: Request, ctx: dict[str, Any], toast: Toast | None) -> dict[str, Any]:
    viewer = current_person(request)
    sessions, s = session_of(request)
    if toast is None and FLASH in request.cookies:
        kind, _, text = unquote(request.cookies[FLASH]).partition(":")
        toast = (kind if kind in ("ok", "error") else "ok", text[:500])
    path = request.url.path
    return {
        "request": request,
        "viewer": viewer,
        "csrf": sessions.csrf_token(s),
        "toast": toast,
        "here": path,
        **ctx,
    }


def _finish(request: Request, response: Response, *, flash: Toast | None = None) -> Response:
    """Renew the session cookie when due; set or clear the toast cookie."""
    sessions, s = session_of(request)
    args = session_cookie_args(request)
    if s.dirty:
        response.set_cookie(COOKIE, sessions.cookie(s), **args)
    if flash is not None:
        value = quote(f"{flash[0]}:{flash[1][:500]}")
        response.set_cookie(FLASH, value, **{**args, "max_age": 60})
    elif FLASH in request.cookies:
        response.delete_cookie(FLASH, path="/")
    return response


def page(
    request: Request,
    template: str,
    ctx: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    toast: Toast | None = None,
    status: int = 200,
) -> Response:
    """The page, or only `block` of it for an htmx request (its toast out of band)."""
    values = _context(request, ctx or {}, toast)
    if block is not None and is_htmx(request):
        html = render_block(env, template, block, **values)
        if values["toast"] is not None:
            html += env.get_template("_toast.html").render(toast=values["toast"], oob=True)
    else:
        html = env.get_template(template).render(**values)
    return _finish(request, HTMLResponse(html, status_code=status, headers=NO_FRAMING))


def redirect(request: Request, url: str, *, toast: Toast | None = None) -> Response:
    """303 to `url` (a form's answer), carrying `toast` to the next page."""
    return _finish(request, RedirectResponse(url, status_code=303), flash=toast)
