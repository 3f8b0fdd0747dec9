"""A report section as one table (header and rows): for CSV, the CLI's Rich table and the
console's tables beneath its charts. Pure presentation of `rungs.store.views.reports`."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

__all__ = ["table", "to_csv"]

Table = tuple[list[str], list[list[Any]]]


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return "" if v is None else v


def _summary(r: dict[str, Any]) -> Table:
    keys = ["cases", "escalated_cases", "escalation_rate", "reopened_cases", "right_first_time"]
    header = [
        "group",
        *keys,
        *(f"by_cause_{c}" for c in r["escalations_by_cause"]),
        *(f"breaches_{m}" for m in r["sla_breaches"]),
        "ping_pong_cases",
    ]

    def row(name: str, g: dict[str, Any]) -> list[Any]:
        return [
            name,
            *(g[k] for k in keys),
            *g["escalations_by_cause"].values(),
            *g["sla_breaches"].values(),
            " ".join(g["ping_pong_cases"]),
        ]

    rows = [row("all", r)]
    rows += [row(k, g) for k, g in r.get("groups", {}).items()]
    return header, rows


def _records(items: list[dict[str, Any]], first: list[str] | None = None) -> Table:
    if not items:
        return (first or []), []
    header = list(first or []) + [k for k in items[0] if k not in (first or [])]
    return header, [[_cell(i.get(k)) for k in header] for i in items]


def table(section: str, r: dict[str, Any]) -> Table:
    """The section's main table."""
    match section:
        case "summary":
            return _summary(r)
        case "sla":
            return _records(r["achievement"])
        case "escalations":
            return _records(r["by_week"])
        case "ping-pong":
            return _records(r["cases"])
        case "aging":
            bands = r["open_by_age"]
            return ["band", "open_cases"], [[k, v] for k, v in bands.items()]
        case "load":
            return _records(r["people"])
        case "reasons":
            return _records(r["top"])
    raise ValueError(f"unknown report section '{section}'")


def to_csv(section: str, r: dict[str, Any]) -> str:
    header, rows = table(section, r)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows([[_cell(c) for c in row] for row in rows])
    return out.getvalue()
