"""Grafana OnCall public API (v1) dump -> a `Draft`.

Keys: `users`, `personal_notification_rules`, `schedules`, `on_call_shifts`,
`escalation_chains`, `escalation_policies`, `integrations`, `routes`, and optionally
`final_shifts` (schedule id -> `/api/v1/schedules/{id}/final_shifts`).

Shifts: a `rolling_users` shift is a Rungs layer: one turn per `interval` x `frequency`,
handing off at `start` (local time in the shift's or the schedule's zone), each occurrence
lasting `duration` (shorter than a turn: a restriction; `by_day`: those weekdays). Where
shifts overlap the higher `level` wins, so layers are written by ascending level (Rungs puts
the last on top). `override` shifts, and `single_event` shifts above every other level, are
Rungs overrides. Escalation steps run in `position` order; `wait` steps add their `duration`
(incremental delays).
"""

from __future__ import annotations

from datetime import date

from rungs.importers.common import (
    DumpError,
    Node,
    Slugs,
    instant_text,
    listing,
    local_instant,
    person_zone,
    positive,
    restrict_of,
    unwrap,
    zone_of,
)
from rungs.importers.ladder import levels_from, loop_repeat
from rungs.importers.people import Directory
from rungs.importers.plan import Draft, Final, Integration, Layer, Matrix, Override, Schedule

__all__ = ["read"]

VENDOR = "Grafana OnCall"
_PERIOD = {"hourly": (60, "h"), "daily": (1440, "d"), "weekly": (10080, "w")}
_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_RULES = {"notify_by_email": "email"}
_REPEATS = 5  # Grafana OnCall repeats a chain at most five times


def read(dump: Node, now: int) -> Draft:
    """Translate a Grafana OnCall dump (`now`: shifts beginning after it are reported)."""
    draft, slugs = Draft(VENDOR), Slugs()
    people = Directory(draft, slugs)
    for u in listing(dump, "users"):
        person = people.add(
            u.text("id"),
            u.text("username", u.text("email")),
            u.text("email"),
            u.text("username", ""),
        )
        person.timezone = person_zone(u, "timezone")
    _rules(draft, people, listing(dump, "personal_notification_rules"))
    shifts = {s.text("id"): s for s in listing(dump, "on_call_shifts")}
    finals = dump.get("final_shifts")
    schedule_ids: dict[str, str] = {}
    for s in listing(dump, "schedules"):
        fin = finals.get(s.text("id")) if finals is not None else None
        sid = _schedule(draft, slugs, people, s, shifts, fin, now)
        if sid is not None:
            schedule_ids[s.text("id")] = sid
    steps: dict[str, list[Node]] = {}
    for p in listing(dump, "escalation_policies"):
        steps.setdefault(p.text("escalation_chain_id"), []).append(p)
    chains: dict[str, str] = {}
    for c in listing(dump, "escalation_chains"):
        m = _chain(draft, slugs, people, schedule_ids, c, steps.get(c.text("id"), []))
        if m is not None:
            chains[c.text("id")] = m.id
    routes: dict[str, list[Node]] = {}
    for r in listing(dump, "routes"):
        routes.setdefault(r.text("integration_id"), []).append(r)
    for i in listing(dump, "integrations"):
        _integration(draft, slugs, chains, i, routes.get(i.text("id"), []))
    return draft


def _rules(draft: Draft, people: Directory, rules: list[Node]) -> None:
    """Personal rules in position order: `wait` adds its duration, a notify step is sent then."""
    by_user: dict[str, list[Node]] = {}
    for r in rules:
        by_user.setdefault(r.text("user_id"), []).append(r)
    for uid, mine in by_user.items():
        pid = people.get(uid)
        person = next((p for p in draft.people if p.id == pid), None)
        if person is None:
            draft.cannot("notification rule", uid, "belongs to a user not in the dump")
            continue
        at = 0
        for r in sorted(
            (r for r in mine if not r.flag("important")), key=lambda r: r.number("position", 0)
        ):
            kind = r.text("type")
            if kind == "wait":
                at += r.number("duration", 0) // 60
            elif kind in _RULES:
                person.notify.append((at, _RULES[kind]))
            else:
                why = (
                    "the API does not export phone numbers"
                    if "sms" in kind or "phone" in kind
                    else "no Rungs channel"
                )
                draft.cannot(
                    "notification rule",
                    f"{person.name}: {kind}",
                    f"{why}; add the contact and step by hand",
                )
        if any(r.flag("important") for r in mine):
            draft.cannot(
                "notification rule",
                f"{person.name}: important",
                "Rungs has one set of rules per person (the default ones are kept)",
            )


