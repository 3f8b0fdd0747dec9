"""The API's own error answer.

`ApiError(status, message, field, **extra)` is raised by a route and answered by the app's
handler as `{"detail": message, "field": field, **extra}` with `status`. Senders with their own
wire format (PagerDuty, Opsgenie) answer their errors in that format instead, in
`rungs.api.ingest`. A write the database cannot take now (`Unavailable`) is 503 with
`Retry-After`, on every route (`unavailable_reply`).
"""

from __future__ import annotations

from typing import Any

from rungs.core.model import Refused
from rungs.engine.writer import Unavailable

__all__ = ["ApiError", "unavailable_reply"]


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, **extra: Any) -> None:
        self.status, self.message, self.field, self.extra = status, message, field, extra

    @classmethod
    def refused(cls, exc: Refused) -> ApiError:
        """The answer to an action the case or the policy refused (409 or 422)."""
        return cls(exc.status, exc.message, exc.field)

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of this error: `detail`, `field` when known, extras."""
        body: dict[str, Any] = {"detail": self.message}
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return self.status, body


def unavailable_reply(exc: Unavailable) -> tuple[int, dict[str, Any], dict[str, str]]:
    """503, the JSON error body and the `Retry-After` header: nothing was written."""
    body = {"detail": f"{exc.message}; nothing was written, try again"}
    return 503, body, {"Retry-After": str(exc.retry_after)}
