"""Admin (`/admin`, admins only): API tokens (create, the secret shown once; revoke), the
integrations with their last event and health, maintenance windows (add, end now: the same
checks as `POST /v1/maintenance`), heartbeats, the workers' health, and the dead-lettered
deliveries with **Retry** (`Commands.retry_delivery`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from rungs.api.errors import ApiError
from rungs.api.routes.maintenance import checked_window
from rungs.api.web.inputs import BadInput, local_instant, zone
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
            "windows": views.maintenance(50),
            "integration_ids": sorted(policy.integrations),
            "customers": sorted(policy.customers.values(), key=lambda c: c.name.lower()),
            "tz": policy.timezone,
            "new_token": None,
            "form": {},
            "mform": {},
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

    @router.post("/admin/maintenance")
    async def add_window(
        request: Request,
        integrations: list[str] = Form([], max_length=100),
        customers: list[str] = Form([], max_length=100),
        start: str = Form(..., max_length=64),
        end: str = Form(..., max_length=64),
        tz: str = Form("UTC", max_length=64),
        reason: str = Form("", max_length=1000),
        viewer: Viewer = admin,
    ) -> Response:
        """Hold alerts of integrations or customers from `start` to `end` (read in `tz`)."""
        form = {"integrations": integrations, "customers": customers, "start": start,
                "end": end, "tz": tz, "reason": reason}  # fmt: skip
        try:
            if any(len(x) > 200 for x in (*integrations, *customers)):
                raise BadInput("integrations", "an integration or customer id is too long")
            zone_ = zone(tz)
            a, b = local_instant(start, zone_, "from"), local_instant(end, zone_, "to")
            window = await run_in_threadpool(
                checked_window, views, integrations, customers, a, b, reason.strip(),
                viewer.person,
            )  # fmt: skip
        except BadInput as exc:
            return await show(request, status=422, mform=form, toast=("error", exc.message))
        except ApiError as exc:
            return await show(request, status=exc.status, mform=form, toast=("error", exc.message))
        mid = await commands.add_maintenance(window)
        held = ", ".join([*window["integrations"], *window["customers"]])
        return redirect(
            request, "/admin#maint-h", toast=("ok", f"Maintenance window {mid} holds {held}.")
        )

    @router.post("/admin/maintenance/{mid}/end")
    async def end_window(
        request: Request, mid: int = Path(ge=1, le=2**31 - 1), viewer: Viewer = admin
    ) -> Response:
        """End a window now: alerts it holds that still fire are escalated at once."""
        if not await commands.cancel_maintenance(mid):
            return redirect(
                request,
                "/admin#maint-h",
                toast=("error", f"maintenance window {mid} is not under way or to come"),
            )
        return redirect(request, "/admin#maint-h", toast=("ok", f"Maintenance window {mid} ended."))

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
