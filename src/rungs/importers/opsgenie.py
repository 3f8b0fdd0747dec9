"""Opsgenie REST API v2 dump -> a `Draft`.

Keys: `users` (each with `contacts` from `/v2/users/{id}/contacts` and `notificationRules`
from `/v2/users/{id}/notification-rules`, each rule with its `steps`), `teams` (with
`members`), `schedules` (`/v2/schedules?expand=rotation`), `overrides` (schedule id -> its
`/v2/schedules/{id}/overrides`), `escalations`, `integrations`, and optionally `timelines`
(schedule id -> `/v2/schedules/{id}/timeline`, whose `finalTimeline` is checked).

Delays: an Opsgenie escalation rule's `delay` counts from the alert's creation (cumulative:
"notify B after 10 minutes" is 10 minutes after the alert, not after A's rule), so it is
Rungs' level `after` as it stands. A repeat starts the whole escalation again `waitInterval`
minutes after its last rule. Rotations of one schedule are all on call at once.
"""

from __future__ import annotations

from rungs.importers.clip import active, schedules_for
from rungs.importers.common import (
    DumpError,
    Node,
    Slugs,
    listing,
    person_zone,
    positive,
    restrict_of,
    unwrap,
    zone_of,
)
from rungs.importers.ladder import levels_from, loop_repeat
from rungs.importers.people import Directory
from rungs.importers.plan import Draft, Final, Integration, Layer, Matrix, Override, Team

__all__ = ["read"]

VENDOR = "Opsgenie"
_UNITS = {"minutes": 1, "hours": 60, "days": 1440}
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CHANNELS = {"email": "email", "sms": "sms", "voice": "voice"}


def read(dump: Node, now: int) -> Draft:
    """Translate an Opsgenie dump (`now` is unused: Opsgenie rotations end by `endDate`)."""
    del now
    draft, slugs = Draft(VENDOR), Slugs()
    people = Directory(draft, slugs)
    for u in listing(dump, "users"):
        _user(draft, people, u)
    team_ids: dict[str, str] = {}
    for t in listing(dump, "teams"):
        members = [
            pid
            for m in (t["members"].items() if t.has("members") else [])
            if (pid := people.get(m["user"].text("id", m["user"].text("username", ""))))
        ]
        if members:
            team = Team(
                slugs.new("teams", t.text("name"), "team"), t.text("name"), t.text("id"), members
            )
            draft.teams.append(team)
            team_ids[t.text("id")] = team.id
        else:
            draft.cannot("team", t.text("name"), "has no members in the dump (Rungs needs some)")
    overrides, timelines = dump.get("overrides"), dump.get("timelines")
    schedule_ids: dict[str, list[str]] = {}
    for s in listing(dump, "schedules"):
        sid = s.text("id")
        ov = overrides.get(sid) if overrides is not None else None
        tl = timelines.get(sid) if timelines is not None else None
        schedule_ids[sid] = _schedule(draft, slugs, people, s, ov, tl)
    owners: dict[str, str] = {}
    for e in listing(dump, "escalations"):
        m = _escalation(draft, slugs, people, schedule_ids, team_ids, e)
        owner = e.get("ownerTeam")
        if m is not None and owner is not None:
            owners.setdefault(owner.text("id", owner.text("name", "")), m.id)
    for i in listing(dump, "integrations"):
        _integration(draft, slugs, owners, i)
    return draft


def _user(draft: Draft, people: Directory, u: Node) -> None:
    name = u.text("fullName", u.text("username"))
    person = people.add(u.text("id"), name, u.text("username"), u.text("username"))
    person.timezone = person_zone(u, "timeZone")
    if u.has("timeZone") and person.timezone is None:
        draft.cannot(
            "user", name, f"time zone {u.text('timeZone')!r} is not an IANA name: left out"
        )
    for c in u["contacts"].items() if u.has("contacts") else []:
        method, to = c.text("method"), c.text("to")
        if method not in _CHANNELS:
            draft.cannot("contact method", f"{name}: {method}", f"{method} has no Rungs channel")
            continue
        address = to if method == "email" else "+" + to.replace("-", "").lstrip("+")
        people.set_contact(person, _CHANNELS[method], address, method)
    for rule in u["notificationRules"].items() if u.has("notificationRules") else []:
        label = f"{name}: {rule.text('name', rule.text('id', '?'))}"
        if rule.text("actionType", "create-alert") != "create-alert" or not rule.flag(
            "enabled", True
        ):
            draft.cannot(
                "notification rule",
                label,
                f"{rule.text('actionType')} rules have no Rungs equivalent "
                "(only new-alert rules are)",
            )
            continue
        for st in rule["steps"].items() if rule.has("steps") else []:
            if not st.flag("enabled", True):
                continue
            method = st["contact"].text("method")
            channel = _CHANNELS.get(method)
            if channel is None or (channel != "email" and channel not in person.contacts):
                draft.cannot("notification step", label, f"by {method}: no Rungs contact for it")
                continue
            person.notify.append((_minutes(st["sendAfter"]), channel))
    person.notify.sort()


