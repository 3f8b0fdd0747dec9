"""Who a target names at an instant: a person, a team's members or whoever is on call.

Pure look-ups over the policy, shared by decisions (which record what they found out: an
override used, nobody on call) and by readers such as the handoff (which record nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rungs.core.model import Refused
from rungs.policy.model import Policy, Target
from rungs.schedules.oncall import on_call

__all__ = ["Note", "people_of", "parse_target"]

Note = Callable[..., None]
"""Told what a look-up found out: `note(kind, **fields)`, as `Ctx.record` takes it."""


def _ignore(kind: str, **fields: Any) -> None:
    """A reader's `note`: nothing is recorded."""


def people_of(
    policy: Policy,
    target: Target,
    now: int,
    fallback: Target | None = None,
    note: Note = _ignore,
) -> list[str]:
    """The people a target names at `now`; a schedule with nobody on call uses a fallback."""
    if target.kind == "person":
        return [target.id]
    schedule_id = target.id
    if target.kind == "team":
        team = policy.teams[target.id]
        if team.schedule is None:
            return list(team.members)
        schedule_id = team.schedule
    schedule = policy.schedules[schedule_id]
    found = on_call(schedule, now)
    if found.people:
        if found.source == "override":
            note("override_used", schedule=schedule_id, who=list(found.people))
        return list(found.people)
    chosen = fallback or (_split(schedule.fallback) if schedule.fallback else None)
    note("nobody_on_call", schedule=schedule_id, fallback=str(chosen) if chosen else None)
    if chosen is None or (chosen.kind == "schedule" and chosen.id == schedule_id):
        return []
    return people_of(policy, chosen, now, None, note)


def _split(text: str) -> Target:
    kind, _, ident = text.partition(":")
    return Target(kind, ident)


def parse_target(text: object, policy: Policy) -> Target:
    """`team:ID`, `person:ID` (or `schedule:ID`) of the policy; `Refused` otherwise."""
    if not isinstance(text, str) or ":" not in text:
        raise Refused(f"'to' must be 'team:ID' or 'person:ID', not {text!r}", 422, "to")
    kind, _, ident = text.partition(":")
    table = {"team": policy.teams, "person": policy.people, "schedule": policy.schedules}.get(kind)
    if table is None:
        raise Refused(f"'to' must be 'team:ID' or 'person:ID', not {text!r}", 422, "to")
    if ident not in table:
        raise Refused(f"unknown {kind} '{ident}'", 422, "to")
    return Target(kind, ident)
