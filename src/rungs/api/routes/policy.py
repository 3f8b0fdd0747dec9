"""The policy routes: read the current YAML, store a new version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rungs.api.errors import ApiError
from rungs.engine import Commands
from rungs.policy import PolicyError
from rungs.store.views import Views

__all__ = ["policy_router"]

MAX_POLICY = 1_000_000


def policy_router(commands: Commands, views: Views) -> APIRouter:
    router = APIRouter(tags=["policy"])

    @router.get("/v1/policy")
    def get_policy(request: Request) -> Response:
        """The current policy's YAML; literal integration keys are shown to admins only."""
        token = getattr(request.state, "token", None)
        version, text = views.policy_yaml(redact=token is None or token.role != "admin")
        return Response(
            text, media_type="application/yaml", headers={"X-Rungs-Policy-Version": str(version)}
        )

    @router.put("/v1/policy")
    async def put_policy(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_POLICY:
            raise ApiError(413, "policy larger than 1 MB", "body")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(422, "policy must be UTF-8 YAML", "body") from None
        try:
            version, _ = await commands.store_policy(text, "PUT /v1/policy")
        except PolicyError as exc:
            errors = [p.as_dict() for p in exc.problems]
            first = next((p for p in exc.problems if p.severity == "error"), None)
            raise ApiError(
                422, str(first) if first else "invalid policy", "body", errors=errors
            ) from None
        return {"version": version}

    return router
