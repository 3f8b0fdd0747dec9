"""On call (`/oncall`): who is on call now per schedule and per matrix level, the shifts of
the next two weeks, temporary overrides (a responder for themselves, an admin for anyone),
and the signed-in person's calendar feed (`rungs.api.feeds`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rungs.api.feeds import Feeds
from rungs.api.web.inputs import BadInput, local_instant, zone
from rungs.api.web.render import page, redirect
from rungs.api.web.session import Viewer, require
from rungs.core.model import Refused
from rungs.engine import Engine
from rungs.notify.links import Links
from rungs.time.instant import format_utc

__all__ = ["oncall_routes"]


def oncall_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views, commands = engine.views, engine.commands
    feeds = Feeds(Links(engine.db), views)

    def context(viewer: Viewer) -> dict[str, Any]:
        policy = views.policy()
        now = views.clock.now()
        person = policy.people.get(viewer.person)
        ids = sorted(policy.people)
        return {
            "colors": {pid: i % 6 for i, pid in enumerate(ids)},  # a bar's colour per person
            "board": views.oncall_board(now),
            "people": sorted(policy.people.values(), key=lambda p: p.name.lower()),
            "names": {p.id: p.name for p in policy.people.values()},
            "tz": (person.timezone if person else None) or policy.timezone,
            "feed": feeds.url(viewer.person),
            "can_override": viewer.can("responder"),
            "for_anyone": viewer.can("admin"),
        }

    async def show(
        request: Request,
        viewer: Viewer,
        *,
        toast: tuple[str, str] | None = None,
        status: int = 200,
        form: dict[str, str] | None = None,
    ) -> Response:
        ctx = await run_in_threadpool(context, viewer)
        ctx["form"] = form or {}
        return page(request, "oncall.html", ctx, toast=toast, status=status)

    @router.get("/oncall")
    async def oncall(request: Request, viewer: Viewer = Depends(require("viewer"))) -> Response:
        return await show(request, viewer)

    @router.post("/oncall/overrides")
    async def add_override(
        request: Request,
        schedule: str = Form(..., max_length=200),
        who: str = Form(..., max_length=200),
        start: str = Form(..., max_length=64),
        end: str = Form(..., max_length=64),
        tz: str = Form("UTC", max_length=64),
        note: str = Form("", max_length=1000),
        viewer: Viewer = Depends(require("responder")),
    ) -> Response:
        form = {
            "schedule": schedule,
            "who": who,
            "start": start,
            "end": end,
            "tz": tz,
            "note": note,
        }
        if who != viewer.person and not viewer.can("admin"):
            return await show(
                request,
                viewer,
                status=403,
                form=form,
                toast=("error", f"a {viewer.role} may add an override for themselves only"),
            )
        try:
            zone_ = zone(tz)
            a, b = local_instant(start, zone_, "from"), local_instant(end, zone_, "to")
            await commands.add_override(schedule, a, b, who, note.strip() or None)
        except BadInput as exc:
            return await show(request, viewer, status=422, form=form, toast=("error", exc.message))
        except Refused as exc:
            return await show(
                request, viewer, status=exc.status, form=form, toast=("error", exc.message)
            )
        done = f"{who} is on call for {schedule} from {format_utc(a)} to {format_utc(b)}."
        return redirect(request, "/oncall", toast=("ok", done))

    @router.post("/oncall/feed")
    async def feed(
        request: Request,
        action: str = Form(..., pattern="^(renew|off)$"),
        person: str = Form("", max_length=200),
        back: str = Form("/oncall", pattern="^/(oncall|people/[^/]{1,200})$"),
        viewer: Viewer = Depends(require("viewer")),
    ) -> Response:
        """Make or renew (old links stop) a calendar link, or turn it off: one's own, or, for
        an admin, anyone's."""
        who = person or viewer.person
        if who != viewer.person and not viewer.can("admin"):
            return redirect(request, back, toast=("error", "only an admin manages others' links"))
        try:
            if action == "renew":
                await commands.renew_feed(who)
                return redirect(
                    request,
                    back,
                    toast=(
                        "ok",
                        f"New calendar link for {who}; links given out before no longer work.",
                    ),
                )
        except Refused as exc:
            return redirect(request, back, toast=("error", exc.message))
        off = await commands.revoke_feed(who)
        return redirect(
            request,
            back,
            toast=(
                "ok",
                f"Calendar link of {who} turned off." if off else f"{who} had no calendar link.",
            ),
        )

    return router
