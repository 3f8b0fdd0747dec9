"""Sign in and out: `/login` (username = a person's id or e-mail, and their password),
`/logout`. After `MAX_FAILURES` failed attempts in a row the person is locked out for
`LOCKOUT` (kept in the database: see `store.credentials`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rungs.api.web.csrf import check_csrf
from rungs.api.web.render import page, redirect
from rungs.api.web.session import Viewer, current_person, require, session_of
from rungs.engine import Engine
from rungs.store.credentials import person_named, verify_password
from rungs.time.instant import format_utc

__all__ = ["login_routes", "safe_next"]

WRONG = "Wrong username or password."


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or a URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(c in target for c in "\r\n\\") or len(target) > 2000:
        return "/"
    return target


def login_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views, commands = engine.views, engine.commands

    @router.get("/login")
    def login_form(request: Request, next: str | None = None) -> Response:
        if current_person(request) is not None:
            return redirect(request, safe_next(next))
        return page(request, "login.html", {"next": safe_next(next)})

    @router.post("/login")
    async def login(
        request: Request,
        username: str = Form("", max_length=200),
        password: str = Form("", max_length=1024),
        next: str = Form("/", max_length=2000),
    ) -> Response:
        sessions, s = session_of(request)
        await check_csrf(request, sessions.csrf_token(s))
        people = (await run_in_threadpool(views.policy)).people
        who = person_named(people, username)
        cred = None if who is None else await run_in_threadpool(views.credential, who)
        ctx = {"next": safe_next(next), "username": username}
        now = engine.clock.now()
        if cred is not None and cred.locked_until is not None and cred.locked_until > now:
            ctx["error"] = (
                "Too many failed sign-ins: this account is locked until "
                f"{format_utc(cred.locked_until)}. Try again then, or ask an administrator "
                "to set a new password."
            )
            return page(request, "login.html", ctx, status=429)
        ok = await run_in_threadpool(verify_password, cred.hash if cred else None, password)
        if who is None or cred is None:
            return page(request, "login.html", {**ctx, "error": WRONG}, status=401)
        locked = await commands.record_sign_in(who, ok)
        if not ok:
            error = WRONG
            if locked is not None:
                error += f" Too many failures: locked until {format_utc(locked)}."
            return page(request, "login.html", {**ctx, "error": error}, status=401)
        request.state.web_session = sessions.signed_in(who, cred.hash)
        request.state.__dict__.pop("viewer", None)
        return redirect(request, safe_next(next), toast=("ok", f"Signed in as {who}."))

    @router.post("/logout")
    async def logout(request: Request, viewer: Viewer = Depends(require("viewer"))) -> Response:
        request.state.web_session = session_of(request)[0].signed_out()  # a new, anonymous one
        return redirect(request, "/login", toast=("ok", f"{viewer.name} signed out."))

    return router
