"""Validate plain policy data and compile it into `rungs.policy.model` objects.

Every problem is collected (never the first only), each pointing at the offending value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rungs.policy.channels import compile_channels
from rungs.policy.loader import Located, Path
from rungs.policy.model import (
    CHANNELS,
    DEFAULT_STEPS,
    METRICS,
    PRIORITIES,
    Action,
    Customer,
    Integration,
    Level,
    Matrix,
    NotifyStep,
    Partner,
    Person,
    Policy,
    Repeat,
    Rule,
    SlaPolicy,
    SlaTargets,
    Target,
    Team,
)
from rungs.schedules.oncall import Layer, Override, Schedule, layer_error
from rungs.time.calendar import WALL_CLOCK, Calendar, check_holidays
from rungs.time.hours import DAYS, HoursError, overlaps, parse_spans
from rungs.time.instant import DurationError, parse_duration, parse_instant

__all__ = ["compile_policy"]

SECTIONS = (
    "version",
    "timezone",
    "calendars",
    "people",
    "teams",
    "partners",
    "customers",
    "default_customer",
    "sla_policies",
    "reasons",
    "matrices",
    "rules",
    "schedules",
    "integrations",
    "channels",
    "links",
)
MATCH_KEYS = (
    "customer",
    "partner",
    "tier",
    "site",
    "device_group",
    "device",
    "category",
    "priority",
)
RULE_KEYS = (
    "customer",
    "partner",
    "tier",
    "site",
    "device_group",
    "device",
    "category",
    "priority",
    "status",
    "level",
    "assignee",
    "sla_breached",
    "sla_warning",
)
STATUSES = ("open", "acknowledged", "pending", "resolved", "closed")
FORMATS = ("pagerduty", "alertmanager", "opsgenie", "events", "heartbeat")
SEVERITIES = ("critical", "error", "warning", "info")
DEFAULT_RESOLUTION = parse_duration("30d")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class _Reader:
    """Typed access to located data that records a problem instead of raising."""

    def __init__(self, loc: Located) -> None:
        self.loc = loc
        self._entries: dict[str, list[tuple[str, dict, Path]]] = {}

    def err(self, path: Path, message: str, *, key: bool = False) -> None:
        self.loc.problem(path, message, key=key)

    def warn(self, path: Path, message: str) -> None:
        self.loc.problem(path, message, warning=True)

    def mapping(self, value: Any, path: Path, what: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.err(path, f"{what} must be a mapping, not {_kind(value)}")
        return None

    def fields(
        self, value: Any, path: Path, what: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, Any] | None:
        m = self.mapping(value, path, what)
        if m is None:
            return None
        for k in m:
            if k not in allowed:
                self.err((*path, k), f"unknown field '{k}' in {what}{_hint(k, allowed)}", key=True)
        for k in required:
            if k not in m:
                self.err(path, f"{what} is missing '{k}'")
        return m

    def string(self, m: dict[str, Any], key: str, path: Path, *, default: Any = None) -> Any:
        v = m.get(key, default)
        if key in m and not isinstance(v, str):
            if isinstance(v, int | float) and not isinstance(v, bool):
                return str(v)
            self.err((*path, key), f"'{key}' must be a string, not {_kind(v)}")
            return default
        return v

    def duration(self, m: dict[str, Any], key: str, path: Path, *, default: int | None = None):
        if key not in m:
            return default
        try:
            return parse_duration(m[key])
        except DurationError as exc:
            self.err((*path, key), str(exc))
            return default

    def strings(self, value: Any, path: Path, what: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            self.err(path, f"{what} must be a list, not {_kind(value)}")
            return []
        out = []
        for i, v in enumerate(value):
            if isinstance(v, str | int) and not isinstance(v, bool):
                out.append(str(v))
            else:
                self.err((*path, i), f"{what} entries must be strings, not {_kind(v)}")
        return out

    def entries(self, section: str, data: dict[str, Any]) -> list[tuple[str, dict, Path]]:
        """A section given as a list of `{id: ...}` or as a mapping `id -> {...}` (read once)."""
        if section not in self._entries:
            self._entries[section] = self._read_entries(section, data)
        return self._entries[section]

    def _read_entries(self, section: str, data: dict[str, Any]) -> list[tuple[str, dict, Path]]:
        value = data.get(section)
        path: Path = (section,)
        if value is None:
            return []
        out: list[tuple[str, dict, Path]] = []
        seen: dict[str, Path] = {}  # id -> where it first stood
        if isinstance(value, dict):
            items = [(k, v, (*path, k), True) for k, v in value.items()]
        elif isinstance(value, list):
            items = [(None, v, (*path, i), False) for i, v in enumerate(value)]
        else:
            self.err(path, f"'{section}' must be a list or a mapping, not {_kind(value)}")
            return []
        for key, v, p, keyed in items:
            if not isinstance(v, dict):
                self.err(p, f"each entry of '{section}' must be a mapping, not {_kind(v)}")
                continue
            if keyed:
                ident = str(key)
                if "id" in v and str(v["id"]) != ident:
                    self.err((*p, "id"), f"id '{v['id']}' differs from its key '{ident}'")
                id_path = p
            else:
                if "id" not in v:
                    self.err(p, f"an entry of '{section}' is missing 'id'")
                    continue
                ident = str(v["id"])
                id_path = (*p, "id")
            if not _ID.match(ident):
                self.err(id_path, f"id '{ident}' may hold only letters, digits, '_', '-', '.'")
            if ident in seen:
                first = self.loc.where(seen[ident], key=keyed)[0]
                self.err(
                    id_path,
                    f"duplicate id '{ident}' in '{section}' (first at line {first})",
                    key=keyed,
                )
                continue
            seen[ident] = id_path
            out.append((ident, v, p))
        return out


def _hint(name: Any, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a near miss, else nothing."""
    close = difflib.get_close_matches(str(name), sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _kind(v: Any) -> str:
    if v is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), f"a {type(v).__name__}"
    )


