"""The API's own error answer.

`ApiError(status, message, field, **extra)` is raised by a route and answered by the app's
handler as `{"detail": message, "field": field, **extra}` with `status`. Senders with their own
wire format (PagerDuty, Opsgenie) answer their errors in that format instead, in
`rungs.api.ingest`.
"""

from __future__ import annotations

from typing import Any

from rungs.core.model import Refused

__all__ = ["ApiError"]


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
