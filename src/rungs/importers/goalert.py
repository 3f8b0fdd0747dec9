"""GoAlert GraphQL dump -> a `Draft`.

Keys: `users` (with `contactMethods` and `notificationRules`), `rotations`, `schedules`
(with `targets` and their `rules`, `temporarySchedules`, and optionally `shifts` from
`shifts(start, end)`: the final schedule that is checked), `userOverrides`,
`escalationPolicies` (with `steps`), `services` (with `integrationKeys`).

A GoAlert schedule unions its rules: every target whose rule is active is on call at once.
Each target becomes a layer restricted to its rules' hours (`weekdayFilter` starts with
Sunday), and layers that overlap go to Rungs schedules of their own (see `clip`). A rotation
keeps its order from `activeUserIndex`, read as the index on call at `now` (pass `--since`
the instant the dump was taken). A step's `delayMinutes` is incremental; `repeat` runs the
whole policy again.
"""

from __future__ import annotations

from rungs.importers.clip import active, schedules_for
from rungs.importers.common import (
    DumpError,
    Node,
    Slugs,
    listing,
    positive,
    restrict_of,
    zone_of,
)
from rungs.importers.ladder import levels_from, loop_repeat
from rungs.importers.people import Directory
from rungs.importers.plan import Draft, Final, Integration, Layer, Matrix, Override, Schedule
from rungs.time.instant import parse_instant

__all__ = ["read"]

VENDOR = "GoAlert"
_CHANNELS = {"EMAIL": "email", "SMS": "sms", "VOICE": "voice"}
_DEST = {
    "builtin-smtp-email": "email",
    "builtin-twilio-sms": "sms",
    "builtin-twilio-voice": "voice",
}
_UNITS = {"hourly": "h", "daily": "d", "weekly": "w"}
_ANCHOR = parse_instant("2000-01-03T00:00:00Z")  # a Monday: user targets have one member


def read(dump: Node, now: int) -> Draft:
    """Translate a GoAlert dump; `now` is when `activeUserIndex` was read."""
    draft, slugs = Draft(VENDOR), Slugs()
    people = Directory(draft, slugs)
    for u in listing(dump, "users"):
        _user(draft, people, u)
    rotations = {r.text("id"): r for r in listing(dump, "rotations")}
    schedule_ids: dict[str, list[Schedule]] = {}
    for s in listing(dump, "schedules"):
        schedule_ids[s.text("id")] = _schedule(draft, slugs, people, rotations, s, now)
    for o in listing(dump, "userOverrides"):
        _override(draft, people, schedule_ids, o)
    rotation_scheds: dict[str, str] = {}
    policies: dict[str, str] = {}
    for ep in listing(dump, "escalationPolicies"):
        m = _policy(draft, slugs, people, schedule_ids, rotations, rotation_scheds, ep, now)
        if m is not None:
            policies[ep.text("id")] = m.id
    for svc in listing(dump, "services"):
        for k in svc["integrationKeys"].items() if svc.has("integrationKeys") else []:
            label = f"{svc.text('name')}: {k.text('name', k.text('type'))}"
            if k.text("type") != "prometheusAlertmanager":
                draft.cannot(
                    "integration key",
                    label,
                    f"type {k.text('type')}: Rungs takes Alertmanager webhooks from GoAlert's "
                    "senders",
                )
                continue
            iid = slugs.new("integrations", svc.text("name"), "integration")
            matrix = policies.get(svc.text("escalationPolicyID", ""))
            draft.integrations.append(
                Integration(
                    iid,
                    label,
                    k.text("id"),
                    "alertmanager",
                    matrix,
                    "POST /v1/integrations/KEY/alertmanager",
                )
            )
    return draft


def _user(draft: Draft, people: Directory, u: Node) -> None:
    name = u.text("name", u.text("email"))
    person = people.add(u.text("id"), name, u.text("email"))
    channel_of: dict[str, str] = {}
    for cm in u["contactMethods"].items() if u.has("contactMethods") else []:
        label = f"{name}: {cm.text('name', cm.text('id'))}"
        dest = cm.get("dest")
        channel = _CHANNELS.get(cm.text("type", "")) or (
            _DEST.get(dest.text("type", "")) if dest else None
        )
        if channel is None:
            draft.cannot("contact method", label, "no Rungs channel for it")
            continue
        value = cm.text("value", "")
        if not value and dest is not None and dest.has("args"):
            value = next(iter(v.text() for _, v in dest["args"].entries()), "")
        if value and people.set_contact(person, channel, value, label):
            channel_of[cm.text("id")] = channel
    for nr in u["notificationRules"].items() if u.has("notificationRules") else []:
        channel = channel_of.get(nr.text("contactMethodID", ""))
        if channel is None:
            draft.cannot(
                "notification rule",
                f"{name}: {nr.text('id', '?')}",
                "its contact method was not translated",
            )
            continue
        person.notify.append((nr.number("delayMinutes", 0), channel))
    person.notify.sort()


