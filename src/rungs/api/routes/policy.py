"""The policy routes: read the current YAML, store a new version (or preview it).

`PUT /v1/policy?dry_run=true` answers what the text would change without storing it;
`?force=true` stores a policy that removes what open cases or recent events use. A server
started with `--policy FILE` is file-managed and answers a storing PUT with 409 naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from rungs.api.errors import ApiError
from rungs.engine import Commands, PolicyConflict
from rungs.policy import PolicyError, Problem
from rungs.store.views import Views

__all__ = ["MAX_POLICY", "invalid_policy", "policy_body", "policy_router"]

MAX_POLICY = 1_000_000


async def policy_body(request: Request) -> str:
    """A policy sent as the body: 413 over MAX_POLICY, 422 when it is not UTF-8."""
    raw = await request.body()
    if len(raw) > MAX_POLICY:
        raise ApiError(413, "policy larger than 1 MB", "body")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "policy must be UTF-8 YAML", "body") from None


def invalid_policy(problems: Sequence[Problem]) -> ApiError:
    """422 naming the first error, with every located problem under `errors`."""
    first = next((p for p in problems if p.severity == "error"), None)
    errors = [p.as_dict() for p in problems]
    return ApiError(422, str(first) if first else "invalid policy", "body", errors=errors)


def policy_router(commands: Commands, views: Views) -> APIRouter:
    router = APIRouter(tags=["policy"])

    @router.get("/v1/policy")
    def get_policy(request: Request) -> Response:
        """The current policy: admins get the YAML as stored; other tokens get it rebuilt from
        the parsed policy with every secret removed (keys, URLs, `channels`, comments)."""
        token = getattr(request.state, "token", None)
        version, text = views.policy_yaml(redact=token is None or token.role != "admin")
        return Response(
            text, media_type="application/yaml", headers={"X-Rungs-Policy-Version": str(version)}
        )

    @router.put("/v1/policy")
    async def put_policy(
        request: Request,
        dry_run: Annotated[
            bool, Query(description="Answer what would change; store nothing.")
        ] = False,
        force: Annotated[
            bool, Query(description="Store even if it removes what is in use.")
        ] = False,
    ) -> dict[str, Any]:
        text = await policy_body(request)
        try:
            change = await commands.change_policy(
                text, "PUT /v1/policy", dry_run=dry_run, force=force
            )
        except PolicyError as exc:
            raise invalid_policy(exc.problems) from None
        except PolicyConflict as exc:
            raise ApiError(409, exc.message, None, **exc.extra) from None
        if dry_run:
            return change.as_dict()
        return {"version": change.version}

    return router