def _minutes(delay: Node) -> int:
    unit = delay.text("timeUnit", "minutes")
    if unit not in _UNITS:
        raise DumpError(delay.path, f"unknown timeUnit '{unit}' (minutes, hours, days)")
    return delay.number("timeAmount") * _UNITS[unit]


def _clock(node: Node, prefix: str) -> int:
    return node.number(f"{prefix}Hour", 0) * 60 + node.number(f"{prefix}Min", 0)


def _windows(tr: Node) -> list[tuple[int, int]]:
    """Opsgenie's timeRestriction as weekly windows (an end before the start runs past
    midnight, or past the week's end)."""
    kind = tr.text("type")
    if kind == "time-of-day":
        r = tr["restriction"]
        s, e = _clock(r, "start"), _clock(r, "end")
        length = (e - s) % 1440 or 1440
        return [(d * 1440 + s, length) for d in range(7)]
    if kind == "weekday-and-time-of-day":
        out = []
        for r in tr["restrictions"].items():
            try:
                s = _DAYS.index(r.text("startDay").lower()) * 1440 + _clock(r, "start")
                e = _DAYS.index(r.text("endDay").lower()) * 1440 + _clock(r, "end")
            except ValueError:
                raise DumpError(r.path, "startDay and endDay must be weekday names") from None
            out.append((s, (e - s) % (7 * 1440) or 7 * 1440))
        return out
    raise DumpError(tr.path, f"unknown timeRestriction type '{kind}'")


def _schedule(
    draft: Draft, slugs: Slugs, people: Directory, s: Node, ov: Node | None, tl: Node | None
) -> list[str]:
    name, tz = s.text("name"), zone_of(s, "timezone", "UTC")
    layers: list[Layer] = []
    by_rotation: dict[str, Layer] = {}
    for rot in s["rotations"].items() if s.has("rotations") else []:
        label = f"{name}: {rot.text('name', rot.text('id', '?'))}"
        members = []
        for p in rot["participants"].items():
            pid = (
                people.get(p.text("id", p.text("username", "")))
                if p.text("type") == "user"
                else None
            )
            if pid is None:
                draft.cannot(
                    "rotation participant",
                    label,
                    f"a {p.text('type')} participant: Rungs rotates people only; left out",
                )
            else:
                members.append(pid)
        if rot.has("endDate"):
            draft.cannot(
                "rotation",
                label,
                f"ends at {rot.text('endDate')}; Rungs layers do not end: written without an end",
            )
        kind = rot.text("type")
        unit = {"hourly": "h", "daily": "d", "weekly": "w"}.get(kind)
        if unit is None:
            raise DumpError(rot.path, f"unknown rotation type '{kind}' (hourly, daily, weekly)")
        restrict = (
            restrict_of(_windows(rot["timeRestriction"])) if rot.has("timeRestriction") else None
        )
        if not members or restrict == {}:
            draft.cannot(
                "rotation", label, "has nobody Rungs can put on call, or no hours: not written"
            )
            continue
        layer = Layer(
            rot.text("name", f"rotation {len(layers) + 1}"),
            members,
            f"{positive(rot, 'length', 1)}{unit}",
            rot.instant("startDate"),
            tz,
            restrict,
        )
        layers.append(layer)
        by_rotation[rot.text("id", layer.name)] = layer
    if not layers:
        draft.cannot("schedule", name, "has no rotation Rungs can use: not written")
        return []
    scheds = schedules_for(draft, slugs, name, s.text("id"), tz, layers, VENDOR)
    if not s.flag("enabled", True):
        draft.cannot("schedule", name, "is disabled in Opsgenie; Rungs schedules are always on")
    for o in unwrap(ov, "overrides") if ov is not None else []:
        who = people.get(o["user"].text("id", o["user"].text("username", "")))
        if who is None:
            draft.cannot("override", o.text("alias", "?"), "names someone not in the dump")
            continue
        a, b = o.instant("startDate"), o.instant("endDate")
        named = (
            [r.text("id", r.text("name", "")) for r in o["rotations"].items()]
            if o.has("rotations")
            else []
        )
        for sched in scheds:
            if not named or all(la in [by_rotation.get(n) for n in named] for la in sched.layers):
                sched.overrides.append(Override(a, b, who, o.text("alias", "")))
                continue
            mine = [la for la in sched.layers if la in [by_rotation.get(n) for n in named]]
            for pa, pb, _ in _merge(active(mine, a, b)):
                sched.overrides.append(Override(pa, pb, who, o.text("alias", "")))
    if tl is not None:
        draft.finals.append(_final(people, name, [x.id for x in scheds], tl))
    return [x.id for x in scheds]


