"""Wiring for `rungs serve` and the tests: database, clock, policy, engine, API."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from rungs.api.limits import DEFAULT_MAX_BODY, Rate
from rungs.clock import Clock, SystemClock, VirtualClock
from rungs.engine.service import Service
from rungs.store.db import make_engine, upgrade

__all__ = ["build", "VIRTUAL_CLOCK_ENV"]

VIRTUAL_CLOCK_ENV = "RUNGS_ALLOW_VIRTUAL_CLOCK"


def build(
    *,
    db_url: str,
    policy_file: str | Path | None,
    virtual_start: int | None = None,
    role: str = "all",
    token_rate: Rate | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> tuple[Service, FastAPI]:
    """Migrate, load the policy (validated; a new version only when its text changed), wire."""
    from rungs.api.app import create_app

    if virtual_start is not None and os.environ.get(VIRTUAL_CLOCK_ENV) != "1":
        raise PermissionError(f"--virtual-clock is refused unless {VIRTUAL_CLOCK_ENV}=1")
    clock: Clock = VirtualClock(virtual_start) if virtual_start is not None else SystemClock()
    engine = make_engine(db_url)
    upgrade(engine)
    service = Service(engine, clock)
    if policy_file is not None:
        p = Path(policy_file)
        service.ensure_policy(p.read_text(encoding="utf-8"), str(p))
    else:
        service.current_version()  # refuses to start with no stored policy
    app = create_app(service, role=role, token_rate=token_rate, max_body=max_body)
    if role in ("all", "engine"):
        service.start_engine()
    from rungs.notify import install

    # delivery: every role hooks "handled by" notices; `all` and `dispatcher` deliver
    dispatcher = install(service, dispatch=role in ("all", "dispatcher") and not clock.virtual)
    if dispatcher is not None:
        dispatcher.start()
    return service, app
