"""Alert grouping and the storm guard, pure: which case an alert belongs to, and the entries
a grouped case records.

The shell reads what the store knows of an alert (`Seen`) and asks `route` where it goes:

- `repeat`: the alert is firing in its open case (counted, as without grouping);
- `refire`: it had resolved, and fires again, in its still open case (no page);
- `reopen`: flapping is watched and its case resolved within the flap window: that case
  reopens (a closed case is final: the alert opens a new one);
- `attach`: a new alert joins the open case of its group (`group_by`, within `group_window`;
  no page);
- `attach_storm`: while its integration is over the storm threshold, it joins the open storm
  case (no page);
- `storm`: over the threshold with no storm case open: one opens (one page, saying so);
- `open`: a case of its own (its group's first), paged as usual.

A grouped case resolves when all its alerts have resolved (`group_resolve: all`) or when any
has (`any`): `resolves`. The entries: `alert_attached`, `alert_fired` (an alert of the case
fired again), `alert_resolved`, `storm_started`, `storm_ended`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rungs.core.ctx import Ctx
from rungs.core.model import Case, Effect
from rungs.policy.model import Grouping, IntegrationOptions, Policy, Storm
from rungs.time.instant import format_duration

__all__ = [
    "AlertSeen",
    "GroupSeen",
    "Seen",
    "alert_fired",
    "alert_resolved",
    "attach",
    "group_key",
    "group_values",
    "resolves",
    "route",
    "storm_data",
    "storm_ended",
    "storm_started",
]


@dataclass(frozen=True, slots=True)
class AlertSeen:
    """The alert's latest row: its case, whether that case is active, its own status."""

    case_id: str
    case_active: bool
    status: str  # firing | resolved
    changed_at: int  # the instant of its last change of status
    held: bool = False  # its case is held by a maintenance window
    closed: bool = False  # its case is closed: final, never reopened


@dataclass(frozen=True, slots=True)
class GroupSeen:
    """The latest case of a group (or the integration's storm case)."""

    case_id: str
    opened_at: int
    active: bool
    released: bool = False  # a storm case after its storm ended


@dataclass(frozen=True, slots=True)
class Seen:
    alert: AlertSeen | None
    group: GroupSeen | None = None
    storm_case: GroupSeen | None = None
    recent: int = 0  # cases the integration opened within `storm.window` (storm cases aside)


def group_values(by: tuple[str, ...], data: Mapping[str, Any]) -> dict[str, str]:
    """Each `group_by` name's value: a label (Alertmanager), else a field of the alert, else a
    field of the case (customer, category, priority, title); empty when none has it."""
    fields = data.get("fields") or {}
    labels = fields.get("labels") if isinstance(fields.get("labels"), Mapping) else {}
    details = fields.get("custom_details")
    details = details if isinstance(details, Mapping) else {}
    out: dict[str, str] = {}
    for name in by:
        for source in (labels, details, fields, data):
            v = source.get(name)
            if v is not None and not isinstance(v, Mapping | list):
                out[name] = str(v)[:200]
                break
        else:
            out[name] = ""
    return out


def group_key(integration: str, grouping: Grouping, data: Mapping[str, Any]) -> str:
    """The key naming an alert's group within its integration (bounded: a digest)."""
    values = json.dumps(group_values(grouping.by, data), sort_keys=True, separators=(",", ":"))
    return f"{integration[:150]}:group:{hashlib.sha256(values.encode()).hexdigest()[:32]}"


def route(options: IntegrationOptions, seen: Seen, now: int) -> str:
    """Where an alert that fires at `now` goes (see the module's docstring)."""
    alert = seen.alert
    if alert is not None and alert.case_active:
        return "repeat" if alert.status == "firing" else "refire"
    flap = options.flap
    if (alert is not None and flap is not None and not alert.closed
            and now - alert.changed_at <= flap.window):  # fmt: skip
        return "reopen"
    g, grouping = seen.group, options.grouping
    if (
        g is not None
        and grouping is not None
        and g.active
        and (grouping.window is None or now - g.opened_at < grouping.window)
    ):
        return "attach"
    storm = options.storm
    if storm is not None and seen.recent >= storm.cases:
        s = seen.storm_case
        return "attach_storm" if s is not None and s.active and not s.released else "storm"
    return "open"


