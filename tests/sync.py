"""Commands from plain test code: the engine's async commands, answered synchronously.

These go through the same writer transactions as `Commands` (via `open_in`/`decide_in`),
without an event loop, so a test (or a pool of threads) can call them directly.
"""

from __future__ import annotations

from typing import Any

from rungs.core.model import Case, Event
from rungs.engine import Engine

__all__ = ["act", "open_case"]


def open_case(engine: Engine, data: dict[str, Any]) -> tuple[Case, bool]:
    """`commands.open`: the case, and True when it is new."""
    version = engine.policies.current_version()
    policy = engine.policies.policy(version)
    return engine.writer.call(
        lambda conn: engine.commands.open_in(conn, data, version, policy, engine.clock.now())
    )


def act(engine: Engine, case_id: str, event: Event) -> Case:
    """`commands.act`: decide one event on one case."""
    return engine.writer.call(
        lambda conn: engine.commands.decide_in(conn, case_id, event, engine.clock.now())[0]
    )
