"""The ingest routes: authenticate the sender's key, turn its body into commands (the pure
`to_commands` of its format), submit them, and answer in its format.

The routes' dependencies are built per router, so they are passed as default values
(`integ: Integration = Depends(...)`): annotations here are strings, read in module scope.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from rungs.api.auth import required_role
from rungs.api.errors import ApiError
from rungs.api.fastpath import Lane, Reply, reply_of
from rungs.api.ingest import alertmanager, events, heartbeat, opsgenie, pagerduty
from rungs.api.ingest.alertmanager import (
    AlertmanagerAnswer,
    AlertmanagerProblem,
    AlertmanagerWebhook,
)
from rungs.api.ingest.change import change_routes
from rungs.api.ingest.commands import Act, CaseCommand, Invalid, Trigger, Unreadable, new_key
from rungs.api.ingest.events import RungsEvent
from rungs.api.ingest.heartbeat import HeartbeatAnswer
from rungs.api.ingest.http import (
    PD_RESPONSES,
    Answer,
    Keys,
    format_route,
    message,
    pd_invalid,
    pd_validation,
    where,
)
from rungs.api.ingest.opsgenie import OpsgenieAction, OpsgenieAlert, OpsgenieAnswer, OpsgenieError
from rungs.api.ingest.pagerduty import (
    PagerDutyAccepted,
    PagerDutyEvent,
    PagerDutyThrottled,
)
from rungs.api.ingest.wire import IngestAnswer
from rungs.api.limits import retry_after
from rungs.core.model import Case, Event, Refused
from rungs.policy.model import Integration
from rungs.policy.versions import PolicyVersions
from rungs.store.tokens import TokenInfo

__all__ = ["Commands", "ingest_router"]


BeatState = Mapping[str, Any]  # last_beat, next_due (instants), resolved (a case id or None)


class Commands(Protocol):
    """The engine's command calls the routes submit through."""

    def trigger(
        self, data: dict[str, Any], repeat: dict[str, Any]
    ) -> Awaitable[tuple[Case, bool]]: ...

    def act_on_key(self, dedup_key: str, event: Event) -> Awaitable[tuple[Case | None, bool]]: ...

    def beat(self, integ: Integration) -> Awaitable[BeatState]: ...

    def record_change(self, change: dict[str, Any]) -> Awaitable[int]: ...

    def alerts_at_once(self, batch: list[tuple[str, Any, Any]]) -> Awaitable[list[Any]]: ...


async def submit(commands: Commands, command: CaseCommand) -> tuple[Case | None, bool]:
    """Submit one command: the case it touched (None when no open case has the key), and
    whether it was new (trigger) or applied (act)."""
    match command:
        case Trigger(data=data, repeat=repeat):
            return await commands.trigger(data, repeat)
        case Act(dedup_key=dedup_key, event=event):
            return await commands.act_on_key(dedup_key, event)


def _call(command: CaseCommand) -> tuple[str, Any, Any]:
    """A command as one call of `Commands.alerts_at_once`."""
    if isinstance(command, Trigger):
        return "trigger", command.data, command.repeat
    return "act", command.dedup_key, command.event


def _accepted(command: CaseCommand, case: Case | None, done: bool) -> IngestAnswer:
    """Rungs' own answer to one submitted command (`done`: new for a trigger, applied for an
    acknowledge or resolve)."""
    case_id = case.id if case else None
    if isinstance(command, Act):
        return IngestAnswer(
            action=command.event.kind, dedup_key=command.key, case=case_id, applied=done
        )
    return IngestAnswer(
        action="trigger", dedup_key=command.key, case=case_id, new=done, applied=True
    )


def ingest_router(
    policies: PolicyVersions,
    commands: Commands,
    *,
    heartbeat_states: Callable[[], Iterable[Mapping[str, Any]]],
    lanes: dict[str, Lane],
) -> APIRouter:
    """Every ingest route; `heartbeat_states` lists the heartbeats (a read-side view). Routes
    worth serving without the framework on their happy path are added to `lanes`."""
    keys = Keys(policies)
    router = _keyed_routes(keys, commands, heartbeat_states)
    router.include_router(_pagerduty_routes(keys, commands, lanes))
    router.include_router(change_routes(keys, commands))  # PagerDuty change events
    router.include_router(_opsgenie_routes(keys, commands))
    return router


# PagerDuty ------------------------------------------------------------------------------------


