"""Report routes: `GET /v1/reports/{section}?from=&to=&by=&format=` (viewer).

Each section is its own route (summary, sla, escalations, ping-pong, aging, load, reasons),
read through `Views.report`; `format=csv` answers the section's table as CSV.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from rungs.api.errors import ApiError
from rungs.store.views import Views
from rungs.store.views.report_sql import WindowError, instant_of, window_of
from rungs.store.views.report_tables import to_csv
from rungs.store.views.reports import SECTIONS
from rungs.time.instant import DAY, DurationError, format_utc, parse_duration

__all__ = ["reports_router"]

From = Annotated[
    str | None,
    Query(alias="from", max_length=40, description="date or instant; default: `to` - 30 days"),
]
To = Annotated[
    str | None,
    Query(alias="to", max_length=40, description="date or instant (exclusive); default: now"),
]
By = Annotated[
    str | None, Query(max_length=40, description="customer, team, priority, category or tier")
]
Format = Annotated[str, Query(max_length=8, description="json (default) or csv")]


def reports_router(views: Views) -> APIRouter:
    router = APIRouter(tags=["reports"])

    def answer(section: str, start: str | None, end: str | None, by: str | None, fmt: str) -> Any:
        if fmt not in ("json", "csv"):
            raise ApiError(422, "format: use json or csv", "format")
        end = end or format_utc(views.clock.now())
        try:
            start = start or format_utc(instant_of(end, "to") - 30 * DAY)
            w = window_of(start, end, by)
        except WindowError as exc:
            raise ApiError(422, exc.message, exc.field) from None
        report = views.report(section, w)
        if fmt == "csv":
            name = f"rungs-{section}-{w.start // 1_000_000}-{w.end // 1_000_000}.csv"
            return Response(
                to_csv(section, report),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return JSONResponse(report)

    @router.get("/v1/reports/value-at-risk")
    def at_risk(
        horizon: Annotated[str, Query(max_length=20, description="e.g. 4h, 1d")] = "4h",
    ) -> dict[str, Any]:
        """Open cases past an SLA target or due within `horizon`, by customer value."""
        try:
            span = parse_duration(horizon)
        except DurationError as exc:
            raise ApiError(422, f"horizon: {exc}", "horizon") from None
        if span > 366 * DAY:
            raise ApiError(422, "horizon: at most a year", "horizon")
        return views.value_at_risk(span)

    for section in SECTIONS:
        router.add_api_route(
            f"/v1/reports/{section}",
            _route(answer, section),
            methods=["GET"],
            summary=f"Report: {section}",
            response_model=None,
        )
    return router


def _route(answer: Any, section: str) -> Any:
    def get(start: From = None, end: To = None, by: By = None, format: Format = "json") -> Any:
        return answer(section, start, end, by, format)

    get.__doc__ = f"The `{section}` section of the report over cases opened in [from, to)."
    return get
