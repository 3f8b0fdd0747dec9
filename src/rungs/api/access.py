"""One log line per request: method, route, status and milliseconds, at info.

The route is the route's template (`/v1/integrations/{key}/events`, `/a/{token}`), never the
path as sent, so integration keys and one-click link tokens in paths stay out of the log; a
request no route matched is logged as `(no route)`. Headers (and so API tokens) and query
strings are never logged. `rungs serve --log-level warning` silences these lines.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["LEVELS", "AccessLog", "configure_logging", "log"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("rungs.access")
LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str = "info") -> None:
    """Rungs' own loggers (`rungs.*`) to stderr at `level`, one line each (uvicorn keeps its
    own configuration). Called by `rungs serve` and in each `--workers` process."""
    root = logging.getLogger("rungs")
    root.setLevel(level.upper())
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


class AccessLog:
    """Pure ASGI wrapper: the request's line once it is answered, and `on_request(route,
    status)` for the counters of `/metrics` (called whatever the log level)."""

    def __init__(
        self,
        app: App,
        safe_paths: frozenset[str] = frozenset(),
        on_request: Callable[[str, int], None] | None = None,
        static: str | None = None,
    ) -> None:
        self.app = app
        self.safe_paths = safe_paths  # literal paths served outside FastAPI's routes
        self.on_request = on_request
        self.static = static  # a prefix of static files, logged as `{static}{path}`

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = self.route(scope)
            if self.on_request is not None:
                self.on_request(route, status)
            if log.isEnabledFor(logging.INFO):
                ms = (time.perf_counter() - t0) * 1000
                log.info("%s %s %s %.1fms", scope["method"], route, status or "-", ms)

    def route(self, scope: Scope) -> str:
        """The matched route's template; a fast lane's own literal path; else `(no route)`."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        path = str(scope.get("path", ""))
        if path in self.safe_paths:
            return path
        if self.static is not None and path.startswith(self.static):
            return self.static + "{path}"
        return "(no route)"
