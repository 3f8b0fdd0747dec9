"""`POST /v1/policy/replay`: what a draft policy would have done with the stored history, and
the last verification on `/metrics`.

The body is the draft's YAML (at most 1 MB, validated as `PUT /v1/policy` validates, 422 with
the located error); `from` and `to` bound the cases by their opening (default: the 31 days up
to now; at most 93 days). The answer is `rungs replay --json`'s object. Admin only: it reads
every case's history.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine

from rungs.api.errors import ApiError
from rungs.api.routes.policy import invalid_policy, policy_body
from rungs.policy import load_policy_text
from rungs.policy.secrets import secret_prefix
from rungs.store.views import Views
from rungs.store.views.replay import last_verification, whatif
from rungs.time.instant import DAY, parse_instant

__all__ = ["VerifyGauges", "replay_router"]

DEFAULT_WINDOW = 31 * DAY
MAX_WINDOW = 93 * DAY


def _instant(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise ApiError(422, f"{name}: {exc}", name) from None


def replay_router(views: Views) -> APIRouter:
    router = APIRouter(tags=["policy"])

    @router.post("/v1/policy/replay")
    async def replay_policy(
        request: Request,
        start: Annotated[
            str | None,
            Query(alias="from", max_length=40, description="Cases opened at or after (ISO 8601)."),
        ] = None,
        end: Annotated[
            str | None,
            Query(
                alias="to",
                max_length=40,
                description="Cases opened up to (ISO 8601); re-runs stop there.",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Re-run the stored inputs of the window's cases under the draft in the body."""
        text = await policy_body(request)
        b = _instant(end, "to")
        a = _instant(start, "from")
        b = views.clock.now() if b is None else b
        a = b - DEFAULT_WINDOW if a is None else a
        if b < a:
            raise ApiError(422, "to: it is before from", "to")
        if b - a > MAX_WINDOW:
            raise ApiError(422, "from: the window is longer than 93 days", "from")
        # a megabyte of YAML takes a while to parse: off the event loop, as the re-run is
        draft, problems = await asyncio.to_thread(
            load_policy_text,
            text,
            "POST /v1/policy/replay",
            secret_prefix=secret_prefix(os.environ),
        )
        if draft is None:
            raise invalid_policy(problems)
        result = await asyncio.to_thread(whatif, views.db, draft, a, b)
        return result.as_dict()

    return router


class VerifyGauges:
    """`/metrics`: the last verification kept in the database (any process's, CLI's too)."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        last = last_verification(self.db)
        if last is None:
            return
        g = GaugeMetricFamily(
            "rungs_verify_cases", "Cases of the last verification by result", labels=["result"]
        )
        g.add_metric(["reproduced"], last["reproduced"])
        g.add_metric(["diverged"], last["divergences"])
        g.add_metric(["not_replayable"], last["not_replayable"])
        yield g
        yield GaugeMetricFamily(
            "rungs_verify_ok",
            "1 when the last verification reproduced every case",
            value=1 if last["divergences"] == 0 else 0,
        )
        yield GaugeMetricFamily(
            "rungs_verify_last_run_timestamp_seconds",
            "When the last verification ran (the engine's clock)",
            value=last["at"] / 1e6,
        )
