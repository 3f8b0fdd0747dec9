"""`rules`: conditions on a case (and its age) and the actions they take.

Also `check_rule_levels`: an escalation past every matrix's last level could never act.
"""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import MATCH_KEYS, METRICS, PRIORITIES, STATUSES, Action, Rule
from rungs.policy.reader import Reader
from rungs.policy.values import Known, calendar_ref, check_refs, target, targets
from rungs.time.calendar import Calendar

__all__ = ["compile_rules", "check_rule_levels", "RULE_KEYS", "STATUSES"]

RULE_KEYS = (*MATCH_KEYS, "status", "level", "assignee", "sla_breached", "sla_warning")


def compile_rules(r: Reader, calendars: dict[str, Calendar], known: Known) -> tuple[Rule, ...]:
    out = []
    for ident, m, p in r.entries("rules"):
        m = r.fields(m, p, f"rule '{ident}'", ("id", "name", "when", "then", "calendar"), ("then",))
        if m is None:
            continue
        when: dict[str, frozenset[str | int]] = {}
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
        cal = calendar_ref(r, m, p, calendars) if "calendar" in m else None
        actions = _actions(r, m["then"], (*p, "then"), known) if "then" in m else ()
        out.append(Rule(ident, when, actions, age_over, since, cal))
    return tuple(out)


def _when_values(
    r: Reader, key: str, v: Any, path: Path, known: Known
) -> frozenset[str | int] | None:
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
        check_refs(r, key, vals, path, known)
    return frozenset(vals)


def _actions(r: Reader, value: Any, path: Path, known: Known) -> tuple[Action, ...]:
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
            out.append(Action("notify", targets=targets(r, v, kp, known)))
        elif kind == "assign":
            t = target(r, v, kp, known)
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


def check_rule_levels(r: Reader) -> None:
    """A rule that escalates past the last level of every matrix could never act."""
    deepest = max(
        (
            len(m["levels"])
            for _, m, _ in r.entries("matrices")
            if isinstance(m.get("levels"), list)
        ),
        default=0,
    )
    if not deepest:
        return
    for ident, m, p in r.entries("rules"):
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
