"""LEGACY (until the notify branch lands): the part of the former god `Service` that today's
`notify.dispatcher` (Dispatcher, OutboxHook) still reads. The engine itself is
`rungs.engine.Engine`; `bootstrap` builds this adapter around its policy store and commands.
Delete this module when `notify/` no longer imports it (seam 4).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from rungs.core.model import Case, Event
from rungs.engine.policies import PolicyStore

__all__ = ["Service"]

DecideIn = Callable[[Connection, str, Event, int], tuple[Case, int]]


class Service:
    def __init__(self, policies: PolicyStore, decide_in: DecideIn) -> None:
        self.db, self.writer, self.clock = policies.db, policies.writer, policies.clock
        self.policy, self.current_version = policies.policy, policies.current_version
        self.decide_in = decide_in
