"""Opsgenie's Alert API: create (`POST /v2/alerts`), acknowledge and close
(`POST /v2/alerts/{alias}/acknowledge|close?identifierType=alias`), keyed by
`Authorization: GenieKey KEY`. `alias` is the dedup key; P5 maps to P4."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from rungs.api.ingest.address import addressed
from rungs.api.ingest.commands import CaseCommand, Invalid, Trigger, act
from rungs.api.ingest.wire import Strict, bounded, clean, detail
from rungs.engine.integrations import case_data
from rungs.policy import Policy
from rungs.policy.model import Integration

__all__ = [
    "OpsgenieAction",
    "OpsgenieAlert",
    "OpsgenieAnswer",
    "OpsgenieError",
    "OpsgenieResponder",
    "act_commands",
    "to_commands",
]


class OpsgenieResponder(Strict):
    type: bounded(20)
    id: bounded(512) | None = None
    name: bounded(512) | None = None
    username: bounded(512) | None = None


class OpsgenieAlert(Strict):
    message: bounded(130, 1)
    alias: bounded(512, 1) | None = None
    description: bounded(15_000) | None = None
    responders: Annotated[list[OpsgenieResponder], Field(max_length=50)] = []
    visibleTo: Annotated[list[OpsgenieResponder], Field(max_length=50)] = []
    actions: Annotated[list[bounded(50)], Field(max_length=10)] = []
    tags: Annotated[list[bounded(50)], Field(max_length=20)] = []
    details: Annotated[dict[bounded(200, 1), bounded(8000)], Field(max_length=100)] = {}
    entity: bounded(512) | None = None
    source: bounded(100) | None = None
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P3"
    user: bounded(100) | None = None
    note: bounded(25_000) | None = None


class OpsgenieAction(Strict):
    user: bounded(100) | None = None
    source: bounded(100) | None = None
    note: bounded(25_000) | None = None


class OpsgenieAnswer(BaseModel):
    result: str = "Request will be processed"
    took: float
    requestId: str


class OpsgenieError(BaseModel):
    message: str
    took: float
    requestId: str
    errors: dict[str, str] = {}


def to_commands(
    body: OpsgenieAlert, integ: Integration, *, policy: Policy, fresh: Callable[[], str]
) -> list[CaseCommand]:
    """Create: one trigger, keyed by `alias` (or `fresh()` when there is none), addressed
    under `policy`."""
    alias = body.alias or fresh()
    fields = clean(
        {
            "alias": alias,
            "entity": body.entity,
            "source": body.source,
            "details": dict(body.details),
            "responders": [r.model_dump(exclude_none=True) for r in body.responders],
            "visible_to": [r.model_dump(exclude_none=True) for r in body.visibleTo],
            "actions": list(body.actions),
            "user": body.user,
            "note": body.note,
        }
    )
    data = case_data(
        integ,
        dedup_key=alias,
        title=body.message,
        description=body.description or "",
        priority="P4" if body.priority == "P5" else body.priority,
        customer=detail(body.details, "customer"),
        category=detail(body.details, "category"),
        fields=fields,
        tags=body.tags,
        scope=body.details,
    )
    data = addressed(data, integ, policy)
    return [Trigger(alias, data, {"source": body.source or body.entity, "summary": body.message})]


def act_commands(
    body: OpsgenieAction | None,
    integ: Integration,
    *,
    identifier: str,
    action: Literal["acknowledge", "resolve"],
    id_type: str,
) -> list[CaseCommand]:
    """Acknowledge or close (`resolve`) the alias `identifier`, by the integration: the body's
    `note` is the entry's `reason` and its `user` the `source_user` (a name Opsgenie gives,
    not one of the policy's people, so never checked). Raises `Invalid` unless
    `identifierType` is `alias` (Rungs knows no Opsgenie alert ids)."""
    if id_type != "alias":
        raise Invalid(
            f"identifierType '{id_type}' is not supported: use identifierType=alias",
            "identifierType",
        )
    if body is None:
        return [act(integ, identifier, action)]
    return [act(integ, identifier, action, reason=body.note, source_user=body.user)]
