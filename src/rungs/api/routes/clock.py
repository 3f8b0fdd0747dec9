"""The virtual clock's routes (only with `--virtual-clock`): read it, move it forward."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from rungs.api.errors import ApiError
from rungs.api.schemas import AdvanceClock
from rungs.engine import Loop
from rungs.time.instant import format_utc, parse_instant

__all__ = ["clock_router"]


def clock_router(loop: Loop) -> APIRouter:
    router = APIRouter(tags=["clock"])
    clock = loop.clock

    @router.get("/v1/clock")
    def get_clock() -> dict[str, Any]:
        return {"now": format_utc(clock.now()), "virtual": True}

    @router.post("/v1/clock/advance")
    async def advance(body: AdvanceClock) -> dict[str, Any]:
        try:
            to = parse_instant(body.to)
        except ValueError as exc:
            raise ApiError(422, f"to: {exc}", "to") from None
        if to < clock.now():
            raise ApiError(409, "the virtual clock cannot go backwards", "to")
        fired = await run_in_threadpool(loop.advance, to)
        return {"now": format_utc(clock.now()), "fired": fired}

    return router
