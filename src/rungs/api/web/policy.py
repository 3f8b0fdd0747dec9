"""Policy (`/policy`): the current version with its history (who stored each, when, what it
changed from the one before), an editor checked as you type (`rungs validate`'s located
errors, beside their lines), a Simulate panel (`rungs.sim.preview`: the timeline the edited
policy would give a case opened at an instant) and, for admins, saving through
`Commands.change_policy` (a file-managed policy is shown, never stored from here).

One form holds the editor and the Simulate fields; its buttons post to `/policy/check`,
`/policy/simulate` and `/policy`, so all of it works without JavaScript. With htmx the editor
posts itself as it changes and the Simulate button swaps in the timeline only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rungs.api.web.inputs import BadInput, local_instant, zone
from rungs.api.web.render import is_htmx, page, redirect
from rungs.api.web.session import Viewer, require
from rungs.engine import Engine, PolicyConflict
from rungs.policy import Policy, PolicyError, Problem
from rungs.policy.model import PRIORITIES
from rungs.policy.redact import stand_ins
from rungs.sim import SimulationError
from rungs.sim.preview import preview
from rungs.time.instant import DAY

__all__ = ["policy_routes"]

MAX_POLICY = 1_000_000  # characters, as `PUT /v1/policy` takes
HORIZONS = {"1d": DAY, "3d": 3 * DAY, "7d": 7 * DAY, "30d": 30 * DAY}
SOURCE = "console"  # the file name problems are located in


def _lines(text: str, problems: list[Problem]) -> list[dict[str, Any]]:
    """Each problem with the line it points at, for showing it beside that line."""
    lines = text.splitlines()
    return [
        {**p.as_dict(), "text": lines[p.line - 1] if 0 < p.line <= len(lines) else ""}
        for p in problems
    ]


def policy_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views, commands = engine.views, engine.commands
    managed_by = engine.policies.managed_by

    def shown_text(viewer: Viewer) -> tuple[int, str]:
        """The current version's YAML: as stored for admins, secrets removed for others."""
        return views.policy_yaml(redact=not viewer.can("admin"))

    def checked(viewer: Viewer, text: str) -> tuple[Policy | None, list[Problem]]:
        """`rungs validate` of an edit; a non-admin's (made from the text without secrets)
        with stand-ins where the secrets were (`rungs.policy.redact.stand_ins`)."""
        return views.check_policy(text if viewer.can("admin") else stand_ins(text), SOURCE)

    def context(viewer: Viewer, version: int | None, text: str | None) -> dict[str, Any]:
        current, stored = shown_text(viewer)
        history, total = views.policy_history()
        chosen = version if version is not None else current
        policy = views.policy()
        return {
            "current": current,
            "history": history,
            "total": total,
            "diff": views.policy_diff(chosen),
            "text": stored if text is None else text,
            "managed_by": managed_by,
            "can_save": viewer.can("admin") and managed_by is None,
            "customers": sorted(policy.customers),
            "priorities": PRIORITIES,
            "horizons": list(HORIZONS),
            "tz": policy.timezone,
            "problems": None,
            "sim": None,
            "form": {},
        }

    async def show(
        request: Request,
        viewer: Viewer,
        *,
        version: int | None = None,
        text: str | None = None,
        block: str | None = None,
        status: int = 200,
        toast: tuple[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        if block is not None and is_htmx(request):  # the block needs only what `extra` has
            return page(request, "policy.html", extra, block=block, status=status, toast=toast)
        ctx = await run_in_threadpool(context, viewer, version, text)
        ctx.update(extra)
        return page(request, "policy.html", ctx, block=block, status=status, toast=toast)

    @router.get("/policy")
    async def policy_page(
        request: Request,
        version: int | None = Query(None, ge=1, le=2**31 - 1),
        viewer: Viewer = Depends(require("viewer")),
    ) -> Response:
        return await show(request, viewer, version=version)

    @router.post("/policy/check")
    async def check(
        request: Request,
        yaml: str = Form("", max_length=MAX_POLICY),
        viewer: Viewer = Depends(require("viewer")),
    ) -> Response:
        """`rungs validate` of the editor's text: errors and warnings, each beside its line."""
        _, problems = await run_in_threadpool(checked, viewer, yaml)
        return await show(
            request, viewer, text=yaml, block="problems", problems=_lines(yaml, problems)
        )

    def simulate_in(viewer: Viewer, text: str, data: dict[str, Any], at: int, until: int) -> Any:
        policy, problems = checked(viewer, text)
        if policy is None:
            return {"problems": _lines(text, problems)}
        try:
            return {"entries": preview(policy, data, at, until), "data": data, "at": at}
        except SimulationError as exc:
            return {"error": str(exc)}

    @router.post("/policy/simulate")
    async def simulate(
        request: Request,
        yaml: str = Form("", max_length=MAX_POLICY),
        customer: str = Form(..., min_length=1, max_length=200),
        priority: str = Form(..., pattern="^P[1-4]$"),
        category: str = Form("general", max_length=200),
        start: str = Form(..., max_length=64),
        tz: str = Form("UTC", max_length=64),
        horizon: str = Form("3d", pattern="^(" + "|".join(HORIZONS) + ")$"),
        viewer: Viewer = Depends(require("viewer")),
    ) -> Response:
        """The timeline a case opened at `start` gets under the editor's policy, nobody
        acting on it for `horizon`: nothing is stored."""
        form = {
            "customer": customer,
            "priority": priority,
            "category": category,
            "start": start,
            "tz": tz,
            "horizon": horizon,
        }
        try:
            at = local_instant(start, zone(tz), "start")
        except BadInput as exc:
            return await show(
                request,
                viewer,
                text=yaml,
                block="simulation",
                status=422,
                form=form,
                sim={"error": exc.message},
            )
        data = {
            "customer": customer,
            "priority": priority,
            "category": category.strip() or "general",
            "title": f"Simulated {priority} for {customer}",
        }
        sim = await run_in_threadpool(simulate_in, viewer, yaml, data, at, at + HORIZONS[horizon])
        return await show(request, viewer, text=yaml, block="simulation", form=form, sim=sim)

    @router.post("/policy")
    async def save(
        request: Request,
        yaml: str = Form(..., max_length=MAX_POLICY),
        force: bool = Form(False),
        viewer: Viewer = Depends(require("admin")),
    ) -> Response:
        """Store the editor's text as a new version, as `PUT /v1/policy` does."""
        try:
            change = await commands.change_policy(yaml, f"web:{viewer.person}", force=force)
        except PolicyError as exc:
            return await show(
                request,
                viewer,
                text=yaml,
                status=422,
                problems=_lines(yaml, exc.problems),
                toast=("error", "The policy has errors: nothing was stored."),
            )
        except PolicyConflict as exc:
            return await show(
                request,
                viewer,
                text=yaml,
                status=409,
                conflict=exc.message,
                toast=("error", exc.message),
            )
        return redirect(
            request, "/policy", toast=("ok", f"Stored policy version {change.version}.")
        )

    return router
