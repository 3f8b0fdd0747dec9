"""The case page (`/cases/{id}`): facts, the ladder, the SLA clocks with their "why?", the
timeline (filterable by kind), the handoff the next level receives, and the actions its
status allows. The live part refreshes itself when the server says the case changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rungs.api.web.actions import LABELS, PAST, WEB_ACTIONS, act
from rungs.api.web.login import safe_next
from rungs.api.web.render import page, redirect
from rungs.api.web.session import Viewer, require
from rungs.core.decide import allowed_actions
from rungs.core.model import Refused
from rungs.engine import Engine
from rungs.policy.model import PRIORITIES

__all__ = ["TIMELINE_PAGE", "case_routes"]

TIMELINE_PAGE = 200  # timeline entries on one case page, newest first; older ones by a link


def case_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views = engine.views

    def gather(case_id: str, kinds: list[str], before: int | None) -> dict[str, Any] | None:
        """Everything the page shows, read through the views (on a worker thread)."""
        found = views.case_state(case_id)
        if found is None:
            return None
        case, version = found
        policy = views.policies.policy(version)
        m = next((x for x in policy.matrices if x.id == case.matrix), None)
        levels = len(m.levels) if m is not None else case.level
        nxt = case.level + 1 if case.level < levels else None
        try:
            handoff = views.handoff(case_id, nxt)
        except Refused:
            handoff = views.handoff(case_id)
        shown, older, every_kind = views.timeline_tail(case_id, kinds, TIMELINE_PAGE, before)
        customer = policy.customers.get(case.customer)
        return {
            "case": case,
            "version": version,
            "customer": customer,
            "handoff": handoff,
            "explain": views.explain(case_id),
            "timeline": shown,
            "older": older,
            "paged": before is not None,
            "kinds": every_kind,
            "chosen": kinds,
            "allowed": allowed_actions(case) & WEB_ACTIONS,
            "labels": LABELS,
            "reasons": policy.reasons,
            "levels": list(range(case.level + 1, levels + 1)),
            "people": sorted(policy.people.values(), key=lambda p: p.name),
            "teams": sorted(policy.teams.values(), key=lambda t: t.name),
            "priorities": PRIORITIES,
            "now": engine.clock.now(),
        }

    @router.get("/cases/{case_id}")
    async def case_page(
        request: Request,
        case_id: str,
        viewer: Viewer = Depends(require("viewer")),
        kind: list[str] = Query([], max_length=50),
        before: int | None = Query(None, ge=1, le=2**62),
    ) -> Response:
        kinds = [k[:40] for k in kind]
        ctx = await run_in_threadpool(gather, case_id[:64], kinds, before)
        if ctx is None:
            return page(request, "case_missing.html", {"case_id": case_id[:64]}, status=404)
        ctx["self_url"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page(request, "case.html", ctx, block="live")

    @router.post("/cases/{case_id}/act")
    async def case_act(
        request: Request,
        case_id: str,
        viewer: Viewer = Depends(require("responder")),
        action: str = Form(..., max_length=20),
        reason: str = Form("", max_length=200),
        to_level: str = Form("", max_length=4),
        to: str = Form("", max_length=250),
        priority: str = Form("", max_length=4),
        back: str = Form("", max_length=2000),
    ) -> Response:
        case_id = case_id[:64]
        # ASCII digits only: `isdigit` takes "²", which `int` refuses
        level = int(to_level) if to_level.isascii() and to_level.isdecimal() else None
        if to_level and level is None:
            why: str | None = f"the level must be a number, not '{to_level}'"
        else:
            why = await act(
                engine,
                viewer,
                case_id,
                action,
                reason=reason or None,
                to_level=level,
                to=to or None,
                priority=priority or None,
            )
        target = safe_next(back) if back else f"/cases/{case_id}"
        if why is not None:
            return redirect(request, target, toast=("error", why))
        return redirect(request, target, toast=("ok", f"{case_id} {PAST[action]}."))

    return router
