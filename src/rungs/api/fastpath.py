"""The hottest ingest routes without the framework on their happy path.

Opening a case (`POST /v1/cases`, `POST /v2/enqueue`) is what senders do thousands of times
a second. Through FastAPI it cost about 300 µs of the one interpreter's time in routing,
middleware layers, dependency solving and response encoding, several times what validating
the body and deciding the case cost. So a request that is plainly well formed (JSON with a
Content-Length within the limit, a known token with the right role where the route needs
one, a body that validates) is handled here by the route's own model and handler, each
route being a `Lane`. Every other request, and every refusal of the checks above, goes on
to the FastAPI app with its body replayed, so each error keeps exactly one implementation.
The one check made here for every path: a request with two `Authorization` headers is 400.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from rungs.api.errors import unavailable_reply
from rungs.api.limits import replay_body
from rungs.engine.writer import Unavailable
from rungs.store.jsonbytes import dumps
from rungs.store.tokens import RANK, TokenInfo

if TYPE_CHECKING:
    from rungs.api.auth import Auth

__all__ = [
    "TWO_AUTHORIZATIONS",
    "TWO_AUTHORIZATIONS_DETAIL",
    "FastLanes",
    "Lane",
    "Reply",
    "json_reply",
    "reply_of",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body

_JSON = b"application/json"


def json_reply(status: int, content: Any) -> Reply:
    """JSON, compact UTF-8 as Starlette's JSONResponse renders it."""
    raw = dumps(content)
    return status, [(b"content-length", str(len(raw)).encode()), (b"content-type", _JSON)], raw


def reply_of(result: Response | BaseModel, status: int) -> Reply:
    """What a FastAPI endpoint returned (a Response, or a model answered with `status`)."""
    if isinstance(result, Response):
        return result.status_code, list(result.raw_headers), bytes(result.body)
    return json_reply(status, result.model_dump(mode="json"))


# Two `Authorization` headers are refused on every path, before anything reads either: a
# proxy, a framework and a handler may each take a different one of them (the first, the
# last, both joined), so which credential was checked and which one acted would differ.
TWO_AUTHORIZATIONS_DETAIL = "the request has more than one Authorization header: send one"
TWO_AUTHORIZATIONS = json_reply(400, {"detail": TWO_AUTHORIZATIONS_DETAIL})


def _authorizations(headers: list[tuple[bytes, bytes]]) -> int:
    return sum(1 for name, _ in headers if name == b"authorization")


async def _answer(send: Send, reply: Reply) -> None:
    status, headers, raw = reply
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


@dataclass(frozen=True, slots=True)
class Lane:
    """A `POST` route served here: its body model, its handler, and the token role it needs
    (`rungs.api.auth.required_role` of the route: None when the body carries the credential
    and the handler checks it). The handler gets the body and the caller's token (None
    when the route needs none), as the route would find it in `request.state.token`."""

    model: type[BaseModel]
    handler: Callable[[Any, TokenInfo | None], Awaitable[Reply]]
    role: str | None


class FastLanes:
    """ASGI wrapper: the happy path of each lane here, every other request to `app`."""

    def __init__(
        self,
        app: App,
        lanes: dict[str, Lane],
        *,
        auth: Auth,
        max_body: int,
        latency: Histogram,
    ) -> None:
        self.app = app
        self.lanes = lanes
        self.auth = auth
        self.max_body = max_body
        self.latency = {path: latency.labels(path) for path in lanes}
        self._reads: dict[str, asyncio.Future[TokenInfo | None]] = {}  # token re-reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lanes.get(scope["path"]) if scope["type"] == "http" else None
        if lane is None or scope["method"] != "POST" or scope.get("query_string"):
            if scope["type"] == "http" and _authorizations(scope["headers"]) > 1:
                await _answer(send, TWO_AUTHORIZATIONS)
                return
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        length = -1
        token = b""
        tokens = 0
        json_type = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"authorization":
                token = value
                tokens += 1
            elif name == b"content-type":  # exactly JSON; variants are FastAPI's to judge
                json_type = value == _JSON or value.startswith(b"application/json;")
        if tokens > 1:
            await _answer(send, TWO_AUTHORIZATIONS)
            return
        if not (json_type and 0 <= length <= self.max_body):
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
            parsed = lane.model.model_validate_json(body) if len(body) <= self.max_body else None
        except ValidationError:
            parsed = None
        # validated before the token is checked, so a refused body never spends a rate token
        info = None
        if parsed is not None and lane.role is not None:
            info = await self._may(lane.role, token)
        if parsed is None or (lane.role is not None and info is None):
            await self.app(scope, replay_body(body, receive), send)
            return
        try:
            reply = await lane.handler(parsed, info)
        except Unavailable as exc:  # as the app answers it: 503, Retry-After
            status, body, extra = unavailable_reply(exc)
            status, headers, raw = json_reply(status, body)
            headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
            reply = (status, headers, raw)
        await _answer(send, reply)
        self.latency[scope["path"]].observe(time.perf_counter() - t0)

    async def _may(self, role: str, header: bytes) -> TokenInfo | None:
        """The Bearer token's info when it is known valid, of `role` or above, within its
        rate; None otherwise."""
        if not header.startswith(b"Bearer "):
            return None
        try:
            token = header[7:].strip().decode("ascii")
        except UnicodeDecodeError:
            return None
        tokens = self.auth.tokens
        known, info = tokens.cached(token)
        if not known and tokens.was_valid(token):
            # a token seen valid, due for its once-a-second re-read: read it on a thread, one
            # read for all the requests carrying it meanwhile, rather than sending them all
            # to the framework until the answer is in
            info, known = await self._reread(token), True
        if not known or info is None or RANK[info.role] < RANK[role]:
            return None
        rate = self.auth.token_rate
        if rate is not None and self.auth.limiter.take("token:" + info.name, rate):
            return None
        return info

    def _reread(self, token: str) -> asyncio.Future[TokenInfo | None]:
        pending = self._reads.get(token)
        if pending is None:
            pending = asyncio.ensure_future(run_in_threadpool(self.auth.tokens.get, token))
            self._reads[token] = pending
            pending.add_done_callback(lambda _: self._reads.pop(token, None))
        return pending
