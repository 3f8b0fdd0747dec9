"""The REST API: HTTP in, commands to the engine, JSON out. Errors name the field at fault."""

from __future__ import annotations

import os
import time
from functools import partial
from typing import Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from rungs.api.auth import Auth, required_role, tokens_router
from rungs.api.errors import ApiError
from rungs.api.fastpath import FastLanes, Lane, Reply, json_reply
from rungs.api.ingest import ingest_router
from rungs.api.limits import DEFAULT_MAX_BODY, BodyLimit, Rate
from rungs.api.openapi import install_openapi
from rungs.api.schemas import ActionBody, AdvanceClock, OpenCase
from rungs.api.views import case_json, timeline_rows_json
from rungs.core.decide import ACTIONS
from rungs.core.model import Event, Refused
from rungs.engine import heartbeats
from rungs.engine.service import Service
from rungs.policy import PolicyError
from rungs.store import repo
from rungs.store.tables import cases, timeline, timers
from rungs.time.clock import VirtualClock
from rungs.time.instant import format_utc, parse_instant

__all__ = ["create_app"]


class RungsApi(FastAPI):
    """FastAPI, with the happy path of the ingest routes served first by `rungs.api.fastpath`."""

    front: FastLanes | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)


class Timing:
    """Pure ASGI middleware observing each request's latency by route template.

    (Starlette's `@app.middleware("http")` wraps every request in task groups and streams,
    which cost more than the rest of a small request.)
    """

    def __init__(self, app: Any, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.histogram.labels(path).observe(time.perf_counter() - t0)


def create_app(
    service: Service,
    *,
    role: str = "all",
    token_rate: Rate | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    auth = Auth(service, token_rate=token_rate)
    app = RungsApi(
        title="Rungs",
        version="0.1.0",
        description="Escalation management: cases, SLA clocks, escalation matrices.",
        dependencies=[Depends(auth)],  # Bearer tokens and roles on /v1 (see rungs.api.auth)
    )
    app.state.auth = auth
    app.add_middleware(BodyLimit, max_bytes=max_body)
    registry = CollectorRegistry()
    latency = Histogram(
        "rungs_api_latency_seconds", "API request latency", ["route"], registry=registry
    )
    lateness = Gauge(
        "rungs_engine_lateness_seconds", "Due-to-fired delay of the last timer", registry=registry
    )
    lateness_h = Histogram(
        "rungs_engine_lateness_hist_seconds",
        "Due-to-fired delay of timers",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        registry=registry,
    )

    def observe(late_us: int) -> None:
        lateness.set(late_us / 1e6)
        lateness_h.observe(late_us / 1e6)

    service.on_fired = observe

    class DbCollector:
        def collect(self):  # type: ignore[no-untyped-def]
            with service.db.connect() as conn:
                by_status = conn.execute(
                    select(cases.c.status, func.count()).group_by(cases.c.status)
                ).all()
                pending = conn.execute(select(func.count()).select_from(timers)).scalar_one()
            g = GaugeMetricFamily("rungs_cases", "Cases by status", labels=["status"])
            for status, n in by_status:
                g.add_metric([status], n)
            yield g
            yield GaugeMetricFamily(
                "rungs_timers_pending", "Timers waiting to come due", value=pending
            )

    registry.register(DbCollector())  # type: ignore[arg-type]

    app.add_middleware(Timing, histogram=latency)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        status, body = exc.answer()
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e["loc"] if p != "body"]
            field = ".".join(loc) or "body"
            msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
            errors.append({"field": field, "message": f"{field}: {msg}"})
        detail = "; ".join(x["message"] for x in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    def refused(exc: Refused) -> ApiError:
        return ApiError(exc.status, exc.message, exc.field)

    def load(case_id: str) -> tuple[Any, int]:
        with service.db.connect() as conn:
            found = repo.load_case(conn, case_id, lock=False)
        if found is None:
            raise ApiError(404, f"no case '{case_id}'", "id")
        return found

    def view(case: Any, version: int) -> dict[str, Any]:
        return case_json(case, version, service.policy(version), service.clock.now())

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        with service.db.connect() as conn:
            conn.execute(select(1))
        return {
            "status": "ok",
            "role": role,
            "pid": os.getpid(),  # which process answered, with `rungs serve --workers N`
            "now": format_utc(service.clock.now()),
            "virtual_clock": service.clock.virtual,
        }

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @app.get("/v1/policy", tags=["policy"])
    def get_policy(request: Request) -> Response:
        """The current policy's YAML; literal integration keys are shown to admins only."""
        version = service.current_version()
        text = service.policy_text(version)
        token = getattr(request.state, "token", None)
        if token is None or token.role != "admin":
            for integ in service.policy(version).integrations.values():
                if integ.key:
                    text = text.replace(integ.key, "<redacted>")
        return Response(
            text,
            media_type="application/yaml",
            headers={"X-Rungs-Policy-Version": str(version)},
        )

    @app.put("/v1/policy", tags=["policy"])
    async def put_policy(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > 1_000_000:
            raise ApiError(413, "policy larger than 1 MB", "body")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(422, "policy must be UTF-8 YAML", "body") from None
        try:
            version, _ = await run_in_threadpool(service.store_policy, text, "PUT /v1/policy")
        except PolicyError as exc:
            errors = [p.as_dict() for p in exc.problems]
            first = next((p for p in exc.problems if p.severity == "error"), None)
            raise ApiError(
                422, str(first) if first else "invalid policy", "body", errors=errors
            ) from None
        return {"version": version}

    async def open_answer(body: OpenCase) -> tuple[int, dict[str, Any]]:
        """201 and the new case, or 200 and the open case with the same dedup key."""
        data = body.model_dump(exclude_none=True)
        try:
            case, new = await service.open_async(data)
        except Refused as exc:
            raise refused(exc) from None
        return (201 if new else 200), view(case, service.current_version())

    @app.post("/v1/cases", status_code=201, tags=["cases"])
    async def open_case(body: OpenCase, response: Response) -> dict[str, Any]:
        response.status_code, answer = await open_answer(body)
        return answer

    async def open_reply(body: OpenCase) -> Reply:
        try:
            return json_reply(*await open_answer(body))
        except ApiError as exc:
            return json_reply(*exc.answer())

    lanes = {"/v1/cases": Lane(OpenCase, open_reply, required_role("POST", "/v1/cases"))}

    @app.get("/v1/cases", tags=["cases"])
    def list_cases(
        status: str | None = Query(None, max_length=20),
        customer: str | None = Query(None, max_length=200),
        priority: str | None = Query(None, pattern=r"^P[1-4]$", max_length=2),
        level: int | None = Query(None, ge=1, le=100),
        assignee: str | None = Query(None, max_length=200),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        q = select(cases.c.id, cases.c.state, cases.c.policy_version)
        for col, value in (
            ("status", status),
            ("customer", customer),
            ("priority", priority),
            ("level", level),
            ("assignee", assignee),
        ):
            if value is not None:
                q = q.where(cases.c[col] == value)
        total_q = select(func.count()).select_from(q.subquery())
        q = q.order_by(cases.c.opened_at, cases.c.id).limit(limit).offset(offset)
        import json

        from rungs.core.model import Case

        with service.db.connect() as conn:
            rows = conn.execute(q).all()
            total = conn.execute(total_q).scalar_one()
        items = [view(Case.from_dict(json.loads(r.state)), r.policy_version) for r in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/cases/{case_id}", tags=["cases"])
    def get_case(case_id: str) -> dict[str, Any]:
        return view(*load(case_id))

    @app.get("/v1/cases/{case_id}/timeline", tags=["cases"])
    def get_timeline(case_id: str) -> list[dict[str, Any]]:
        load(case_id)
        with service.db.connect() as conn:
            rows = conn.execute(
                select(timeline.c.entry, timeline.c.policy_version)
                .where(timeline.c.case_id == case_id)
                .order_by(timeline.c.id)
            ).all()
        return timeline_rows_json(rows)

    @app.get("/v1/cases/{case_id}/handoff", tags=["cases"])
    def get_handoff(case_id: str, level: int | None = Query(None, ge=1, le=100)) -> dict[str, Any]:
        import json

        from rungs.core.handoff import handoff

        case, version = load(case_id)
        with service.db.connect() as conn:
            rows = conn.execute(
                select(timeline.c.entry)
                .where(timeline.c.case_id == case_id)
                .order_by(timeline.c.id)
            ).all()
        entries = [json.loads(r.entry) for r in rows]
        return handoff(case, service.policy(version), service.clock.now(), entries, level)

    @app.post("/v1/cases/{case_id}/adopt_policy", tags=["cases"])
    async def adopt(case_id: str) -> dict[str, Any]:
        try:
            case = await run_in_threadpool(service.adopt_policy, case_id)
        except Refused as exc:
            raise refused(exc) from None
        return view(case, service.current_version())

    @app.post("/v1/cases/{case_id}/{action}", tags=["cases"])
    async def act(
        case_id: str, action: str, body: ActionBody | None = Body(None)
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise ApiError(404, f"unknown action '{action}' (use {', '.join(ACTIONS)})", "action")
        b = body or ActionBody()
        event = Event(
            action, by=b.by, reason=b.reason, to_level=b.to_level, to=b.to, priority=b.priority
        )
        try:
            case = await run_in_threadpool(service.act, case_id, event)
        except Refused as exc:
            raise refused(exc) from None
        _, version = load(case_id)
        return view(case, version)

    from rungs.api.oncall import oncall_router

    app.include_router(oncall_router(service, ApiError))

    from rungs.api.links import links_router

    app.include_router(links_router(service, ApiError))  # /a/{token}, /inbound/sms: signed

    app.include_router(
        ingest_router(
            service,
            service,
            beat=partial(heartbeats.beat, service),
            heartbeat_states=partial(heartbeats.states, service),
            lanes=lanes,
        )
    )
    app.include_router(tokens_router(service, auth, ApiError))

    if isinstance(service.clock, VirtualClock):

        @app.get("/v1/clock", tags=["clock"])
        def get_clock() -> dict[str, Any]:
            return {"now": format_utc(service.clock.now()), "virtual": True}

        @app.post("/v1/clock/advance", tags=["clock"])
        async def advance(body: AdvanceClock) -> dict[str, Any]:
            try:
                to = parse_instant(body.to)
            except ValueError as exc:
                raise ApiError(422, f"to: {exc}", "to") from None
            if to < service.clock.now():
                raise ApiError(409, "the virtual clock cannot go backwards", "to")
            fired = await run_in_threadpool(service.advance, to)
            return {"now": format_utc(service.clock.now()), "fired": fired}

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    install_openapi(app)
    app.front = FastLanes(
        partial(FastAPI.__call__, app), lanes, auth=auth, max_body=max_body, latency=latency
    )
    return app