def _zone(r: _Reader, value: Any, path: Path) -> str | None:
    if not isinstance(value, str):
        r.err(path, f"time zone must be a string such as 'Europe/Berlin', not {_kind(value)}")
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        from zoneinfo import available_timezones

        r.err(path, f"unknown time zone '{value}'{_hint(value, available_timezones())}")
        return None
    return value


def _hours(r: _Reader, value: Any, path: Path) -> tuple[bool, dict[int, tuple] | None]:
    """(ok, hours) where hours None means 24x7."""
    if isinstance(value, str):
        if value.strip().lower() == "24x7":
            return True, None
        r.err(path, f"hours must be '24x7' or a map of weekdays to spans, not '{value}'")
        return False, {}
    m = r.mapping(value, path, "hours")
    if m is None:
        return False, {}
    hours: dict[int, tuple] = {}
    ok = True
    for key, text in m.items():
        if key not in DAYS:
            r.err((*path, key), f"unknown weekday '{key}' (use {', '.join(DAYS)})", key=True)
            ok = False
            continue
        if text is None:
            hours[DAYS.index(key)] = ()
            continue
        try:
            hours[DAYS.index(key)] = parse_spans(str(text))
        except HoursError as exc:
            r.err((*path, key), str(exc))
            ok = False
    for day, message in overlaps(hours):
        r.err((*path, DAYS[day]), message)
        ok = False
    return ok, hours


def _target(r: _Reader, value: Any, path: Path, known: dict[str, set[str]]) -> Target | None:
    if not isinstance(value, str) or ":" not in value:
        r.err(path, f"target must be 'person:ID', 'team:ID' or 'schedule:ID', not {value!r}")
        return None
    kind, _, ident = value.partition(":")
    if kind not in ("person", "team", "schedule"):
        r.err(path, f"unknown target kind '{kind}' in '{value}' (use person, team or schedule)")
        return None
    plural = {"person": "people", "team": "teams", "schedule": "schedules"}[kind]
    if ident not in known[plural]:
        r.err(path, f"unknown {kind} '{ident}' in target '{value}'{_hint(ident, known[plural])}")
        return None
    return Target(kind, ident)


