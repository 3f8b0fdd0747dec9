"""`rungs serve --verify-every 24h`: the engine verifies its own history, now and then.

Every `every` of the engine's clock, `rungs verify` runs here (`store/views/replay.py`): each
case's journaled inputs through the core again, compared with its stored timeline. The result
is kept (`verifications`, shown by `/metrics`) and a divergence is logged as an error, naming
the case. On the real clock it runs on a thread of its own, reading on its own connections
(the writer is taken only to keep the result); under the virtual clock `Engine.advance` runs
it at its instant, among the timers and deliveries.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from rungs.engine.writer import Writer
from rungs.store.views.replay import Verification, keep_verification, verify
from rungs.time.clock import Clock

__all__ = ["Verifier"]

log = logging.getLogger("rungs.engine")


class Verifier:
    def __init__(self, db: Engine, writer: Writer, clock: Clock, every: int) -> None:
        if every <= 0:
            raise ValueError("the verification interval must be positive")
        self.db, self.writer, self.clock, self.every = db, writer, clock, every
        self.due = clock.now() + every
        self.last: Verification | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def next_due(self) -> int:
        return self.due

    def run_due(self, until: int) -> int:
        """Verify when due by `until` (then plan the next one); how many runs (0 or 1)."""
        if self.due > until:
            return 0
        self.run()
        while self.due <= until:
            self.due += self.every
        return 1

    def run(self) -> Verification:
        result = verify(self.db, self.clock.now())
        self.writer.call(lambda conn: keep_verification(conn, result))
        self.last = result
        for case, why in result.divergences:
            log.error("verify: case %s diverges from its stored timeline: %s", case, why)
        log.info(
            "verify: %d cases reproduced, %d diverge, %d not replayable",
            result.reproduced,
            len(result.divergences),
            result.not_replayable,
        )
        return result

    def start(self) -> None:
        """On the real clock: a thread that verifies whenever one is due."""
        self._thread = threading.Thread(target=self._run, name="rungs-verify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(max(0.0, (self.due - self.clock.now()) / 1e6)):
            try:
                self.run_due(self.clock.now())
            except Exception:  # logged; the next one is tried at its time
                log.exception("verify failed")
                self.due += self.every

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
