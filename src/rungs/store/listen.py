"""PostgreSQL LISTEN: wake a loop when another process wrote something for it.

One helper for every channel (the engine's timers, the dispatcher's outbox), run on a thread
of its own until `stop` is set; a lost connection is retried every second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

__all__ = ["OUTBOX_CHANNEL", "TIMERS_CHANNEL", "listen", "listen_thread"]

log = logging.getLogger("rungs.store")
TIMERS_CHANNEL = "rungs_timers"  # a timer was written: engines wake to plan again
OUTBOX_CHANNEL = "rungs_outbox"  # an outbox row was written pending: dispatchers claim it


def listen(db: Engine, channel: str, wake: Callable[[], None], stop: threading.Event) -> None:
    """Call `wake` on each notification on `channel` until `stop` is set."""
    url = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as pg:
                pg.execute(f"LISTEN {channel}")
                while not stop.is_set():
                    for _ in pg.notifies(timeout=1.0):
                        wake()
                        if stop.is_set():
                            return
        except Exception:
            log.exception("LISTEN %s failed; retrying", channel)
            stop.wait(1.0)


def listen_thread(
    db: Engine, channel: str, wake: Callable[[], None], stop: threading.Event
) -> threading.Thread | None:
    """`listen` on a daemon thread, started; None on SQLite (one process writes at a time,
    and it wakes its own loops)."""
    if db.dialect.name != "postgresql":
        return None
    thread = threading.Thread(
        target=listen, args=(db, channel, wake, stop), name=f"rungs-listen-{channel}", daemon=True
    )
    thread.start()
    return thread
