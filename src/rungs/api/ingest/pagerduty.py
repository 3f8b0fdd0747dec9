"""PagerDuty Events API v2 (`POST /v2/enqueue`): its bodies, its answers, and the commands a
body asks for. `routing_key` is the integration key; `dedup_key` names the alert."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from rungs.api.ingest.address import addressed
from rungs.api.ingest.commands import CaseCommand, Invalid, Trigger, act
from rungs.api.ingest.wire import Strict, bounded, clean, detail, details_text
from rungs.api.schemas import JsonValue
from rungs.engine.integrations import case_data, severity_priority
from rungs.policy import Policy
from rungs.policy.model import Integration
from rungs.time.instant import format_utc, parse_instant

__all__ = [
    "PagerDutyAccepted",
    "PagerDutyEvent",
    "PagerDutyImage",
    "PagerDutyInvalid",
    "PagerDutyLink",
    "PagerDutyPayload",
    "PagerDutyThrottled",
    "to_commands",
]


class PagerDutyImage(Strict):
    src: bounded(2048, 1)
    href: bounded(2048) | None = None
    alt: bounded(1024) | None = None


class PagerDutyLink(Strict):
    href: bounded(2048, 1)
    text: bounded(1024) | None = None


class PagerDutyPayload(Strict):
    summary: bounded(1024, 1)
    source: bounded(1024, 1)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: bounded(64) | None = None
    component: bounded(1024) | None = None
    group: bounded(1024) | None = None
    class_: Annotated[bounded(1024) | None, Field(alias="class")] = None
    custom_details: JsonValue = None


class PagerDutyEvent(Strict):
    routing_key: bounded(1000, 1)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: bounded(255, 1) | None = None
    payload: PagerDutyPayload | None = None
    images: Annotated[list[PagerDutyImage], Field(max_length=100)] = []
    links: Annotated[list[PagerDutyLink], Field(max_length=100)] = []
    client: bounded(1024) | None = None
    client_url: bounded(2048) | None = None


class PagerDutyAccepted(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Event processed"
    dedup_key: str


class PagerDutyInvalid(BaseModel):
    status: str = "invalid event"
    message: str = "Event object is invalid"
    errors: list[str] = []


class PagerDutyThrottled(BaseModel):
    status: str = "throttle event"
    message: str


def to_commands(
    event: PagerDutyEvent, integ: Integration, *, policy: Policy, fresh: Callable[[], str]
) -> list[CaseCommand]:
    """One trigger (a case from the payload, addressed under `policy`; `fresh()` names an
    alert without a dedup key), or one acknowledge/resolve of `dedup_key`. Raises `Invalid`
    when the action lacks what it needs."""
    if event.event_action != "trigger":
        if event.dedup_key is None:
            raise Invalid(f"'dedup_key' is required to {event.event_action}", "dedup_key")
        return [act(integ, event.dedup_key, event.event_action)]
    p = event.payload
    if p is None:
        raise Invalid("'payload' is required to trigger", "payload")
    stamp = None
    if p.timestamp is not None:
        try:
            stamp = format_utc(parse_instant(p.timestamp))
        except ValueError as exc:
            raise Invalid(f"payload.timestamp: {exc}", "payload.timestamp") from None
    key = event.dedup_key or fresh()
    fields = clean(
        {
            "source": p.source,
            "severity": p.severity,
            "component": p.component,
            "group": p.group,
            "class": p.class_,
            "timestamp": stamp,
            "custom_details": p.custom_details,
            "client": event.client,
            "client_url": event.client_url,
            "images": [i.model_dump(exclude_none=True) for i in event.images],
            "links": [link.model_dump(exclude_none=True) for link in event.links],
        }
    )
    lines = [f"{k}: {fields[k]}" for k in ("source", "component", "group", "class") if k in fields]
    details = details_text(p.custom_details)
    data = case_data(
        integ,
        dedup_key=key,
        title=p.summary,
        description="\n".join([*lines, details] if details else lines),
        priority=severity_priority(integ, p.severity),
        customer=detail(p.custom_details, "customer"),
        fields=fields,
        scope=p.custom_details if isinstance(p.custom_details, Mapping) else None,
    )
    data = addressed(data, integ, policy)
    return [Trigger(key, data, {"source": p.source, "summary": p.summary})]
