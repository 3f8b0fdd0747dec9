"""`teams`: members and/or a schedule, and skills."""

from __future__ import annotations

from rungs.policy.model import Team
from rungs.policy.reader import Reader, hint
from rungs.policy.values import Known

__all__ = ["compile_teams"]


def compile_teams(r: Reader, known: Known) -> dict[str, Team]:
    out: dict[str, Team] = {}
    for ident, m, p in r.entries("teams"):
        m = r.fields(m, p, f"team '{ident}'", ("id", "name", "members", "schedule", "skills"), ())
        if m is None:
            continue
        members = r.strings(m.get("members", []), (*p, "members"), "members")
        for i, who in enumerate(members):
            if who not in known["people"]:
                r.err(
                    (*p, "members", i),
                    f"unknown person '{who}' in team '{ident}'{hint(who, known['people'])}",
                )
        schedule = r.string(m, "schedule", p)
        if schedule is not None and schedule not in known["schedules"]:
            near = hint(schedule, known["schedules"])
            r.err((*p, "schedule"), f"unknown schedule '{schedule}' for team '{ident}'{near}")
        if not members and schedule is None:
            r.err(p, f"team '{ident}' has neither members nor a schedule")
        skills = tuple(r.strings(m.get("skills", []), (*p, "skills"), "skills"))
        out[ident] = Team(ident, str(m.get("name", ident)), tuple(members), schedule, skills)
    return out
