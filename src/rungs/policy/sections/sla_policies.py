"""`sla_policies`: targets per priority and metric on a calendar, warnings, pauses."""

from __future__ import annotations

from rungs.policy.model import METRICS, PRIORITIES, SlaPolicy, SlaTargets
from rungs.policy.reader import Reader
from rungs.policy.values import calendar_ref
from rungs.time.calendar import Calendar
from rungs.time.instant import parse_duration

__all__ = ["compile_sla_policies"]

DEFAULT_RESOLUTION = parse_duration("30d")
_FIELDS = ("id", "name", "calendar", "warn_at", "pause_on", "targets")


def compile_sla_policies(r: Reader, calendars: dict[str, Calendar]) -> dict[str, SlaPolicy]:
    out = {}
    for ident, m, p in r.entries("sla_policies"):
        m = r.fields(m, p, f"SLA policy '{ident}'", _FIELDS, ("targets",))
        if m is None:
            continue
        cal = calendar_ref(r, m, p, calendars)
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
