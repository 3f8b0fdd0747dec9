"""`POST /v1/cases` without the framework on its happy path.

Opening a case is the route senders hit thousands of times a second. Through FastAPI it costs
about 300 µs of the one interpreter's time in routing, middleware layers, dependency solving
and response encoding, several times what validating the body and deciding the case cost. So
a request that is plainly well formed (JSON with a Content-Length within the limit, a known
token with the right role, a body that validates) is handled here, by the same validation
model and the same `open` as the FastAPI route. Everything else, refusals included, goes on
to the FastAPI app with its body replayed, so every error keeps exactly one implementation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Histogram
from pydantic import ValidationError

from rungs.api.limits import replay_body
from rungs.api.schemas import OpenCase
from rungs.tokens import RANK

__all__ = ["FastOpen", "json_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
# the route's own handler: a validated body in, (status, JSON-able answer) out; raises on refusal
OpenHandler = Callable[[OpenCase], Awaitable[tuple[int, dict[str, Any]]]]

PATH = "/v1/cases"
RESPONDER = RANK["responder"]
_JSON = b"application/json"


def json_body(content: Any) -> bytes:
    """JSON as Starlette's JSONResponse renders it, so both paths answer byte for byte alike."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


class FastOpen:
    """ASGI wrapper: the happy path of `POST /v1/cases` here, every other request to `app`."""

    def __init__(
        self,
        app: App,
        *,
        auth: Any,
        handler: OpenHandler,
        error: type[Exception],
        render_error: Callable[[Any], tuple[int, dict[str, Any]]],
        max_body: int,
        latency: Histogram,
    ) -> None:
        self.app = app
        self.auth = auth
        self.handler = handler
        self.error = error
        self.render_error = render_error
        self.max_body = max_body
        self.latency = latency.labels(PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        length = -1
        token = b""
        json_type = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"authorization":
                token = value
            elif name == b"content-type":
                json_type = value.startswith(_JSON)
        if not (json_type and 0 <= length <= self.max_body) or not token.startswith(b"Bearer "):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            parsed = OpenCase.model_validate_json(body) if len(body) <= self.max_body else None
        except ValidationError:
            parsed = None
        # validated before the token is checked, so a refused body never spends a rate token
        if parsed is None or not self._may_open(token[7:].strip()):
            await self.app(scope, replay_body(body, receive), send)
            return
        try:
            status, answer = await self.handler(parsed)
        except self.error as exc:
            status, answer = self.render_error(exc)
        raw = json_body(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(raw)).encode()),
                    (b"content-type", _JSON),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})
        self.latency.observe(time.perf_counter() - t0)

    def _may_open(self, raw_token: bytes) -> bool:
        """A token already known (cached), of role responder or above, within its rate."""
        try:
            token = raw_token.decode("ascii")
        except UnicodeDecodeError:
            return False
        known, info = self.auth.tokens.cached(token)
        if not known or info is None or RANK[info.role] < RESPONDER:
            return False
        rate = self.auth.token_rate
        return rate is None or not self.auth.limiter.take("token:" + info.name, rate)
