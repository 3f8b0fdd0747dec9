"""What a policy would do with one new case: the timeline of a case opened at an instant and
left alone (nobody acknowledges) until a horizon, as `rungs simulate` runs a story.

Pure: the policy, the case's fields and the instants are given.
"""

from __future__ import annotations

from typing import Any

from rungs.core.model import Event, Refused
from rungs.core.timeline import timeline_json
from rungs.policy.model import Policy
from rungs.sim.runner import Simulation, SimulationError, cyclic_gc_paused

__all__ = ["MAX_ENTRIES", "preview"]

MAX_ENTRIES = 2000  # a preview shows at most this many entries (a repeat every minute, say)


def preview(policy: Policy, data: dict[str, Any], at: int, until: int) -> list[dict[str, Any]]:
    """The timeline JSON of a case opened with `data` at `at`, run to `until` with nobody
    acting on it; SimulationError when the core refuses to open it."""
    sim = Simulation(policy, keep_outbox=False)
    with cyclic_gc_paused():
        try:
            sim.handle("C1", Event("open", data=data), at)
        except Refused as exc:
            raise SimulationError(f"the case cannot be opened: {exc.message}") from exc
        sim.run_until(until)
    return timeline_json(sim.timeline[:MAX_ENTRIES])