def resolves(mode: str, firing_left: int) -> bool:
    """Whether a grouped case resolves now that one of its alerts has."""
    return mode == "any" or firing_left == 0


def storm_data(
    data: Mapping[str, Any], integration: str, storm: Storm, recent: int
) -> dict[str, Any]:
    """What the storm case opens with: the alert's customer and routing, a title saying so."""
    title = (
        f"Alert storm: integration '{integration}' opened {recent} cases in "
        f"{format_duration(storm.window)}; further alerts join this case"
    )
    fields = {"integration": integration, "storm": True, "alert": data.get("dedup_key"),
              "summary": str(data.get("title") or "")[:1024]}  # fmt: skip
    return {
        **{k: v for k, v in data.items() if k not in ("dedup_key", "corrections")},
        "title": title,
        "description": f"The first alert of the storm: {data.get('title', '')}",
        "fields": fields,
        "dedup_key": None,
    }


def _entry(case: Case, now: int, policy: Policy, kind: str, **fields: Any) -> Ctx:
    ctx = Ctx(case.copy(), now, policy)
    ctx.record(kind, **fields)
    return ctx


def attach(
    case: Case, now: int, policy: Policy, alert: str, summary: str | None, via: str
) -> tuple[Case, list[Effect]]:
    """A new alert joins the case (`via` group or storm): counted, recorded, nobody paged."""
    ctx = _entry(case, now, policy, "alert_attached", alert=alert, count=case.alerts + 1,
                 summary=summary, via=via)  # fmt: skip
    ctx.case.alerts += 1
    ctx.case.updated_at = now
    return ctx.case, ctx.effects


def alert_fired(
    case: Case, now: int, policy: Policy, alert: str, summary: str | None
) -> tuple[Case, list[Effect]]:
    """An alert of the case that had resolved fires again while the case is open."""
    ctx = _entry(case, now, policy, "alert_fired", alert=alert, summary=summary)
    ctx.case.updated_at = now
    return ctx.case, ctx.effects


def alert_resolved(
    case: Case, now: int, policy: Policy, alert: str, firing_left: int
) -> tuple[Case, list[Effect]]:
    """One alert of a grouped case resolved; `firing_left` of its alerts still fire."""
    ctx = _entry(case, now, policy, "alert_resolved", alert=alert, firing=firing_left)
    ctx.case.updated_at = now
    return ctx.case, ctx.effects


def storm_started(
    case: Case, now: int, policy: Policy, integration: str, storm: Storm, recent: int
) -> tuple[Case, list[Effect]]:
    ctx = _entry(case, now, policy, "storm_started", integration=integration, cases=recent,
                 threshold=storm.cases, window=storm.window // 1_000_000)  # fmt: skip
    return ctx.case, ctx.effects


def storm_ended(
    case: Case, now: int, policy: Policy, integration: str, recent: int
) -> tuple[Case, list[Effect]]:
    """The integration's rate fell under the threshold: its alerts open their own cases."""
    ctx = _entry(case, now, policy, "storm_ended", integration=integration, cases=recent)
    return ctx.case, ctx.effects


def alerts_in(case: Case, entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The alerts of a grouped (or storm) case, each with its latest status, read from its
    timeline (for the handoff and every page); None for a case of one alert."""
    first = case.fields.get("alert")
    if not first:
        return None
    found: dict[str, dict[str, Any]] = {
        str(first): {
            "alert": str(first),
            "summary": case.fields.get("summary", case.title),
            "status": "firing",
        }  # a storm case's title is the storm's, not its alert's
    }
    for e in entries:
        key = e.get("alert")
        kind = e["kind"]
        if kind == "alert_attached":
            found[key] = {"alert": key, "summary": e.get("summary"), "status": "firing"}
        elif key in found and kind in _STATUS_OF:
            found[key]["status"] = _STATUS_OF[kind] or e.get("status")
            found[key]["flapping"] = kind == "flapping"
    return list(found.values())


_STATUS_OF = {"alert_resolved": "resolved", "alert_fired": "firing", "flapping": None,
              "flap_ended": None}  # fmt: skip