def _targets(r: _Reader, value: Any, path: Path, known: dict[str, set[str]]) -> tuple[Target, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, v in enumerate(items):
        t = _target(r, v, (*path, i) if isinstance(value, list) else path, known)
        if t is not None:
            out.append(t)
    return tuple(out)


def compile_policy(loc: Located, folder: str = ".") -> Policy | None:
    """Compile located data; problems go to `loc.problems`; None when any error was found."""
    r = _Reader(loc)
    data = loc.data
    if data is None:
        if not loc.problems:
            r.err((), "the policy is empty")
        return None
    if not isinstance(data, dict):
        r.err((), f"a policy must be a mapping of sections, not {_kind(data)}")
        return None
    for k in data:
        if k not in SECTIONS:
            hint = _hint(k, SECTIONS) or f" (known: {', '.join(SECTIONS)})"
            r.err((k,), f"unknown section '{k}'{hint}", key=True)
    version = data.get("version", 1)
    if version != 1:
        r.err(("version",), f"unsupported policy version {version!r} (this Rungs reads 1)")
    tz = _zone(r, data.get("timezone", "UTC"), ("timezone",)) or "UTC"

    known = {
        s: {ident for ident, _, _ in r.entries(s, data)}
        for s in ("people", "teams", "schedules", "customers", "partners", "calendars")
    }
    known["sla_policies"] = {ident for ident, _, _ in r.entries("sla_policies", data)}
    known["matrices"] = {ident for ident, _, _ in r.entries("matrices", data)}

    calendars = _calendars(r, data)
    people = _people(r, data)
    schedules = _schedules(r, data, known)
    teams = _teams(r, data, known)
    partners = _partners(r, data, known)
    sla = _sla_policies(r, data, calendars)
    customers, default_customer = _customers(r, data, known)
    reasons = _reasons(r, data)
    matrices = _matrices(r, data, calendars, known)
    rules = _rules(r, data, calendars, known)
    _check_rule_levels(r, data)
    integrations = _integrations(r, data, known)
    channels = compile_channels(r, data)
    links = _links(r, data)
    _warn_unstaffed(r, matrices, teams, schedules)

    if any(p.severity == "error" for p in loc.problems):
        return None
    return Policy(
        version=1,
        timezone=tz,
        calendars=calendars,
        people=people,
        teams=teams,
        partners=partners,
        customers=customers,
        sla_policies=sla,
        matrices=matrices,
        rules=rules,
        reasons=reasons,
        schedules=schedules,
        integrations=integrations,
        default_customer=default_customer,
        channels=channels,
        links=links,
        source=loc.file,
        folder=folder,
    )


def _reasons(r: _Reader, data: dict) -> tuple[str, ...]:
    if "reasons" not in data:
        return ()
    raw = data["reasons"]
    found = r.strings(raw, ("reasons",), "reasons")
    seen: set[str] = set()
    for i, reason in enumerate(found):
        if reason in seen:
            at = ("reasons", i) if isinstance(raw, list) else ("reasons",)
            r.err(at, f"duplicate reason '{reason}'")
        seen.add(reason)
    return tuple(dict.fromkeys(found))


def _check_rule_levels(r: _Reader, data: dict) -> None:
    """A rule that escalates past the last level of every matrix could never act."""
    deepest = max(
        (
            len(m["levels"])
            for _, m, _ in r.entries("matrices", data)
            if isinstance(m.get("levels"), list)
        ),
        default=0,
    )
    if not deepest:
        return
    for ident, m, p in r.entries("rules", data):
        then = m.get("then")
        items = enumerate(then) if isinstance(then, list) else [(None, then)]
        for i, action in items:
            if not isinstance(action, dict) or len(action) != 1 or "escalate" not in action:
                continue
            v = action["escalate"]
            to_level = v.get("to_level") if isinstance(v, dict) else v
            if isinstance(to_level, int) and not isinstance(to_level, bool) and to_level > deepest:
                at = (*p, "then", i) if i is not None else (*p, "then")
                at = (*at, "escalate", "to_level") if isinstance(v, dict) else (*at, "escalate")
                r.err(
                    at,
                    f"rule '{ident}' escalates to level {to_level}, "
                    f"but no matrix has more than {deepest} levels",
                )


def _calendars(r: _Reader, data: dict) -> dict[str, Calendar]:
    out: dict[str, Calendar] = {}
    for ident, m, p in r.entries("calendars", data):
        m = r.fields(
            m, p, f"calendar '{ident}'", ("id", "name", "timezone", "hours", "holidays"), ("hours",)
        )
        if m is None:
            continue
        tz = _zone(r, m.get("timezone", "UTC"), (*p, "timezone"))
        ok, hours = _hours(r, m.get("hours", "24x7"), (*p, "hours"))
        if ok and hours is not None and not any(hours.values()):
            r.err(
                (*p, "hours"),
                f"calendar '{ident}' has no business hours: every day is closed",
            )
            ok = False
        country = subdiv = None
        dates: set[date] = set()
        if "holidays" in m:
            hp = (*p, "holidays")
            h = r.fields(m["holidays"], hp, "holidays", ("country", "subdivision", "dates"), ())
            if h is not None:
                country = r.string(h, "country", hp)
                subdiv = r.string(h, "subdivision", hp)
                if country is not None:
                    msg = check_holidays(country, subdiv)
                    if msg:
                        bad = "subdivision" if "subdivision" in msg and subdiv else "country"
                        r.err((*hp, bad), msg)
                        ok = False
                elif subdiv is not None and set(h) <= {"country", "subdivision", "dates"}:
                    r.err((*hp, "subdivision"), "a holiday subdivision needs a 'country'")
                raw = h.get("dates") or []
                single = not isinstance(raw, list)  # one date given without brackets
                if isinstance(raw, dict):
                    r.err((*hp, "dates"), f"holiday dates must be a list, not {_kind(raw)}")
                    ok, raw = False, []
                for i, d in enumerate([raw] if single else raw):
                    parsed = _date(d)
                    if parsed is None:
                        dp = (*hp, "dates") if single else (*hp, "dates", i)
                        r.err(dp, f"holiday date {d!r} is not a date (write YYYY-MM-DD)")
                        ok = False
                    else:
                        dates.add(parsed)
        if ok and tz:
            out[ident] = Calendar(ident, tz, hours, country, subdiv, frozenset(dates))
    return out


def _date(v: Any) -> date | None:
    """A calendar date written YYYY-MM-DD (a date and time is not one)."""
    if isinstance(v, datetime):
        return None
    if isinstance(v, date):
        return v
    if not isinstance(v, str) or not _DATE.match(v.strip()):
        return None
    try:
        return date.fromisoformat(v.strip())
    except ValueError:
        return None


def _people(r: _Reader, data: dict) -> dict[str, Person]:
    out: dict[str, Person] = {}
    allowed = ("id", "name", "contacts", "notify", "timezone", "email")
    for ident, m, p in r.entries("people", data):
        m = r.fields(m, p, f"person '{ident}'", allowed, ())
        if m is None:
            continue
        contacts: dict[str, str] = {}
        declared: set[str] = set()  # contact methods written, valid or not
        if "contacts" in m:
            c = r.mapping(m["contacts"], (*p, "contacts"), "contacts") or {}
            declared.update(str(k) for k in c)
            for k, v in c.items():
                if k not in CHANNELS:
                    r.err(
                        (*p, "contacts", k),
                        f"unknown contact method '{k}' (use {', '.join(CHANNELS)})",
                        key=True,
                    )
                elif not isinstance(v, str) or not v:
                    r.err((*p, "contacts", k), f"contact '{k}' must be a non-empty string")
                else:
                    contacts[k] = v
        if isinstance(m.get("email"), str):
            contacts.setdefault("email", m["email"])
        steps = DEFAULT_STEPS
        if "notify" in m:
            np_ = (*p, "notify")
            raw = m["notify"] if isinstance(m["notify"], list) else None
            if raw is None:
                r.err(np_, "notify must be a list of {after, via} steps")
                raw = []
            elif not raw:
                r.err(np_, f"person '{ident}' has an empty notify list and would never be paged")
            parsed = []
            for i, s in enumerate(raw):
                sp = (*np_, i)
                s = r.fields(s, sp, "notification step", ("after", "via"), ("via",))
                if s is None:
                    continue
                after = r.duration(s, "after", sp, default=0)
                if "via" not in s:
                    continue  # reported as missing
                via = s["via"]
                if via not in CHANNELS:
                    hint = _hint(via, CHANNELS)
                    msg = f"unknown channel '{via}'{hint} (use {', '.join(CHANNELS)})"
                    r.err((*sp, "via"), msg)
                    continue
                if via not in contacts:
                    if via not in declared:
                        have = ", ".join(sorted(contacts)) or "none"
                        r.err(
                            (*sp, "via"),
                            f"person '{ident}' has no '{via}' contact for this step "
                            f"(contacts: {have})",
                        )
                    continue
                parsed.append(NotifyStep(after, via))
            steps = tuple(sorted(parsed, key=lambda s: s.after))
        elif "email" not in contacts:
            r.err(
                p,
                f"person '{ident}' has no email contact for the default rule (email at once); "
                "add contacts.email or notify steps",
            )
        tzname = _zone(r, m["timezone"], (*p, "timezone")) if "timezone" in m else None
        out[ident] = Person(ident, str(m.get("name", ident)), contacts, steps, tzname)
    return out


def _teams(r: _Reader, data: dict, known: dict[str, set[str]]) -> dict[str, Team]:
    out: dict[str, Team] = {}
    for ident, m, p in r.entries("teams", data):
        m = r.fields(m, p, f"team '{ident}'", ("id", "name", "members", "schedule", "skills"), ())
        if m is None:
            continue
        members = r.strings(m.get("members", []), (*p, "members"), "members")
        for i, who in enumerate(members):
            if who not in known["people"]:
                r.err(
                    (*p, "members", i),
                    f"unknown person '{who}' in team '{ident}'{_hint(who, known['people'])}",
                )
        schedule = r.string(m, "schedule", p)
        if schedule is not None and schedule not in known["schedules"]:
            hint = _hint(schedule, known["schedules"])
            r.err((*p, "schedule"), f"unknown schedule '{schedule}' for team '{ident}'{hint}")
        if not members and schedule is None:
            r.err(p, f"team '{ident}' has neither members nor a schedule")
        skills = tuple(r.strings(m.get("skills", []), (*p, "skills"), "skills"))
        out[ident] = Team(ident, str(m.get("name", ident)), tuple(members), schedule, skills)
    return out


def _partners(r: _Reader, data: dict, known: dict[str, set[str]]) -> dict[str, Partner]:
    out = {}
    for ident, m, p in r.entries("partners", data):
        m = r.fields(m, p, f"partner '{ident}'", ("id", "name", "sla"), ())
        if m is None:
            continue
        sla = r.string(m, "sla", p)
        if sla is not None and sla not in known["sla_policies"]:
            hint = _hint(sla, known["sla_policies"])
            r.err((*p, "sla"), f"unknown SLA policy '{sla}' for partner '{ident}'{hint}")
        out[ident] = Partner(ident, str(m.get("name", ident)), sla)
    return out


def _customer(
    r: _Reader, ident: str, m: dict, p: Path, known: dict[str, set[str]]
) -> Customer | None:
    allowed = (
        "id",
        "name",
        "tier",
        "value",
        "sla",
        "partner",
        "sites",
        "device_groups",
        "timezone",
    )
    m = r.fields(m, p, f"customer '{ident}'", allowed, ())
    if m is None:
        return None
    sla = r.string(m, "sla", p)
    if sla is not None and sla not in known["sla_policies"]:
        hint = _hint(sla, known["sla_policies"])
        r.err((*p, "sla"), f"unknown SLA policy '{sla}' for customer '{ident}'{hint}")
    partner = r.string(m, "partner", p)
    if partner is not None and partner not in known["partners"]:
        hint = _hint(partner, known["partners"])
        r.err((*p, "partner"), f"unknown partner '{partner}' for customer '{ident}'{hint}")
    value = m.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        r.err((*p, "value"), f"customer value must be a number, not {_kind(value)}")
        value = None

    def ids(key: str) -> tuple[str, ...]:
        raw = m.get(key, [])
        if isinstance(raw, list):
            return tuple(str(x["id"]) if isinstance(x, dict) and "id" in x else str(x) for x in raw)
        r.err((*p, key), f"'{key}' must be a list")
        return ()

    tier = r.string(m, "tier", p)
    return Customer(
        ident,
        str(m.get("name", ident)),
        tier,
        value,
        sla,
        partner,
        ids("sites"),
        ids("device_groups"),
    )


def _customers(
    r: _Reader, data: dict, known: dict[str, set[str]]
) -> tuple[dict[str, Customer], Customer | None]:
    out = {}
    for ident, m, p in r.entries("customers", data):
        c = _customer(r, ident, m, p, known)
        if c is not None:
            out[ident] = c
    default = None
    if "default_customer" in data:
        default = _customer(r, "default", data["default_customer"], ("default_customer",), known)
    return out, default


def _sla_policies(r: _Reader, data: dict, calendars: dict[str, Calendar]) -> dict[str, SlaPolicy]:
    out = {}
    for ident, m, p in r.entries("sla_policies", data):
        m = r.fields(
            m,
            p,
            f"SLA policy '{ident}'",
            ("id", "name", "calendar", "warn_at", "pause_on", "targets"),
            ("targets",),
        )
        if m is None:
            continue
        cal = _calendar_ref(r, m, p, calendars, data)
        warn = m.get("warn_at", [])
        warn_at: list[int] = []
        if not isinstance(warn, list):
            r.err((*p, "warn_at"), "warn_at must be a list of percentages")
            warn = []
        for i, w in enumerate(warn):
            if isinstance(w, bool) or not isinstance(w, int) or not 0 < w < 100:
                r.err(
                    (*p, "warn_at", i),
                    f"warn_at entries must be whole percentages between 1 and 99, not {w!r}",
                )
            else:
                warn_at.append(w)
        pause_on = r.strings(m.get("pause_on", []), (*p, "pause_on"), "pause_on")
        for i, s in enumerate(pause_on):
            if s not in ("pending",):
                r.err((*p, "pause_on", i), f"cannot pause on status '{s}' (only 'pending')")
        targets: dict[str, SlaTargets] = {}
        tp = (*p, "targets")
        tm = (r.mapping(m["targets"], tp, "targets") if "targets" in m else None) or {}
        for prio, t in tm.items():
            pp = (*tp, prio)
            if prio not in PRIORITIES:
                r.err(pp, f"unknown priority '{prio}' (use {', '.join(PRIORITIES)})", key=True)
                continue
            t = r.fields(t, pp, f"targets for {prio}", METRICS, ())
            if t is None:
                continue
            vals = {k: r.duration(t, k, pp) for k in METRICS}
            for k, v in vals.items():
                if v is not None and v <= 0:
                    r.err((*pp, k), f"target '{k}' must be longer than zero")
            if vals["resolution"] is None:
                vals["resolution"] = DEFAULT_RESOLUTION
            targets[prio] = SlaTargets(**vals)
        if cal is not None:
            out[ident] = SlaPolicy(
                ident, cal, tuple(sorted(set(warn_at))), frozenset(pause_on), targets
            )
    return out


def _calendar_ref(
    r: _Reader, m: dict, p: Path, calendars: dict[str, Calendar], data: dict
) -> Calendar | None:
    """The named calendar, wall-clock time when none is named, None when it is unusable."""
    name = r.string(m, "calendar", p)
    if name is None:
        return WALL_CLOCK
    if name in calendars:
        return calendars[name]
    declared = {ident for ident, _, _ in r.entries("calendars", data)}
    if name not in declared:
        r.err((*p, "calendar"), f"unknown calendar '{name}'{_hint(name, declared)}")
    return None  # declared but broken: its own errors are already reported


def _matrices(
    r: _Reader, data: dict, calendars: dict[str, Calendar], known: dict[str, set[str]]
) -> tuple[Matrix, ...]:
    out = []
    for order, (ident, m, p) in enumerate(r.entries("matrices", data)):
        m = r.fields(
            m,
            p,
            f"matrix '{ident}'",
            ("id", "name", "match", "calendar", "levels", "repeat"),
            ("levels",),
        )
        if m is None:
            continue
        match: dict[str, frozenset[str]] = {}
        if "match" in m:
            mp = (*p, "match")
            mm = r.mapping(m["match"], mp, "match") or {}
            for k, v in mm.items():
                if k not in MATCH_KEYS:
                    r.err(
                        (*mp, k),
                        f"unknown match field '{k}' (use {', '.join(MATCH_KEYS)})",
                        key=True,
                    )
                    continue
                vals = r.strings(v, (*mp, k), f"match '{k}'")
                _check_refs(r, k, vals, (*mp, k), known)
                match[k] = frozenset(vals)
        cal = _calendar_ref(r, m, p, calendars, data)
        levels = _levels(r, m["levels"], (*p, "levels"), known) if "levels" in m else ()
        repeat = None
        if "repeat" in m:
            rp = (*p, "repeat")
            rm = r.fields(m["repeat"], rp, "repeat", ("every", "times"), ("every", "times"))
            if rm is not None:
                every = r.duration(rm, "every", rp)
                times = rm.get("times")
                if isinstance(times, bool) or not isinstance(times, int) or times < 1:
                    r.err((*rp, "times"), "repeat times must be a whole number of at least 1")
                elif every is not None and every > 0:
                    repeat = Repeat(every, times)
                elif every is not None:
                    r.err((*rp, "every"), "repeat every must be longer than zero")
        if cal is not None and levels:
            out.append(Matrix(ident, match, levels, cal, repeat, order))
    return tuple(out)


def _check_refs(
    r: _Reader, key: str, vals: list[str], path: Path, known: dict[str, set[str]]
) -> None:
    table = {"customer": "customers", "partner": "partners"}.get(key)
    for i, v in enumerate(vals):
        at = (*path, i) if (*path, i) in r.loc.values else path
        if table and v not in known[table]:
            hint = _hint(v, known[table])
            r.err(at, f"unknown {key} '{v}'{hint}")
        if key == "priority" and v not in PRIORITIES:
            r.err(at, f"unknown priority '{v}' (use {', '.join(PRIORITIES)})")


def _levels(r: _Reader, value: Any, path: Path, known: dict[str, set[str]]) -> tuple[Level, ...]:
    if not isinstance(value, list) or not value:
        r.err(path, "levels must be a non-empty list")
        return ()
    out = []
    prev_after: int | None = 0  # level 1 starts at once; None: the previous one is unusable
    prev_text = "0m"
    for i, lv in enumerate(value):
        lp = (*path, i)
        lv = r.fields(
            lv, lp, f"level {i + 1}", ("name", "after", "unless", "notify", "fallback"), ("notify",)
        )
        if lv is None:
            continue
        after = r.duration(lv, "after", lp) if "after" in lv else 0 if i == 0 else None
        text = lv.get("after")
        if i > 0 and "after" not in lv:
            r.err(lp, f"level {i + 1} is missing 'after' (how long before it escalates)")
        elif i == 0 and after:
            r.err((*lp, "after"), "level 1 is notified at once and takes no 'after'")
        elif i > 0 and after is not None and prev_after is not None and after <= prev_after:
            if i == 1:
                msg = "level 2 'after' must be longer than zero (level 1 is notified at once)"
            else:
                msg = f"level {i + 1} 'after' ({text}) must be later than level {i}'s ({prev_text})"
            r.err((*lp, "after"), msg)
        unless = lv.get("unless", "acknowledged")
        if unless not in ("acknowledged", "resolved"):
            r.err((*lp, "unless"), f"unless must be 'acknowledged' or 'resolved', not {unless!r}")
        targets = _targets(r, lv.get("notify", []), (*lp, "notify"), known)
        if "notify" in lv and not lv["notify"]:
            r.err((*lp, "notify"), f"level {i + 1} notifies nobody")
        fallback = (
            _target(r, lv["fallback"], (*lp, "fallback"), known) if "fallback" in lv else None
        )
        prev_after, prev_text = after, text
        out.append(
            Level(i + 1, str(lv.get("name", f"L{i + 1}")), after or 0, unless, targets, fallback)
        )
    return tuple(out) if len(out) == len(value) else ()


def _when_values(
    r: _Reader, key: str, v: Any, path: Path, known: dict[str, set[str]]
) -> frozenset[Any] | None:
    if key == "level":
        items = v if isinstance(v, list) else [v]
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in items):
            r.err(path, "level must be a whole number or a list of them")
            return None
        return frozenset(items)
    vals = r.strings(v, path, f"when '{key}'")
    if key in ("sla_breached", "sla_warning"):
        for i, x in enumerate(vals):
            if x not in METRICS:
                r.err(
                    (*path, i) if isinstance(v, list) else path,
                    f"unknown SLA metric '{x}' (use {', '.join(METRICS)})",
                )
    elif key == "status":
        for i, x in enumerate(vals):
            if x not in STATUSES:
                r.err(
                    (*path, i) if isinstance(v, list) else path,
                    f"unknown status '{x}' (use {', '.join(STATUSES)})",
                )
    else:
        _check_refs(r, key, vals, path, known)
    return frozenset(vals)


