"""Handoff context: everything the next person needs, so nobody asks the customer twice.

`handoff(case, policy, now, timeline, level)` is pure: it reads the case state, the compiled
policy and the case's timeline entries (dicts with integer-µs `at`, as the core records them)
and returns a JSON-serialisable dict. Only timeline entries of this case at or before `now`
are used. Instants are written `YYYY-MM-DDTHH:MM:SSZ`; durations both as strings (`1h30m`)
and as whole seconds.

The `ladder` describes the current round of the case: since its opening or its last
reopening (a reopen puts the case back at level 1). The `timeline`, `moves` and
`previous_assignees` cover the case's whole life.
"""

from __future__ import annotations

from typing import Any

from rungs.core import sla
from rungs.core.grouping import alerts_in
from rungs.core.model import Case
from rungs.core.targets import people_of
from rungs.core.timeline import entry_json
from rungs.policy.model import Matrix, Policy
from rungs.time.calendar import Calendar
from rungs.time.instant import HOUR, SECOND, format_duration, format_utc

__all__ = ["CHANGE_WINDOW", "clock_name", "handoff", "recent_changes"]

CHANGE_WINDOW = 2 * HOUR
"""A change that happened this long before a case opened is one of its "recent changes"."""

_START_KINDS = ("opened", "reopened")