def _members(draft: Draft, people: Directory, label: str, sh: Node) -> list[str] | None:
    groups = sh["rolling_users"].items() if sh.text("type") == "rolling_users" else [sh["users"]]
    out = []
    for g in groups:
        ids = [people.get(x.text()) for x in g.items()]
        if len(ids) != 1 or ids[0] is None:
            draft.cannot(
                "shift",
                label,
                "a turn with several (or unknown) users: Rungs has one person per turn",
            )
            return None
        out.append(ids[0])
    idx = sh.number("start_rotation_from_user_index", 0) % len(out) if out else 0
    return out[idx:] + out[:idx]


def _layer(
    draft: Draft, people: Directory, label: str, sh: Node, tz: str, now: int
) -> Layer | None:
    freq = sh.text("frequency", "")
    if freq not in _PERIOD:
        draft.cannot(
            "shift", label, f"frequency {freq or 'none'}: Rungs turns are hours, days or weeks"
        )
        return None
    members = _members(draft, people, label, sh)
    if members is None:
        return None
    size, unit = _PERIOD[freq]
    tz = zone_of(sh, "time_zone") if sh.has("time_zone") else tz
    interval, duration = positive(sh, "interval", 1), positive(sh, "duration") // 60
    start = local_instant(sh, "start", tz)
    by_day = [d.text() for d in sh["by_day"].items()] if sh.has("by_day") else []
    period = size * interval
    if duration > period or (by_day and freq != "weekly"):
        draft.cannot(
            "shift", label, "occurrences overlap or by_day on a non-weekly shift: not written"
        )
        return None
    local = instant_text(start, tz)
    minute = int(local[11:13]) * 60 + int(local[14:16])
    weekday = date.fromisoformat(local[:10]).weekday()
    restrict = None
    if by_day:
        restrict = restrict_of([(_BYDAY.index(d) * 1440 + minute, duration) for d in by_day])
    elif duration < period:
        if freq == "daily" and interval == 1:
            restrict = restrict_of([(d * 1440 + minute, duration) for d in range(7)])
        elif freq == "weekly" and interval == 1:
            restrict = restrict_of([(weekday * 1440 + minute, duration)])
        else:
            draft.cannot(
                "shift", label, "covers part of a turn that is not a day or a week: not written"
            )
            return None
    for key, why in (("until", "ends"), ("rotation_start", "starts")):
        if sh.has(key) and (key == "until" or local_instant(sh, key, tz) > max(start, now)):
            draft.cannot(
                "shift",
                label,
                f"{why} at {sh.text(key)}; Rungs layers have no dates: written without",
            )
    return Layer(sh.text("name", label), members, f"{interval}{unit}", start, tz, restrict)


