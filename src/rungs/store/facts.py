"""`case_facts` rows: a case's facts (`rungs.core.facts`), kept as its timeline is written.

`keep_facts` runs in the decision's transaction, from the effect writer: a new case's row is
its opening decision's entries stepped from nothing; a later decision's continues the stored
facts with its own entries (no timeline read back). A decision that records no entry facts
depend on (a delivery result, a warning) costs nothing here. `rebuild` derives rows from
whole timelines: the migration's backfill, and a case somehow without a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from rungs.core.facts import KINDS, Facts, Terms, derive, outcome, steps
from rungs.core.timeline import decode_entry
from rungs.store.jsonbytes import dumps_text, loads
from rungs.store.sql import Sql, run, run_all, run_many
from rungs.store.tables import case_facts

__all__ = ["METRIC_COLUMNS", "keep_facts", "rebuild", "row_of", "write_rows"]

METRIC_COLUMNS = {"first_response": "fr", "next_response": "nr", "resolution": "res"}
_COLUMNS = tuple(c.name for c in case_facts.columns)
_INSERT = Sql(
    "INSERT INTO case_facts (" + ", ".join(_COLUMNS) + ") VALUES ("
    + ", ".join(f":{c}" for c in _COLUMNS) + ")"
)  # fmt: skip
_UPDATE = Sql(
    "UPDATE case_facts SET "
    + ", ".join(f"{c} = :{c}" for c in _COLUMNS if c != "case_id")
    + " WHERE case_id = :case_id"
)
_LOAD = Sql("SELECT state FROM case_facts WHERE case_id = :case_id")
_TIMELINE = Sql("SELECT entry FROM timeline WHERE case_id = :case_id ORDER BY id")


def row_of(f: Facts, terms: Terms) -> dict[str, Any]:
    """The row of one case's facts: flat columns for SQL, and the whole facts as `state`."""
    causes = f.causes
    row: dict[str, Any] = {
        "case_id": f.case,
        "opened_at": f.opened_at,
        "customer": f.customer,
        "tier": f.tier,
        "category": f.category,
        "priority": f.priority,
        "team": f.holder,
        "status": f.status,
        "level": f.level,
        "max_level": f.levels[-1],
        "first_ack_at": f.first_ack_at,
        "first_response_at": f.first_response_at,
        "resolved_at": f.resolved_at,
        "closed_at": f.closed_at,
        "escalations": f.escalations,
        "esc_timer": causes.get("timer", 0),
        "esc_rule": causes.get("rule", 0),
        "esc_manual": causes.get("manual", 0),
        "esc_customer": causes.get("customer", 0),
        "reopens": f.reopens,
        "hops": f.hops,
        "ping_pong": int(f.ping_pong),
        "right_first_time": int(f.right_first_time),
        "clock": terms.clock,
        "reasons": dumps_text(f.reasons) if f.reasons else None,
        "pages": dumps_text(f.pages) if f.pages else None,
        "state": dumps_text(f.to_dict()),
        "updated_at": f.last_at,
    }
    metrics = f.metrics
    for name, short in METRIC_COLUMNS.items():
        m = metrics.get(name)
        row[f"{short}_outcome"] = outcome(f, name, terms)
        row[f"{short}_business"] = m.business if m is not None else None
        row[f"{short}_calendar"] = m.calendar if m is not None else None
        row[f"{short}_breached_at"] = m.breached_at if m is not None else None
        row[f"{short}_since"] = m.since if m is not None and m.state == "running" else None
    return row


def keep_facts(
    conn: Connection,
    case_id: str,
    entries: Sequence[Mapping[str, Any]],
    terms: Terms,
    *,
    fresh: bool,
) -> None:
    """Bring the case's row up to date with a decision's entries (already in `timeline`)."""
    if not any(e["kind"] in KINDS for e in entries):
        return
    if fresh:
        f = steps(None, entries, terms)
        if f is not None:
            run(conn, _INSERT, row_of(f, terms))
        return
    stored = run(conn, _LOAD, {"case_id": case_id})
    if stored is None:  # no row yet (a case from before facts were kept): the whole timeline
        rebuild(conn, [case_id], lambda _customer: terms)
        return
    f = steps(Facts.from_dict(loads(stored[0])), entries, terms)
    if f is not None:
        run(conn, _UPDATE, row_of(f, terms))


def rebuild(conn: Connection, case_ids: Iterable[str], terms_of: Callable[[str], Terms]) -> int:
    """Derive and write (replacing) the rows of these cases from their whole timelines;
    `terms_of(customer)` gives each case's terms. Returns the rows written."""
    rows = []
    for cid in case_ids:
        entries = [decode_entry(r[0]) for r in run_all(conn, _TIMELINE, {"case_id": cid})]
        opened = next((e for e in entries if e["kind"] == "opened"), None)
        if opened is None:
            continue
        terms = terms_of(str(opened.get("customer") or ""))
        f = derive(entries, terms)
        if f is not None:
            rows.append(row_of(f, terms))
    return write_rows(conn, rows, replace=True)


def write_rows(conn: Connection, rows: list[dict[str, Any]], *, replace: bool = False) -> int:
    """Insert rows (deleting any row of the same cases first with `replace`)."""
    if not rows:
        return 0
    if replace:
        run_many(conn, Sql("DELETE FROM case_facts WHERE case_id = :case_id"),
                 [{"case_id": r["case_id"]} for r in rows])  # fmt: skip
    run_many(conn, _INSERT, rows)
    return len(rows)
