"""Reads for customers' mail and surveys: unmatched mail, a case's attachments, a survey by
its token, and the CSAT figures the reports use.

CSAT is good ÷ answered (good: 4 or 5 on the 5-point scale, 2 on the 2-point one); the
response rate is answered ÷ sent (every survey that went out: answered, expired or still
open). `csat` splits by escalated vs not, by reason, by who resolved and their team, by customer and
tier, and lists the latest comments.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from rungs.store import mail
from rungs.store.surveys import by_token, surveys

__all__ = ["attachments", "csat", "figures", "survey", "unmatched"]

_SENT = ("sent", "answered", "expired")


def unmatched(conn: Connection, *, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    return mail.unmatched(conn, limit=limit, before=before)


def attachments(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    return mail.attachments_of(conn, case_id)


def survey(conn: Connection, token: str) -> dict[str, Any] | None:
    return by_token(conn, token)


def _good(rating: int, scale: int) -> bool:
    return rating >= (4 if scale == 5 else 2)


def figures(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """CSAT, response rate and the rating distribution of surveys (sent ones only)."""
    sent = answered = good = 0
    spread: Counter[str] = Counter()
    for r in rows:
        if r["status"] not in _SENT:
            continue
        sent += 1
        if r["status"] == "answered" and r["rating"] is not None:
            answered += 1
            good += _good(r["rating"], r["scale"])
            spread[str(r["rating"])] += 1
    return {
        "sent": sent,
        "answered": answered,
        "good": good,
        "csat": round(good / answered, 4) if answered else None,
        "response_rate": round(answered / sent, 4) if sent else None,
        "distribution": dict(sorted(spread.items())),
    }


def csat(
    conn: Connection,
    since: int | None = None,
    until: int | None = None,
    teams_of: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """CSAT over surveys of cases resolved in [since, until), overall and split (`teams_of`:
    person -> their teams, for the split by the resolver's team)."""
    q = select(surveys).where(surveys.c.status.in_(_SENT))
    if since is not None:
        q = q.where(surveys.c.resolved_at >= since)
    if until is not None:
        q = q.where(surveys.c.resolved_at < until)
    rows = [dict(r._mapping) for r in conn.execute(q)]
    out: dict[str, Any] = {"overall": figures(rows)}
    splits = {
        "escalated": lambda r: "escalated" if r["escalated"] else "not_escalated",
        "reason": lambda r: r["reason"] or "none",
        "resolved_by": lambda r: r["resolved_by"] or "unknown",
        "customer": lambda r: r["customer"],
        "tier": lambda r: r["tier"] or "none",
    }
    for name, key in splits.items():
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[key(r)].append(r)
        out[name] = {k: figures(v) for k, v in sorted(groups.items())}
    by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:  # a resolver in two teams counts for both
        for team in (teams_of or {}).get(r["resolved_by"] or "", ()) or ("none",):
            by_team[team].append(r)
    out["team"] = {k: figures(v) for k, v in sorted(by_team.items())}
    out["comments"] = [
        {"case": r["case_id"], "rating": r["rating"], "comment": r["comment"],
         "at": r["answered_at"]}
        for r in sorted(rows, key=lambda r: r["answered_at"] or 0, reverse=True)
        if r["status"] == "answered" and r["comment"]
    ][:100]  # fmt: skip
    return out