def _windows(rule: Node) -> list[tuple[int, int]]:
    """A rule's weekly windows (`start` == `end` is the whole day; an end before the start
    runs past midnight)."""

    def clock(key: str) -> int:
        text = rule.text(key)
        try:
            h, m = (int(x) for x in text.split(":")[:2])
        except ValueError:
            raise DumpError(f"{rule.path}.{key}", f"'{text}' is not HH:MM") from None
        return h * 60 + m

    s, e = clock("start"), clock("end")
    days = [bool(x.value) for x in rule["weekdayFilter"].items()]
    if len(days) != 7:
        raise DumpError(
            f"{rule.path}.weekdayFilter", "a weekday filter has 7 entries, Sunday first"
        )
    length = (e - s) % 1440 or 1440
    return [(((i - 1) % 7) * 1440 + s, length) for i, on in enumerate(days) if on]


def _rotation_layer(
    draft: Draft, people: Directory, r: Node, now: int, tz: str | None
) -> Layer | None:
    label = r.text("name")
    unit = _UNITS.get(r.text("type"))
    if unit is None:
        draft.cannot(
            "rotation", label, f"{r.text('type')} turns: Rungs turns are hours, days or weeks"
        )
        return None
    ids = [people.get(x.text()) for x in r["userIDs"].items()]
    if None in ids or not ids:
        draft.cannot("rotation", label, "has users not in the dump, or none: not written")
        return None
    members = [i for i in ids if i]
    rtz = zone_of(r, "timeZone", "UTC")
    if tz is not None and rtz != tz:
        draft.cannot(
            "rotation",
            label,
            f"hands off in {rtz} while its schedule's rules are in {tz}: written in {tz}",
        )
    layer = Layer(
        label, members, f"{positive(r, 'shiftLength', 1)}{unit}", r.instant("start"), tz or rtz
    )
    on_now = active([layer], now, now + 1)
    if on_now and r.has("activeUserIndex"):
        k = members.index(on_now[0][2])
        shift = (r.number("activeUserIndex") - k) % len(members)
        layer.members = members[shift:] + members[:shift]
    return layer


def _schedule(
    draft: Draft, slugs: Slugs, people: Directory, rotations: dict[str, Node], s: Node, now: int
) -> list[Schedule]:
    name, tz = s.text("name"), zone_of(s, "timeZone", "UTC")
    layers = []
    for t in s["targets"].items() if s.has("targets") else []:
        target = t["target"]
        kind, tid = target.text("type"), target.text("id")
        windows = [w for rule in t["rules"].items() for w in _windows(rule)]
        restrict = restrict_of(windows)
        if restrict == {}:
            continue  # no rule: never on call
        layer: Layer | None = None
        if kind == "rotation" and tid in rotations:
            layer = _rotation_layer(draft, people, rotations[tid], now, tz)
        elif kind == "user" and people.get(tid):
            layer = Layer(target.text("name", tid), [people.get(tid) or ""], "1w", _ANCHOR, tz)
        else:
            draft.cannot(
                "schedule target",
                f"{name}: {target.text('name', tid)}",
                f"a {kind} Rungs cannot put on call",
            )
        if layer is not None:
            layer.restrict = restrict
            layers.append(layer)
    if not layers:
        draft.cannot("schedule", name, "has no target Rungs can use: not written")
        return []
    scheds = schedules_for(draft, slugs, name, s.text("id"), tz, layers, VENDOR)
    for tmp in s["temporarySchedules"].items() if s.has("temporarySchedules") else []:
        _temporary(draft, people, name, scheds, tmp)
    if s.has("shifts"):
        pieces = [
            (x.instant("start"), x.instant("end"), people.get(x.text("userID")) or "unknown")
            for x in s["shifts"].items()
        ]
        if pieces:
            draft.finals.append(
                Final(
                    name,
                    [x.id for x in scheds],
                    pieces,
                    min(p[0] for p in pieces),
                    max(p[1] for p in pieces),
                )
            )
    return scheds