def _rules(
    r: _Reader, data: dict, calendars: dict[str, Calendar], known: dict[str, set[str]]
) -> tuple[Rule, ...]:
    out = []
    for ident, m, p in r.entries("rules", data):
        m = r.fields(m, p, f"rule '{ident}'", ("id", "name", "when", "then", "calendar"), ("then",))
        if m is None:
            continue
        when: dict[str, frozenset[Any]] = {}
        age_over = None
        since = "opened"
        wp = (*p, "when")
        wm = r.mapping(m.get("when", {}), wp, "when") or {}
        for k, v in wm.items():
            if k == "age_over":
                age_over = r.duration(wm, k, wp)
            elif k == "age_since":
                if v not in ("opened", "updated"):
                    r.err((*wp, k), "age_since must be 'opened' or 'updated'")
                since = v
            elif k not in RULE_KEYS:
                r.err(
                    (*wp, k),
                    f"unknown condition '{k}' (use {', '.join((*RULE_KEYS, 'age_over'))})",
                    key=True,
                )
            else:
                vals = _when_values(r, k, v, (*wp, k), known)
                if vals is not None:
                    when[k] = vals
        cal = _calendar_ref(r, m, p, calendars, data) if "calendar" in m else None
        actions = _actions(r, m["then"], (*p, "then"), known) if "then" in m else ()
        out.append(Rule(ident, when, actions, age_over, since, cal))
    return tuple(out)


