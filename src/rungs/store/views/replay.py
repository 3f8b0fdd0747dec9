"""Verify and replay over the database: each case's journal, stored timeline and outbox keys,
read in chunks, through the pure re-run (`rungs.sim.replay`).

`verify` re-runs every case opened in the window under the versions that decided it and
compares; `whatif` re-runs them under a draft policy and counts what changes. The policies are
the stored versions (or the draft), each with the schedule overrides posted through the API
that existed at the decision's instant, as the engine had them. A verification's result is
kept (`verifications`) for `/metrics`, whichever process ran it.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from rungs.policy import Policy, PolicyError, load_policy_text
from rungs.schedules.oncall import Override
from rungs.sim.inputs import Input, decode_input
from rungs.sim.replay import first_divergence, rerun
from rungs.sim.whatif import WhatIf
from rungs.store.jsonbytes import dumps_text
from rungs.store.tables import cases, overrides, policies, verifications

__all__ = [
    "History",
    "Verification",
    "histories",
    "keep_verification",
    "last_verification",
    "verify",
    "whatif",
]

CHUNK = 500  # cases read per round of queries
MAX_SHOWN = 20  # divergences kept in a stored verification


@dataclass(slots=True)
class History:
    """One case as stored: its journaled inputs, timeline (with versions), outbox keys."""

    case: str
    customer: str
    inputs: list[Input]
    entries: list[str]  # the timeline's JSON texts (decoded only where they differ)
    kinds: list[str]
    versions: list[int]
    keys: list[str]
    horizon: int


@dataclass
class Verification:
    at: int
    cases: int = 0  # replayable cases checked
    not_replayable: int = 0
    divergences: list[tuple[str, str]] = field(default_factory=list)  # case, first divergence

    @property
    def reproduced(self) -> int:
        return self.cases - len(self.divergences)

    @property
    def ok(self) -> bool:
        return not self.divergences

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "cases": self.cases,
            "reproduced": self.reproduced,
            "not_replayable": self.not_replayable,
            "divergences": [{"case": c, "first": w} for c, w in self.divergences],
        }


def histories(
    db: Engine, start: int | None, end: int | None, *, messages: bool = True
) -> Iterator[History]:
    """Cases opened in [start, end] (either open-ended), in opening order, each up to its
    horizon: the last instant the engine recorded for it, or `end` if sooner; with their
    outbox keys when `messages`."""
    q = select(cases.c.id, cases.c.customer).order_by(cases.c.opened_at, cases.c.id)
    if start is not None:
        q = q.where(cases.c.opened_at >= start)
    if end is not None:
        q = q.where(cases.c.opened_at <= end)
    with db.connect() as conn:
        # one snapshot for the whole pass: a decision committed meanwhile is either wholly
        # seen (its input, entries and messages) or not at all, even on a live database
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn.exec_driver_sql("BEGIN")  # a read transaction: WAL keeps its snapshot
        rows = conn.execute(q).all()
        for i in range(0, len(rows), CHUNK):
            yield from _chunk(conn, rows[i : i + CHUNK], end, messages)


_JOURNAL = "SELECT case_id, at, policy_version, event FROM journal WHERE case_id IN ({ids})"
_TIMELINE = "SELECT case_id, policy_version, kind, entry FROM timeline WHERE case_id IN ({ids})"
_OUTBOX = (  # the messages the core decides (other kinds are not its)
    "SELECT case_id, key FROM outbox WHERE case_id IN ({ids}) AND created_at <= {at}"
    " AND kind IN ('notify', 'webhook', 'notice')"
)
_UPTO = " AND at <= {at} ORDER BY id"  # in the order they were decided


def _rows(conn: Connection, sql: str, ids: list[str], limit: int) -> list[Any]:
    """`sql` for these cases up to `limit`, on the driver's cursor: read in bulk (a month of
    history is millions of rows), without SQLAlchemy's work per row."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    text = sql.format(ids=", ".join([mark] * len(ids)), at=mark)
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(text, [*ids, limit])
        return list(cur.fetchall())
    finally:
        cur.close()


def _chunk(conn: Connection, rows: list[Any], end: int | None, messages: bool) -> Iterator[History]:
    ids = [r.id for r in rows]
    limit = end if end is not None else 2**62
    inputs: dict[str, list[Input]] = {i: [] for i in ids}
    for case_id, at, version, event in _rows(conn, _JOURNAL + _UPTO, ids, limit):
        inputs[case_id].append(decode_input(case_id, at, version, json.loads(event)))
    entries: dict[str, list[str]] = {i: [] for i in ids}
    kinds: dict[str, list[str]] = {i: [] for i in ids}
    versions: dict[str, list[int]] = {i: [] for i in ids}
    for case_id, version, kind, entry in _rows(conn, _TIMELINE + _UPTO, ids, limit):
        entries[case_id].append(entry)
        kinds[case_id].append(kind)
        versions[case_id].append(version)
    keys: dict[str, list[str]] = {i: [] for i in ids}
    for case_id, key in _rows(conn, _OUTBOX, ids, limit) if messages else ():
        keys[case_id].append(key)
    for r in rows:
        mine = inputs[r.id]
        horizon = mine[-1].at if mine else 0
        yield History(
            r.id, r.customer, mine, entries[r.id], kinds[r.id], versions[r.id], keys[r.id], horizon
        )


