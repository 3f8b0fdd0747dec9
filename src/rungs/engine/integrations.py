"""Integrations of the policy at run time: keys, scoped dedup keys, and cases from alerts.

An integration (`integrations:` in the policy) has a key (`key`, or `key_env` naming an
environment variable) that only ingests, through its own format's endpoint. Dedup keys are
scoped per integration: the case's `dedup_key` is `INTEGRATION:KEY` (a SHA-256 form when that
would be longer than 255 characters), so two senders cannot fold into each other's cases.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from rungs.core.matrix import SCOPE_FIELDS
from rungs.policy import Policy
from rungs.policy.model import Integration
from rungs.policy.rate import Rate
from rungs.policy.secrets import SecretRefused, read_secret
from rungs.time.instant import format_duration, format_utc

__all__ = [
    "SEVERITY_PRIORITY",
    "integration_for_key",
    "scoped_key",
    "severity_priority",
    "rate_of",
    "case_data",
    "heartbeat_key",
    "heartbeat_case",
    "keys_unset",
]

log = logging.getLogger("rungs.ingest")
SEVERITY_PRIORITY = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P4"}
MAX_KEY = 255

_keys: weakref.WeakKeyDictionary[Policy, dict[str, Integration]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _index(policy: Policy) -> dict[str, Integration]:
    found = _keys.get(policy)
    if found is not None:
        return found
    out: dict[str, Integration] = {}
    for integ in policy.integrations.values():
        key = integ.key if integ.key is not None else _key_of(integ)
        if not key:
            log.warning(
                "integration '%s' has no key: $%s is not set; it takes nothing",
                integ.id,
                integ.key_env,
            )
            continue
        d = _digest(key)
        if d in out:
            log.warning("integrations '%s' and '%s' share a key", out[d].id, integ.id)
            continue
        out[d] = integ
    with _lock:
        _keys[policy] = out
    return out


def keys_unset(policy: Policy, environ: Mapping[str, str]) -> list[dict[str, str]]:
    """The integrations that take nothing because their `key_env` names a variable unset (or
    empty) in `environ`: said at start-up and on `/healthz`, not first at the first event."""
    return [
        {"integration": integ.id, "key_env": integ.key_env}
        for integ in policy.integrations.values()
        if integ.key is None and integ.key_env is not None and not _readable(integ.key_env, environ)
    ]


def _readable(name: str, environ: Mapping[str, str]) -> str | None:
    """The variable's value, None when unset, empty, or refused for lacking the prefix."""
    try:
        return read_secret(name, environ) or None
    except SecretRefused:
        return None


def _key_of(integ: Integration) -> str | None:
    """The key `key_env` names; None (logged) when the name lacks the deployment's prefix."""
    try:
        return read_secret(integ.key_env or "", os.environ)
    except SecretRefused as exc:
        log.warning("integration '%s': %s: its key is not read", integ.id, exc)
        return None


def integration_for_key(policy: Policy, key: str | None) -> Integration | None:
    """The integration whose key this is (compared by SHA-256), or None."""
    if not key or len(key) > 1000:
        return None
    return _index(policy).get(_digest(key))


def scoped_key(integration_id: str, key: str) -> str:
    """The case dedup key of an integration's own key."""
    scoped = f"{integration_id}:{key}"
    if len(scoped) <= MAX_KEY:
        return scoped
    return f"{integration_id[:150]}:sha256:{_digest(scoped)}"


def severity_priority(integ: Integration, severity: str | None) -> str | None:
    """The priority a severity maps to: the integration's `severity_map`, then the default."""
    if not severity:
        return None
    found = integ.options.severity_map.get(severity, SEVERITY_PRIORITY.get(severity))
    return str(found) if found else None


def rate_of(integ: Integration) -> Rate | None:
    return integ.options.rate_limit


def case_data(
    integ: Integration,
    *,
    dedup_key: str,
    title: str,
    description: str = "",
    priority: str | None = None,
    customer: str | None = None,
    category: str | None = None,
    fields: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    scope: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What `Commands.trigger` opens: the event's values over the integration's defaults."""
    d = integ.defaults
    data: dict[str, Any] = {
        "customer": customer or d.get("customer"),
        "category": category or d.get("category") or "general",
        "priority": priority or d.get("priority") or "P3",
        "title": (title or "(no summary)")[:1024],
        "description": description[:65_536],
        "fields": {"integration": integ.id, "format": integ.format, **(fields or {})},
        "tags": list(dict.fromkeys(tags))[:50],
        "dedup_key": scoped_key(integ.id, dedup_key),
        "actor": f"integration:{integ.id}",  # who opened it: the `opened` entry's `actor`
    }
    if integ.matrix:
        data["matrix"] = integ.matrix
    for k in SCOPE_FIELDS:
        v = (scope or {}).get(k)
        if isinstance(v, str) and v:
            data[k] = v[:200]
    return data


def heartbeat_key(integ: Integration) -> str:
    return scoped_key(integ.id, "heartbeat")


def heartbeat_case(integ: Integration, last_beat: int, interval: int) -> dict[str, Any]:
    every = format_duration(interval)
    data = case_data(
        integ,
        dedup_key="heartbeat",
        title=f"Heartbeat '{integ.id}' missed: no beat for {every} since {format_utc(last_beat)}",
        description=(
            f"The heartbeat integration '{integ.id}' expects a beat every {every}; the last "
            f"came at {format_utc(last_beat)}. The next beat resolves this case."
        ),
        fields={"last_beat": format_utc(last_beat), "interval": every},
    )
    return data
