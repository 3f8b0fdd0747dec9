"""Maintenance windows: `POST /v1/maintenance` (admin) holds the alerts of integrations or
customers from `from` to `to` (recorded as `suppressed`, nobody paged, no SLA); at the end,
alerts still firing are escalated as if they had just arrived. `GET /v1/maintenance` lists
windows (viewer); `DELETE /v1/maintenance/{mid}` ends one now (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from rungs.api.errors import ApiError
from rungs.api.schemas import Short, Strict
from rungs.engine import Commands
from rungs.store.views import Views
from rungs.time.instant import DAY, format_utc, parse_instant

__all__ = ["MaintenanceWindow", "checked_window", "maintenance_router"]

MAX_LENGTH = 31 * DAY  # the longest window
MAX_AHEAD = 366 * DAY  # how far ahead a window may start
MAX_OPEN = 1000  # windows under way or to come at once


class MaintenanceWindow(Strict):
    integrations: Annotated[list[Short], Field(max_length=100)] = []
    customers: Annotated[list[Short], Field(max_length=100)] = []
    from_: Annotated[str, Field(alias="from", max_length=64)]
    to: Annotated[str, Field(max_length=64)]
    reason: Annotated[str, Field(min_length=1, max_length=1000)]

    model_config = Strict.model_config | {"populate_by_name": True}


def maintenance_router(commands: Commands, views: Views) -> APIRouter:
    router = APIRouter(tags=["maintenance"])

    @router.post("/v1/maintenance", status_code=201)
    async def add(body: MaintenanceWindow, request: Request) -> dict[str, Any]:
        """Hold the alerts of `integrations` and of `customers` from `from` to `to`."""
        start, end = _instant(body.from_, "from"), _instant(body.to, "to")
        token = getattr(request.state, "token", None)
        by = token.name if token is not None else ""
        window = checked_window(
            views, body.integrations, body.customers, start, end, body.reason, by
        )
        mid = await commands.add_maintenance(window)
        return views.maintenance_window(mid) or {"id": mid}

    @router.get("/v1/maintenance")
    def list_windows(
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """The latest windows first, each with its `state`."""
        return views.maintenance(limit)

    @router.delete("/v1/maintenance/{mid}")
    async def cancel(mid: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> dict[str, Any]:
        """End a window now: the alerts it holds are escalated at once if still firing."""
        if not await commands.cancel_maintenance(mid):
            raise ApiError(404, f"no maintenance window {mid} under way or to come", "mid")
        return views.maintenance_window(mid) or {"id": mid}

    return router


def checked_window(
    views: Views,
    integrations: list[str],
    customers: list[str],
    start: int,
    end: int,
    reason: str,
    by: str,
) -> dict[str, Any]:
    """A window as `Commands.add_maintenance` takes it, checked against the policy in force
    and the clock (ApiError naming the field otherwise). The API and the console's admin page
    both add windows through here."""
    policy, now = views.policy(), views.clock.now()
    if not integrations and not customers:
        raise ApiError(422, "name at least one integration or customer", "integrations")
    for i, ident in enumerate(integrations):
        if ident not in policy.integrations:
            raise ApiError(422, f"unknown integration '{ident}'", f"integrations.{i}")
    for i, ident in enumerate(customers):
        if policy.customer(ident) is None:
            raise ApiError(422, f"unknown customer '{ident}'", f"customers.{i}")
    if not reason.strip():
        raise ApiError(422, "say why: a reason is required", "reason")
    if end <= start:
        raise ApiError(422, "'to' must be after 'from'", "to")
    if end <= now:
        raise ApiError(422, f"'to' is past (now is {format_utc(now)})", "to")
    if end - start > MAX_LENGTH:
        raise ApiError(422, "a window lasts at most 31 days", "to")
    if start - now > MAX_AHEAD:
        raise ApiError(422, "a window starts within a year", "from")
    if views.maintenance_open() >= MAX_OPEN:
        raise ApiError(409, f"{MAX_OPEN} windows are under way or to come already", "to")
    return {
        "integrations": list(dict.fromkeys(integrations)),
        "customers": list(dict.fromkeys(customers)),
        "start": max(start, now),  # one begun already starts now
        "end": end,
        "reason": reason,
        "by": by,
    }


def _instant(text: str, field: str) -> int:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise ApiError(422, f"{field}: {exc}", field) from None
