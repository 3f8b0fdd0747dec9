"""`integrations`: sender keys and formats, their defaults and per-format options."""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import (
    PRIORITIES,
    AlertmanagerOptions,
    HeartbeatOptions,
    Integration,
    IntegrationOptions,
)
from rungs.policy.rate import Rate
from rungs.policy.reader import Reader
from rungs.policy.sections.storms import STORM_FIELDS, read_storm_options
from rungs.policy.values import Known, check_refs

__all__ = ["compile_integrations"]

FORMATS = ("pagerduty", "alertmanager", "opsgenie", "events", "heartbeat")
SEVERITIES = ("critical", "error", "warning", "info")


def compile_integrations(r: Reader, known: Known) -> dict[str, Integration]:
    out = {}
    allowed = (
        "id",
        "name",
        "key",
        "key_env",
        "format",
        "defaults",
        "matrix",
        "severity_map",
        "dedup",
        "interval",
        "rate_limit",
        *STORM_FIELDS,
    )
    keys_seen: dict[str, str] = {}
    for ident, m, p in r.entries("integrations"):
        m = r.fields(m, p, f"integration '{ident}'", allowed, ("format",))
        if m is None:
            continue
        fmt = m.get("format")
        if fmt not in FORMATS:
            r.err((*p, "format"), f"unknown integration format {fmt!r} (use {', '.join(FORMATS)})")
        if "key" not in m and "key_env" not in m:
            r.err(p, f"integration '{ident}' needs 'key' or 'key_env'")
        key_env = r.string(m, "key_env", p)
        if key_env is not None:
            r.env_name((*p, "key_env"), "key_env", key_env)
        defaults: dict[str, str] = {}
        if "defaults" in m:
            dp = (*p, "defaults")
            dm = (
                r.fields(m["defaults"], dp, "defaults", ("customer", "category", "priority"), ())
                or {}
            )
            for k, v in dm.items():
                defaults[k] = str(v)
            for k in ("customer", "priority"):
                check_refs(r, k, [defaults[k]] if k in defaults else [], (*dp, k), known)
        matrix = r.string(m, "matrix", p)
        if matrix is not None and matrix not in known["matrices"]:
            r.err((*p, "matrix"), f"unknown matrix '{matrix}' for integration '{ident}'")
        options = _options(r, m, p, ident, fmt)
        key = m.get("key")
        if key is not None:
            if not isinstance(key, str) or not key:
                r.err((*p, "key"), "an integration key must be a non-empty string")
            elif key in keys_seen:
                r.err((*p, "key"), f"integration '{ident}' has the key of '{keys_seen[key]}'")
            else:
                keys_seen[key] = ident
                if len(key) < 16:
                    r.warn(
                        (*p, "key"), f"integration '{ident}' has a short key: use 16+ characters"
                    )
        if fmt == "heartbeat" and "customer" not in defaults:
            r.err(p, f"heartbeat integration '{ident}' needs 'defaults: {{customer: ...}}'")
        out[ident] = Integration(
            ident,
            str(fmt),
            r.string(m, "key", p),
            key_env,
            defaults,
            matrix,
            options,
        )
    return out


def _options(r: Reader, m: dict[str, Any], p: Path, ident: str, fmt: Any) -> IntegrationOptions:
    """severity_map, dedup, interval and rate_limit of one integration, checked and typed by
    its format (values of a policy with errors are never used)."""
    severity_map: dict[str, str] = {}
    if "severity_map" in m:
        sp = (*p, "severity_map")
        sm = r.fields(m["severity_map"], sp, "severity_map", SEVERITIES, ()) or {}
        for sev, prio in sm.items():
            if prio not in PRIORITIES:
                r.err((*sp, sev), f"unknown priority {prio!r} (use {', '.join(PRIORITIES)})")
        severity_map = {k: str(v) for k, v in sm.items()}
    dedup = "fingerprint"
    if "dedup" in m:
        if fmt != "alertmanager":
            r.err((*p, "dedup"), "'dedup' is for alertmanager integrations")
        elif m["dedup"] not in ("fingerprint", "group_key"):
            r.err((*p, "dedup"), f"unknown dedup {m['dedup']!r} (use fingerprint or group_key)")
        else:
            dedup = m["dedup"]
    interval = None
    if "interval" in m:
        interval = r.duration(m, "interval", p)
        if fmt != "heartbeat":
            r.err((*p, "interval"), "'interval' is for heartbeat integrations")
        elif interval is not None and interval < 1_000_000:
            r.err((*p, "interval"), "a heartbeat interval is at least 1s")
    elif fmt == "heartbeat":
        r.err(p, f"heartbeat integration '{ident}' needs an 'interval'")
    rate = _rate_limit(r, m["rate_limit"], (*p, "rate_limit")) if "rate_limit" in m else None
    grouping, storm, flap = read_storm_options(r, m, p)
    if fmt == "heartbeat" and (grouping or storm or flap):
        r.err(p, "grouping, storm and flap are for alert integrations, not heartbeats")
    common = {"grouping": grouping, "storm": storm, "flap": flap}
    if fmt == "alertmanager":
        return AlertmanagerOptions(
            severity_map=severity_map, rate_limit=rate, dedup=dedup, **common
        )
    if fmt == "heartbeat":
        return HeartbeatOptions(severity_map=severity_map, rate_limit=rate, interval=interval or 0)
    return IntegrationOptions(severity_map=severity_map, rate_limit=rate, **common)


def _rate_limit(r: Reader, value: Any, rp: Path) -> Rate | None:
    """`{per_second, burst}` of one integration key (burst: twice the rate, at least 1)."""
    rl = dict(r.fields(value, rp, "rate_limit", ("per_second", "burst"), ("per_second",)) or {})
    for k, least, what in (("per_second", 0.0, "above 0"), ("burst", 1.0, "of at least 1")):
        v = rl.get(k, 1)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < least or v == 0:
            r.err((*rp, k), f"'{k}' must be a number {what}")
            rl.pop(k)
    if "per_second" not in rl:
        return None
    per_second = float(rl["per_second"])
    return Rate(per_second, float(rl.get("burst") or max(1.0, 2 * per_second)))
