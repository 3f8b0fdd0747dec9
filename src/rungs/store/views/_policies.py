"""Policy versions as people review them: who stored each, when, from where, and what each
changed from the one before (`rungs.policy.diff`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from rungs.policy.diff import diff_texts, render_diff
from rungs.store.tables import policies
from rungs.time.instant import format_utc

__all__ = ["history", "version_diff"]


def history(conn: Connection, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    """The newest versions (at most `limit`), newest first, and how many are stored."""
    total = conn.execute(select(func.count()).select_from(policies)).scalar_one()
    rows = conn.execute(
        select(policies.c.version, policies.c.source, policies.c.created_at)
        .order_by(policies.c.version.desc())
        .limit(limit)
    ).all()
    out = [
        {
            "version": r.version,
            "source": r.source,
            "stored_by": stored_by(r.source),
            "created_at": format_utc(r.created_at),
            "created_us": r.created_at,
        }
        for r in rows
    ]
    return out, int(total)


def stored_by(source: str) -> str:
    """Who stored a version, from its source: `web:alice` (the console) names the person;
    `PUT /v1/policy` the API; a file path `rungs serve --policy`."""
    if source.startswith("web:"):
        return source[4:]
    if source.startswith("PUT "):
        return "API"
    return f"file {source}" if source else "unknown"


def version_diff(conn: Connection, version: int) -> dict[str, Any] | None:
    """What `version` changed from the version stored before it (None: no such version;
    `previous` None: the first version)."""
    row = conn.execute(select(policies.c.yaml).where(policies.c.version == version)).first()
    if row is None:
        return None
    prev = conn.execute(
        select(policies.c.version, policies.c.yaml)
        .where(policies.c.version < version)
        .order_by(policies.c.version.desc())
        .limit(1)
    ).first()
    if prev is None:
        return {"version": version, "previous": None, "lines": [], "changes": None}
    diff = diff_texts(prev.yaml, row.yaml)
    return {
        "version": version,
        "previous": prev.version,
        "lines": render_diff(diff),
        "changes": diff.as_dict(),
    }
