"""`schedules`: rotation layers, overrides and a fallback, checked into `Schedule`s."""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.reader import Reader, hint, kind_of
from rungs.policy.values import Known, hours, target, zone
from rungs.schedules.oncall import Layer, Override, Schedule, layer_error
from rungs.time.instant import DurationError, checked, parse_duration, parse_instant, to_us

__all__ = ["compile_schedules"]

_FIELDS = ("id", "name", "timezone", "layers", "overrides", "fallback")
_LAYER = ("name", "members", "shift", "start", "timezone", "restrict")


def compile_schedules(r: Reader, known: Known) -> dict[str, Schedule]:
    out = {}
    for ident, m, p in r.entries("schedules"):
        m = r.fields(m, p, f"schedule '{ident}'", _FIELDS, ("layers",))
        if m is None:
            continue
        tz = zone(r, m.get("timezone", "UTC"), (*p, "timezone")) or "UTC"
        layers = []
        lraw = m.get("layers")
        if "layers" in m and (not isinstance(lraw, list) or not lraw):
            r.err((*p, "layers"), "layers must be a non-empty list")
        if not isinstance(lraw, list):
            lraw = []
        for i, lv in enumerate(lraw):
            layer = _layer(r, ident, i, lv, (*p, "layers", i), tz, known)
            if layer is not None:
                layers.append(layer)
        overrides = []
        oraw = m.get("overrides") or []
        if not isinstance(oraw, list):
            r.err((*p, "overrides"), f"overrides must be a list, not {kind_of(oraw)}")
            oraw = []
        for i, o in enumerate(oraw):
            found = _override(r, o, (*p, "overrides", i), known)
            if found is not None:
                overrides.append(found)
        fallback = None
        if "fallback" in m:
            t = target(r, m["fallback"], (*p, "fallback"), known)
            fallback = str(t) if t else None
        out[ident] = Schedule(ident, tz, tuple(layers), tuple(overrides), fallback)
    return out


def _layer(
    r: Reader, ident: str, i: int, value: Any, lp: Path, tz: str, known: Known
) -> Layer | None:
    """Layer `i` of schedule `ident`; None when it is unusable (and reported)."""
    lv = r.fields(value, lp, "layer", _LAYER, ("members", "shift", "start"))
    if lv is None:
        return None
    members = r.strings(lv.get("members", []), (*lp, "members"), "members")
    if "members" in lv and not lv["members"]:
        r.err((*lp, "members"), "a layer needs at least one member")
    for j, who in enumerate(members):
        if who not in known["people"]:
            near = hint(who, known["people"])
            r.err((*lp, "members", j), f"unknown person '{who}' in schedule '{ident}'{near}")
    start = _instant(r, lv["start"], (*lp, "start")) if "start" in lv else None
    ltz = zone(r, lv["timezone"], (*lp, "timezone")) if "timezone" in lv else tz
    restrict = None
    if "restrict" in lv:
        _, restrict = hours(r, lv["restrict"], (*lp, "restrict"))
    shift = lv.get("shift")
    if "shift" not in lv:
        return None  # reported as missing
    try:
        if parse_duration(shift) <= 0:
            r.err((*lp, "shift"), f"shift '{shift}' is zero (write e.g. '1w', '1d' or '12h')")
            return None
    except DurationError as exc:
        r.err((*lp, "shift"), str(exc))
        return None
    if start is None or ltz is None or not members:
        return None
    name = str(lv.get("name", f"layer {i + 1}"))
    layer = Layer(name, tuple(members), shift, start, ltz, restrict)
    msg = layer_error(layer)
    if msg:
        r.err(lp, msg)
        return None
    return layer


def _override(r: Reader, value: Any, op: Path, known: Known) -> Override | None:
    """One override: `who` is on call `from` one instant `to` a later one."""
    o = r.fields(value, op, "override", ("from", "to", "who"), ("from", "to", "who"))
    if o is None:
        return None
    a = _instant(r, o["from"], (*op, "from")) if "from" in o else None
    b = _instant(r, o["to"], (*op, "to")) if "to" in o else None
    who = o.get("who")
    if "who" not in o:
        return None  # reported as missing
    if isinstance(who, dict | list):  # not an id at all (and could not be looked up)
        r.err((*op, "who"), f"'who' must be a person's id, not {kind_of(who)}")
        return None
    if who not in known["people"]:
        near = hint(who, known["people"])
        r.err((*op, "who"), f"unknown person '{who}' in override{near}")
        return None
    if a is None or b is None:
        return None
    if b <= a:
        r.err((*op, "to"), "override 'to' must be later than 'from'")
        return None
    return Override(a, b, who)


def _instant(r: Reader, v: Any, path: Path) -> int | None:
    """An instant written as text, or a date and time YAML already read as one."""
    try:
        if hasattr(v, "tzinfo"):
            return checked(to_us(v))
        return parse_instant(str(v))
    except ValueError as exc:
        r.err(path, str(exc))
        return None
