"""Prometheus Alertmanager's webhook, version 4 (`POST /v1/integrations/{key}/alertmanager`).

Each alert's fingerprint is its dedup key (with `dedup: group_key` in the policy, the group's
key, the whole group being one alert); firing opens or repeats, resolved resolves. Labels and
annotations go into the case's fields. Each alert is read on its own: one that cannot be read
is answered as `Unreadable`, and the others are still taken.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError

from rungs.api.ingest.address import addressed
from rungs.api.ingest.commands import CaseCommand, Invalid, Trigger, Unreadable, act
from rungs.api.ingest.wire import (
    Annotations,
    IngestAnswer,
    Labels,
    Strict,
    bounded,
    clean,
    message,
    where,
)
from rungs.api.schemas import JsonValue
from rungs.engine.integrations import case_data, severity_priority
from rungs.policy import Policy
from rungs.policy.model import PRIORITIES, AlertmanagerOptions, Integration

__all__ = [
    "AlertmanagerAlert",
    "AlertmanagerAnswer",
    "AlertmanagerProblem",
    "AlertmanagerWebhook",
    "to_commands",
]


class AlertmanagerAlert(Strict):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Annotations = {}
    startsAt: bounded(64) = ""
    endsAt: bounded(64) = ""
    generatorURL: bounded(4096) = ""
    fingerprint: bounded(255) = ""


class AlertmanagerWebhook(Strict):
    version: bounded(16)
    groupKey: bounded(8192) = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    status: Literal["firing", "resolved"]
    receiver: bounded(1024) = ""
    groupLabels: Labels = {}
    commonLabels: Labels = {}
    commonAnnotations: Annotations = {}
    externalURL: bounded(4096) = ""
    # an alert that cannot be read stays raw (and is answered as such); the others are taken
    alerts: Annotated[
        list[Annotated[AlertmanagerAlert | JsonValue, Field(union_mode="left_to_right")]],
        Field(max_length=1000),
    ]


class AlertmanagerProblem(BaseModel):
    field: str
    message: str


class AlertmanagerAnswer(BaseModel):
    status: str = "accepted"
    taken: int  # how many of `alerts` were taken (the group, with dedup: group_key)
    alerts: list[IngestAnswer]
    errors: list[AlertmanagerProblem] = []  # the alerts that could not be taken, and why


def to_commands(
    body: AlertmanagerWebhook, integ: Integration, *, policy: Policy
) -> list[CaseCommand | Unreadable]:
    """One command per alert, in order (one for the group with `dedup: group_key`): a
    resolve of its key, or a trigger addressed under `policy`; an alert that cannot be read
    is `Unreadable` in its place (after the group's command). Raises `Invalid` for a webhook
    version other than 4."""
    if body.version != "4":
        raise Invalid(f"webhook version '{body.version}' is not supported (use 4)", "version")
    read = [_read(i, a) for i, a in enumerate(body.alerts)]
    good = [a for a in read if isinstance(a, AlertmanagerAlert)]
    if _by_group(integ):
        bad: list[CaseCommand | Unreadable] = [a for a in read if isinstance(a, Unreadable)]
        return [_command(body, integ, policy, body.groupKey or "group", _merged(body, good)), *bad]
    return [
        _command(body, integ, policy, _fingerprint(a), a) if isinstance(a, AlertmanagerAlert) else a
        for a in read
    ]


def _read(index: int, alert: AlertmanagerAlert | object) -> AlertmanagerAlert | Unreadable:
    """The alert, or why it cannot be read (its first error, located in the webhook)."""
    if isinstance(alert, AlertmanagerAlert):
        return alert
    try:
        return AlertmanagerAlert.model_validate(alert)
    except ValidationError as exc:
        first = exc.errors()[0]
        located = {**first, "loc": ("alerts", index, *first["loc"])}
        return Unreadable(where(located), message(located))


def _command(
    body: AlertmanagerWebhook,
    integ: Integration,
    policy: Policy,
    key: str,
    alert: AlertmanagerAlert,
) -> CaseCommand:
    if alert.status == "resolved":
        return act(integ, key, "resolve")
    return _trigger(body, integ, policy, key, alert)


def _by_group(integ: Integration) -> bool:
    """Whether the integration folds each group into one alert (`dedup: group_key`)."""
    options = integ.options
    return isinstance(options, AlertmanagerOptions) and options.dedup == "group_key"


def _trigger(
    body: AlertmanagerWebhook,
    integ: Integration,
    policy: Policy,
    key: str,
    alert: AlertmanagerAlert,
) -> Trigger:
    labels, notes = alert.labels, alert.annotations
    title = notes.get("summary") or notes.get("title") or labels.get("alertname") or "alert"
    prio = severity_priority(integ, labels.get("severity"))
    if prio not in PRIORITIES:  # the label, else the unmapped severity (corrected, and said)
        prio = labels.get("priority") or labels.get("severity")
    data = case_data(
        integ,
        dedup_key=key,
        title=title,
        description=notes.get("description", ""),
        priority=prio,
        customer=labels.get("customer"),
        category=labels.get("category"),
        fields=clean(
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
    data = addressed(data, integ, policy)
    source = labels.get("instance") or labels.get("job") or "alertmanager"
    return Trigger(key, data, {"source": source, "summary": title})


def _fingerprint(alert: AlertmanagerAlert) -> str:
    """Alertmanager's fingerprint, or (from senders that omit it) a hash of the labels."""
    if alert.fingerprint:
        return alert.fingerprint
    raw = json.dumps(sorted(alert.labels.items()), separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _merged(body: AlertmanagerWebhook, alerts: list[AlertmanagerAlert]) -> AlertmanagerAlert:
    """A whole group as one alert: common labels and annotations over the first readable
    alert's."""
    first = alerts[0] if alerts else None
    return AlertmanagerAlert(
        status=body.status,
        labels={**(first.labels if first else {}), **body.groupLabels, **body.commonLabels},
        annotations={**(first.annotations if first else {}), **body.commonAnnotations},
        startsAt=first.startsAt if first else "",
        generatorURL=first.generatorURL if first else "",
        fingerprint="",
    )
