"""Case routes: open, list, read, timeline, handoff, actions, adopting the current policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Response
from starlette.concurrency import run_in_threadpool

from rungs.api.auth import required_role
from rungs.api.errors import ApiError
from rungs.api.fastpath import Lane, Reply, json_reply
from rungs.api.schemas import ActionBody, OpenCase
from rungs.core.decide import ACTIONS
from rungs.core.model import Event, Refused
from rungs.engine import Commands
from rungs.store.views import Views

__all__ = ["MAX_OFFSET", "cases_router", "refused"]

MAX_OFFSET = 2**31 - 1  # any database takes it; no list is this long


def refused(exc: Refused) -> ApiError:
    return ApiError(exc.status, exc.message, exc.field)


def cases_router(commands: Commands, views: Views, *, lanes: dict[str, Lane]) -> APIRouter:
    """The case routes; `POST /v1/cases` is also added to `lanes` (see `api.fastpath`)."""
    router = APIRouter(tags=["cases"])

    def view(case_id: str) -> dict[str, Any]:
        found = views.case(case_id)
        if found is None:
            raise ApiError(404, f"no case '{case_id}'", "id")
        return found

    async def open_answer(body: OpenCase) -> tuple[int, dict[str, Any]]:
        """201 and the new case, or 200 and the open case with the same dedup key."""
        try:
            case, new = await commands.open(body.model_dump(exclude_none=True))
        except Refused as exc:
            raise refused(exc) from None
        current = views.policies.current_version()
        return (201 if new else 200), views.case_json(case, current)

    @router.post("/v1/cases", status_code=201)
    async def open_case(body: OpenCase, response: Response) -> dict[str, Any]:
        response.status_code, answer = await open_answer(body)
        return answer

    async def open_reply(body: OpenCase) -> Reply:
        try:
            return json_reply(*await open_answer(body))
        except ApiError as exc:
            return json_reply(*exc.answer())

    lanes["/v1/cases"] = Lane(OpenCase, open_reply, required_role("POST", "/v1/cases"))

    @router.get("/v1/cases")
    def list_cases(
        status: str | None = Query(None, max_length=20),
        customer: str | None = Query(None, max_length=200),
        priority: str | None = Query(None, pattern=r"^P[1-4]$", max_length=2),
        level: int | None = Query(None, ge=1, le=100),
        assignee: str | None = Query(None, max_length=200),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
    ) -> dict[str, Any]:
        filters = {
            "status": status,
            "customer": customer,
            "priority": priority,
            "level": level,
            "assignee": assignee,
        }
        problem = views.filter_error(filters)  # a value that can match no case: not an empty list
        if problem is not None:
            raise ApiError(422, problem[1], problem[0])
        return views.cases(filters, limit, offset)

    @router.get("/v1/cases/{case_id}")
    def get_case(case_id: str) -> dict[str, Any]:
        return view(case_id)

    @router.get("/v1/cases/{case_id}/timeline")
    def get_timeline(case_id: str) -> list[dict[str, Any]]:
        found = views.timeline(case_id)
        if found is None:
            raise ApiError(404, f"no case '{case_id}'", "id")
        return found

    @router.get("/v1/cases/{case_id}/handoff")
    def get_handoff(case_id: str, level: int | None = Query(None, ge=1, le=100)) -> dict[str, Any]:
        try:
            found = views.handoff(case_id, level)
        except Refused as exc:  # a level the case's matrix does not have
            raise refused(exc) from None
        if found is None:
            raise ApiError(404, f"no case '{case_id}'", "id")
        return found

    @router.post("/v1/cases/{case_id}/adopt_policy")
    async def adopt(case_id: str) -> dict[str, Any]:
        try:
            case = await commands.adopt(case_id)
        except Refused as exc:
            raise refused(exc) from None
        return views.case_json(case, views.policies.current_version())

    @router.post("/v1/cases/{case_id}/{action}")
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
            await commands.act(case_id, event)
        except Refused as exc:
            raise refused(exc) from None
        return await run_in_threadpool(view, case_id)

    return router
