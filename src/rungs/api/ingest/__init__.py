"""Ingest from real senders, each in its own wire format, each with its integration's key.

- PagerDuty Events API v2: `POST /v2/enqueue` (`routing_key` in the body).
- Prometheus Alertmanager webhook (version 4): `POST /v1/integrations/{key}/alertmanager`.
- Opsgenie Alert API: `POST /v2/alerts`, `POST /v2/alerts/{alias}/acknowledge|close`
  (`Authorization: GenieKey KEY`).
- PagerDuty Change Events: `POST /v2/change/enqueue` (kept for the handoff's recent changes).
- Rungs' own small JSON format: `POST /v1/integrations/{key}/events`.
- Heartbeats: `POST /v1/heartbeats/{key}`; `GET /v1/heartbeats` (viewer) lists their state.

A trigger whose dedup key names an open case adds to it (an `alert_repeated` entry with a
count); after the case is resolved the same key opens a new case. Acknowledge and resolve by
dedup key act on the open case, and are no error when there is none (as at PagerDuty). A key
works only on its own format's endpoint; each key has its own rate limit (`rate_limit` in the
policy) answered with 429 and Retry-After.

Each format is a module (`pagerduty`, `alertmanager`, `opsgenie`, `events`, `heartbeat`) with
its body models and a pure `to_commands(body, integration, ...)` that turns a body into
`commands` (trigger, act on a dedup key, beat); `routes` authenticates, submits them and
answers. A new sender format is a new module of that shape and its routes.
"""

from __future__ import annotations

from rungs.api.ingest.alertmanager import AlertmanagerAlert, AlertmanagerWebhook
from rungs.api.ingest.commands import (
    Act,
    Beat,
    CaseCommand,
    Command,
    Invalid,
    Trigger,
    Unreadable,
)
from rungs.api.ingest.events import RungsEvent
from rungs.api.ingest.opsgenie import OpsgenieAction, OpsgenieAlert
from rungs.api.ingest.pagerduty import PagerDutyEvent
from rungs.api.ingest.routes import Commands, ingest_router

__all__ = [
    "Act",
    "AlertmanagerAlert",
    "AlertmanagerWebhook",
    "Beat",
    "CaseCommand",
    "Command",
    "Commands",
    "Invalid",
    "OpsgenieAction",
    "OpsgenieAlert",
    "PagerDutyEvent",
    "RungsEvent",
    "Trigger",
    "Unreadable",
    "ingest_router",
]