def handoff(
    case: Case,
    policy: Policy,
    now: int,
    timeline: list[dict[str, Any]],
    level: int | None = None,
    changes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The handoff context of `case` at `now` for `level` (the case's current level by
    default); `changes` are stored change events, of which the recent ones are shown."""
    m = _matrix(policy, case.matrix)
    target_level = case.level if level is None else level
    if m is not None and not 1 <= target_level <= len(m.levels):
        raise ValueError(
            f"level {target_level} is not a level of matrix '{m.id}' (1..{len(m.levels)})"
        )
    entries = [e for e in timeline if e.get("case") == case.id and e["at"] <= now]
    moves, previous = _moves(m, entries)
    out: dict[str, Any] = {
        "at": format_utc(now),
        "for_level": _for_level(policy, now, m, target_level),
        "case": _case(case, m),
        "customer": _customer(policy, case.customer),
        "sla": _sla(case, policy, now),
        "ladder": _ladder(case, policy, m, entries),
        "escalation": _escalation(entries),
        "previous_assignees": previous,
        "moves": moves,
        "timeline": [entry_json(e) for e in entries],
        "recent_changes": recent_changes(case, changes or []),
    }
    grouped = alerts_in(case, entries)
    if grouped is not None:  # a grouped or storm case: its alerts, each with its status
        out["alerts"] = grouped
    out["summary"] = _summary(out, m)
    return out


def recent_changes(case: Case, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes (`at` in µs; `customer`, None for any) made within `CHANGE_WINDOW` before
    the case opened, for its customer or for any: what was deployed or reconfigured just
    before the trouble started. Latest first, each saying how long before the opening."""
    start, opened = case.opened_at - CHANGE_WINDOW, case.opened_at
    found = [
        c
        for c in changes
        if start <= c["at"] <= opened and c.get("customer") in (None, case.customer)
    ]
    found.sort(key=lambda c: c["at"], reverse=True)
    return [
        {**c, "at": format_utc(c["at"]), "before_opening": format_duration(opened - c["at"])}
        for c in found
    ]


# -- sections ----------------------------------------------------------------------------------


def _matrix(policy: Policy, ident: str) -> Matrix | None:
    return next((m for m in policy.matrices if m.id == ident), None)


def _level_name(m: Matrix | None, number: int | None) -> str | None:
    if m is None or number is None or not 1 <= number <= len(m.levels):
        return None
    return m.levels[number - 1].name


def _case(case: Case, m: Matrix | None) -> dict[str, Any]:
    return {
        "id": case.id,
        "title": case.title,
        "description": case.description,
        "customer": case.customer,
        "category": case.category,
        "priority": case.priority,
        "status": case.status,
        "level": case.level,
        "level_name": _level_name(m, case.level),
        "levels": len(m.levels) if m is not None else None,
        "matrix": case.matrix,
        "assignee": case.assignee,
        "acknowledged": case.acknowledged,
        "fields": dict(case.fields),
        "tags": list(case.tags),
        "opened_at": format_utc(case.opened_at),
        "round_started_at": format_utc(case.epoch_start),
        "reopened": case.epoch,
        "resolved_at": format_utc(case.resolved_at) if case.resolved_at is not None else None,
    }


def _customer(policy: Policy, ident: str) -> dict[str, Any]:
    c = policy.customer(ident)
    if c is None:
        return {"id": ident, "name": None, "tier": None, "value": None, "partner": None}
    partner = policy.partners.get(c.partner) if c.partner else None
    return {
        "id": c.id,
        "name": c.name,
        "tier": c.tier,
        "value": c.value,
        "partner": c.partner,
        "partner_name": partner.name if partner is not None else None,
        "sla_policy": c.sla or (partner.sla if partner is not None else None),
    }


def _dur(us: int | None) -> str | None:
    return format_duration(us) if us is not None else None


def _secs(us: int | None) -> int | None:
    return us // SECOND if us is not None else None


def clock_name(calendar: Calendar) -> str:
    """How a target on `calendar` is counted: `calendar` time (round the clock, no holidays)
    or `business` time, so "24h" is never read as a day when it means three working days."""
    always = calendar.hours is None and not calendar.holiday_country and not calendar.holiday_dates
    return "calendar" if always else "business"


def _sla(case: Case, policy: Policy, now: int) -> list[dict[str, Any]]:
    out = []
    for c in sla.read_clocks(case, policy, now):
        ended = c.state == "stopped"  # met, or ended by resolve: not measured any more
        remaining = None if ended else c.remaining
        overdue = c.elapsed - c.target if c.breached and c.elapsed > c.target else None
        out.append(
            {
                "metric": c.metric,
                "state": c.state,
                "elapsed": _dur(c.elapsed),
                "elapsed_seconds": _secs(c.elapsed),
                "target": _dur(c.target),
                "target_seconds": _secs(c.target),
                "clock": clock_name(c.calendar),
                "target_text": f"{_dur(c.target)} {clock_name(c.calendar)}",
                "overdue": _dur(overdue),
                "overdue_seconds": _secs(overdue),
                "remaining": _dur(remaining),
                "remaining_seconds": _secs(remaining),
                "percent": (c.elapsed * 100 // c.target) if c.target else None,
                "breached": c.breached,
                "met": ended and not c.breached,
                "due": format_utc(c.due) if c.due is not None else None,
                "calendar": c.calendar.id,
            }
        )
    return out


def _round_start(entries: list[dict[str, Any]]) -> int:
    """Index of the latest `opened`/`reopened` entry (0 when there is none)."""
    for i in range(len(entries) - 1, -1, -1):
        if entries[i]["kind"] in _START_KINDS:
            return i
    return 0


def _ladder(
    case: Case, policy: Policy, m: Matrix | None, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if m is None:
        return []
    current = entries[_round_start(entries) :]
    reached: dict[int, int] = {}
    passed: dict[int, int] = {}
    notified: dict[int, list[dict[str, Any]]] = {}
    last_page: dict[tuple[str, str], dict[str, Any]] = {}  # (to, channel) -> its latest page
    if current and current[0]["kind"] in _START_KINDS:
        reached[1] = current[0]["at"]
    for e in current:
        kind = e["kind"]
        if kind == "escalated":
            reached.setdefault(e["level"], e["at"])
        elif kind == "level_passed":
            passed.setdefault(e["level"], e["at"])
        elif kind == "notified":
            person = policy.people.get(e["to"])
            page = {
                "at": format_utc(e["at"]),
                "to": e["to"],
                "name": person.name if person is not None else None,
                "channel": e["channel"],
                "reason": e.get("reason"),
            }
            notified.setdefault(e["level"], []).append(page)
            last_page[(e["to"], e["channel"])] = page
        elif kind == "not_sent":  # the page just before it did not go out: say why
            page = last_page.get((e.get("to"), e.get("channel")))
            if page is not None:
                page["not_sent"] = e.get("why")
    next_due = None
    if case.status in ("open", "acknowledged") and case.next_level and case.level_since is not None:
        lv = m.levels[case.next_level - 1]
        next_due = m.calendar.add_us(case.level_since, max(0, lv.after - case.level_acc))
    out = []
    for lv in m.levels:
        n = lv.number
        if n == case.level:
            state = "current"
        elif n in reached and n < case.level:
            state = "reached"
        elif n in passed:
            state = "passed"  # its condition held at its instant
        elif n < case.level:
            state = "skipped"  # jumped over by a manual or rule escalation
        else:
            state = "upcoming"
        out.append(
            {
                "number": n,
                "name": lv.name,
                "after": _dur(lv.after) if n > 1 else None,
                "unless": lv.unless if n > 1 else None,
                "targets": [str(t) for t in lv.notify],
                "state": state,
                "reached_at": format_utc(reached[n]) if n in reached else None,
                "passed_at": format_utc(passed[n]) if n in passed else None,
                "due": format_utc(next_due)
                if next_due is not None and n == case.next_level and n > case.level
                else None,
                "notified": notified.get(n, []),
            }
        )
    return out


def _escalation(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    for e in reversed(entries):
        if e["kind"] == "escalated":
            return {
                "at": format_utc(e["at"]),
                "from": e.get("from"),
                "to": e["level"],
                "cause": e.get("cause"),
                "reason": e.get("reason"),
                "by": e.get("by"),
                "rule": e.get("rule"),
            }
    return None


def _why(e: dict[str, Any], m: Matrix | None) -> str:
    """Why a case moved, in words: `e` is an `assigned` or `escalated` entry."""
    cause = e.get("cause")
    if e["kind"] == "assigned":
        if e.get("rule"):
            return f"rule {e['rule']}"
        return f"assigned by {e['by']}" if e.get("by") else "assigned"
    if cause == "timer":
        level = e.get("level", e.get("to"))
        if m is None or not isinstance(level, int) or not 1 <= level <= len(m.levels):
            return "level timer"
        lv = m.levels[level - 1]
        done = "resolved" if lv.unless == "resolved" else "acknowledged"
        return f"not {done} within {format_duration(lv.after)} (level timer)"
    if cause == "rule":
        return f"rule {e['rule']}" if e.get("rule") else "rule"
    parts = ["manual escalation" if cause == "manual" else "customer request"]
    if e.get("by"):
        parts.append(f"by {e['by']}")
    if e.get("reason"):
        parts.append(f"({e['reason']})")
    return " ".join(parts)


def _moves(
    m: Matrix | None, entries: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    moves: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] = []
    holder: str | None = None
    since: int | None = None
    for e in entries:
        if e["kind"] == "assigned":
            moves.append(
                {
                    "at": format_utc(e["at"]),
                    "kind": "assigned",
                    "from": holder,
                    "to": e["to"],
                    "why": _why(e, m),
                }
            )
            if holder is not None and holder != e["to"]:
                previous.append(
                    {
                        "assignee": holder,
                        "from": format_utc(since) if since is not None else None,
                        "until": format_utc(e["at"]),
                        "why_moved": _why(e, m),
                    }
                )
            if holder != e["to"]:
                holder, since = e["to"], e["at"]
        elif e["kind"] == "escalated":
            old, new = e.get("from"), e["level"]
            moves.append(
                {
                    "at": format_utc(e["at"]),
                    "kind": "escalated",
                    "from": f"level {old} ({_level_name(m, old)})" if old is not None else None,
                    "to": f"level {new} ({_level_name(m, new)})",
                    "why": _why(e, m),
                }
            )
        elif e["kind"] == "reopened":
            moves.append(
                {
                    "at": format_utc(e["at"]),
                    "kind": "reopened",
                    "from": None,
                    "to": f"level 1 ({_level_name(m, 1)})",
                    "why": "reopened",
                }
            )
    return moves, previous


def _for_level(policy: Policy, now: int, m: Matrix | None, number: int) -> dict[str, Any]:
    if m is None:
        return {"number": number, "name": None, "targets": [], "people": []}
    lv = m.levels[number - 1]
    people: list[str] = []
    for t in lv.notify:
        for p in people_of(policy, t, now, lv.fallback):
            if p not in people:
                people.append(p)
    return {
        "number": number,
        "name": lv.name,
        "targets": [str(t) for t in lv.notify],
        "people": people,
    }


def _summary(h: dict[str, Any], m: Matrix | None) -> str:
    c, cust = h["case"], h["customer"]
    who = cust["name"] or cust["id"]
    if cust.get("tier"):
        who += f", {cust['tier']} tier"
    text = (
        f'{c["id"]} "{c["title"]}" ({who}; {c["priority"]} {c["category"]}) is {c["status"]} '
        f"at level {c['level']}"
    )
    if c["level_name"]:
        text += f" ({c['level_name']})"
    text += f", {'assigned to ' + c['assignee'] if c['assignee'] else 'unassigned'}"
    esc = h["escalation"]
    if esc is None:
        text += "; never escalated"
    else:
        text += (
            f"; last escalated from level {esc['from']} to level {esc['to']} at {esc['at']}: "
            f"{_why({'kind': 'escalated', **esc}, m)}"
        )
    clocks = []
    for s in h["sla"]:
        if s["breached"]:
            late = f", {s['overdue']} overdue" if s["overdue"] else ""
            clocks.append(f"{s['metric']} breached{late} (target {s['target_text']})")
        elif s["state"] == "running" and s["remaining"] is not None:
            clocks.append(f"{s['metric']} {s['remaining']} left (due {s['due']})")
        elif s["state"] == "paused" and s["remaining"] is not None:
            clocks.append(f"{s['metric']} paused with {s['remaining']} left")
    text += "; " + ("; ".join(clocks) if clocks else "no SLA clock running") + "."
    return text