def _pagerduty_routes(keys: Keys, commands: Commands, lanes: dict[str, Lane]) -> APIRouter:
    pd = APIRouter(tags=["ingest"], route_class=format_route(pd_validation))

    @pd.post(
        "/v2/enqueue",
        name="pagerduty",
        status_code=202,
        response_model=PagerDutyAccepted,
        summary="PagerDuty Events API v2",
        responses=PD_RESPONSES,
        openapi_extra={"x-rungs-invalid-status": 400},
    )
    async def pagerduty_enqueue(event: PagerDutyEvent) -> Any:
        """PagerDuty's Events API v2 body: `routing_key` is the integration key."""
        integ = keys.integration(event.routing_key)
        if integ is None or integ.format != "pagerduty":
            return pd_invalid(["Invalid routing key"])
        wait = keys.wait(integ)
        if wait:
            return JSONResponse(
                PagerDutyThrottled(
                    message="Requests for this service are arriving too quickly. "
                    "Please retry later."
                ).model_dump(),
                status_code=429,
                headers={"Retry-After": retry_after(wait)},
            )
        try:
            (command,) = pagerduty.to_commands(event, integ, policy=keys.policy(), fresh=new_key)
            await submit(commands, command)
        except (Invalid, Refused) as exc:
            return pd_invalid([exc.message])
        return PagerDutyAccepted(dedup_key=command.key)

    async def pagerduty_reply(event: PagerDutyEvent, _token: TokenInfo | None) -> Reply:
        return reply_of(await pagerduty_enqueue(event), 202)

    lanes["/v2/enqueue"] = Lane(
        PagerDutyEvent, pagerduty_reply, required_role("POST", "/v2/enqueue")
    )
    return pd


# Opsgenie -------------------------------------------------------------------------------------

Identifier = Annotated[str, Path(max_length=512)]
IdType = Annotated[str, Query(alias="identifierType", max_length=20)]
ActionBody = Annotated[OpsgenieAction | None, Body()]

_OG_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": OpsgenieError, "description": "No key, or an unknown one"},
    403: {"model": OpsgenieError, "description": "The key belongs to another format"},
    413: {"description": "Request body too large"},
    422: {"model": OpsgenieError, "description": "Invalid request"},
    429: {"model": OpsgenieError, "description": "Rate limit exceeded"},
}


def _og_answer(
    status: int, t0: float, text: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "message": text,
        "took": round(time.perf_counter() - t0, 3),
        "requestId": str(uuid.uuid4()),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _og_accepted(t0: float) -> OpsgenieAnswer:
    return OpsgenieAnswer(took=round(time.perf_counter() - t0, 3), requestId=str(uuid.uuid4()))


def _og_validation(request: Request, exc: RequestValidationError) -> Response:
    t0 = getattr(request.state, "t0", time.perf_counter())
    errors = {where(e): message(e) for e in exc.errors()}
    return _og_answer(
        422, t0, "Request body is not processable. Please check the errors.", errors=errors
    )


def _opsgenie_routes(keys: Keys, commands: Commands) -> APIRouter:
    og = APIRouter(tags=["ingest"], route_class=format_route(_og_validation))

    async def genie(request: Request) -> Integration:
        t0 = request.state.t0 = time.perf_counter()
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "geniekey" or not key.strip():
            raise Answer(_og_answer(401, t0, "Use Authorization: GenieKey KEY"))
        integ = keys.integration(key.strip())
        if integ is None:
            raise Answer(_og_answer(401, t0, "Could not authenticate"))
        if integ.format != "opsgenie":
            raise Answer(_og_answer(403, t0, f"Key is for {integ.format}, not opsgenie"))
        wait = keys.wait(integ)
        if wait:
            raise Answer(
                _og_answer(
                    429, t0, "Rate limit exceeded", headers={"Retry-After": retry_after(wait)}
                )
            )
        return integ

    @og.post(
        "/v2/alerts",
        name="opsgenie_create",
        status_code=202,
        response_model=OpsgenieAnswer,
        summary="Opsgenie: create alert",
        responses=_OG_RESPONSES,
    )
    async def opsgenie_create(
        request: Request, body: OpsgenieAlert, integ: Integration = Depends(genie)
    ) -> Any:
        """Opsgenie's create-alert body; `alias` is the dedup key, P5 maps to P4."""
        t0 = request.state.t0
        (command,) = opsgenie.to_commands(body, integ, policy=keys.policy(), fresh=new_key)
        try:
            await submit(commands, command)
        except Refused as exc:
            return _og_answer(422, t0, exc.message)
        return _og_accepted(t0)

    def og_action(action: Literal["acknowledge", "resolve"]) -> Callable[..., Awaitable[Any]]:
        async def endpoint(
            request: Request,
            identifier: Identifier,
            integ: Integration = Depends(genie),
            identifier_type: IdType = "id",
            body: ActionBody = None,
        ) -> Any:
            t0 = request.state.t0
            try:
                (command,) = opsgenie.act_commands(
                    body, integ, identifier=identifier, action=action, id_type=identifier_type
                )
            except Invalid as exc:
                return _og_answer(422, t0, exc.message)
            await submit(commands, command)
            return _og_accepted(t0)

        return endpoint

    for verb, action, doc in (
        ("acknowledge", "acknowledge", "Acknowledge the open case of an alias"),
        ("close", "resolve", "Close (resolve) the open case of an alias"),
    ):
        og.add_api_route(
            f"/v2/alerts/{{identifier}}/{verb}",
            og_action(action),
            methods=["POST"],
            name=f"opsgenie_{verb}",
            status_code=202,
            response_model=OpsgenieAnswer,
            summary=f"Opsgenie: {verb} alert",
            description=f"{doc} (`identifierType=alias`).",
            responses=_OG_RESPONSES,
        )
    return og


# Alertmanager, Rungs' own events and heartbeats: the key in the path --------------------------

IntegrationKey = Annotated[str, Path(max_length=1000, description="The integration key")]

_KEYED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Unknown integration key"},
    403: {"description": "The key belongs to another format"},
    413: {"description": "Request body too large"},
    429: {"description": "Rate limit exceeded"},
}