def _actions(r: _Reader, value: Any, path: Path, known: dict[str, set[str]]) -> tuple[Action, ...]:
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
    if not items:
        r.err(path, "then must be a non-empty list of actions")
        return ()
    out = []
    for i, a in enumerate(items):
        ap = (*path, i) if isinstance(value, list) else path
        if not isinstance(a, dict) or len(a) != 1:
            r.err(
                ap,
                "each action is a mapping with one key: "
                "notify, assign, escalate, set_priority or webhook",
            )
            continue
        ((kind, v),) = a.items()
        kp = (*ap, kind)
        if kind == "notify":
            out.append(Action("notify", targets=_targets(r, v, kp, known)))
        elif kind == "assign":
            t = _target(r, v, kp, known)
            if t is not None:
                out.append(Action("assign", targets=(t,)))
        elif kind == "escalate":
            to_level = None
            if isinstance(v, dict):
                extra = [k for k in v if k != "to_level"]
                for k in extra:
                    r.err((*kp, k), f"unknown field '{k}' in escalate", key=True)
                to_level = v.get("to_level")
            elif v is not None:
                to_level = v
            if to_level is not None and (
                isinstance(to_level, bool) or not isinstance(to_level, int) or to_level < 2
            ):
                r.err(
                    kp, f"escalate to_level must be a level number of at least 2, not {to_level!r}"
                )
                continue
            out.append(Action("escalate", to_level=to_level))
        elif kind == "set_priority":
            if v not in PRIORITIES:
                r.err(kp, f"unknown priority {v!r} (use {', '.join(PRIORITIES)})")
                continue
            out.append(Action("set_priority", priority=v))
        elif kind == "webhook":
            url = v.get("url") if isinstance(v, dict) else v
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                r.err(kp, "webhook needs an http(s) URL")
                continue
            out.append(Action("webhook", url=url))
        else:
            r.err(
                kp,
                f"unknown action '{kind}' (use notify, assign, escalate, set_priority, webhook)",
                key=True,
            )
    return tuple(out)


