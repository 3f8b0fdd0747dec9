"""Admin (`/admin`, admins only): API tokens (create, the secret shown once; revoke), the
integrations with their last event and health, heartbeats, the workers' health, and the
dead-lettered deliveries with **Retry** (`Commands.retry_delivery`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from rungs.api.web.render import page, redirect
from rungs.api.web.session import Viewer, require
from rungs.engine import Engine
from rungs.store.tokens import ROLES, TokenError

__all__ = ["admin_routes"]

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]*$"


def admin_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views, commands = engine.views, engine.commands
    admin = Depends(require("admin"))

    def context() -> dict[str, Any]:
        unset = engine.keys_unset()
        letters, dead = views.dead_letters()
        policy = views.policy()
        return {
            "tokens": views.token_list(),
            "roles": ROLES,
            "people": sorted(policy.people.values(), key=lambda p: p.name.lower()),
            "integrations": views.integration_states(unset),
            "heartbeats": views.heartbeats(),
            "workers": engine.health(),
            "virtual": engine.clock.virtual,
            "file_error": views.policy_file_error(),
            "letters": letters,
            "dead": dead,
            "new_token": None,
            "form": {},
        }

    async def show(
        request: Request, *, status: int = 200, toast: tuple[str, str] | None = None, **extra: Any
    ) -> Response:
        ctx = await run_in_threadpool(context)
        ctx.update(extra)
        return page(request, "admin.html", ctx, status=status, toast=toast)

    @router.get("/admin")
    async def admin_page(request: Request, viewer: Viewer = admin) -> Response:
        return await show(request)

    @router.post("/admin/tokens")
    async def create_token(
        request: Request,
        name: str = Form(..., min_length=1, max_length=100, pattern=NAME),
        role: str = Form(..., pattern="^(" + "|".join(ROLES) + ")$"),
        person: str = Form("", max_length=200),
        viewer: Viewer = admin,
    ) -> Response:
        """The new token is in this answer only (not stored, not redirected with)."""
        form = {"name": name, "role": role, "person": person}
        try:
            token = await commands.create_token(name, role, person or None)
        except TokenError as exc:
            return await show(request, status=exc.status, form=form, toast=("error", exc.message))
        except IntegrityError:  # created at the same moment by another process
            return await show(
                request, status=409, form=form, toast=("error", f"a token named '{name}' exists")
            )
        new = {"name": name, "role": role, "person": person or None, "token": token}
        answer = await show(
            request,
            status=201,
            new_token=new,
            toast=("ok", f"Token '{name}' created: copy it now."),
        )
        answer.headers["Cache-Control"] = "no-store"  # it holds the secret
        return answer

    @router.post("/admin/tokens/{name}/revoke")
    async def revoke_token(
        request: Request, name: str = Path(max_length=100), viewer: Viewer = admin
    ) -> Response:
        if not await commands.revoke_token(name):
            return redirect(request, "/admin", toast=("error", f"no active token named '{name}'"))
        views.tokens.clear()  # the API's look-ups forget it at once
        return redirect(request, "/admin", toast=("ok", f"Token '{name}' revoked."))

    @router.post("/admin/deliveries/{row_id}/retry")
    async def retry(
        request: Request, row_id: int = Path(ge=1, le=2**62), viewer: Viewer = admin
    ) -> Response:
        if not await commands.retry_delivery(row_id):
            return redirect(
                request,
                "/admin#dead-h",
                toast=("error", f"delivery {row_id} is not dead-lettered (retried already?)"),
            )
        return redirect(
            request, "/admin#dead-h", toast=("ok", f"Delivery {row_id} is on its way again.")
        )

    return router
