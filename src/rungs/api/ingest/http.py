"""HTTP plumbing of the ingest routes: which integration a key names and whether it is within
its rate, and answering invalid input in the sender's own format rather than Rungs' 422."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from rungs.api.ingest.pagerduty import PagerDutyInvalid, PagerDutyThrottled
from rungs.api.ingest.wire import message, where
from rungs.api.limits import RateLimiter
from rungs.engine.integrations import integration_for_key, rate_of
from rungs.policy import Policy
from rungs.policy.model import Integration
from rungs.policy.versions import PolicyVersions

__all__ = [
    "PD_RESPONSES",
    "Answer",
    "Keys",
    "format_route",
    "message",
    "pd_invalid",
    "pd_validation",
    "where",
]


class Keys:
    """The integrations of the current policy by key, and each one's rate limit."""

    def __init__(self, policies: PolicyVersions) -> None:
        self.policies = policies
        self.limiter = RateLimiter()

    def integration(self, key: str | None) -> Integration | None:
        """The integration whose key this is, or None."""
        return integration_for_key(self.policy(), key)

    def policy(self) -> Policy:
        """The current policy (the one an alert's case is addressed under)."""
        policies = self.policies
        return policies.current()

    def wait(self, integ: Integration) -> float:
        """0 when the integration is within its `rate_limit`, else the seconds to wait."""
        rate = rate_of(integ)
        return self.limiter.take("integration:" + integ.id, rate) if rate is not None else 0.0


class Answer(Exception):
    """Raised by a dependency to answer at once, in the route's own format."""

    def __init__(self, response: Response) -> None:
        self.response = response


def format_route(
    invalid: Callable[[Request, RequestValidationError], Response],
) -> type[APIRoute]:
    """Routes that answer invalid input in their sender's format, not Rungs' 422."""

    class FormatRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()

            async def run(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    return invalid(request, exc)
                except Answer as answer:
                    return answer.response

            return run

    return FormatRoute


# PagerDuty's own error answers, for its events and change events routes alike
PD_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": PagerDutyInvalid, "description": "Invalid event"},
    413: {"description": "Request body too large"},
    429: {"model": PagerDutyThrottled, "description": "Rate limit exceeded"},
}


def pd_invalid(errors: list[str], status: int = 400) -> JSONResponse:
    """PagerDuty's answer to an event it cannot take."""
    return JSONResponse(PagerDutyInvalid(errors=errors).model_dump(), status_code=status)


def pd_validation(_: Request, exc: RequestValidationError) -> Response:
    """A body PagerDuty's schema refuses, answered as PagerDuty would."""
    return pd_invalid([message(e) for e in exc.errors()])
