"""Inbound mail on the API: the unmatched list (admin), a case's attachments (listed, and
downloaded only as `application/octet-stream` attachments: never rendered inline)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from rungs.api.errors import ApiError
from rungs.store.views import Views

from .attachments import Blobs

__all__ = ["inbound_router"]


def inbound_router(views: Views, blobs: Blobs) -> APIRouter:
    router = APIRouter(tags=["inbound mail"])

    @router.get("/v1/inbound/unmatched")
    def unmatched(
        limit: int = Query(50, ge=1, le=500),
        before: int | None = Query(None, ge=1, le=2**62, description="ids below this one"),
    ) -> list[dict[str, Any]]:
        """Mail from senders no customer owns (kept when the policy has no default_customer)."""
        return views.unmatched_mail(limit, before)

    @router.get("/v1/cases/{case_id}/attachments")
    async def attachments(case_id: str) -> list[dict[str, Any]]:
        if await run_in_threadpool(views.case_state, case_id) is None:
            raise ApiError(404, f"no case '{case_id}'", "id")
        return await run_in_threadpool(views.attachments, case_id)

    @router.get("/v1/cases/{case_id}/attachments/{sha256}")
    async def attachment(case_id: str, sha256: str) -> FileResponse:
        listed = await run_in_threadpool(views.attachments, case_id)
        found = next((a for a in listed if a["sha256"] == sha256), None)
        path = blobs.path(sha256) if found is not None else None
        if found is None or path is None:
            raise ApiError(404, f"case '{case_id}' has no attachment '{sha256[:64]}'", "sha256")
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=found["name"],
            content_disposition_type="attachment",
            headers={"X-Content-Type-Options": "nosniff",
                     "Content-Security-Policy": "default-src 'none'; sandbox"},
        )  # fmt: skip

    return router
