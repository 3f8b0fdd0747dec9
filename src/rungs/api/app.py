"""The REST API: HTTP in, commands to the engine, JSON out. Errors name the field at fault.

Routes live in modules by concern (`api/routes/`, `oncall`, `links`, `ingest`, `auth`); they
read through the engine's `views` and write through its `commands`, never the database.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Histogram

from rungs.api.access import AccessLog
from rungs.api.auth import Auth, tokens_router
from rungs.api.counters import Counters
from rungs.api.errors import ApiError, unavailable_reply
from rungs.api.fastpath import FastLanes, Lane
from rungs.api.feeds import Feeds, feeds_router
from rungs.api.inbound import Blobs, inbound_router
from rungs.api.ingest import ingest_router
from rungs.api.limits import DEFAULT_MAX_BODY, BodyLimit, Rate
from rungs.api.links import links_router
from rungs.api.oncall import oncall_router
from rungs.api.openapi import DOCS_PAGES, DOCS_STATIC, install_docs, install_openapi
from rungs.api.routes import Metrics, cases_router, clock_router, health_router, policy_router
from rungs.api.routes.compensation import compensation_router
from rungs.api.routes.maintenance import maintenance_router
from rungs.api.routes.replay import VerifyGauges, replay_router
from rungs.api.routes.reports import reports_router
from rungs.api.web import WebSettings, web_router
from rungs.api.web.survey import survey_router
from rungs.engine import Engine
from rungs.engine.writer import Unavailable
from rungs.notify.links import Links

__all__ = ["ApiError", "RungsApi", "create_app"]


class RungsApi(FastAPI):
    """FastAPI, with the happy path of the ingest routes served first by `rungs.api.fastpath`."""

    front: FastLanes | None = None
    access: AccessLog | None = None  # the request log line, around both

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.access is None:
            await self.route_request(scope, receive, send)
        else:
            await self.access(scope, receive, send)

    async def route_request(self, scope: Any, receive: Any, send: Any) -> None:
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


class ErrorAnswer(JSONResponse):
    """An error's JSON body, written even when it echoes text that UTF-8 cannot carry (a lone
    surrogate sent as `"\\ud800"` in a JSON body): then as ASCII with escapes, which reads
    back as the same JSON."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, separators=(",", ":")).encode("ascii")


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    status, body = exc.answer()
    return ErrorAnswer(body, status_code=status)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unavailable)
    status, body, headers = unavailable_reply(exc)
    return JSONResponse(body, status_code=status, headers=headers)


def _json_position(doc: object, pos: object) -> str:
    """`line L, column C` of character `pos` in the body, when both are known."""
    if not isinstance(doc, str) or not isinstance(pos, int):
        return "in the body"
    line = doc.count("\n", 0, pos) + 1
    column = pos - doc.rfind("\n", 0, pos)
    return f"at line {line}, column {column} (character {pos + 1})"


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 naming the field(s) at fault; 400 for a body that is not JSON, 415 for a body sent
    as another media type (FastAPI hands such a body on as bytes, unread)."""
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    for e in problems:
        if e["type"] == "json_invalid":
            why = (e.get("ctx") or {}).get("error", "invalid JSON")
            where = _json_position(exc.body, e["loc"][-1])
            return ErrorAnswer({"detail": f"the body is not valid JSON: {why} {where}"}, 400)
    if isinstance(exc.body, bytes | bytearray) and exc.body:
        given = request.headers.get("content-type")
        sent = f"'{given}'" if given else "no Content-Type"
        return ErrorAnswer(
            {"detail": f"send the body as JSON with 'Content-Type: application/json' ({sent})"},
            415,
        )
    errors = []
    for e in problems:
        where = e["loc"][1:] if e["loc"][:1] in (("query",), ("path",), ("header",)) else e["loc"]
        loc = [str(p) for p in where if p != "body"]  # a parameter by its name, as ApiError does
        field = ".".join(loc) or "body"
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        errors.append({"field": field, "message": f"{field}: {msg}"})
    body: dict[str, Any] = {"detail": "; ".join(x["message"] for x in errors)}
    fields = {x["field"] for x in errors}
    if len(fields) == 1:  # one field at fault: name it, as every other error does
        body["field"] = fields.pop()
    body["errors"] = errors
    return ErrorAnswer(body, status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return ErrorAnswer({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(
    engine: Engine,
    *,
    links: Links,
    role: str = "all",
    token_rate: Rate | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    counters: Counters | None = None,
    web: WebSettings | None = None,
    blob_dir: Path = Path("rungs-blobs"),
) -> FastAPI:
    commands, views = engine.commands, engine.views
    auth = Auth(views.tokens, token_rate=token_rate)
    app = RungsApi(
        title="Rungs",
        version="0.1.0",
        description="Escalation management: cases, SLA clocks, escalation matrices.",
        docs_url=None,  # served by install_docs, with its assets, no CDN
        redoc_url=None,
        dependencies=[Depends(auth)],  # Bearer tokens and roles on /v1 (see rungs.api.auth)
    )
    app.state.auth = auth
    app.add_middleware(BodyLimit, max_bytes=max_body)
    metrics = Metrics(views)
    counters = counters if counters is not None else Counters()
    counters.depth = views  # the outbox's rows by status, read at scrape
    metrics.registry.register(counters)  # type: ignore[arg-type]
    metrics.registry.register(VerifyGauges(engine.db))  # type: ignore[arg-type]
    app.add_middleware(Timing, histogram=metrics.latency)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(RequestValidationError, _invalid)

    lanes: dict[str, Lane] = {}
    app.include_router(health_router(views, metrics, engine, role=role))
    app.include_router(policy_router(commands, views))
    app.include_router(replay_router(views))  # POST /v1/policy/replay
    app.include_router(cases_router(commands, views, lanes=lanes))
    app.include_router(oncall_router(commands, views))
    app.include_router(reports_router(views))
    app.include_router(compensation_router(commands, views))
    app.include_router(links_router(commands, views, links))  # /a/{token}, /inbound/sms: signed
    app.include_router(
        ingest_router(engine.policies, commands, heartbeat_states=views.heartbeats, lanes=lanes)
    )
    app.include_router(tokens_router(commands, views, auth))
    app.include_router(feeds_router(Feeds(links, views)))  # /calendar/{token}.ics: signed
    app.include_router(inbound_router(views, Blobs(blob_dir)))  # mail attachments, unmatched
    app.include_router(survey_router(commands, views))  # /s/{token}: the token is the credential
    app.include_router(maintenance_router(commands, views))
    if engine.clock.virtual:
        app.include_router(clock_router(engine.loop))
    app.include_router(web_router(engine, web))  # the console: pages under /, signed in
    app.add_exception_handler(HTTPException, _http_error)

    install_openapi(app)
    install_docs(app)
    app.front = FastLanes(
        partial(FastAPI.__call__, app), lanes, auth=auth, max_body=max_body, latency=metrics.latency
    )
    app.access = AccessLog(  # a log line per request, and the ingest counters
        app.route_request,
        safe_paths=frozenset(lanes) | DOCS_PAGES,
        on_request=counters.request,
        static=DOCS_STATIC,
    )
    return app