def _schedules(r: _Reader, data: dict, known: dict[str, set[str]]) -> dict[str, Schedule]:
    out = {}
    for ident, m, p in r.entries("schedules", data):
        m = r.fields(
            m,
            p,
            f"schedule '{ident}'",
            ("id", "name", "timezone", "layers", "overrides", "fallback"),
            ("layers",),
        )
        if m is None:
            continue
        tz = _zone(r, m.get("timezone", "UTC"), (*p, "timezone")) or "UTC"
        layers = []
        lraw = m.get("layers")
        if "layers" in m and (not isinstance(lraw, list) or not lraw):
            r.err((*p, "layers"), "layers must be a non-empty list")
        if not isinstance(lraw, list):
            lraw = []
        for i, lv in enumerate(lraw):
            lp = (*p, "layers", i)
            lv = r.fields(
                lv,
                lp,
                "layer",
                ("name", "members", "shift", "start", "timezone", "restrict"),
                ("members", "shift", "start"),
            )
            if lv is None:
                continue
            members = r.strings(lv.get("members", []), (*lp, "members"), "members")
            if "members" in lv and not lv["members"]:
                r.err((*lp, "members"), "a layer needs at least one member")
            for j, who in enumerate(members):
                if who not in known["people"]:
                    hint = _hint(who, known["people"])
                    r.err(
                        (*lp, "members", j), f"unknown person '{who}' in schedule '{ident}'{hint}"
                    )
            start = _instant(r, lv["start"], (*lp, "start")) if "start" in lv else None
            ltz = _zone(r, lv["timezone"], (*lp, "timezone")) if "timezone" in lv else tz
            restrict = None
            if "restrict" in lv:
                _, restrict = _hours(r, lv["restrict"], (*lp, "restrict"))
            shift = lv.get("shift")
            if "shift" not in lv:
                continue  # reported as missing
            try:
                if parse_duration(shift) <= 0:
                    msg = f"shift '{shift}' is zero (write e.g. '1w', '1d' or '12h')"
                    r.err((*lp, "shift"), msg)
                    continue
            except DurationError as exc:
                r.err((*lp, "shift"), str(exc))
                continue
            if start is None or ltz is None or not members:
                continue
            layer = Layer(
                str(lv.get("name", f"layer {i + 1}")), tuple(members), shift, start, ltz, restrict
            )
            msg = layer_error(layer)
            if msg:
                r.err(lp, msg)
                continue
            layers.append(layer)
        overrides = []
        oraw = m.get("overrides") or []
        if not isinstance(oraw, list):
            r.err((*p, "overrides"), f"overrides must be a list, not {_kind(oraw)}")
            oraw = []
        for i, o in enumerate(oraw):
            op = (*p, "overrides", i)
            o = r.fields(o, op, "override", ("from", "to", "who"), ("from", "to", "who"))
            if o is None:
                continue
            a = _instant(r, o["from"], (*op, "from")) if "from" in o else None
            b = _instant(r, o["to"], (*op, "to")) if "to" in o else None
            who = o.get("who")
            if "who" not in o:
                continue  # reported as missing
            if who not in known["people"]:
                hint = _hint(who, known["people"])
                r.err((*op, "who"), f"unknown person '{who}' in override{hint}")
                continue
            if a is not None and b is not None:
                if b <= a:
                    r.err((*op, "to"), "override 'to' must be later than 'from'")
                    continue
                overrides.append(Override(a, b, who))
        fallback = None
        if "fallback" in m:
            t = _target(r, m["fallback"], (*p, "fallback"), known)
            fallback = str(t) if t else None
        out[ident] = Schedule(ident, tz, tuple(layers), tuple(overrides), fallback)
    return out