def _keyed_routes(
    keys: Keys,
    commands: Commands,
    heartbeat_states: Callable[[], Iterable[Mapping[str, Any]]],
) -> APIRouter:
    router = APIRouter(tags=["ingest"])

    def keyed(fmt: str) -> Callable[[str], Awaitable[Integration]]:
        """The dependency of a route with the key in its path: 401 unknown, 403 wrong format."""

        async def dependency(key: IntegrationKey) -> Integration:
            integ = keys.integration(key)
            if integ is None:
                raise ApiError(401, "unknown integration key", "key")
            if integ.format != fmt:
                raise ApiError(
                    403, f"integration '{integ.id}' takes {integ.format}, not {fmt}", "key"
                )
            wait = keys.wait(integ)
            if wait:
                raise HTTPException(
                    429,
                    f"integration '{integ.id}' is over its rate limit",
                    headers={"Retry-After": retry_after(wait)},
                )
            return integ

        return dependency

    @router.post(
        "/v1/integrations/{key}/alertmanager",
        name="alertmanager",
        status_code=202,
        response_model=AlertmanagerAnswer,
        summary="Prometheus Alertmanager webhook (version 4)",
        responses=_KEYED_RESPONSES,
    )
    async def alertmanager_webhook(
        body: AlertmanagerWebhook, integ: Integration = Depends(keyed("alertmanager"))
    ) -> Any:
        """Each alert's fingerprint is its dedup key (`dedup: group_key` in the policy: the
        group's key); firing opens or repeats, resolved resolves. Labels and annotations go
        into the case's fields. Each alert is taken on its own: `taken` counts them, `errors`
        names those that could not be (422 only when none could)."""
        try:
            batch = alertmanager.to_commands(body, integ, policy=keys.policy())
        except Invalid as exc:
            raise ApiError(422, exc.message, exc.field) from None
        answers, problems = [], []
        taken = [c for c in batch if not isinstance(c, Unreadable)]
        # the group's alerts in one transaction: one commit for them all
        outcomes = iter(await commands.alerts_at_once([_call(c) for c in taken]) if taken else [])
        for command in batch:
            if isinstance(command, Unreadable):
                problems.append(AlertmanagerProblem(field=command.field, message=command.message))
                continue
            outcome = next(outcomes)
            if isinstance(outcome, Refused):
                problems.append(
                    AlertmanagerProblem(field=f"alerts.{command.key}", message=outcome.message)
                )
                continue
            answers.append(_accepted(command, *outcome))
        if problems and not answers:
            raise ApiError(
                422,
                "; ".join(p.message for p in problems),
                "alerts",
                errors=[p.model_dump() for p in problems],
                accepted=[],
            )
        return AlertmanagerAnswer(taken=len(answers), alerts=answers, errors=problems)

    @router.post(
        "/v1/integrations/{key}/events",
        name="events",
        status_code=202,
        response_model=IngestAnswer,
        summary="Rungs' own event format",
        responses=_KEYED_RESPONSES,
    )
    async def events_webhook(
        body: RungsEvent, integ: Integration = Depends(keyed("events"))
    ) -> Any:
        """`trigger` (needs `title`; `dedup_key` is generated when absent and returned),
        `acknowledge` or `resolve` (need `dedup_key`)."""
        try:
            (command,) = events.to_commands(body, integ, policy=keys.policy(), fresh=new_key)
        except Invalid as exc:
            raise ApiError(422, exc.message, exc.field) from None
        try:
            case, done = await submit(commands, command)
        except Refused as exc:
            raise ApiError.refused(exc) from None
        return _accepted(command, case, done)

    @router.post(
        "/v1/heartbeats/{key}",
        name="beat",
        status_code=202,
        response_model=HeartbeatAnswer,
        summary="Heartbeat",
        responses=_KEYED_RESPONSES,
    )
    async def heartbeat_beat(integ: Integration = Depends(keyed("heartbeat"))) -> Any:
        """A beat: the next is expected within the integration's `interval`; a missed one
        opens a case, which the next beat resolves. Any body is ignored."""
        (command,) = heartbeat.to_commands(integ)
        state = await commands.beat(command.integration)
        return heartbeat.answer(integ, state)

    @router.get("/v1/heartbeats", name="heartbeat_states", summary="Heartbeat states")
    def heartbeat_list() -> list[dict[str, Any]]:
        return [heartbeat.state_json(s) for s in heartbeat_states()]

    return router
