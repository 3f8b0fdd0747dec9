"""Input hardening shared by every route: a request body size limit and token-bucket rates.

Rates are per process: with several `rungs serve` processes behind a balancer each one
grants the configured rate.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rungs.policy.rate import Rate, parse_rate

__all__ = ["Rate", "RateLimiter", "BodyLimit", "parse_rate", "replay_body", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB; PagerDuty takes 512 KB per event
MAX_URL = 8192  # path and query string: bounds every path and query parameter
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class RateLimiter:
    """Token buckets by key; `take` answers 0 when allowed, else the seconds until it would be."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.max_keys = max_keys

    def take(self, key: str, rate: Rate) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (rate.burst, now))
            tokens = min(rate.burst, tokens + (now - last) * rate.per_second)
            if tokens >= 1.0:
                if len(self._buckets) >= self.max_keys and key not in self._buckets:
                    self._buckets.clear()
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate.per_second


def retry_after(wait_s: float) -> str:
    """The Retry-After header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait_s)))


class BodyLimit:
    """Pure ASGI middleware: a body larger than `max_bytes` gets 413 before any route sees it
    (and a URL longer than MAX_URL gets 414, one with a NUL character 400).

    A declared Content-Length over the limit is refused without reading; otherwise the body
    is read (counting, up to the limit) and handed on whole.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url = len(scope.get("raw_path") or scope["path"]) + len(scope.get("query_string") or b"")
        if url > MAX_URL:
            await _reject(send, 414, f"request URL longer than {MAX_URL} bytes", "url")
            return
        if b"%00" in (scope.get("raw_path") or b"") or b"%00" in (scope.get("query_string") or b""):
            # no id, key or name holds one, and PostgreSQL cannot even look one up
            await _reject(send, 400, "the URL holds a NUL character (%00)", "url")
            return
        if scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reject(send, 400, "malformed Content-Length")
                    return
                if declared > limit:
                    await _too_large(send, limit)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(b"".join(chunks), receive), send)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands an already-read body on once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _too_large(send: Send, limit: int) -> None:
    await _reject(send, 413, f"request body larger than {limit} bytes", "body")


async def _reject(send: Send, status: int, detail: str, field: str | None = None) -> None:
    body: dict[str, Any] = {"detail": detail}
    if field:
        body["field"] = field
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
