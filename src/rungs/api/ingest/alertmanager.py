"""Prometheus Alertmanager's webhook, version 4 (`POST /v1/integrations/{key}/alertmanager`).

Each alert's fingerprint is its dedup key (with `dedup: group_key` in the policy, the group's
key, the whole group being one alert); firing opens or repeats, resolved resolves. Labels and
annotations go into the case's fields.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from rungs.api.ingest.commands import CaseCommand, Invalid, Trigger, act
from rungs.api.ingest.wire import Annotations, IngestAnswer, Labels, Strict, bounded, clean
from rungs.engine.integrations import case_data, severity_priority
from rungs.policy.model import PRIORITIES, AlertmanagerOptions, Integration

__all__ = ["AlertmanagerAlert", "AlertmanagerAnswer", "AlertmanagerWebhook", "to_commands"]


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
    alerts: Annotated[list[AlertmanagerAlert], Field(max_length=1000)]


class AlertmanagerAnswer(BaseModel):
    status: str = "accepted"
    alerts: list[IngestAnswer]


def to_commands(body: AlertmanagerWebhook, integ: Integration) -> list[CaseCommand]:
    """One command per alert, in order (one for the group with `dedup: group_key`): a
    resolve of its key, or a trigger. Raises `Invalid` for a webhook version other than 4."""
    if body.version != "4":
        raise Invalid(f"webhook version '{body.version}' is not supported (use 4)", "version")
    if _by_group(integ):
        alerts = [(body.groupKey or "group", _merged(body))]
    else:
        alerts = [(_fingerprint(a), a) for a in body.alerts]
    return [
        act(integ, key, "resolve")
        if alert.status == "resolved"
        else _trigger(body, integ, key, alert)
        for key, alert in alerts
    ]


def _by_group(integ: Integration) -> bool:
    """Whether the integration folds each group into one alert (`dedup: group_key`)."""
    options = integ.options
    return isinstance(options, AlertmanagerOptions) and options.dedup == "group_key"


def _trigger(
    body: AlertmanagerWebhook, integ: Integration, key: str, alert: AlertmanagerAlert
) -> Trigger:
    labels, notes = alert.labels, alert.annotations
    title = notes.get("summary") or notes.get("title") or labels.get("alertname") or "alert"
    prio = severity_priority(integ, labels.get("severity"))
    if prio not in PRIORITIES:
        prio = labels.get("priority") if labels.get("priority") in PRIORITIES else None
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
    source = labels.get("instance") or labels.get("job") or "alertmanager"
    return Trigger(key, data, {"source": source, "summary": title})


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
