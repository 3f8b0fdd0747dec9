"""`rungs simulate --explain CASE`: why each SLA metric stands where it does.

For every metric: the business intervals that counted, what did not count (pauses, holidays,
closed hours), the target, the due instant, and when it warned or breached.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from rungs.core import sla
from rungs.core.handoff import clock_name
from rungs.core.model import Case
from rungs.policy import Policy
from rungs.policy.model import METRICS
from rungs.sim.runner import Simulation
from rungs.time.calendar import WALL_CLOCK
from rungs.time.instant import format_duration, format_local, format_utc

__all__ = ["explain", "explain_case", "render_explain"]


def _span(a: int, b: int, tz: Any) -> dict[str, str]:
    return {
        "from": format_utc(a),
        "to": format_utc(b),
        "local_from": format_local(a, tz),
        "local_to": format_local(b, tz),
    }


def _short(text: str) -> str:
    """`2026-12-23T15:00:00+01:00` as `2026-12-23 15:00` for tables (the zone is in the title)."""
    return text[:16].replace("T", " ")


def explain_case(sim: Simulation, case_id: str) -> dict[str, Any]:
    """A JSON-able report for one case at the simulation's current instant."""
    entries = [e for e in sim.timeline if e["case"] == case_id]
    return explain(sim.cases[case_id], sim.policy, entries, sim.now)


def explain(case: Case, policy: Policy, entries: list[dict[str, Any]], now: int) -> dict[str, Any]:
    """The report for `case` at `now` from its timeline `entries` (also the console's "why?")."""
    case_id = case.id
    policy_sla = sla.policy_for(case, policy)
    cal = policy_sla.calendar if policy_sla else WALL_CLOCK
    tz = cal.tz
    report: dict[str, Any] = {
        "case": case_id,
        "at": format_utc(now),
        "priority": case.priority,
        "sla_policy": policy_sla.id if policy_sla else None,
        "calendar": cal.id,
        "clock": clock_name(cal),
        "timezone": cal.timezone,
        "metrics": [],
    }
    read = {c.metric: c for c in sla.read_clocks(case, policy, now)}
    for name in METRICS:
        c = read.get(name)
        m = c.measured if c is not None else None
        if c is None or m is None or c.state == "idle":
            state = "not started" if c is not None else f"no target for {case.priority}"
            target = c.target if c is not None else None
            report["metrics"].append({"metric": name, "state": state, "target": _d(target)})
            continue
        segments = list(m.segments)
        if m.state == "running":
            segments.append((m.since, now))
        counted, skipped = [], []
        total = 0
        for i, (a, b) in enumerate(segments):
            for s, e in cal.open_intervals_us(a, b):
                total += e - s
                counted.append({**_span(s, e, tz), "counted": format_duration(e - s)})
            for s, e, why in cal.closures_us(a, b):
                skipped.append({**_span(s, e, tz), "reason": why})
            if i + 1 < len(segments):
                skipped.append({**_span(b, segments[i + 1][0], tz), "reason": "paused (pending)"})
        if m.state == "paused":
            skipped.append(
                {
                    **_span(segments[-1][1] if segments else m.since, now, tz),
                    "reason": "paused (pending)",
                }
            )
        skipped.sort(key=lambda s: s["from"])
        target, elapsed, due = c.target, c.elapsed, c.due
        overdue = elapsed - target if m.breached and elapsed > target else None
        events = [
            {"at": format_utc(e["at"]), "kind": e["kind"], "percent": e.get("percent")}
            for e in entries
            if e["kind"] in ("sla_warning", "sla_breached") and e.get("metric") == name
        ]
        report["metrics"].append(
            {
                "metric": name,
                "state": {"stopped": "stopped (met or ended)"}.get(m.state, m.state),
                "started": format_utc(m.started),
                "target": _d(target),
                "elapsed": format_duration(elapsed),
                "elapsed_us": elapsed,
                "counted_total_us": total,
                "remaining": _d(max(0, target - elapsed)),
                "breached": m.breached,
                "overdue": _d(overdue),
                "due": format_utc(due) if due is not None else None,
                "due_local": format_local(due, tz) if due is not None else None,
                "counted": counted,
                "not_counted": skipped,
                "events": events,
            }
        )
    return report


def _d(us: int | None) -> str | None:
    return format_duration(us) if us is not None else None


def render_explain(report: dict[str, Any], console: Console) -> None:
    """The report as text: each target with its clock ("80h business", "4h calendar"), how
    far a breached one is overdue, and no Python `None` anywhere."""
    sla_policy = report["sla_policy"] or "none"
    console.print(
        f"[bold]case {report['case']}[/bold] at {report['at']}: priority {report['priority']}, "
        f"SLA policy {sla_policy}, calendar {report['calendar']} ({report['timezone']}, "
        f"{report['clock']} time)"
    )
    for m in report["metrics"]:
        head = f"\n[bold]{m['metric']}[/bold]: {m['state']}"
        if m["target"] is not None:
            head += f", target {m['target']} {report['clock']}"
        if "elapsed" in m:
            head += f", elapsed {m['elapsed']}, remaining {m['remaining']}"
            if m["breached"]:
                head += ", [red]BREACHED[/red]"
                head += f" ({m['overdue']} overdue)" if m["overdue"] else ""
            if m["due"]:
                head += f", due {m['due']} ({m['due_local']})"
        console.print(head)
        if "counted" not in m:
            continue
        table = Table(show_header=True, header_style="bold")
        for col in ("from (local)", "to (local)"):
            table.add_column(col, no_wrap=True)
        table.add_column("counted / why not")
        rows = [
            (_short(c["local_from"]), _short(c["local_to"]), f"counted {c['counted']}")
            for c in m["counted"]
        ]
        rows += [
            (_short(s["local_from"]), _short(s["local_to"]), s["reason"]) for s in m["not_counted"]
        ]
        for row in sorted(rows):
            table.add_row(*row)
        console.print(table)
        for e in m["events"]:
            what = f"warning at {e['percent']}%" if e["kind"] == "sla_warning" else "breach"
            console.print(f"  {e['at']}: {what}")
