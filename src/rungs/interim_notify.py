"""TEMPORARY (issue 11, notify branch only): the new Dispatcher wired into today's `Service`.

Delete at merge. The engine branch replaces each piece: its effect writer inserts the rows
once, claimed until `dispatcher.lease(policy)` (`store.outbox.new_row` / `write_new`), and
calls `dispatcher.accept(rows)` after commit (seam 4); its `advance` runs `next_due`/`run_due`
in instant order (seam 5); bootstrap builds the Dispatcher with `policies`, `outbox`,
`record = store.outbox.recorder(writer, decide_in, clock)` and `clock`. The core branch decides
"handled by" notices (seam 3); until then `_legacy_notices` is today's rule, moved here
unchanged from the old `OutboxHook`.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from sqlalchemy import Connection, select

from rungs.core.model import CallWebhook, Case, Notice, Notify, Record
from rungs.engine.service import Service
from rungs.notify import Dispatcher
from rungs.policy.channels import channels_of
from rungs.store import jsonbytes
from rungs.store.outbox import NewRow, Outbox, Row, new_row, recorder, wake_dispatchers, write_new
from rungs.store.repo import Sql, run
from rungs.store.tables import timeline

__all__ = ["install"]

_CLAIM_INSERTED = Sql(
    "UPDATE outbox SET status = 'sending', attempts = 1, next_attempt = :lease "
    "WHERE key = :key AND status = 'pending' RETURNING id"
)


def install(service: Service, *, dispatch: bool, workers: int | None = None) -> Dispatcher | None:
    if workers is None:
        workers = int(os.environ.get("RUNGS_DISPATCH_WORKERS") or 64)
    d = None
    if dispatch:
        outbox = Outbox(service.db, service.writer)
        record = recorder(service.writer, service.decide_in, service.clock)
        d = Dispatcher(service, outbox, record, service.clock, workers=workers)
        service.on_stop.append(d.stop)
    stash: list[Row] = []

    def after_decide(conn: Connection, case: Case, effects: list[Any], version: int, now: int):
        policy = service.policy(version)
        notices = [new_row(e) for e in effects if isinstance(e, Notice)]
        if not notices:
            notices = _legacy_notices(conn, case, effects, policy)
        inserted = [e.key for e in effects if isinstance(e, Notify | CallWebhook)]
        if not inserted and not notices:
            return
        lease = d.lease(policy) if d is not None else None
        opened = any(isinstance(e, Record) and e.entry["kind"] == "opened" for e in effects)
        snapshot = None
        if opened:  # the whole timeline is in this decision: no need to read it back
            snapshot = (case, version, [e.entry for e in effects if isinstance(e, Record)])
        stash.extend(write_new(conn, notices, now, lease, snapshot))
        if lease is None:
            wake_dispatchers(conn)
            return
        by_key = {e.key: new_row(e) for e in effects if isinstance(e, Notify | CallWebhook)}
        for key in inserted:
            found = run(conn, _CLAIM_INSERTED, {"key": key, "lease": lease})
            if found is not None:
                r = by_key[key]
                stash.append(Row(found[0], r.case_id, r.kind, key, r.payload, 1, now, snapshot))

    previous = service.writer.after_commit

    def after_commit(committed: bool) -> None:
        if previous is not None:
            previous(committed)
        rows = stash[:]
        stash.clear()
        if committed and rows and d is not None:
            d.accept(rows)

    service.after_decide.append(after_decide)
    service.writer.after_commit = after_commit
    if d is not None and service.clock.virtual:
        timers_only = service.advance

        def advance(to: int) -> int:  # deliveries take their turn by due instant
            fired = 0
            while (due := d.next_due()) is not None and due <= to:
                n = timers_only(max(due, service.clock.now()))
                fired += n
                if not d.run_due(service.clock.now()) and not n and d.next_due() == due:
                    break  # held by another process: nothing this one can do
            return fired + timers_only(to)

        service.advance = advance  # type: ignore[method-assign]
    return d


def _legacy_notices(conn: Connection, case: Case, effects: list[Any], policy: Any) -> list[NewRow]:
    settings = channels_of(policy)
    entry = next((e.entry for e in effects if isinstance(e, Record)
                  and e.entry["kind"] in ("acknowledged", "resolved")), None)  # fmt: skip
    if entry is None or not settings.declared or not settings.handled_notice:
        return []
    paged: dict[str, str] = {}
    for (raw,) in conn.execute(
        select(timeline.c.entry)
        .where(timeline.c.case_id == case.id,
               timeline.c.kind.in_(("notified", "opened", "reopened")))
        .order_by(timeline.c.id)
    ):  # fmt: skip
        e = jsonbytes.loads(raw)
        if e["kind"] != "notified":
            paged = {}  # a new round: only its pages count
        elif e.get("channel") != "voice" or e.get("to") not in paged:
            paged[e["to"]] = e.get("channel") or "email"
    by, action = entry.get("by"), entry["kind"]
    rows = []
    for person, channel in paged.items():
        if person == by:
            continue
        if channel == "voice":  # nobody wants a phone call to say all is well
            p = policy.people.get(person)
            if p is None or "sms" not in p.contacts:
                continue
            channel = "sms"
        key = f"{case.id}:{action[:3]}{case.epoch}:{person}"
        if len(key) > 120:
            digest = hashlib.sha256(person.encode()).hexdigest()[:32]
            key = f"{case.id}:{action[:3]}{case.epoch}:{digest}"
        rows.append(new_row(Notice(case.id, person, channel, action, by, case.level,
                                   case.title, key)))  # fmt: skip
    return rows
