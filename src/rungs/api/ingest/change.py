"""PagerDuty Change Events API (`POST /v2/change/enqueue`): deploys, config changes, feature
flags. A change opens no case and pages nobody; it is kept, and the handoff of a case that opens
soon after it lists it under "recent changes" (`rungs.core.handoff.recent_changes`).

`routing_key` is a `pagerduty` integration's key (the same key its alerts use). The change is
scoped to `custom_details.customer` when that names a customer of the policy, else to the
integration's `defaults.customer`, else to every customer's cases.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from rungs.api.ingest.commands import Invalid
from rungs.api.ingest.http import PD_RESPONSES, Keys, format_route, pd_invalid, pd_validation
from rungs.api.ingest.pagerduty import PagerDutyLink, PagerDutyThrottled
from rungs.api.ingest.wire import Strict, bounded, clean
from rungs.api.limits import retry_after
from rungs.api.schemas import JsonValue
from rungs.policy import Policy
from rungs.policy.model import Integration
from rungs.time.instant import parse_instant

__all__ = ["ChangeAccepted", "ChangeEvent", "ChangePayload", "change_routes", "to_change"]


class ChangePayload(Strict):
    summary: bounded(1024, 1)
    source: bounded(1024) | None = None
    timestamp: bounded(64) | None = None
    custom_details: JsonValue = None


class ChangeEvent(Strict):
    routing_key: bounded(1000, 1)
    payload: ChangePayload
    links: Annotated[list[PagerDutyLink], Field(max_length=100)] = []


class ChangeAccepted(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Change event processed"


class ChangeCommands(Protocol):
    def record_change(self, change: dict[str, Any]) -> Awaitable[int]: ...


def to_change(event: ChangeEvent, integ: Integration, policy: Policy) -> dict[str, Any]:
    """The change to keep: who sent it, for which customer (None: any), when (the sender's
    timestamp; None: when received), what. Raises `Invalid` for a timestamp that does not
    read."""
    p = event.payload
    at = None
    if p.timestamp is not None:
        try:
            at = parse_instant(p.timestamp)
        except (ValueError, OverflowError) as exc:  # also instants past the calendar's ends
            raise Invalid(f"payload.timestamp: {exc}", "payload.timestamp") from None
    details = p.custom_details if isinstance(p.custom_details, dict) else {}
    named = details.get("customer")
    customer = named if isinstance(named, str) and named in policy.customers else None
    customer = customer or integ.defaults.get("customer")
    detail = clean(
        {
            "source": p.source,
            "custom_details": p.custom_details,
            "links": [link.model_dump(exclude_none=True) for link in event.links],
        }
    )
    return {
        "integration": integ.id,
        "customer": customer,
        "at": at,
        "summary": p.summary,
        "detail": detail,
    }


def change_routes(keys: Keys, commands: ChangeCommands) -> APIRouter:
    router = APIRouter(tags=["ingest"], route_class=format_route(pd_validation))

    @router.post(
        "/v2/change/enqueue",
        name="pagerduty_change",
        status_code=202,
        response_model=ChangeAccepted,
        summary="PagerDuty Change Events API",
        responses=PD_RESPONSES,
        openapi_extra={"x-rungs-invalid-status": 400},
    )
    async def change_enqueue(event: ChangeEvent) -> Any:
        """A change (deploy, configuration): kept and shown in the handoff of cases opening
        within two hours after it. `routing_key` is a `pagerduty` integration's key."""
        integ = keys.integration(event.routing_key)
        if integ is None or integ.format != "pagerduty":
            return pd_invalid(["Invalid routing key"])
        wait = keys.wait(integ)
        if wait:
            throttled = PagerDutyThrottled(
                message="Requests for this service are arriving too quickly. Please retry later."
            )
            return JSONResponse(
                throttled.model_dump(),
                status_code=429,
                headers={"Retry-After": retry_after(wait)},
            )
        try:
            change = to_change(event, integ, keys.policy())
        except Invalid as exc:
            return pd_invalid([exc.message])
        await commands.record_change(change)
        return ChangeAccepted()

    return router