def _instant(r: _Reader, v: Any, path: Path) -> int | None:
    try:
        if hasattr(v, "tzinfo"):
            from rungs.time.instant import to_us

            return to_us(v)
        return parse_instant(str(v))
    except ValueError as exc:
        r.err(path, str(exc))
        return None


def _integrations(r: _Reader, data: dict, known: dict[str, set[str]]) -> dict[str, Integration]:
    out = {}
    allowed = (
        "id",
        "name",
        "key",
        "key_env",
        "format",
        "defaults",
        "matrix",
        "severity_map",
        "dedup",
        "interval",
        "rate_limit",
    )
    keys_seen: dict[str, str] = {}
    for ident, m, p in r.entries("integrations", data):
        m = r.fields(m, p, f"integration '{ident}'", allowed, ("format",))
        if m is None:
            continue
        fmt = m.get("format")
        if fmt not in FORMATS:
            r.err((*p, "format"), f"unknown integration format {fmt!r} (use {', '.join(FORMATS)})")
        if "key" not in m and "key_env" not in m:
            r.err(p, f"integration '{ident}' needs 'key' or 'key_env'")
        defaults: dict[str, str] = {}
        if "defaults" in m:
            dp = (*p, "defaults")
            dm = (
                r.fields(m["defaults"], dp, "defaults", ("customer", "category", "priority"), ())
                or {}
            )
            for k, v in dm.items():
                defaults[k] = str(v)
            _check_refs(
                r,
                "customer",
                [defaults["customer"]] if "customer" in defaults else [],
                (*dp, "customer"),
                known,
            )
            _check_refs(
                r,
                "priority",
                [defaults["priority"]] if "priority" in defaults else [],
                (*dp, "priority"),
                known,
            )
        matrix = r.string(m, "matrix", p)
        if matrix is not None and matrix not in known["matrices"]:
            r.err((*p, "matrix"), f"unknown matrix '{matrix}' for integration '{ident}'")
        options = _integration_options(r, m, p, ident, fmt)
        key = m.get("key")
        if key is not None:
            if not isinstance(key, str) or not key:
                r.err((*p, "key"), "an integration key must be a non-empty string")
            elif key in keys_seen:
                r.err((*p, "key"), f"integration '{ident}' has the key of '{keys_seen[key]}'")
            else:
                keys_seen[key] = ident
                if len(key) < 16:
                    r.warn(
                        (*p, "key"), f"integration '{ident}' has a short key: use 16+ characters"
                    )
        if fmt == "heartbeat" and "customer" not in defaults:
            r.err(p, f"heartbeat integration '{ident}' needs 'defaults: {{customer: ...}}'")
        out[ident] = Integration(
            ident,
            str(fmt),
            r.string(m, "key", p),
            r.string(m, "key_env", p),
            defaults,
            matrix,
            options,
        )
    return out


