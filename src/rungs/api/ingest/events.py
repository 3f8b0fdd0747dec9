"""Rungs' own small JSON format (`POST /v1/integrations/{key}/events`): `action` trigger (the
default; needs `title`), acknowledge or resolve (need `dedup_key`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field

from rungs.api.ingest.address import addressed
from rungs.api.ingest.commands import CaseCommand, Invalid, Trigger, act
from rungs.api.ingest.wire import Strict, bounded
from rungs.api.schemas import JsonValue
from rungs.engine.integrations import case_data
from rungs.policy import Policy
from rungs.policy.model import Integration

__all__ = ["RungsEvent", "to_commands"]


class RungsEvent(Strict):
    """`action` trigger (the default), acknowledge or resolve; `dedup_key` names the alert."""

    action: Literal["trigger", "acknowledge", "resolve"] = "trigger"
    dedup_key: bounded(255, 1) | None = None
    title: bounded(1024, 1) | None = None
    description: bounded(65_536) = ""
    priority: bounded(20, 1) | None = None  # one the policy does not know is corrected
    category: bounded(200, 1) | None = None
    customer: bounded(200, 1) | None = None
    fields: Annotated[dict[bounded(100, 1), JsonValue], Field(max_length=100)] = {}
    tags: Annotated[list[bounded(100)], Field(max_length=50)] = []
    by: bounded(200, 1) | None = None


def to_commands(
    body: RungsEvent, integ: Integration, *, policy: Policy, fresh: Callable[[], str]
) -> list[CaseCommand]:
    """One trigger (keyed by `dedup_key`, or `fresh()`; addressed under `policy`), or one
    acknowledge/resolve by `by`.
    Raises `Invalid` when the action lacks its dedup key or title."""
    if body.action != "trigger":
        if body.dedup_key is None:
            raise Invalid(f"'dedup_key' is required to {body.action}", "dedup_key")
        return [act(integ, body.dedup_key, body.action, body.by)]
    if body.title is None:
        raise Invalid("'title' is required to trigger", "title")
    key = body.dedup_key or fresh()
    data = case_data(
        integ,
        dedup_key=key,
        title=body.title,
        description=body.description,
        priority=body.priority,
        customer=body.customer,
        category=body.category,
        fields={**body.fields, "integration": integ.id, "format": integ.format},
        tags=body.tags,
        scope=body.fields,
    )
    data = addressed(data, integ, policy)
    return [Trigger(key, data, {"source": body.by, "summary": body.title})]
