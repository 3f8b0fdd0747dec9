"""Ingest from real senders, each in its own wire format, each with its integration's key.

- PagerDuty Events API v2: `POST /v2/enqueue` (`routing_key` in the body).
- Prometheus Alertmanager webhook (version 4): `POST /v1/integrations/{key}/alertmanager`.
- Opsgenie Alert API: `POST /v2/alerts`, `POST /v2/alerts/{alias}/acknowledge|close`
  (`Authorization: GenieKey KEY`).
- Rungs' own small JSON format: `POST /v1/integrations/{key}/events`.
- Heartbeats: `POST /v1/heartbeats/{key}`; `GET /v1/heartbeats` (viewer) lists their state.

A trigger whose dedup key names an open case adds to it (an `alert_repeated` entry with a
count); after the case is resolved the same key opens a new case. Acknowledge and resolve by
dedup key act on the open case, and are no error when there is none (as at PagerDuty). A key
works only on its own format's endpoint; each key has its own rate limit (`rate_limit` in the
policy) answered with 429 and Retry-After.
"""

import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rungs.api.auth import required_role
from rungs.api.fastpath import Lane, Reply, reply_of
from rungs.api.limits import RateLimiter, retry_after
from rungs.api.schemas import JsonValue
from rungs.core.model import Event, Refused
from rungs.engine import heartbeats
from rungs.engine.integrations import (
    case_data,
    integration_for_key,
    rate_of,
    scoped_key,
    severity_priority,
)
from rungs.engine.service import Service
from rungs.policy.model import AlertmanagerOptions, Integration
from rungs.time.instant import format_duration, format_utc, parse_instant

__all__ = ["ingest_router", "PagerDutyEvent", "AlertmanagerWebhook", "OpsgenieAlert", "RungsEvent"]


def _s(n: int, least: int = 0) -> Any:
    return Annotated[str, Field(min_length=least, max_length=n)]


