"""Live updates: `GET /events`, server-sent events naming the cases each commit changed.

Every commit that writes cases (`engine.changes`) becomes one `cases` event (the ids, comma
separated) and one `case-ID` event per case, so the queue refreshes its rows and a case page
itself, with htmx's SSE extension (`hx-trigger="sse:cases"`). A write by another process
(PostgreSQL) names no case: `cases` then says `*` and `case-any` tells every case page.
Bursts are merged over `COALESCE` seconds: a refresh per burst, not per case.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from sse_starlette.sse import EventSourceResponse

from rungs.api.web.session import Viewer, require
from rungs.engine import Engine

__all__ = ["COALESCE", "events_routes"]

COALESCE = 0.1  # seconds
MAX_IDS = 200  # per-case events per message; beyond, the `cases` event alone


def events_routes(engine: Engine) -> APIRouter:
    router = APIRouter()

    @router.get("/events")
    async def events(
        request: Request, viewer: Viewer = Depends(require("viewer"))
    ) -> EventSourceResponse:
        async def stream() -> AsyncIterator[dict[str, str]]:
            async with engine.changes.subscribe() as sub:
                yield {"event": "hello", "data": viewer.person}
                while True:
                    await sub.wait()
                    await asyncio.sleep(COALESCE)  # the rest of a burst joins this message
                    ordered = sorted(sub.take())
                    yield {"event": "cases", "data": ",".join(ordered[:MAX_IDS])}
                    for case_id in ordered[:MAX_IDS]:
                        name = "case-any" if case_id == "*" else f"case-{case_id}"
                        yield {"event": name, "data": case_id}

        return EventSourceResponse(stream(), ping=15)

    return router