def _schedule(
    draft: Draft,
    slugs: Slugs,
    people: Directory,
    s: Node,
    shifts: dict[str, Node],
    fin: Node | None,
    now: int,
) -> str | None:
    name, tz = s.text("name"), zone_of(s, "time_zone", "UTC")
    if s.text("type", "web") == "ical":
        draft.cannot(
            "schedule", name, "an iCal schedule: its calendar is not in the API; not written"
        )
        return None
    mine = (
        [shifts[x.text()] for x in s["shifts"].items() if x.text() in shifts]
        if s.has("shifts")
        else []
    )
    mine += [
        sh for sh in shifts.values() if sh.text("schedule", "") == s.text("id") and sh not in mine
    ]
    levels = [sh.number("level", 0) for sh in mine if sh.text("type") != "override"]
    top = max(levels, default=0)
    layered: list[tuple[int, Layer]] = []
    overrides: list[Override] = []
    for sh in mine:
        label, kind = f"{name}: {sh.text('name', sh.text('id'))}", sh.text("type")
        if kind == "override" or (
            kind == "single_event"
            and sh.number("level", 0) >= top
            and len(sh["users"].items()) == 1
        ):
            who = (
                people.get(sh["users"].items()[0].text())
                if sh.has("users") and sh["users"].items()
                else None
            )
            if who is None:
                draft.cannot("override", label, "names no user Rungs knows")
                continue
            a = local_instant(sh, "start", sh.text("time_zone") if sh.has("time_zone") else tz)
            overrides.append(Override(a, a + sh.number("duration") * 1_000_000, who, sh.text("id")))
        elif kind == "single_event":
            draft.cannot(
                "shift", label, "a one-off shift below another level: Rungs has no one-off layer"
            )
        elif kind in ("rolling_users", "recurrent_event"):
            layer = _layer(draft, people, label, sh, tz, now)
            if layer is not None:
                layered.append((sh.number("level", 0), layer))
        else:
            raise DumpError(sh.path, f"unknown shift type '{kind}'")
    if not layered:
        draft.cannot("schedule", name, "has no shift Rungs can use: not written")
        return None
    layered.sort(key=lambda x: x[0])  # stable: ascending level, the highest on top
    sched = Schedule(
        slugs.new("schedules", name, "schedule"),
        name,
        s.text("id"),
        tz,
        [la for _, la in layered],
        overrides,
    )
    draft.schedules.append(sched)
    if fin is not None:
        pieces = [
            (
                e.instant("shift_start"),
                e.instant("shift_end"),
                people.get(e.text("user_pk", ""))
                or people.get(e.text("user_email", ""))
                or "unknown",
            )
            for e in unwrap(fin, "results")
        ]
        if pieces:
            draft.finals.append(
                Final(
                    name, [sched.id], pieces, min(p[0] for p in pieces), max(p[1] for p in pieces)
                )
            )
    return sched.id


def _chain(
    draft: Draft,
    slugs: Slugs,
    people: Directory,
    schedules: dict[str, str],
    c: Node,
    policies: list[Node],
) -> Matrix | None:
    name = c.text("name")
    m = Matrix(slugs.new("matrices", name, "chain"), name, c.text("id"))
    steps: list[tuple[int, list[str], str]] = []
    at, repeat_at = 0, None
    for p in sorted(policies, key=lambda p: p.number("position", 0)):
        kind, label = p.text("type"), f"{name} step {p.number('position', 0) + 1}"
        if kind == "wait":
            at += p.number("duration", 60) // 60
        elif kind == "notify_persons":
            ids = [people.get(x.text()) for x in p["persons_to_notify"].items()]
            steps.append((at, [f"person:{i}" for i in ids if i], "acknowledged"))
            if None in ids:
                draft.cannot("escalation step", label, "names a user not in the dump")
        elif kind == "notify_on_call_from_schedule":
            sid = schedules.get(p.text("notify_on_call_from_schedule"))
            steps.append((at, [f"schedule:{sid}"] if sid else [], "acknowledged"))
        elif kind == "repeat_escalation":
            repeat_at = at
            break
        else:
            draft.cannot("escalation step", label, f"{kind} has no Rungs equivalent")
    levels_from(draft, m, steps, "escalation step")
    if not m.levels:
        draft.cannot("escalation chain", name, "has no step Rungs can page: not written")
        return None
    if repeat_at is not None:
        loop_repeat(draft, m, repeat_at, _REPEATS, VENDOR)
    draft.matrices.append(m)
    return m


def _integration(
    draft: Draft, slugs: Slugs, chains: dict[str, str], i: Node, routes: list[Node]
) -> None:
    name, kind = i.text("name"), i.text("type")
    if kind not in ("alertmanager", "grafana_alerting"):
        draft.cannot(
            "integration",
            name,
            f"type {kind}: Rungs takes Alertmanager webhooks (alertmanager, grafana_alerting)",
        )
        return
    default = i.get("default_route")
    chain = chains.get(default.text("escalation_chain_id", "")) if default is not None else None
    for r in routes:
        if not r.flag("is_the_last_route"):
            draft.cannot(
                "route",
                f"{name}: {r.text('routing_regex', r.text('id'))}",
                "routes by a template or regex; Rungs routes by matrix match: "
                "the default route is kept",
            )
    iid = slugs.new("integrations", name, "integration")
    draft.integrations.append(
        Integration(
            iid, name, i.text("id"), "alertmanager", chain, "POST /v1/integrations/KEY/alertmanager"
        )
    )
