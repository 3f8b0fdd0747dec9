"""Stand-ins for the engine loop's writer and policy store, for tests that drive
`Loop._run` on the real clock with managers of their own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection


class InlineWriter:
    """Runs each command at once, without a transaction (the managers here write nothing)."""

    def call(self, fn: Any) -> Any:
        return fn(None)


class NoOverrides:
    def refresh_overrides(self, conn: Connection | None = None) -> None: ...
