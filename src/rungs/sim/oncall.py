"""`rungs oncall`: who is on call at an instant (and who is paged instead when nobody is),
or every shift over a range, as JSON-able reports and as tables.

Pure: the instant is given (the command passes "now" when `--at` is left out).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from rungs.policy.model import Policy
from rungs.schedules.oncall import on_call, shifts
from rungs.time.instant import format_utc

__all__ = ["at_report", "render_oncall", "shifts_report"]


def at_report(policy: Policy, schedule_ids: list[str], at: int) -> dict[str, dict[str, Any]]:
    """Per schedule: who is on call at `at`, from which layer, and who is `paged`: the people
    on call, else the schedule's fallback (the schedule resolves to "nobody" so the two can
    be told apart; a page goes to the fallback)."""
    out = {}
    for sid in schedule_ids:
        sched = policy.schedules[sid]
        found = on_call(sched, at)
        fallback = [sched.fallback] if sched.fallback else []
        out[sid] = {
            "schedule": sid,
            "at": format_utc(at),
            "on_call": list(found.people),
            "source": found.source,
            "fallback": sched.fallback,
            "paged": list(found.people) or fallback,
        }
    return out


def shifts_report(
    policy: Policy, schedule_ids: list[str], start: int, end: int
) -> dict[str, list[dict[str, str]]]:
    """Per schedule: every shift over [start, end) (the gaps between them go to the fallback)."""
    return {
        sid: [
            {
                "start": format_utc(s.start),
                "end": format_utc(s.end),
                "person": s.person,
                "source": s.source,
            }
            for s in shifts(policy.schedules[sid], start, end)
        ]
        for sid in schedule_ids
    }


def render_oncall(policy: Policy, report: dict[str, Any], console: Console) -> None:
    """One table per schedule; instants are never wrapped, and nothing reads `None`."""
    for sid, value in report.items():
        fallback = policy.schedules[sid].fallback
        table = Table(title=f"schedule {sid}")
        if isinstance(value, list):
            for col in ("start", "end", "person", "source"):
                table.add_column(col, no_wrap=col in ("start", "end"))
            for s in value:
                table.add_row(s["start"], s["end"], s["person"], s["source"])
            table.caption = f"between shifts: {fallback or 'nobody is paged'}"
        else:
            for col in ("at", "on call", "source", "fallback"):
                table.add_column(col, no_wrap=col == "at")
            who = ", ".join(value["on_call"]) or f"nobody: {fallback or 'nobody'} is paged"
            table.add_row(value["at"], who, value["source"] or "-", fallback or "none")
        console.print(table)
