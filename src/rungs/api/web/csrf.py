"""CSRF: every console form carries the session's token; a POST without it answers 403.

The token is an HMAC of the session's nonce (see `session.Sessions.csrf_token`): a page of
another site cannot read it, and a new session (sign-in) makes a new one. Templates write
`{{ csrf_field() }}` inside each `<form method="post">`; htmx requests may send the
`X-CSRF-Token` header instead.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

__all__ = ["FIELD", "HEADER", "check_csrf", "csrf_field"]

FIELD = "csrf"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


@pass_context
def csrf_field(ctx: Context) -> Markup:
    """The hidden input of the page's token (the page's context has `csrf`)."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(ctx.get("csrf", ""))}">')


async def check_csrf(request: Request, expected: str) -> None:
    """403 unless an unsafe request carries `expected`, the token of its session."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page")