class _Policies:
    """Policies as the engine had them at an instant: a version (or the draft) with the
    overrides stored by then."""

    def __init__(self, conn: Connection, draft: Policy | None = None) -> None:
        rows = conn.execute(select(overrides).order_by(overrides.c.id)).all()
        self._overrides = [
            (r.created_at, r.schedule_id, Override(r.start, r.end, r.who)) for r in rows
        ]
        self._times = [o[0] for o in self._overrides]
        self._texts = (
            {}
            if draft is not None
            else dict(conn.execute(select(policies.c.version, policies.c.yaml)).all())
        )
        self._draft = draft
        self._compiled: dict[int, Policy] = {}
        self._folded: dict[tuple[int, int], Policy] = {}

    def base(self, version: int) -> Policy:
        if self._draft is not None:
            return self._draft
        found = self._compiled.get(version)
        if found is None:
            text = self._texts.get(version)
            if text is None:
                raise KeyError(f"policy version {version} is not stored")
            found, problems = load_policy_text(text, f"version {version}", secret_prefix=None)
            if found is None:
                raise PolicyError(problems)
            self._compiled[version] = found
        return found

    def at(self, inp: Input) -> Policy:
        version = -1 if self._draft is not None else inp.version
        n = bisect_right(self._times, inp.at)
        found = self._folded.get((version, n))
        if found is None:
            found = self._folded[(version, n)] = _fold(self.base(inp.version), self._overrides[:n])
        return found


def _fold(policy: Policy, extra: list[tuple[int, str, Override]]) -> Policy:
    """The policy's schedules with the API's overrides added (as `PolicyStore` does)."""
    if not extra:
        return policy
    by: dict[str, list[Override]] = {}
    for _, sid, o in extra:
        by.setdefault(sid, []).append(o)
    schedules = {
        sid: replace(s, overrides=(*s.overrides, *by.get(sid, ())))
        for sid, s in policy.schedules.items()
    }
    return replace(policy, schedules=schedules)


def verify(db: Engine, now: int, start: int | None = None, end: int | None = None) -> Verification:
    """Re-run every case opened in the window exactly and compare with what is stored."""
    result = Verification(now)
    with db.connect() as conn:
        pinned = _Policies(conn)
    for h in histories(db, start, end):
        again = rerun(h.case, h.inputs, pinned.at, horizon=h.horizon, exact=True)
        if not again.replayable:
            result.not_replayable += 1
            continue
        result.cases += 1
        why = first_divergence(h.entries, h.versions, h.keys, again, dumps_text)
        if why is not None:
            result.divergences.append((h.case, why))
    return result


def whatif(
    db: Engine,
    draft: Policy,
    start: int | None = None,
    end: int | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> WhatIf:
    """Re-run every case opened in the window under `draft`; before against after."""
    out = WhatIf(encode=dumps_text)
    with db.connect() as conn:
        folded = _Policies(conn, draft)
    for h in histories(db, start, end, messages=False):
        again = rerun(h.case, h.inputs, folded.at, horizon=h.horizon, exact=False)
        if not again.replayable:
            out.not_replayable += 1
            continue
        out.add(h.case, h.customer, h.entries, h.kinds, again.timeline)
        if progress is not None:
            progress(out.cases)
    return out


def keep_verification(conn: Connection, v: Verification) -> None:
    """Store a verification's result (its first divergences too), for `/metrics`."""
    conn.execute(
        insert(verifications).values(
            at=v.at,
            cases=v.cases,
            reproduced=v.reproduced,
            not_replayable=v.not_replayable,
            divergences=len(v.divergences),
            detail=json.dumps(v.as_dict()["divergences"][:MAX_SHOWN]),
        )
    )


def last_verification(db: Engine) -> dict[str, Any] | None:
    """The latest kept verification (any process's), or None."""
    with db.connect() as conn:
        latest = conn.execute(select(func.max(verifications.c.id))).scalar()
        if latest is None:
            return None
        row = conn.execute(select(verifications).where(verifications.c.id == latest)).one()
    return {
        "at": row.at,
        "cases": row.cases,
        "reproduced": row.reproduced,
        "not_replayable": row.not_replayable,
        "divergences": row.divergences,
    }
