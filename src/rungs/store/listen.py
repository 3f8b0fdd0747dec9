"""PostgreSQL LISTEN: wake a loop when another process wrote something for it.

One helper for every channel (the engine's timers, the dispatcher's outbox), run on a thread
of its own until `stop` is set; a lost connection is retried every second. A timer's
notification also carries its due instant (`notify_due`), so that an engine planning to
wake sooner anyway is not woken for it: under a stream of new cases from other processes,
each of their commits woke every other engine for a tick that found nothing due.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from functools import lru_cache

from sqlalchemy import Connection, Engine

from rungs.store.sql import Sql, run

__all__ = [
    "CASES_CHANNEL",
    "OUTBOX_CHANNEL",
    "TIMERS_CHANNEL",
    "listen",
    "listen_thread",
    "notify_due",
    "notify_once",
]

log = logging.getLogger("rungs.store")
TIMERS_CHANNEL = "rungs_timers"  # a timer was written: engines wake to plan again
OUTBOX_CHANNEL = "rungs_outbox"  # an outbox row was written pending: dispatchers claim it
CASES_CHANNEL = "rungs_cases"  # cases were written: consoles of every process refresh
# Channels whose notifications an engine sends itself need not wake its own listener: its
# writer tells its own loop (`Wake`) and consoles (`Changes.publish`) at commit. A NOTIFY's
# payload names the sending engine (`_sender`). Not the outbox: pending rows written here are
# for this process's dispatcher too.
_SKIP_OWN = frozenset({TIMERS_CHANNEL, CASES_CHANNEL})


def listen(
    db: Engine,
    channel: str,
    wake: Callable[..., None],
    stop: threading.Event,
    *,
    said: bool = False,
) -> None:
    """Call `wake` on each notification on `channel` until `stop` is set (with `said`, with
    what the notification says besides its sender: `notify_due`'s instant, or "")."""
    # Imported here, not at the top: only PostgreSQL deployments listen (SQLAlchemy's dialect
    # has loaded it by then), and it costs every SQLite process ~0.2 s at start-up (measured).
    import psycopg

    url = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    own = _sender(db) if channel in _SKIP_OWN else None
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as pg:
                pg.execute(f"LISTEN {channel}")
                while not stop.is_set():
                    for n in pg.notifies(timeout=1.0):
                        sender, _, rest = n.payload.partition(" ")
                        if sender == own:
                            continue  # sent by this engine, which has told itself
                        if said:
                            wake(rest)
                        else:
                            wake()
                        if stop.is_set():
                            return
        except Exception:
            log.exception("LISTEN %s failed; retrying", channel)
            stop.wait(1.0)


def listen_thread(
    db: Engine,
    channel: str,
    wake: Callable[..., None],
    stop: threading.Event,
    *,
    said: bool = False,
) -> threading.Thread | None:
    """`listen` on a daemon thread, started; None on SQLite (one process writes at a time,
    and it wakes its own loops)."""
    if db.dialect.name != "postgresql":
        return None
    thread = threading.Thread(
        target=listen,
        args=(db, channel, wake, stop),
        kwargs={"said": said},
        name=f"rungs-listen-{channel}",
        daemon=True,
    )
    thread.start()
    return thread


def notify_once(conn: Connection, channel: str) -> None:
    """`NOTIFY channel` once per transaction (PostgreSQL delivers it at commit, and a batch
    of commands needs one)."""
    tx = conn.get_transaction()  # held by the connection, so its identity is not reused
    if conn.info.get(channel) is not tx:
        sender = _sender(conn.engine) if channel in _SKIP_OWN else ""
        run(conn, _notify(channel, sender), {})  # the driver's cursor: no sync in pipelines
        conn.info[channel] = tx


def notify_due(conn: Connection, channel: str, due: int) -> None:
    """`NOTIFY channel` from this engine with an instant (µs) that the listeners compare
    with their own next wake-up (PostgreSQL delivers it at commit)."""
    run(conn, Sql(f"NOTIFY {channel}, '{_sender(conn.engine)} {int(due)}'"), {})


_PROCESS = uuid.uuid4().hex  # pids repeat across containers (PID 1 in each)


def _sender(db: Engine) -> str:
    """This engine (this process's SQLAlchemy engine) as a NOTIFY payload: a random id of
    the process, not its pid, which two containers' processes may share."""
    return f"{_PROCESS}-{id(db):x}"


@lru_cache(maxsize=16)
def _notify(channel: str, sender: str) -> Sql:
    return Sql(f"NOTIFY {channel}, '{sender}'" if sender else f"NOTIFY {channel}")
