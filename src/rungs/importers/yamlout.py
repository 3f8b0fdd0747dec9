"""A `Draft` as policy YAML, each entry with a comment naming its source id.

Written as text (no YAML library keeps comments, and the shape is fixed): every string is a
JSON string, which YAML reads as a double-quoted scalar, so no name or address can break the
file. The result is compiled by `rungs.policy` before anything trusts it (`shiftcheck`).
"""

from __future__ import annotations

import json

from rungs.importers.common import instant_text
from rungs.importers.plan import Draft, Layer, Matrix, Person, Schedule

__all__ = ["to_yaml"]


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _list(items: list[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def to_yaml(draft: Draft, title: str) -> str:
    """The policy text for `draft`; `title` is the first comment line (where it came from)."""
    out = [f"# {line}" for line in title.splitlines()]
    out += ["version: 1", ""]
    if draft.people:
        out.append("people:")
        for p in draft.people:
            out += _person(p, draft.vendor)
        out.append("")
    if draft.teams:
        out.append("teams:")
        for t in draft.teams:
            out.append(f"  - id: {_q(t.id)}  # {draft.vendor} team {t.source}")
            out.append(f"    name: {_q(t.name)}")
            out.append(f"    members: {_list(t.members)}")
        out.append("")
    if draft.schedules:
        out.append("schedules:")
        for s in draft.schedules:
            out += _schedule(s, draft.vendor)
        out.append("")
    if draft.matrices:
        out.append("matrices:")
        for m in draft.matrices:
            out += _matrix(m, draft.vendor)
        out.append("")
    if draft.integrations:
        out.append("# Routing keys are not exported: set each key_env, then re-point the sender.")
        out.append("integrations:")
        for i in draft.integrations:
            out.append(f"  - id: {_q(i.id)}  # {draft.vendor} integration {i.source}")
            out.append(f"    name: {_q(i.name)}")
            out.append(f"    format: {i.format}")
            out.append(f"    key_env: {i.key_env}")
            if i.matrix:
                out.append(f"    matrix: {_q(i.matrix)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _person(p: Person, vendor: str) -> list[str]:
    lines = [f"  - id: {_q(p.id)}  # {vendor} user {p.source}", f"    name: {_q(p.name)}"]
    if p.timezone:
        lines.append(f"    timezone: {_q(p.timezone)}")
    contacts = {"email": p.email, **p.contacts}
    lines.append("    contacts:")
    lines += [f"      {k}: {_q(v)}" for k, v in contacts.items()]
    if p.notify:
        lines.append("    notify:")
        lines += [f"      - {{after: {after}m, via: {via}}}" for after, via in p.notify]
    return lines


def _schedule(s: Schedule, vendor: str) -> list[str]:
    lines = [
        f"  - id: {_q(s.id)}  # {vendor} schedule {s.source}",
        f"    name: {_q(s.name)}",
        f"    timezone: {_q(s.timezone)}",
        "    layers:",
    ]
    for layer in s.layers:
        lines += _layer(layer)
    if s.overrides:
        lines.append("    overrides:")
        for o in s.overrides:
            note = f"  # {vendor} override {o.source}" if o.source else ""
            lines.append(
                f"      - {{from: {_q(instant_text(o.start, s.timezone))}, "
                f"to: {_q(instant_text(o.end, s.timezone))}, who: {_q(o.who)}}}{note}"
            )
    return lines


def _layer(layer: Layer) -> list[str]:
    lines = [
        f"      - name: {_q(layer.name)}",
        f"        members: {_list(layer.members)}",
        f"        shift: {layer.shift}",
        f"        start: {_q(instant_text(layer.start, layer.timezone))}",
        f"        timezone: {_q(layer.timezone)}",
    ]
    if layer.restrict is not None:
        spans = ", ".join(f"{d}: {_q(v)}" for d, v in layer.restrict.items())
        lines.append(f"        restrict: {{{spans}}}")
    return lines


def _matrix(m: Matrix, vendor: str) -> list[str]:
    lines = [
        f"  - id: {_q(m.id)}  # {vendor} escalation policy {m.source}",
        f"    name: {_q(m.name)}",
        "    levels:",
    ]
    for n, lv in enumerate(m.levels, 1):
        lines.append(f"      - name: {_q(lv.name or f'{m.name} step {n}')}")
        if n > 1:
            lines.append(f"        after: {lv.after}m")
            lines.append(f"        unless: {lv.unless}")
        lines.append(f"        notify: {_list(lv.notify)}")
    if m.repeat is not None:
        every, times = m.repeat
        lines.append(f"    repeat: {{every: {every}m, times: {times}}}")
    return lines
