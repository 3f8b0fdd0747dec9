"""Validate plain policy data and compile it into `rungs.policy.model` objects.

Every problem is collected (never the first only), each pointing at the offending value. Each
top-level key is compiled by its module in `rungs.policy.sections`, in the order below: ids are
read first so any section can check a reference to another.
"""

from __future__ import annotations

from rungs.policy import sections as s
from rungs.policy.loader import Located
from rungs.policy.model import Policy
from rungs.policy.reader import Reader, hint, kind_of
from rungs.policy.secrets import DEFAULT_PREFIX
from rungs.policy.values import Known

__all__ = ["compile_policy", "SECTIONS"]

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
    "inbound_email",
    "surveys",
    "compensation",
)
# Sections whose ids others refer to, in the order their entries are first read.
_REFERENCED = (
    "people",
    "teams",
    "schedules",
    "customers",
    "partners",
    "calendars",
    "sla_policies",
    "matrices",
)


def compile_policy(
    loc: Located, folder: str = ".", *, secret_prefix: str | None = DEFAULT_PREFIX
) -> Policy | None:
    """Compile located data; problems go to `loc.problems`; None when any error was found.
    `*_env` names must start with `secret_prefix` (None: a stored version, accepted before,
    read again; its names are checked where they are read)."""
    r = Reader(loc, secret_prefix=secret_prefix)
    data = loc.data
    if data is None:
        if not loc.problems:
            r.err((), "the policy is empty")
        return None
    if not isinstance(data, dict):
        r.err((), f"a policy must be a mapping of sections, not {kind_of(data)}")
        return None
    for k in data:
        if k not in SECTIONS:
            near = hint(k, SECTIONS) or f" (known: {', '.join(SECTIONS)})"
            r.err((k,), f"unknown section '{k}'{near}", key=True)
    s.compile_version(r)
    tz = s.compile_timezone(r)
    known: Known = {section: r.ids(section) for section in _REFERENCED}

    calendars = s.compile_calendars(r)
    people = s.compile_people(r)
    schedules = s.compile_schedules(r, known)
    teams = s.compile_teams(r, known)
    partners = s.compile_partners(r, known)
    sla = s.compile_sla_policies(r, calendars)
    customers = s.compile_customers(r, known)
    default_customer = s.compile_default_customer(r, known)
    reasons = s.compile_reasons(r)
    matrices = s.compile_matrices(r, calendars, known)
    rules = s.compile_rules(r, calendars, known)
    s.check_rule_levels(r)
    integrations = s.compile_integrations(r, known)
    channels = s.compile_channels(r)
    links = s.compile_links(r)
    inbound_email = s.compile_inbound_email(r, reasons)
    surveys = s.compile_surveys(r)
    tiers_used = {c.tier for c in customers.values() if c.tier}
    compensation = s.compile_compensation(r, tiers_used)
    s.warn_unstaffed(r, matrices, teams, schedules)

    if r.has_errors():
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
        compensation=compensation,
        source=loc.file,
        folder=folder,
        inbound_email=inbound_email,
        surveys=surveys,
    )