def _integration_options(
    r: _Reader, m: dict[str, Any], p: Path, ident: str, fmt: Any
) -> dict[str, Any]:
    """severity_map, dedup, interval and rate_limit of one integration, checked."""
    options: dict[str, Any] = {}
    if "severity_map" in m:
        sp = (*p, "severity_map")
        sm = r.fields(m["severity_map"], sp, "severity_map", SEVERITIES, ()) or {}
        for sev, prio in sm.items():
            if prio not in PRIORITIES:
                r.err((*sp, sev), f"unknown priority {prio!r} (use {', '.join(PRIORITIES)})")
        options["severity_map"] = {k: str(v) for k, v in sm.items()}
    if "dedup" in m:
        if fmt != "alertmanager":
            r.err((*p, "dedup"), "'dedup' is for alertmanager integrations")
        elif m["dedup"] not in ("fingerprint", "group_key"):
            r.err((*p, "dedup"), f"unknown dedup {m['dedup']!r} (use fingerprint or group_key)")
        options["dedup"] = m["dedup"]
    if "interval" in m:
        interval = r.duration(m, "interval", p)
        if fmt != "heartbeat":
            r.err((*p, "interval"), "'interval' is for heartbeat integrations")
        elif interval is not None and interval < 1_000_000:
            r.err((*p, "interval"), "a heartbeat interval is at least 1s")
        options["interval"] = interval
    elif fmt == "heartbeat":
        r.err(p, f"heartbeat integration '{ident}' needs an 'interval'")
    if "rate_limit" in m:
        rp = (*p, "rate_limit")
        rl = r.fields(m["rate_limit"], rp, "rate_limit", ("per_second", "burst"), ("per_second",))
        rl = dict(rl or {})
        for k, least, what in (("per_second", 0.0, "above 0"), ("burst", 1.0, "of at least 1")):
            v = rl.get(k, 1)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < least or v == 0:
                r.err((*rp, k), f"'{k}' must be a number {what}")
                rl.pop(k)
        if rl:
            options["rate_limit"] = dict(rl)
    return options


def _links(r: _Reader, data: dict) -> dict[str, Any]:
    if "links" not in data:
        return {}
    p: Path = ("links",)
    m = r.fields(data["links"], p, "links", ("base_url", "ttl"), ()) or {}
    out: dict[str, Any] = dict(m)
    if "ttl" in m:
        out["ttl"] = r.duration(m, "ttl", p)
    return out


def _warn_unstaffed(
    r: _Reader, matrices: tuple[Matrix, ...], teams: dict[str, Team], schedules: dict[str, Schedule]
) -> None:
    """A schedule target with gaps and no fallback anywhere could page nobody."""
    paths = {ident: p for ident, _, p in r.entries("matrices", r.loc.data)}
    for mx in matrices:
        for lv in mx.levels:
            for t in lv.notify:
                sid = (
                    t.id
                    if t.kind == "schedule"
                    else teams[t.id].schedule
                    if t.kind == "team" and t.id in teams
                    else None
                )
                if (
                    sid
                    and sid in schedules
                    and schedules[sid].fallback is None
                    and lv.fallback is None
                ):
                    r.warn(
                        (*paths[mx.id], "levels", lv.number - 1, "notify"),
                        f"matrix '{mx.id}' level {lv.number} targets schedule '{sid}' with no "
                        "fallback: if nobody is on call, nobody is paged",
                    )
