"""The web console: server-rendered pages under `/` (the API stays under `/v1`).

`web_router(engine, settings)` is the one router `api/app.py` includes. Each page module has
a factory `xxx_routes(engine) -> APIRouter`, listed in `PAGES`; its handlers read through
`engine.views`, act through `engine.commands`, take the signed-in person with
`Depends(require(role))` (`session.py`) and answer with `render.page` / `render.redirect`.
Static files (`static/`, with the vendored registry packages under `static/vendor/`, copied
by `make assets`) are served from `/static/`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.staticfiles import StaticFiles

from rungs.api.web.case import case_routes
from rungs.api.web.events import events_routes
from rungs.api.web.login import login_routes
from rungs.api.web.pages import CONSOLE_B_PAGES  # On call, Policy, People, Admin
from rungs.api.web.queue import queue_routes
from rungs.api.web.reports import reports_routes
from rungs.api.web.session import Sessions, WebSettings
from rungs.engine import Engine
from rungs.store.links import stored_secret

__all__ = ["PAGES", "WebSettings", "web_router"]

STATIC = Path(__file__).parent / "static"
PAGES: tuple[Callable[[Engine], APIRouter], ...] = (
    login_routes,
    queue_routes,
    case_routes,
    events_routes,
    *CONSOLE_B_PAGES,
    reports_routes,
)


def web_router(engine: Engine, settings: WebSettings | None = None) -> APIRouter:
    """Every console route, bound to this engine's sessions (the secret: `settings.secret`
    (RUNGS_WEB_SECRET), else generated once and kept in the database; never printed)."""
    settings = settings or WebSettings()
    secret = settings.secret or stored_secret(
        engine.db, "web", lambda: secrets.token_urlsafe(32), engine.clock.now()
    )
    sessions = Sessions(secret, engine.views, settings)

    def bind(request: Request) -> None:
        request.state.web_sessions = sessions

    router = APIRouter(include_in_schema=False, dependencies=[Depends(bind)])
    for routes in PAGES:
        router.include_router(routes(engine))

    files = StaticFiles(directory=STATIC, check_dir=False)

    @router.get("/static/{path:path}")
    async def static(path: str, request: Request) -> Response:
        answer = await files.get_response(path, request.scope)  # 404 for what is not there
        answer.headers.setdefault("Cache-Control", "public, max-age=3600")
        return answer

    return router