Labels = Annotated[dict[_s(200, 1), _s(4096)], Field(max_length=200)]
Annotations = Annotated[dict[_s(200, 1), _s(65_536)], Field(max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# PagerDuty Events API v2 ------------------------------------------------------------------


class PagerDutyImage(_Strict):
    src: _s(2048, 1)
    href: _s(2048) | None = None
    alt: _s(1024) | None = None


class PagerDutyLink(_Strict):
    href: _s(2048, 1)
    text: _s(1024) | None = None


class PagerDutyPayload(_Strict):
    summary: _s(1024, 1)
    source: _s(1024, 1)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: _s(64) | None = None
    component: _s(1024) | None = None
    group: _s(1024) | None = None
    class_: Annotated[_s(1024) | None, Field(alias="class")] = None
    custom_details: JsonValue = None


class PagerDutyEvent(_Strict):
    routing_key: _s(1000, 1)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: _s(255, 1) | None = None
    payload: PagerDutyPayload | None = None
    images: Annotated[list[PagerDutyImage], Field(max_length=100)] = []
    links: Annotated[list[PagerDutyLink], Field(max_length=100)] = []
    client: _s(1024) | None = None
    client_url: _s(2048) | None = None


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


# Prometheus Alertmanager webhook, version 4 -------------------------------------------------


class AlertmanagerAlert(_Strict):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Annotations = {}
    startsAt: _s(64) = ""
    endsAt: _s(64) = ""
    generatorURL: _s(4096) = ""
    fingerprint: _s(255) = ""


class AlertmanagerWebhook(_Strict):
    version: _s(16)
    groupKey: _s(8192) = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    status: Literal["firing", "resolved"]
    receiver: _s(1024) = ""
    groupLabels: Labels = {}
    commonLabels: Labels = {}
    commonAnnotations: Annotations = {}
    externalURL: _s(4096) = ""
    alerts: Annotated[list[AlertmanagerAlert], Field(max_length=1000)]


# Opsgenie Alert API ---------------------------------------------------------------------------


class OpsgenieResponder(_Strict):
    type: _s(20)
    id: _s(512) | None = None
    name: _s(512) | None = None
    username: _s(512) | None = None


class OpsgenieAlert(_Strict):
    message: _s(130, 1)
    alias: _s(512, 1) | None = None
    description: _s(15_000) | None = None
    responders: Annotated[list[OpsgenieResponder], Field(max_length=50)] = []
    visibleTo: Annotated[list[OpsgenieResponder], Field(max_length=50)] = []
    actions: Annotated[list[_s(50)], Field(max_length=10)] = []
    tags: Annotated[list[_s(50)], Field(max_length=20)] = []
    details: Annotated[dict[_s(200, 1), _s(8000)], Field(max_length=100)] = {}
    entity: _s(512) | None = None
    source: _s(100) | None = None
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P3"
    user: _s(100) | None = None
    note: _s(25_000) | None = None


class OpsgenieAction(_Strict):
    user: _s(100) | None = None
    source: _s(100) | None = None
    note: _s(25_000) | None = None


class OpsgenieAnswer(BaseModel):
    result: str = "Request will be processed"
    took: float
    requestId: str


class OpsgenieError(BaseModel):
    message: str
    took: float
    requestId: str
    errors: dict[str, str] = {}


# Rungs' own format ------------------------------------------------------------------------------


class RungsEvent(_Strict):
    """`action` trigger (the default), acknowledge or resolve; `dedup_key` names the alert."""

    action: Literal["trigger", "acknowledge", "resolve"] = "trigger"
    dedup_key: _s(255, 1) | None = None
    title: _s(1024, 1) | None = None
    description: _s(65_536) = ""
    priority: Annotated[str, Field(pattern=r"^P[1-4]$", max_length=2)] | None = None
    category: _s(200, 1) | None = None
    customer: _s(200, 1) | None = None
    fields: Annotated[dict[_s(100, 1), JsonValue], Field(max_length=100)] = {}
    tags: Annotated[list[_s(100)], Field(max_length=50)] = []
    by: _s(200, 1) | None = None


class IngestAnswer(BaseModel):
    status: str = "accepted"
    action: str
    dedup_key: str
    case: str | None = None
    new: bool = False
    applied: bool = False


class AlertmanagerAnswer(BaseModel):
    status: str = "accepted"
    alerts: list[IngestAnswer]


class HeartbeatAnswer(BaseModel):
    status: str = "up"
    integration: str
    last_beat: str
    next_due: str
    resolved: str | None = None


# plumbing -------------------------------------------------------------------------------------


class _Answer(Exception):
    """Raised by a dependency to answer at once, in the route's own format."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _route_class(
    invalid: Callable[[Request, RequestValidationError], Response],
) -> type[APIRoute]:
    """Routes that answer invalid input in their sender's format, not Rungs' 422."""

    class FormatRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()

            async def run(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    return invalid(request, exc)
                except _Answer as answer:
                    return answer.response

            return run

    return FormatRoute


def _where(e: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in e["loc"] if p != "body") or "body"


def _message(e: Mapping[str, Any]) -> str:
    where = _where(e)
    if e["type"] == "json_invalid":
        return "the body is not valid JSON"
    if e["type"] == "extra_forbidden":
        return f"'{where}' is not a known field"
    if e["type"] == "missing":
        return f"'{where}' is missing"
    return f"{where}: {e['msg']}"


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


def _details_text(details: Any) -> str:
    if isinstance(details, Mapping):
        return "\n".join(f"{k}: {v}" for k, v in details.items())
    return "" if details is None else str(details)


def _from(details: Any, name: str) -> str | None:
    if isinstance(details, Mapping):
        v = details.get(name)
        if isinstance(v, str) and 0 < len(v) <= 200:
            return v
    return None


def ingest_router(service: Service, error: Any, *, lanes: dict[str, Lane]) -> APIRouter:
    """Every ingest route; `error` is the app's ApiError (status, message, field). Routes
    worth serving without the framework on their happy path are added to `lanes`."""
    limiter = RateLimiter()

    def policy() -> Any:
        return service.policy(service.current_version())

    def over_rate(integ: Integration) -> float:
        rate = rate_of(integ)
        return limiter.take("integration:" + integ.id, rate) if rate is not None else 0.0

    async def trigger(data: dict[str, Any], repeat: dict[str, Any]) -> tuple[Any, bool]:
        return await service.trigger(data, repeat)

    async def act(integ: Integration, key: str, kind: str, by: str | None) -> tuple[Any, bool]:
        event = Event(kind, by=by or f"integration:{integ.id}")
        return await service.act_on_key(scoped_key(integ.id, key), event)

    def keyed(fmt: str) -> Callable[..., Awaitable[Integration]]:
        """The dependency of a route with the key in its path: 401 unknown, 403 wrong format."""

        async def dependency(
            key: Annotated[str, Path(max_length=1000, description="The integration key")],
        ) -> Integration:
            integ = integration_for_key(policy(), key)
            if integ is None:
                raise error(401, "unknown integration key", "key")
            if integ.format != fmt:
                raise error(403, f"integration '{integ.id}' takes {integ.format}, not {fmt}", "key")
            wait = over_rate(integ)
            if wait:
                raise HTTPException(
                    429,
                    f"integration '{integ.id}' is over its rate limit",
                    headers={"Retry-After": retry_after(wait)},
                )
            return integ

        return dependency

    router = APIRouter(tags=["ingest"])

    # PagerDuty ---------------------------------------------------------------------------

    def pd_invalid(errors: list[str], status: int = 400) -> JSONResponse:
        return JSONResponse(PagerDutyInvalid(errors=errors).model_dump(), status_code=status)

    def pd_validation(_: Request, exc: RequestValidationError) -> Response:
        return pd_invalid([_message(e) for e in exc.errors()])

    pd = APIRouter(tags=["ingest"], route_class=_route_class(pd_validation))

    @pd.post(
        "/v2/enqueue",
        status_code=202,
        response_model=PagerDutyAccepted,
        summary="PagerDuty Events API v2",
        responses={
            400: {"model": PagerDutyInvalid, "description": "Invalid event"},
            413: {"description": "Request body too large"},
            429: {"model": PagerDutyThrottled, "description": "Rate limit exceeded"},
        },
        openapi_extra={"x-rungs-invalid-status": 400},
    )
    async def pagerduty(event: PagerDutyEvent) -> Any:
        """PagerDuty's Events API v2 body: `routing_key` is the integration key."""
        integ = integration_for_key(policy(), event.routing_key)
        if integ is None or integ.format != "pagerduty":
            return pd_invalid(["Invalid routing key"])
        wait = over_rate(integ)
        if wait:
            return JSONResponse(
                PagerDutyThrottled(
                    message="Requests for this service are arriving too quickly. "
                    "Please retry later."
                ).model_dump(),
                status_code=429,
                headers={"Retry-After": retry_after(wait)},
            )
        if event.event_action != "trigger":
            if event.dedup_key is None:
                return pd_invalid([f"'dedup_key' is required to {event.event_action}"])
            await act(integ, event.dedup_key, event.event_action, None)
            return PagerDutyAccepted(dedup_key=event.dedup_key)
        p = event.payload
        if p is None:
            return pd_invalid(["'payload' is required to trigger"])
        stamp = None
        if p.timestamp is not None:
            try:
                stamp = format_utc(parse_instant(p.timestamp))
            except ValueError as exc:
                return pd_invalid([f"payload.timestamp: {exc}"])
        key = event.dedup_key or uuid.uuid4().hex
        fields = _clean(
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
        lines = [
            f"{k}: {fields[k]}" for k in ("source", "component", "group", "class") if k in fields
        ]
        details = _details_text(p.custom_details)
        data = case_data(
            integ,
            dedup_key=key,
            title=p.summary,
            description="\n".join([*lines, details] if details else lines),
            priority=severity_priority(integ, p.severity),
            customer=_from(p.custom_details, "customer"),
            fields=fields,
            scope=p.custom_details if isinstance(p.custom_details, Mapping) else None,
        )
        try:
            await trigger(data, {"source": p.source, "summary": p.summary})
        except Refused as exc:
            return pd_invalid([exc.message])
        return PagerDutyAccepted(dedup_key=key)

    async def pagerduty_reply(event: PagerDutyEvent) -> Reply:
        return reply_of(await pagerduty(event), 202)

    lanes["/v2/enqueue"] = Lane(
        PagerDutyEvent, pagerduty_reply, required_role("POST", "/v2/enqueue")
    )

    # Alertmanager --------------------------------------------------------------------------

    @router.post(
        "/v1/integrations/{key}/alertmanager",
        status_code=202,
        response_model=AlertmanagerAnswer,
        summary="Prometheus Alertmanager webhook (version 4)",
        responses={
            401: {"description": "Unknown integration key"},
            403: {"description": "The key belongs to another format"},
            413: {"description": "Request body too large"},
            429: {"description": "Rate limit exceeded"},
        },
    )
    async def alertmanager(
        body: AlertmanagerWebhook,
        integ: Annotated[Integration, Depends(keyed("alertmanager"))],
    ) -> Any:
        """Each alert's fingerprint is its dedup key (`dedup: group_key` in the policy: the
        group's key); firing opens or repeats, resolved resolves. Labels and annotations go
        into the case's fields."""
        if body.version != "4":
            raise error(
                422, f"webhook version '{body.version}' is not supported (use 4)", "version"
            )
        if isinstance(integ.options, AlertmanagerOptions) and integ.options.dedup == "group_key":
            items = [(body.groupKey or "group", body.status, _merged(body))]
        else:
            items = [(_fingerprint(a), a.status, a) for a in body.alerts]
        answers = []
        problems = []
        for key, status, alert in items:
            if status == "resolved":
                case, applied = await act(integ, key, "resolve", None)
                answers.append(
                    IngestAnswer(
                        action="resolve",
                        dedup_key=key,
                        case=case.id if case else None,
                        applied=applied,
                    )
                )
                continue
            labels, notes = alert.labels, alert.annotations
            title = notes.get("summary") or notes.get("title") or labels.get("alertname") or "alert"
            prio = severity_priority(integ, labels.get("severity"))
            if prio not in ("P1", "P2", "P3", "P4"):
                prio = labels.get("priority") if labels.get("priority") in PRIORITIES else None
            data = case_data(
                integ,
                dedup_key=key,
                title=title,
                description=notes.get("description", ""),
                priority=prio,
                customer=labels.get("customer"),
                category=labels.get("category"),
                fields=_clean(
                    {
                        "labels": dict(labels),
                        "annotations": dict(notes),
                        "fingerprint": alert.fingerprint,
                        "starts_at": alert.startsAt,
                        "generator_url": alert.generatorURL,
                        "receiver": body.receiver,
                        "group_key": body.groupKey,
                        "external_url": body.externalURL,
                    }
                ),
                scope=labels,
            )
            source = labels.get("instance") or labels.get("job") or "alertmanager"
            try:
                case, new = await trigger(data, {"source": source, "summary": title})
            except Refused as exc:
                problems.append({"field": f"alerts.{key}", "message": exc.message})
                continue
            answers.append(
                IngestAnswer(action="trigger", dedup_key=key, case=case.id, new=new, applied=True)
            )
        if problems:
            raise error(
                422,
                "; ".join(p["message"] for p in problems),
                "alerts",
                errors=problems,
                accepted=[a.model_dump() for a in answers],
            )
        return AlertmanagerAnswer(alerts=answers)

    # Opsgenie ----------------------------------------------------------------------------

    def og_answer(
        status: int, t0: float, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> JSONResponse:
        body = {
            "message": message,
            "took": round(time.perf_counter() - t0, 3),
            "requestId": str(uuid.uuid4()),
            **extra,
        }
        return JSONResponse(body, status_code=status, headers=headers)

    def og_validation(request: Request, exc: RequestValidationError) -> Response:
        t0 = getattr(request.state, "t0", time.perf_counter())
        errors = {_where(e): _message(e) for e in exc.errors()}
        return og_answer(
            422, t0, "Request body is not processable. Please check the errors.", errors=errors
        )

    og = APIRouter(tags=["ingest"], route_class=_route_class(og_validation))

    async def genie(request: Request) -> Integration:
        t0 = request.state.t0 = time.perf_counter()
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "geniekey" or not key.strip():
            raise _Answer(og_answer(401, t0, "Use Authorization: GenieKey KEY"))
        integ = integration_for_key(policy(), key.strip())
        if integ is None:
            raise _Answer(og_answer(401, t0, "Could not authenticate"))
        if integ.format != "opsgenie":
            raise _Answer(og_answer(403, t0, f"Key is for {integ.format}, not opsgenie"))
        wait = over_rate(integ)
        if wait:
            raise _Answer(
                og_answer(
                    429, t0, "Rate limit exceeded", headers={"Retry-After": retry_after(wait)}
                )
            )
        return integ

    og_responses: dict[int | str, dict[str, Any]] = {
        401: {"model": OpsgenieError, "description": "No key, or an unknown one"},
        403: {"model": OpsgenieError, "description": "The key belongs to another format"},
        413: {"description": "Request body too large"},
        422: {"model": OpsgenieError, "description": "Invalid request"},
        429: {"model": OpsgenieError, "description": "Rate limit exceeded"},
    }

    @og.post(
        "/v2/alerts",
        status_code=202,
        response_model=OpsgenieAnswer,
        summary="Opsgenie: create alert",
        responses=og_responses,
    )
    async def opsgenie_create(
        request: Request, body: OpsgenieAlert, integ: Annotated[Integration, Depends(genie)]
    ) -> Any:
        """Opsgenie's create-alert body; `alias` is the dedup key, P5 maps to P4."""
        t0 = request.state.t0
        alias = body.alias or uuid.uuid4().hex
        fields = _clean(
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
            customer=_from(body.details, "customer"),
            category=_from(body.details, "category"),
            fields=fields,
            tags=body.tags,
            scope=body.details,
        )
        try:
            await trigger(data, {"source": body.source or body.entity, "summary": body.message})
        except Refused as exc:
            return og_answer(422, t0, exc.message)
        return OpsgenieAnswer(took=round(time.perf_counter() - t0, 3), requestId=str(uuid.uuid4()))

    async def opsgenie_act(
        request: Request,
        identifier: str,
        kind: str,
        id_type: str,
        body: OpsgenieAction | None,
        integ: Integration,
    ) -> Any:
        t0 = request.state.t0
        if id_type != "alias":
            return og_answer(
                422, t0, f"identifierType '{id_type}' is not supported: use identifierType=alias"
            )
        by = (body.user if body else None) or f"integration:{integ.id}"
        await act(integ, identifier, kind, by)
        return OpsgenieAnswer(took=round(time.perf_counter() - t0, 3), requestId=str(uuid.uuid4()))

    Identifier = Annotated[str, Path(max_length=512)]
    IdType = Annotated[str, Query(alias="identifierType", max_length=20)]

    @og.post(
        "/v2/alerts/{identifier}/acknowledge",
        status_code=202,
        response_model=OpsgenieAnswer,
        summary="Opsgenie: acknowledge alert",
        responses=og_responses,
    )
    async def opsgenie_acknowledge(
        request: Request,
        identifier: Identifier,
        integ: Annotated[Integration, Depends(genie)],
        identifier_type: IdType = "id",
        body: Annotated[OpsgenieAction | None, Body()] = None,
    ) -> Any:
        """Acknowledge the open case of an alias (`identifierType=alias`)."""
        return await opsgenie_act(request, identifier, "acknowledge", identifier_type, body, integ)

    @og.post(
        "/v2/alerts/{identifier}/close",
        status_code=202,
        response_model=OpsgenieAnswer,
        summary="Opsgenie: close alert",
        responses=og_responses,
    )
    async def opsgenie_close(
        request: Request,
        identifier: Identifier,
        integ: Annotated[Integration, Depends(genie)],
        identifier_type: IdType = "id",
        body: Annotated[OpsgenieAction | None, Body()] = None,
    ) -> Any:
        """Close (resolve) the open case of an alias (`identifierType=alias`)."""
        return await opsgenie_act(request, identifier, "resolve", identifier_type, body, integ)

    # Rungs' own events and heartbeats ---------------------------------------------------

    keyed_responses: dict[int | str, dict[str, Any]] = {
        401: {"description": "Unknown integration key"},
        403: {"description": "The key belongs to another format"},
        413: {"description": "Request body too large"},
        429: {"description": "Rate limit exceeded"},
    }

    @router.post(
        "/v1/integrations/{key}/events",
        status_code=202,
        response_model=IngestAnswer,
        summary="Rungs' own event format",
        responses=keyed_responses,
    )
    async def events(
        body: RungsEvent, integ: Annotated[Integration, Depends(keyed("events"))]
    ) -> Any:
        """`trigger` (needs `title`; `dedup_key` is generated when absent and returned),
        `acknowledge` or `resolve` (need `dedup_key`)."""
        if body.action != "trigger":
            if body.dedup_key is None:
                raise error(422, f"'dedup_key' is required to {body.action}", "dedup_key")
            case, applied = await act(integ, body.dedup_key, body.action, body.by)
            return IngestAnswer(
                action=body.action,
                dedup_key=body.dedup_key,
                case=case.id if case else None,
                applied=applied,
            )
        if body.title is None:
            raise error(422, "'title' is required to trigger", "title")
        key = body.dedup_key or uuid.uuid4().hex
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
        try:
            case, new = await trigger(data, {"source": body.by, "summary": body.title})
        except Refused as exc:
            raise error(exc.status, exc.message, exc.field) from None
        return IngestAnswer(action="trigger", dedup_key=key, case=case.id, new=new, applied=True)

    @router.post(
        "/v1/heartbeats/{key}",
        status_code=202,
        response_model=HeartbeatAnswer,
        summary="Heartbeat",
        responses=keyed_responses,
    )
    async def beat(integ: Annotated[Integration, Depends(keyed("heartbeat"))]) -> Any:
        """A beat: the next is expected within the integration's `interval`; a missed one
        opens a case, which the next beat resolves. Any body is ignored."""
        state = await run_in_threadpool(heartbeats.beat, service, integ)
        return HeartbeatAnswer(
            integration=integ.id,
            last_beat=format_utc(state["last_beat"]),
            next_due=format_utc(state["next_due"]),
            resolved=state["resolved"],
        )

    @router.get("/v1/heartbeats", summary="Heartbeat states")
    def heartbeat_states() -> list[dict[str, Any]]:
        out = []
        for s in heartbeats.states(service):
            out.append(
                {
                    "integration": s["integration"],
                    "status": s["status"],
                    "interval": format_duration(s["interval_us"]),
                    "last_beat": format_utc(s["last_beat"]),
                    "next_due": format_utc(s["next_due"]) if s["next_due"] else None,
                    "missed_at": format_utc(s["missed_at"]) if s["missed_at"] else None,
                }
            )
        return out

    router.include_router(pd)
    router.include_router(og)
    return router


PRIORITIES = ("P1", "P2", "P3", "P4")


def _fingerprint(alert: AlertmanagerAlert) -> str:
    """Alertmanager's fingerprint, or (from senders that omit it) a hash of the labels."""
    if alert.fingerprint:
        return alert.fingerprint
    raw = json.dumps(sorted(alert.labels.items()), separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _merged(body: AlertmanagerWebhook) -> AlertmanagerAlert:
    """A whole group as one alert: common labels and annotations over the first alert's."""
    first = body.alerts[0] if body.alerts else None
    return AlertmanagerAlert(
        status=body.status,
        labels={**(first.labels if first else {}), **body.groupLabels, **body.commonLabels},
        annotations={**(first.annotations if first else {}), **body.commonAnnotations},
        startsAt=first.startsAt if first else "",
        generatorURL=first.generatorURL if first else "",
        fingerprint="",
    )
