"""Case routes: open, list, read, timeline, handoff, actions, adopting the current policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from rungs.api.actors import acting_as
from rungs.api.auth import required_role
from rungs.api.errors import ApiError
from rungs.api.fastpath import Lane, Reply, json_reply
from rungs.api.schemas import ActionBody, OpenCase
from rungs.core.decide import ACTIONS
from rungs.core.model import Event, Refused
from rungs.engine import Commands
from rungs.store.tokens import TokenInfo
from rungs.store.views import Views

__all__ = ["MAX_OFFSET", "cases_router"]

MAX_OFFSET = 2**31 - 1  # any database takes it; no list is this long


def cases_router(commands: Commands, views: Views, *, lanes: dict[str, Lane]) -> APIRouter:
    """The case routes; `POST /v1/cases` is also added to `lanes` (see `api.fastpath`)."""
    router = APIRouter(tags=["cases"])

    def view(case_id: str) -> dict[str, Any]:
        found = views.case(case_id)
        if found is None:
            raise ApiError(404, f"no case '{case_id}'", "id")
        return found

    async def open_answer(body: OpenCase, token: TokenInfo | None) -> tuple[int, dict[str, Any]]:
        """201 and the new case, or 200 and the open case with the same dedup key. Who
        opened it is the token (`actor` on the `opened` entry): opening takes no `by`."""
        data = body.model_dump(exclude_none=True)
        if token is not None:
            data["actor"] = token.name
        try:
            case, new = await commands.open(data)
        except Refused as exc:
            raise ApiError.refused(exc) from None
        current = views.policies.current_version()
        return (201 if new else 200), views.case_json(case, current)

    @router.post("/v1/cases", status_code=201)
    async def open_case(body: OpenCase, request: Request, response: Response) -> dict[str, Any]:
        response.status_code, answer = await open_answer(
            body, getattr(request.state, "token", None)
        )
        return answer

    async def open_reply(body: OpenCase, token: TokenInfo | None) -> Reply:
        try:
            return json_reply(*await open_answer(body, token))
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
            raise ApiError.refused(exc) from None
        if found is None:
            raise ApiError(404, f"no case '{case_id}'", "id")
        return found

    @router.post("/v1/cases/{case_id}/adopt_policy")
    async def adopt(case_id: str) -> dict[str, Any]:
        try:
            case = await commands.adopt(case_id)
        except Refused as exc:
            raise ApiError.refused(exc) from None
        return views.case_json(case, views.policies.current_version())

    @router.post("/v1/cases/{case_id}/{action}")
    async def act(
        case_id: str, action: str, request: Request, body: ActionBody | None = Body(None)
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise ApiError(404, f"unknown action '{action}' (use {', '.join(ACTIONS)})", "action")
        b = body or ActionBody()
        token: TokenInfo | None = getattr(request.state, "token", None)
        people = (await run_in_threadpool(views.policy)).people
        try:
            by = acting_as(token, b.by, action, people)
        except ApiError:
            if await run_in_threadpool(views.case_state, case_id) is None:
                raise ApiError(404, f"no case '{case_id}'", "id") from None  # first things first
            raise
        actor = token.name if token is not None else None  # who was authenticated
        event = Event(action, by, b.reason, b.to_level, b.to, b.priority, actor=actor)
        try:
            await commands.act(case_id, event)
        except Refused as exc:
            raise ApiError.refused(exc) from None
        return await run_in_threadpool(view, case_id)

    return router
