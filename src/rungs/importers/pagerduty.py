"""PagerDuty REST API v2 dump -> a `Draft`.

Keys: `users` (with `include[]=contact_methods&include[]=notification_rules`), `teams`,
`schedules` (each from `GET /schedules/{id}?since&until`, holding `schedule_layers` and
`final_schedule.rendered_schedule_entries`), `overrides` (schedule id -> that schedule's
`GET /schedules/{id}/overrides`), `escalation_policies`, `services`.

Layer order: `GET /schedules/{id}` lists `schedule_layers` highest first (the reverse of the
order a `POST`/`PUT` takes them in, where the last layer is on top; PagerDuty's own Terraform
provider reverses the list it reads for that reason). Rungs puts its last-listed layer on
top, so the list is reversed. `escalation_delay_in_minutes` is incremental (minutes after
that rule before the next one); `num_loops` runs the whole policy again.
"""

from __future__ import annotations

from rungs.importers.common import (
    DumpError,
    Node,
    Slugs,
    duration_text,
    instant_text,
    listing,
    person_zone,
    positive,
    restrict_of,
    unwrap,
    zone_of,
)
from rungs.importers.ladder import levels_from, loop_repeat
from rungs.importers.people import Directory
from rungs.importers.plan import Draft, Final, Integration, Layer, Matrix, Override, Schedule, Team

__all__ = ["read"]

