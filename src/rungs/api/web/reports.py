"""The reports page (`/reports`): escalation rate and reasons by week, SLA achievement by
priority, aging bands and out-of-hours load per person, each a chart (the vendored uPlot,
drawn by `static/reports.js` from the JSON beside it) with its table beneath and a CSV link
(`/reports/{section}.csv`, the same table as the API's `format=csv`).

Everything is read through `Views.report`, over the cases opened in `[from, to)` (default:
the eight weeks up to today); a bad `from` or `to` shows the form again with the field named.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from rungs.api.web.render import page
from rungs.api.web.session import Viewer, require
from rungs.engine import Engine
from rungs.store.views.report_sql import Window, WindowError, window_of
from rungs.store.views.report_tables import to_csv
from rungs.store.views.reports import SECTIONS
from rungs.time.instant import DAY, format_utc, parse_instant

__all__ = ["charts", "reports_routes"]

DEFAULT_SPAN = 56 * DAY


def _week_s(week: str) -> int:
    return parse_instant(week + "T00:00:00Z") // 1_000_000


def charts(r: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's charts: each a title, its uPlot spec and its table (header, rows)."""
    esc = r["escalations"]["by_week"]
    reasons = r["reasons"]
    names = [t["reason"] for t in reasons["top"][:6]]
    weeks = [w["week"] for w in reasons["by_week"]]
    sla_rows = [x for x in r["sla"]["achievement"] if x["achievement"] is not None]
    prios = sorted({x["priority"] for x in sla_rows})
    aging = r["aging"]["open_by_age"]
    people = [p for p in r["load"]["people"] if p["out_of_hours"] or p["business"]][:15]

    def pct(v: float | None) -> float | None:
        return None if v is None else round(v * 100, 1)

    return [
        {"id": "escalations", "title": "Escalation rate by week",
         "spec": {"kind": "line", "x": [_week_s(w["week"]) for w in esc], "time": True,
                  "series": [{"label": "escalation rate %",
                              "values": [pct(w["escalation_rate"]) for w in esc]}]},
         "head": ["week", "cases", "escalated", "rate %"],
         "rows": [[w["week"], w["cases"], w["escalated_cases"], pct(w["escalation_rate"])]
                  for w in esc]},
        {"id": "reasons", "title": "Escalation reasons by week",
         "spec": {"kind": "line", "x": [_week_s(w) for w in weeks], "time": True,
                  "series": [{"label": n, "values": [wk["counts"].get(n, 0)
                                                     for wk in reasons["by_week"]]}
                             for n in names]},
         "head": ["reason", "count", "share %"],
         "rows": [[t["reason"], t["count"], pct(t["share"])] for t in reasons["top"]]},
        {"id": "sla", "title": "SLA achievement by priority",
         "spec": {"kind": "bars", "labels": prios,
                  "series": [{"label": m.replace("_", " ") + " %", "values": [
                      next((pct(x["achievement"]) for x in sla_rows
                            if x["metric"] == m and x["priority"] == p), None) for p in prios]}
                      for m in ("first_response", "next_response", "resolution")]},
         "head": ["metric", "priority", "met", "breached", "achievement %", "clock"],
         "rows": [[x["metric"], x["priority"], x["met"], x["breached"], pct(x["achievement"]),
                   x["clock"]] for x in sla_rows]},
        {"id": "aging", "title": "Open cases by age",
         "spec": {"kind": "bars", "labels": list(aging),
                  "series": [{"label": "open cases", "values": list(aging.values())}]},
         "head": ["age", "open cases"], "rows": [[k, v] for k, v in aging.items()]},
        {"id": "load", "title": "Out-of-hours pages per person",
         "spec": {"kind": "bars", "labels": [p["person"] for p in people],
                  "series": [{"label": "off hours", "values": [p["off_hours"] for p in people]},
                             {"label": "sleep", "values": [p["sleep"] for p in people]}]},
         "head": ["person", "business", "off hours", "sleep", "on-call hours", "cases held"],
         "rows": [[p["person"], p["business"], p["off_hours"], p["sleep"], p["on_call_hours"],
                   p["cases_held"]] for p in people]},
    ]  # fmt: skip


CSV_OF = {"escalations": "escalations", "reasons": "reasons", "sla": "sla", "aging": "aging",
          "load": "load"}  # fmt: skip


def reports_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    views = engine.views

    def window(start: str | None, end: str | None) -> Window:
        if end is None:  # the day after today: today's cases are in
            end = format_utc((views.clock.now() // DAY + 1) * DAY)[:10]
        if start is None:
            try:
                start = format_utc(parse_instant(end + "T00:00:00Z") - DEFAULT_SPAN)[:10]
            except ValueError:
                start = end
        return window_of(start, end)

    @router.get("/reports")
    async def reports_page(
        request: Request,
        viewer: Viewer = Depends(require("viewer")),
        start: str | None = Query(None, alias="from", max_length=40),
        end: str | None = Query(None, alias="to", max_length=40),
    ) -> Response:
        try:
            w = window(start, end)
        except WindowError as exc:
            ctx = {"error": exc.message, "field": exc.field, "from": start, "to": end}
            return page(request, "reports.html", ctx, status=422)
        sections = ("escalations", "reasons", "sla", "aging", "load")
        got = {s: await run_in_threadpool(views.report, s, w) for s in sections}
        query = urlencode({"from": format_utc(w.start), "to": format_utc(w.end)})
        ctx = {"charts": charts(got), "query": query, "from": format_utc(w.start)[:10],
               "to": format_utc(w.end)[:10], "definitions": _definitions(got)}  # fmt: skip
        return page(request, "reports.html", ctx)

    @router.get("/reports/{section}.csv")
    async def reports_csv(
        section: str,
        viewer: Viewer = Depends(require("viewer")),
        start: str | None = Query(None, alias="from", max_length=40),
        end: str | None = Query(None, alias="to", max_length=40),
    ) -> Response:
        if section not in SECTIONS:
            return Response(f"no report section '{section[:40]}'", 404, media_type="text/plain")
        try:
            w = window(start, end)
        except WindowError as exc:
            return Response(exc.message, 422, media_type="text/plain")
        text = to_csv(section, await run_in_threadpool(views.report, section, w))
        name = f"rungs-{section}-{format_utc(w.start)[:10]}.csv"
        disposition = f'attachment; filename="{name}"'
        return Response(text, media_type="text/csv", headers={"Content-Disposition": disposition})

    return router


def _definitions(got: dict[str, dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in got.values():
        out.update(r["definitions"])
    return out
