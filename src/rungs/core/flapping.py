"""Flapping, pure: an alert whose status changes (firing, resolved) more than `flap.count`
times within `flap.window` is flapping. It stays open, each change recorded as one `flapping`
entry and nobody paged, until no change has come for a whole window (`flap_ended`)."""

from __future__ import annotations

from dataclasses import dataclass

from rungs.core.ctx import Ctx
from rungs.core.model import Case, Effect
from rungs.policy.model import Flap, Policy

__all__ = ["FlapState", "changed", "flap_ended", "flapping"]


@dataclass(frozen=True, slots=True)
class FlapState:
    changes: tuple[int, ...]  # the instants of its recent changes, within the window
    flapping: bool
    quiet_due: int | None  # when, without a further change, it stops flapping


def changed(changes: tuple[int, ...], now: int, flap: Flap | None) -> FlapState:
    """The state after a change of status at `now` (without `flap`: never flapping)."""
    if flap is None:
        return FlapState((), False, None)
    recent = (*(t for t in changes if now - t < flap.window), now)[-(flap.count + 1) :]
    on = len(recent) > flap.count
    return FlapState(recent, on, now + flap.window if on else None)


def flapping(
    case: Case, now: int, policy: Policy, alert: str, status: str, changes: int
) -> tuple[Case, list[Effect]]:
    """One flap of a flapping alert: recorded, nobody paged."""
    ctx = Ctx(case.copy(), now, policy)
    ctx.record("flapping", alert=alert, status=status, changes=changes)
    return ctx.case, ctx.effects


def flap_ended(
    case: Case, now: int, policy: Policy, alert: str, status: str
) -> tuple[Case, list[Effect]]:
    """The alert has been quiet for its window: it is `status` again, plainly."""
    ctx = Ctx(case.copy(), now, policy)
    ctx.record("flap_ended", alert=alert, status=status)
    return ctx.case, ctx.effects