def _merge(pieces: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for a, b, p in pieces:
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b, p)
        else:
            out.append((a, b, p))
    return out


def _final(people: Directory, name: str, ids: list[str], tl: Node) -> Final:
    data = tl.get("data") or tl
    final = data.get("finalTimeline") or data
    pieces = []
    for rot in final["rotations"].items():
        for p in rot["periods"].items() if rot.has("periods") else []:
            r = p["recipient"]
            who = (
                people.get(r.text("id", ""))
                or people.get(r.text("name", ""))
                or f"unknown {r.text('name', '?')}"
            )
            pieces.append((p.instant("startDate"), p.instant("endDate"), who))
    start = (
        data.instant("startDate")
        if data.has("startDate")
        else min((p[0] for p in pieces), default=0)
    )
    end = data.instant("endDate") if data.has("endDate") else max((p[1] for p in pieces), default=0)
    return Final(name, ids, pieces, start, end)


def _escalation(
    draft: Draft,
    slugs: Slugs,
    people: Directory,
    schedules: dict[str, list[str]],
    teams: dict[str, str],
    e: Node,
) -> Matrix | None:
    name = e.text("name")
    m = Matrix(slugs.new("matrices", name, "escalation"), name, e.text("id"))
    steps = []
    for i, rule in enumerate(e["rules"].items()):
        label = f"{name} step {i + 1}"
        r, notify = rule["recipient"], rule.text("notifyType", "default")
        kind, rid = r.text("type"), r.text("id", r.text("name", r.text("username", "")))
        targets: list[str] = []
        who = people.get(rid) or people.get(r.text("username", "")) if kind == "user" else None
        if who is not None:
            targets = [f"person:{who}"]
        elif kind == "schedule" and notify == "default" and rid in schedules:
            targets = [f"schedule:{x}" for x in schedules[rid]]
        elif kind == "team" and notify == "all" and rid in teams:
            targets = [f"team:{teams[rid]}"]
        else:
            draft.cannot(
                "escalation rule",
                label,
                f"notifies {kind} {r.text('name', rid)} ({notify}): Rungs pages a person, "
                "a schedule's on-call or all of a team",
            )
        unless = (
            "resolved"
            if rule.text("condition", "if-not-acked") == "if-not-closed"
            else "acknowledged"
        )
        steps.append((_minutes(rule["delay"]), targets, unless))
    levels_from(draft, m, steps, "escalation rule")
    if not m.levels:
        draft.cannot("escalation", name, "has no rule Rungs can page: not written")
        return None
    rep = e.get("repeat")
    if rep is not None and rep.number("count", 0) > 0:
        loop_repeat(
            draft,
            m,
            m.levels[-1].after + rep.number("waitInterval", 0),
            rep.number("count"),
            VENDOR,
        )
        for key in ("resetRecipientStates", "closeAlertAfterAll"):
            if rep.flag(key):
                draft.cannot("escalation", name, f"repeat {key}: Rungs has no such option")
    draft.matrices.append(m)
    return m


def _integration(draft: Draft, slugs: Slugs, owners: dict[str, str], i: Node) -> None:
    name, kind = i.text("name"), i.text("type")
    if kind not in ("API", "Prometheus"):
        draft.cannot(
            "integration",
            name,
            f"type {kind} posts to its own Opsgenie endpoint; "
            "Rungs takes Opsgenie's Alert API (API, Prometheus)",
        )
        return
    owner = i.get("ownerTeam")
    matrix = owners.get(owner.text("id", owner.text("name", ""))) if owner is not None else None
    iid = slugs.new("integrations", name, "integration")
    draft.integrations.append(
        Integration(
            iid, name, i.text("id"), "opsgenie", matrix, "POST /v2/alerts (Opsgenie Alert API)"
        )
    )
