"""On-call routes: who is on call, shifts, iCalendar export, temporary overrides."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from rungs.api.errors import ApiError
from rungs.core.model import Refused
from rungs.engine import Commands
from rungs.schedules.oncall import Schedule
from rungs.store.views import Views
from rungs.time.instant import DAY, format_utc, parse_instant

__all__ = ["MAX_SPAN", "oncall_router", "OverrideBody"]

MAX_SPAN = 400 * DAY  # the most shifts (`/shifts`, `.ics`) one request asks for


class OverrideBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: Annotated[str, Field(alias="from", max_length=64)]
    to: Annotated[str, Field(max_length=64)]
    who: Annotated[str, Field(min_length=1, max_length=200)]
    note: Annotated[str, Field(max_length=1000)] | None = None


def oncall_router(commands: Commands, views: Views) -> APIRouter:
    router = APIRouter(tags=["on-call"])

    def instant(value: str | None, name: str, default: int) -> int:
        if value is None:
            return default
        try:
            return parse_instant(value)
        except ValueError as exc:
            raise ApiError(422, f"{name}: {exc}", name) from None

    def span(start: str | None, to: str | None, since: int, length: int) -> tuple[int, int]:
        """[from, to) of a shifts query: `since` and `length` by default, at most MAX_SPAN."""
        a = instant(start, "from", since)
        b = instant(to, "to", a + length)
        if b <= a:
            raise ApiError(422, "'to' must be later than 'from'", "to")
        if b - a > MAX_SPAN:
            raise ApiError(422, f"ask for at most {MAX_SPAN // DAY} days of shifts at once", "to")
        return a, b

    def schedule(sid: str) -> Schedule:
        found = views.schedule(sid)
        if found is None:
            raise ApiError(404, f"unknown schedule '{sid}'", "id")
        return found

    @router.get("/v1/oncall")
    def who_is_on_call(at: str | None = Query(None, max_length=64)) -> list[dict[str, Any]]:
        return views.on_call(instant(at, "at", views.clock.now()))

    @router.get("/v1/schedules/{sid}/shifts")
    def get_shifts(
        sid: str,
        start: str | None = Query(None, alias="from", max_length=64),
        to: str | None = Query(None, max_length=64),
    ) -> list[dict[str, Any]]:
        a, b = span(start, to, views.clock.now(), 7 * DAY)
        return views.shifts(schedule(sid), a, b)

    @router.get("/v1/schedules/{sid}.ics")
    def get_ics(
        sid: str,
        person: str | None = Query(None, max_length=200),
        start: str | None = Query(None, alias="from", max_length=64),
        to: str | None = Query(None, max_length=64),
    ) -> Response:
        s = schedule(sid)
        if person is not None and person not in views.policy().people:
            raise ApiError(422, f"unknown person '{person}'", "person")
        a, b = span(start, to, views.clock.now() - 7 * DAY, 90 * DAY)
        return Response(
            views.ics(s, a, b, person),
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{sid}.ics"'},
        )

    @router.post("/v1/schedules/{sid}/overrides", status_code=201)
    async def post_override(sid: str, body: OverrideBody) -> dict[str, Any]:
        schedule(sid)
        a, b = instant(body.start, "from", 0), instant(body.to, "to", 0)
        try:  # checked there before anything is written: order, range, schedule, person
            oid = await commands.add_override(sid, a, b, body.who, body.note)
        except Refused as exc:
            raise ApiError.refused(exc) from None
        return {
            "id": oid,
            "schedule": sid,
            "from": format_utc(a),
            "to": format_utc(b),
            "who": body.who,
        }

    return router
