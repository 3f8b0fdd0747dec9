"""Compensation routes (admin): run a month's credit suggestions, list the ledger (JSON or
CSV), approve (maybe another amount) or reject a suggestion with a reason.

    POST /v1/compensation/run              {"period": "2026-06"}
    GET  /v1/compensation?customer=&period=&format=json|csv
    POST /v1/compensation/{id}/approve     {"reason": "...", "amount": 120.5?, "by": "..."?}
    POST /v1/compensation/{id}/reject      {"reason": "...", "by": "..."?}
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from rungs.api.actors import acting_as
from rungs.api.errors import ApiError
from rungs.core.model import Refused
from rungs.engine import Commands
from rungs.store.views import Views

__all__ = ["compensation_router"]


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(min_length=7, max_length=7, description="YYYY-MM (UTC)")


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)
    by: str | None = Field(default=None, max_length=200)
    amount: float | None = Field(default=None, ge=0, le=1e12, description="approve: adjusted")


def compensation_router(commands: Commands, views: Views) -> APIRouter:
    router = APIRouter(tags=["compensation"])

    @router.post("/v1/compensation/run")
    async def run(body: RunBody) -> dict[str, Any]:
        """Suggest credits for the month's SLA breaches (once per breach and table version)."""
        try:
            return await commands.run_compensation(body.period)
        except Refused as exc:
            raise ApiError.refused(exc) from None

    @router.get("/v1/compensation", response_model=None)
    def listing(
        customer: Annotated[str | None, Query(max_length=200)] = None,
        period: Annotated[str | None, Query(min_length=7, max_length=7)] = None,
        format: Annotated[str, Query(max_length=8)] = "json",
    ) -> Any:
        """The ledger: suggestions with their rationale and decisions, oldest breach first."""
        if format not in ("json", "csv"):
            raise ApiError(422, "format: use json or csv", "format")
        if period is not None and not (period[:4].isdigit() and period[4] == "-"):
            raise ApiError(422, f"period: '{period}' is not a month (YYYY-MM)", "period")
        rows = views.compensation(customer, period)
        if format == "csv":
            name = f"rungs-compensation-{period or 'all'}.csv"
            return Response(
                views.compensation_csv(rows),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return {"items": rows}

    async def decide(request: Request, ident: int, decision: str, body: DecisionBody) -> Any:
        token = getattr(request.state, "token", None)
        by = acting_as(token, body.by, "compensation", views.policy().people)
        if decision == "reject" and body.amount is not None:
            raise ApiError(422, "amount: a rejection takes no amount", "amount")
        cents = round(body.amount * 100) if body.amount is not None else None
        try:
            return await commands.decide_compensation(
                ident, decision, body.reason.strip(), by=by,
                actor=token.name if token is not None else None, cents=cents,
            )  # fmt: skip
        except Refused as exc:
            raise ApiError.refused(exc) from None

    @router.post("/v1/compensation/{ident}/approve")
    async def approve(request: Request, ident: int, body: DecisionBody) -> Any:
        """Approve a suggestion (`amount`: another amount than suggested), with a reason."""
        return await decide(request, ident, "approve", body)

    @router.post("/v1/compensation/{ident}/reject")
    async def reject(request: Request, ident: int, body: DecisionBody) -> Any:
        """Reject a suggestion, with a reason."""
        return await decide(request, ident, "reject", body)

    return router