def _temporary(
    draft: Draft, people: Directory, name: str, scheds: list[Schedule], tmp: Node
) -> None:
    """A temporary schedule replaces the rules from `start` to `end` with its own shifts:
    Rungs overrides, when they leave no gap (an override cannot say "nobody")."""
    a, b = tmp.instant("start"), tmp.instant("end")
    pieces = sorted(
        (max(a, x.instant("start")), min(b, x.instant("end")), people.get(x.text("userID")))
        for x in tmp["shifts"].items()
    )
    covered = a
    for pa, pb, who in pieces:
        if pa > covered or who is None or pa < covered:
            draft.cannot(
                "temporary schedule",
                f"{name} from {tmp.text('start')}",
                "has gaps, overlaps or unknown users: Rungs overrides cannot say nobody "
                "or two people",
            )
            return
        covered = pb
    if covered < b:
        draft.cannot(
            "temporary schedule",
            f"{name} from {tmp.text('start')}",
            "ends its shifts before its end: Rungs overrides cannot say nobody",
        )
        return
    if len(scheds) > 1:
        draft.cannot(
            "temporary schedule",
            f"{name} from {tmp.text('start')}",
            f"written on {scheds[0].id} only; "
            f"{', '.join(s.id for s in scheds[1:])} keep their own on-call",
        )
    scheds[0].overrides += [
        Override(pa, pb, who, "temporary schedule") for pa, pb, who in pieces if who
    ]


def _override(
    draft: Draft, people: Directory, schedules: dict[str, list[Schedule]], o: Node
) -> None:
    label = o.text("id")
    target = o["target"]
    scheds = schedules.get(target.text("id"), []) if target.text("type") == "schedule" else []
    add, remove = people.get(o.text("addUserID", "")), people.get(o.text("removeUserID", ""))
    a, b = o.instant("start"), o.instant("end")
    if not scheds:
        draft.cannot("user override", label, f"targets a {target.text('type')} Rungs did not write")
    elif add and remove:  # replace: only where the removed user would be on call
        for s in scheds:
            for pa, pb, who in active(s.layers, a, b):
                if who == remove:
                    s.overrides.append(Override(pa, pb, add, label))
    elif add:
        draft.cannot(
            "user override",
            label,
            "adds someone beside whoever is on call: Rungs puts one person on call",
        )
    else:
        draft.cannot(
            "user override",
            label,
            "removes someone without a replacement: Rungs overrides name who is on call",
        )


def _policy(
    draft: Draft,
    slugs: Slugs,
    people: Directory,
    schedules: dict[str, list[Schedule]],
    rotations: dict[str, Node],
    rot_scheds: dict[str, str],
    ep: Node,
    now: int,
) -> Matrix | None:
    name = ep.text("name")
    m = Matrix(slugs.new("matrices", name, "policy"), name, ep.text("id"))
    steps, at = [], 0
    for st in sorted(ep["steps"].items(), key=lambda x: x.number("stepNumber", 0)):
        targets = []
        for t in st["targets"].items():
            kind, tid = t.text("type"), t.text("id")
            if kind == "user" and people.get(tid):
                targets.append(f"person:{people.get(tid)}")
            elif kind == "schedule" and schedules.get(tid):
                targets += [f"schedule:{s.id}" for s in schedules[tid]]
            elif kind == "rotation" and tid in rotations:
                sid = rot_scheds.get(tid) or _rotation_schedule(
                    draft, slugs, people, rotations[tid], now
                )
                if sid:
                    rot_scheds[tid] = sid
                    targets.append(f"schedule:{sid}")
            else:
                draft.cannot(
                    "escalation target",
                    f"{name} step {st.number('stepNumber', 0) + 1}",
                    f"a {kind} ({t.text('name', tid)}) Rungs cannot page",
                )
        steps.append((at, targets, "acknowledged"))
        at += st.number("delayMinutes")
    levels_from(draft, m, steps, "escalation step")
    if not m.levels:
        draft.cannot("escalation policy", name, "has no step Rungs can page: not written")
        return None
    loop_repeat(draft, m, at, ep.number("repeat", 0), VENDOR)
    draft.matrices.append(m)
    return m


def _rotation_schedule(
    draft: Draft, slugs: Slugs, people: Directory, r: Node, now: int
) -> str | None:
    """A rotation paged directly: a Rungs schedule of that rotation alone."""
    layer = _rotation_layer(draft, people, r, now, None)
    if layer is None:
        return None
    sched = Schedule(
        slugs.new("schedules", r.text("name"), "rotation"),
        r.text("name"),
        f"rotation {r.text('id')}",
        layer.timezone,
        [layer],
    )
    draft.schedules.append(sched)
    return sched.id
