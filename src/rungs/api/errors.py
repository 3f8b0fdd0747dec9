"""API errors: `ApiError(status, message, field, **extra)` becomes a JSON answer
`{"detail": message, "field": field, ...extra}` with that status."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError"]


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, **extra: Any) -> None:
        self.status, self.message, self.field, self.extra = status, message, field, extra

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of this error: `detail`, `field` when known, extras."""
        body: dict[str, Any] = {"detail": self.message}
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return self.status, body
