"""The on-call board: who is on call now per schedule and per matrix level, and the shifts
ahead (pure reads of the policy in force, its overrides included)."""

from __future__ import annotations

from typing import Any

from rungs.core.targets import people_of
from rungs.policy import Policy
from rungs.schedules.oncall import on_call, shifts
from rungs.time.instant import DAY, format_utc

__all__ = ["AHEAD", "board", "person_shifts"]

AHEAD = 14 * DAY  # how far ahead the board shows shifts


def _shift(s: Any) -> dict[str, Any]:
    return {"start": format_utc(s.start), "end": format_utc(s.end), "start_us": s.start,
            "end_us": s.end, "person": s.person, "source": s.source}  # fmt: skip


def board(policy: Policy, now: int, ahead: int = AHEAD) -> dict[str, Any]:
    """`schedules`: per schedule, who is on call now (from which layer or an override), who
    is paged (the fallback when nobody is) and the shifts of [now, now + ahead); `matrices`:
    per matrix level, the people its targets name now (as a page would find them)."""
    schedules = []
    for sid, s in policy.schedules.items():
        found = on_call(s, now)
        fallback = s.fallback
        schedules.append(
            {
                "id": sid,
                "timezone": s.timezone,
                "on_call": list(found.people),
                "source": found.source,
                "fallback": fallback,
                "paged": list(found.people) or ([fallback] if fallback else []),
                "shifts": [_shift(x) for x in shifts(s, now, now + ahead)],
            }
        )
    matrices = []
    for m in policy.matrices:
        levels = []
        for lv in m.levels:
            targets = [
                {"target": str(t), "people": people_of(policy, t, now, lv.fallback)}
                for t in lv.notify
            ]
            levels.append({"number": lv.number, "name": lv.name, "after_us": lv.after,
                           "targets": targets})  # fmt: skip
        match = {k: sorted(v) for k, v in m.match.items()}
        matrices.append({"id": m.id, "match": match, "levels": levels})
    return {"at": format_utc(now), "at_us": now, "from_us": now, "to_us": now + ahead,
            "schedules": schedules, "matrices": matrices}  # fmt: skip


def person_shifts(
    policy: Policy, person: str, now: int, ahead: int = AHEAD
) -> list[dict[str, Any]]:
    """The person's shifts in every schedule over [now, now + ahead), in time order."""
    out = [
        {**_shift(x), "schedule": sid}
        for sid, s in policy.schedules.items()
        for x in shifts(s, now, now + ahead)
        if x.person == person
    ]
    return sorted(out, key=lambda x: (x["start_us"], x["schedule"]))
