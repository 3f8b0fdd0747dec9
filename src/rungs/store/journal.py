"""The input journal: each input a decision took, appended in that decision's transaction.

`Commands` writes one row per decision (an action, an opening, a delivery result, a timer
firing: see `rungs.sim.inputs`), with the instant and the policy version it was decided by.
Rows are never changed; their id orders a case's inputs as they were decided (the case's row
lock serialises them). `rungs verify` and `rungs replay` read them back (`store/views/replay.py`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from rungs.core.model import Event
from rungs.sim.inputs import NOT_REPLAYABLE, encode_event
from rungs.store.jsonbytes import dumps_text
from rungs.store.sql import Sql, run

__all__ = ["append", "mark_not_replayable"]

_INSERT = Sql(
    "INSERT INTO journal (case_id, at, policy_version, event) "
    "VALUES (:case_id, :at, :policy_version, :event)"
)


def append(conn: Connection, case_id: str, event: Event, at: int, version: int) -> None:
    """Journal one decided input (inside the decision's transaction)."""
    row = {"case_id": case_id, "at": at, "policy_version": version}
    row["event"] = dumps_text(encode_event(event))
    run(conn, _INSERT, row)


def mark_not_replayable(conn: Connection, case_id: str, at: int, version: int) -> None:
    """Journal that the case took a decision made outside `decide` (the alert router's:
    grouping, storms, maintenance, flapping), which the pure re-run cannot reproduce: verify
    and replay count the case as not replayable instead of reporting a false divergence."""
    row = {"case_id": case_id, "at": at, "policy_version": version}
    row["event"] = dumps_text({"kind": NOT_REPLAYABLE})
    run(conn, _INSERT, row)
