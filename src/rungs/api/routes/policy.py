"""The policy routes: read the current YAML, store a new version (or preview it).

`PUT /v1/policy?dry_run=true` answers what the text would change without storing it;
`?force=true` stores a policy that removes what open cases or recent events use. A server
started with `--policy FILE` is file-managed and answers a storing PUT with 409 naming the file.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from rungs.api.errors import ApiError
from rungs.engine import Commands, PolicyConflict
from rungs.policy import PolicyError
from rungs.store.views import Views

__all__ = ["policy_router"]

MAX_POLICY = 1_000_000


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
        raw = await request.body()
        if len(raw) > MAX_POLICY:
            raise ApiError(413, "policy larger than 1 MB", "body")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(422, "policy must be UTF-8 YAML", "body") from None
        try:
            change = await commands.change_policy(
                text, "PUT /v1/policy", dry_run=dry_run, force=force
            )
        except PolicyError as exc:
            errors = [p.as_dict() for p in exc.problems]
            first = next((p for p in exc.problems if p.severity == "error"), None)
            raise ApiError(
                422, str(first) if first else "invalid policy", "body", errors=errors
            ) from None
        except PolicyConflict as exc:
            raise ApiError(409, exc.message, None, **exc.extra) from None
        if dry_run:
            return change.as_dict()
        return {"version": change.version}

    return router
