"""HTTP plumbing of the ingest routes: which integration a key names and whether it is within
its rate, and answering invalid input in the sender's own format rather than Rungs' 422."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from rungs.api.ingest.wire import message, where
from rungs.api.limits import RateLimiter
from rungs.engine.integrations import integration_for_key, rate_of
from rungs.policy import Policy
from rungs.policy.model import Integration
from rungs.policy.versions import PolicyVersions

__all__ = ["Answer", "Keys", "format_route", "message", "where"]


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
