"""Who may do what: `Authorization: Bearer TOKEN` on every `/v1` route, checked by role.

One FastAPI dependency, installed on the whole app, reads the matched route and decides:

- outside `/v1` (health, metrics, docs, `/v2/*` ingest, signed one-click links): no token;
- `/v1/integrations/{key}/...` and `/v1/heartbeats/{key}`: the integration key in the path
  is the credential (checked by the ingest routes), so no Bearer token;
- `PUT /v1/policy`, `POST /v1/policy/replay`, `/v1/tokens...`, schedule overrides,
  `/v1/clock...`, adding and ending maintenance windows: admin;
- any other `GET`: viewer; any other method: responder.

400 with two `Authorization` headers, on every path (`rungs.api.fastpath` answers it first);
401 without a token, or with an unknown or revoked one (an integration key is not a token);
403 when the token's role is too weak; 429 (with Retry-After) over the per-token rate.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from rungs.api.errors import ApiError
from rungs.api.fastpath import TWO_AUTHORIZATIONS_DETAIL
from rungs.api.limits import Rate, RateLimiter, retry_after
from rungs.engine import Commands
from rungs.store.tokens import RANK, ROLES, TokenCache, TokenError, TokenInfo
from rungs.store.views import Views

__all__ = ["Auth", "required_role", "tokens_router", "NewToken"]

KEY_PATHS = ("/v1/integrations/", "/v1/heartbeats/")  # the key in the path authenticates
ADMIN_PREFIXES = ("/v1/tokens", "/v1/clock", "/v1/inbound", "/v1/compensation")
ADMIN_ROUTES = frozenset(
    {
        ("PUT", "/v1/policy"),
        ("POST", "/v1/policy/replay"),
        ("POST", "/v1/schedules/{sid}/overrides"),
        ("POST", "/v1/maintenance"),
        ("DELETE", "/v1/maintenance/{mid}"),
    }
)
READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def required_role(method: str, path: str) -> str | None:
    """The least role a route needs (`path` is the route's template), or None for no token."""
    if not path.startswith("/v1/") or path.startswith(KEY_PATHS):
        return None
    if path.startswith(ADMIN_PREFIXES) or (method, path) in ADMIN_ROUTES:
        return "admin"
    return "viewer" if method in READ_METHODS else "responder"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="rungs"'})


class Auth:
    """The app-wide dependency; `request.state.token` is the caller's TokenInfo (or None)."""

    def __init__(self, tokens: TokenCache, *, token_rate: Rate | None = None) -> None:
        self.tokens = tokens
        self.token_rate = token_rate
        self.limiter = RateLimiter()

    async def __call__(self, request: Request) -> TokenInfo | None:
        route = request.scope.get("route")
        need = required_role(request.method, getattr(route, "path", request.url.path))
        request.state.token = None
        if len(request.headers.getlist("authorization")) > 1:  # the front refuses it first
            raise HTTPException(400, TWO_AUTHORIZATIONS_DETAIL)
        if need is None:
            return None
        header = request.headers.get("authorization")
        if not header:
            raise _unauthorized("this route needs an API token: Authorization: Bearer TOKEN")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("use Authorization: Bearer TOKEN")
        known, info = self.tokens.cached(token)
        if not known:
            info = await run_in_threadpool(self.tokens.get, token)
        if info is None:
            raise _unauthorized("unknown or revoked API token")
        if RANK[info.role] < RANK[need]:
            raise HTTPException(
                403,
                f"token '{info.name}' has role {info.role}; {request.method} "
                f"{getattr(route, 'path', request.url.path)} needs {need}",
            )
        if self.token_rate is not None:
            wait = self.limiter.take("token:" + info.name, self.token_rate)
            if wait:
                raise HTTPException(
                    429,
                    f"token '{info.name}' is over its rate limit of {self.token_rate}",
                    headers={"Retry-After": retry_after(wait)},
                )
        request.state.token = info
        return info


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[
        str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]*$")
    ]
    role: Annotated[str, Field(pattern="^(" + "|".join(ROLES) + ")$", max_length=20)]
    person: Annotated[str, Field(min_length=1, max_length=200)] | None = None


def tokens_router(commands: Commands, views: Views, auth: Auth) -> APIRouter:
    """Admin routes: list, create (the token is in the answer, once) and revoke tokens."""
    router = APIRouter(tags=["tokens"])

    @router.get("/v1/tokens")
    def get_tokens() -> list[dict[str, Any]]:
        return views.token_list()

    @router.post("/v1/tokens", status_code=201)
    async def post_token(body: NewToken) -> dict[str, Any]:
        try:
            token = await commands.create_token(body.name, body.role, body.person)
        except TokenError as exc:
            raise ApiError(exc.status, exc.message, exc.field) from None
        except IntegrityError:  # created at the same moment by another process
            raise ApiError(409, f"a token named '{body.name}' exists", "name") from None
        return {"name": body.name, "role": body.role, "person": body.person, "token": token}

    @router.delete("/v1/tokens/{name}")
    async def delete_token(name: str) -> dict[str, Any]:
        if not await commands.revoke_token(name):
            raise ApiError(404, f"no active token named '{name}'", "name")
        auth.tokens.clear()
        return {"name": name, "revoked": True}

    return router
