"""`people`: contacts and personal notification steps (email at once by default)."""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import CHANNELS, CONSOLE_ROLES, DEFAULT_STEPS, NotifyStep, Person
from rungs.policy.reader import Reader, hint
from rungs.policy.values import zone

__all__ = ["compile_people"]

_FIELDS = ("id", "name", "contacts", "notify", "timezone", "email", "console_role")


def compile_people(r: Reader) -> dict[str, Person]:
    out: dict[str, Person] = {}
    for ident, m, p in r.entries("people"):
        m = r.fields(m, p, f"person '{ident}'", _FIELDS, ())
        if m is None:
            continue
        contacts, declared = _contacts(r, m, p)
        if isinstance(m.get("email"), str):
            contacts.setdefault("email", m["email"])
        steps = DEFAULT_STEPS
        if "notify" in m:
            steps = _steps(r, ident, m["notify"], (*p, "notify"), contacts, declared)
        elif "email" not in contacts:
            r.err(
                p,
                f"person '{ident}' has no email contact for the default rule (email at once); "
                "add contacts.email or notify steps",
            )
        tzname = zone(r, m["timezone"], (*p, "timezone")) if "timezone" in m else None
        role = m.get("console_role", "responder")
        if role not in CONSOLE_ROLES:
            r.err(
                (*p, "console_role"),
                f"console_role must be one of {', '.join(CONSOLE_ROLES)}, not '{role}'",
            )
            role = "responder"
        out[ident] = Person(ident, str(m.get("name", ident)), contacts, steps, tzname, role)
    return out


def _contacts(r: Reader, m: dict[str, Any], p: Path) -> tuple[dict[str, str], set[str]]:
    """(valid contacts, every method written): a step on a broken contact is not reported
    twice."""
    contacts: dict[str, str] = {}
    declared: set[str] = set()
    if "contacts" not in m:
        return contacts, declared
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
    return contacts, declared


def _steps(
    r: Reader,
    ident: str,
    value: Any,
    np_: Path,
    contacts: dict[str, str],
    declared: set[str],
) -> tuple[NotifyStep, ...]:
    """The person's `notify` steps, in time order; each needs a contact for its channel."""
    raw = value if isinstance(value, list) else None
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
            msg = f"unknown channel '{via}'{hint(via, CHANNELS)} (use {', '.join(CHANNELS)})"
            r.err((*sp, "via"), msg)
            continue
        if via not in contacts:
            if via not in declared:
                have = ", ".join(sorted(contacts)) or "none"
                r.err(
                    (*sp, "via"),
                    f"person '{ident}' has no '{via}' contact for this step (contacts: {have})",
                )
            continue
        parsed.append(NotifyStep(after or 0, via))
    return tuple(sorted(parsed, key=lambda s: s.after))
