"""The engine: policy versions, commands, due work and the loop that runs it.

`Engine` wires them; `bootstrap` builds one per process.
"""

from __future__ import annotations

from rungs.engine.commands import Commands, Deliveries
from rungs.engine.engine import Delivery, Engine
from rungs.engine.heartbeats import Heartbeats
from rungs.engine.loop import Loop, Manager
from rungs.engine.policies import PolicyChange, PolicyConflict, PolicyStore
from rungs.engine.timers import RETRY_US, Timers
from rungs.engine.writer import Unavailable, Writer
from rungs.store.listen import TIMERS_CHANNEL

__all__ = [
    "RETRY_US",
    "TIMERS_CHANNEL",
    "Commands",
    "Deliveries",
    "Delivery",
    "Engine",
    "Heartbeats",
    "Loop",
    "Manager",
    "PolicyChange",
    "PolicyConflict",
    "PolicyStore",
    "Timers",
    "Unavailable",
    "Writer",
]