VENDOR = "PagerDuty"
_METHODS = {
    "email_contact_method": "email",
    "sms_contact_method": "sms",
    "phone_contact_method": "voice",
}
_ISO_DAYS = ("", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def read(dump: Node, now: int) -> Draft:
    """Translate a PagerDuty dump; `now` is when the policy takes over (layers that ended
    before the final schedule's span, or before `now` without one, are history)."""
    draft, slugs = Draft(VENDOR), Slugs()
    people = Directory(draft, slugs)
    team_members: dict[str, list[str]] = {}
    for u in listing(dump, "users"):
        _user(draft, people, u, team_members)
    for t in listing(dump, "teams"):
        members = team_members.get(t.text("id"), [])
        if members:
            tid = slugs.new("teams", t.text("name"), "team")
            draft.teams.append(Team(tid, t.text("name"), t.text("id"), members))
        else:
            draft.cannot("team", t.text("name"), "has no members in the dump (Rungs needs some)")
    overrides = dump.get("overrides")
    schedule_ids: dict[str, str] = {}
    for s in listing(dump, "schedules"):
        sched = _schedule(draft, slugs, people, s, now)
        schedule_ids[s.text("id")] = sched.id
        found = overrides.get(s.text("id")) if overrides is not None else None
        if found is not None:
            for o in unwrap(found, "overrides"):
                who = people.get(o["user"].text("id"))
                if who is None:
                    draft.cannot("override", o.text("id", "?"), "names a user not in the dump")
                    continue
                sched.overrides.append(
                    Override(o.instant("start"), o.instant("end"), who, o.text("id", ""))
                )
    ep_ids: dict[str, str] = {}
    for ep in listing(dump, "escalation_policies"):
        m = _policy(draft, slugs, people, schedule_ids, ep)
        if m is not None:
            ep_ids[ep.text("id")] = m.id
    for svc in listing(dump, "services"):
        _service(draft, slugs, ep_ids, svc)
    return draft


def _user(draft: Draft, people: Directory, u: Node, teams: dict[str, list[str]]) -> None:
    name = u.text("name", u.text("email"))
    person = people.add(u.text("id"), name, u.text("email"))
    person.timezone = person_zone(u, "time_zone")
    if u.has("time_zone") and person.timezone is None:
        draft.cannot(
            "user", name, f"time zone {u.text('time_zone')!r} is not an IANA name: left out"
        )
    for t in u["teams"].items() if u.has("teams") else []:
        teams.setdefault(t.text("id"), []).append(person.id)
    channel_of: dict[str, str] = {}  # contact method id -> channel kept
    for cm in u["contact_methods"].items() if u.has("contact_methods") else []:
        kind, label = cm.text("type"), cm.text("label", cm.text("type"))
        if kind.endswith("_reference"):
            draft.cannot(
                "contact method",
                f"{name}: {label}",
                "only a reference: dump users with include[]=contact_methods",
            )
            continue
        method = _METHODS.get(kind)
        if method is None:
            draft.cannot("contact method", f"{name}: {label}", f"{kind} has no Rungs channel")
            continue
        address = cm.text("address")
        if method != "email":
            address = f"+{cm.text('country_code', '')}{address}".replace("++", "+")
        if people.set_contact(person, method, address, label):
            channel_of[cm.text("id", label)] = method
    for nr in u["notification_rules"].items() if u.has("notification_rules") else []:
        cm = nr["contact_method"]
        label = f"{name}: {nr.text('id', '?')}"
        if nr.text("urgency", "high") != "high":
            draft.cannot(
                "notification rule",
                label,
                f"{nr.text('urgency')} urgency: Rungs has one urgency (high rules kept)",
            )
            continue
        channel = channel_of.get(cm.text("id", ""))
        if channel is None:
            draft.cannot("notification rule", label, "its contact method was not translated")
            continue
        person.notify.append((nr.number("start_delay_in_minutes", 0), channel))
    person.notify.sort()


def _seconds_of_day(node: Node) -> int:
    text = node.text("start_time_of_day")
    try:
        h, m, s = (int(x) for x in [*text.split(":"), "0"][:3])
    except ValueError:
        raise DumpError(node.path, f"start_time_of_day '{text}' is not HH:MM:SS") from None
    return h * 3600 + m * 60 + s


def _restrictions(draft: Draft, label: str, layer: Node) -> dict[str, str] | None:
    windows: list[tuple[int, int]] = []
    rs = layer["restrictions"].items() if layer.has("restrictions") else []
    for r in rs:
        start, length = _seconds_of_day(r), r.number("duration_seconds")
        if start % 60 or length % 60:
            draft.cannot(
                "restriction", label, "is not in whole minutes: rounded down to the minute"
            )
        kind = r.text("type")
        if kind == "daily_restriction":
            windows += [(d * 1440 + start // 60, length // 60) for d in range(7)]
        elif kind == "weekly_restriction":
            dow = r.number("start_day_of_week")
            if not 1 <= dow <= 7:
                raise DumpError(r.path, f"start_day_of_week {dow} is not 1 (Monday) .. 7 (Sunday)")
            windows.append(((dow - 1) * 1440 + start // 60, length // 60))
        else:
            raise DumpError(r.path, f"unknown restriction type '{kind}'")
    return restrict_of(windows) if rs else None


def _schedule(draft: Draft, slugs: Slugs, people: Directory, s: Node, now: int) -> Schedule:
    name, tz = s.text("name"), zone_of(s, "time_zone", "UTC")
    sched = Schedule(slugs.new("schedules", name, "schedule"), name, s.text("id"), tz)
    draft.schedules.append(sched)
    final = _final(people, s, sched)
    if final is not None:
        draft.finals.append(final)
    since = final.start if final is not None else now
    for lay in reversed(s["schedule_layers"].items()):  # GET lists the top layer first
        label = f"{name}: {lay.text('name', lay.text('id', '?'))}"
        start, end = lay.instant("start"), lay.instant("end") if lay.has("end") else None
        if end is not None and end <= since:
            draft.cannot(
                "layer", label, f"ended at {instant_text(end, tz)}, before the import: not written"
            )
            continue
        if end is not None:
            draft.cannot(
                "layer",
                label,
                f"ends at {instant_text(end, tz)}; Rungs layers do not end: written without an end",
            )
        if start > since:
            draft.cannot(
                "layer",
                label,
                f"starts at {instant_text(start, tz)}; Rungs layers have no start date: "
                "written as in effect now",
            )
        members = []
        for u in lay["users"].items():
            pid = people.get(u["user"].text("id"))
            if pid is None:
                draft.cannot(
                    "layer member",
                    label,
                    f"user {u['user'].text('id')} is not in the dump: left out",
                )
            else:
                members.append(pid)
        if not members:
            draft.cannot("layer", label, "has no members Rungs knows: not written")
            continue
        restrict = _restrictions(draft, label, lay)
        if restrict == {}:
            draft.cannot("layer", label, "its restrictions cover no time: not written")
            continue
        turn = positive(lay, "rotation_turn_length_seconds")
        layer = Layer(
            lay.text("name", f"layer {len(sched.layers) + 1}"),
            members,
            duration_text(turn),
            lay.instant("rotation_virtual_start"),
            tz,
            restrict,
        )
        sched.layers.append(layer)
    if not sched.layers:
        draft.schedules.remove(sched)
        draft.cannot("schedule", name, "has no layer Rungs can use: not written")
        if final is not None:
            draft.finals.remove(final)
    return sched


def _final(people: Directory, s: Node, sched: Schedule) -> Final | None:
    fs = s.get("final_schedule")
    entries = fs.get("rendered_schedule_entries") if fs is not None else None
    if entries is None or not entries.items():
        return None
    pieces = []
    for e in entries.items():
        who = people.get(e["user"].text("id")) or f"unknown user {e['user'].text('id')}"
        pieces.append((e.instant("start"), e.instant("end"), who))
    final = Final(
        sched.name, [sched.id], pieces, min(p[0] for p in pieces), max(p[1] for p in pieces)
    )
    return final


def _policy(
    draft: Draft, slugs: Slugs, people: Directory, schedules: dict[str, str], ep: Node
) -> Matrix | None:
    name = ep.text("name")
    m = Matrix(slugs.new("matrices", name, "policy"), name, ep.text("id"))
    steps, at, cycle = [], 0, 0
    for i, rule in enumerate(ep["escalation_rules"].items()):
        targets = []
        for t in rule["targets"].items():
            kind, tid = t.text("type"), t.text("id")
            found = (
                people.get(tid)
                if kind.startswith("user")
                else schedules.get(tid)
                if kind.startswith("schedule")
                else None
            )
            if found is None:
                draft.cannot(
                    "escalation target",
                    f"{name} step {i + 1}",
                    f"{kind} {tid} cannot be paged by Rungs "
                    "(not in the dump, or not a user or schedule)",
                )
            else:
                targets.append(f"{'person' if kind.startswith('user') else 'schedule'}:{found}")
        steps.append((at, targets, "acknowledged"))
        delay = rule.number("escalation_delay_in_minutes")
        at += delay
        cycle += delay
    levels_from(draft, m, steps, "escalation rule")
    if not m.levels:
        draft.cannot("escalation policy", name, "has no rule Rungs can page: not written")
        return None
    loop_repeat(draft, m, cycle, ep.number("num_loops", 0), VENDOR)
    if ep.text("on_call_handoff_notifications", "if_has_services") == "always":
        draft.cannot("escalation policy", name, "hand-off notifications: Rungs sends none")
    draft.matrices.append(m)
    return m


def _service(draft: Draft, slugs: Slugs, policies: dict[str, str], svc: Node) -> None:
    name = svc.text("name")
    ep = svc.get("escalation_policy")
    matrix = policies.get(ep.text("id")) if ep is not None else None
    for key in ("acknowledgement_timeout", "auto_resolve_timeout", "support_hours"):
        if svc.has(key):
            draft.cannot("service", name, f"{key} has no Rungs equivalent")
    for integ in svc["integrations"].items() if svc.has("integrations") else []:
        kind = integ.text("type")
        label = f"{name}: {integ.text('summary', integ.text('name', kind))}"
        if kind not in (
            "events_api_v2_inbound_integration",
            "events_api_v2_inbound_integration_reference",
        ):
            draft.cannot(
                "integration",
                label,
                f"{kind} has no Rungs sender format (Rungs takes Events API v2)",
            )
            continue
        iid = slugs.new("integrations", name, "integration")
        draft.integrations.append(
            Integration(iid, label, integ.text("id"), "pagerduty", matrix, "POST /v2/enqueue")
        )
