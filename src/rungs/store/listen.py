"""PostgreSQL LISTEN: wake a loop when another process has written work for it.

One helper for every loop that waits on a channel (the engine's timers, the dispatcher's
outbox): a wake-up is only a hint to look now instead of at the next poll, so a lost one costs
a poll interval, never a row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

__all__ = ["listen"]

log = logging.getLogger("rungs.store")


def listen(db: Engine, channel: str, wake: Callable[[], None], stop: threading.Event) -> None:
    """Call `wake()` on every NOTIFY on `channel` until `stop` is set (blocks: run it on a
    thread). Reconnects after a second when the connection fails (a database restart)."""
    # Imported here, not at the top: only PostgreSQL deployments listen (SQLAlchemy's dialect
    # has loaded it by then), and it costs every SQLite process ~0.2 s at start-up (measured).
    import psycopg

    url = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as pg:
                pg.execute(f"LISTEN {channel}")
                for _ in pg.notifies(timeout=1.0):
                    wake()
                    if stop.is_set():
                        return
        except Exception:
            log.exception("LISTEN %s failed; retrying", channel)
            stop.wait(1.0)
