"""The queue (`/`): every case not resolved or closed, soonest SLA breach first.

Tabs (`tab=all|mine|teams`), statuses (`status=open&status=pending`) and the search (`q`) are
in the URL, so a view is bookmarkable. The rows refresh when the server says cases changed
(`/events`); bulk Acknowledge and Resolve are one form, which works without JavaScript.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rungs.api.web.actions import PAST, act
from rungs.api.web.login import safe_next
from rungs.api.web.render import page, redirect
from rungs.api.web.session import Viewer, require
from rungs.core.model import STATUSES
from rungs.engine import Engine
from rungs.policy import Policy

__all__ = ["DEFAULT_STATUSES", "TABS", "queue_routes"]

TABS = {"all": "All", "mine": "Mine", "teams": "My teams"}
DEFAULT_STATUSES = ("open", "acknowledged", "pending")
LIMIT = 200  # rows shown; the count says how many match
BULK = ("acknowledge", "resolve")
MAX_BULK = 200


def assignees_of(tab: str, person: str, policy: Policy) -> tuple[str, ...] | None:
    """The assignee values a tab shows (None: all). Mine: assigned to me; my teams: to one
    of my teams or to one of their members."""
    if tab == "mine":
        return (f"person:{person}",)
    if tab == "teams":
        teams = [t for t in policy.teams.values() if person in t.members]
        found = {f"team:{t.id}" for t in teams}
        found |= {f"person:{m}" for t in teams for m in t.members}
        return tuple(sorted(found))
    return None


def _url(tab: str, statuses: tuple[str, ...], q: str) -> str:
    return "/?" + urlencode({"tab": tab, "status": statuses, "q": q}, doseq=True)


def queue_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views = engine.views

    @router.get("/")
    async def queue(
        request: Request,
        viewer: Viewer = Depends(require("viewer")),
        tab: str = Query("all", max_length=10),
        status: list[str] = Query([], max_length=len(STATUSES)),
        q: str = Query("", max_length=200),
    ) -> Response:
        problems = []
        if tab not in TABS:
            problems.append(f"unknown tab '{tab}' (use {', '.join(TABS)})")
            tab = "all"
        unknown = [s for s in status if s not in STATUSES]
        if unknown:
            problems.append(f"unknown status '{unknown[0]}' (use {', '.join(STATUSES)})")
        statuses = tuple(s for s in STATUSES if s in status) or DEFAULT_STATUSES
        policy = await run_in_threadpool(views.policy)
        rows, total = await run_in_threadpool(
            lambda: views.queue(
                statuses=statuses,
                assignees=assignees_of(tab, viewer.person, policy),
                search=q.strip() or None,
                limit=LIMIT,
            )
        )
        ctx = {
            "tab": tab,
            "tabs": TABS,
            "statuses": statuses,
            "all_statuses": STATUSES,
            "q": q,
            "rows": rows,
            "total": total,
            "limit": LIMIT,
            "customers": policy.customers,
            "now": engine.clock.now(),
            "tab_url": lambda t: _url(t, statuses, q),
            "self_url": request.url.path + ("?" + request.url.query if request.url.query else ""),
        }
        toast = ("error", "; ".join(problems)) if problems else None
        return page(request, "queue.html", ctx, block="rows", toast=toast)

    @router.post("/bulk")
    async def bulk(
        request: Request,
        viewer: Viewer = Depends(require("responder")),
        action: str = Form(..., max_length=20),
        ids: list[str] = Form([], max_length=MAX_BULK),
        back: str = Form("/", max_length=2000),
    ) -> Response:
        if action not in BULK:
            return redirect(request, safe_next(back), toast=("error", f"unknown action '{action}'"))
        if not ids:
            return redirect(request, safe_next(back), toast=("error", "no case was selected"))
        refused = []
        for case_id in ids:
            why = await act(engine, viewer, case_id[:64], action)
            if why is not None:
                refused.append(why)
        done = len(ids) - len(refused)
        text = f"{PAST[action].capitalize()} {done} case{'s' if done != 1 else ''}."
        if refused:
            text += f" {len(refused)} not: " + "; ".join(refused[:5])
        return redirect(request, safe_next(back), toast=("error" if refused else "ok", text))

    return router
