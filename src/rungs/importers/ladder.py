"""Escalation steps to Rungs levels, shared by the importers.

Vendors write a step's delay in one of two ways: incremental (PagerDuty, GoAlert, Grafana's
`wait` steps: how long after the previous step) or cumulative (Opsgenie: minutes since the
alert was created). `levels_from` takes the cumulative minutes of each step; steps at the same
instant become one level (Rungs' `after` must grow), a first step later than 0 is paged at
once (Rungs' level 1 is), and both are reported.
"""

from __future__ import annotations

from rungs.importers.plan import Draft, Level, Matrix

__all__ = ["levels_from", "loop_repeat"]


def levels_from(
    draft: Draft, matrix: Matrix, steps: list[tuple[int, list[str], str]], kind: str
) -> None:
    """Fill `matrix.levels` from (cumulative minutes, targets, unless) steps in order."""
    for i, (at, targets, unless) in enumerate(steps):
        name = f"{matrix.name} step {i + 1}"
        if not targets:
            draft.cannot(kind, name, "notifies nobody Rungs can page: left out")
            continue
        if not matrix.levels:
            if at > 0:
                draft.cannot(
                    kind,
                    name,
                    f"is {at}m after the alert; Rungs pages level 1 at once: written at once",
                )
            matrix.levels.append(Level(0, list(targets), unless, name))
            continue
        last = matrix.levels[-1]
        if at == last.after:  # paged at the same instant: one level
            if unless != last.unless and len(matrix.levels) > 1:
                draft.cannot(
                    kind,
                    name,
                    f"unless {unless} at the instant of an unless "
                    f"{last.unless} step: merged into it, as unless {last.unless}",
                )
            last.notify += [t for t in targets if t not in last.notify]
            continue
        if at < last.after:
            draft.cannot(
                kind,
                name,
                f"is at {at}m, before the step before ({last.after}m): merged into that level",
            )
            last.notify += [t for t in targets if t not in last.notify]
            continue
        matrix.levels.append(Level(at, list(targets), unless, name))


def loop_repeat(draft: Draft, matrix: Matrix, every: int, times: int, vendor: str) -> None:
    """A vendor that runs the whole policy again `times` times, one cycle every `every`
    minutes: exact in Rungs for one level; with more, Rungs pages only the last level again
    (at the instants the vendor reaches it again), which is reported."""
    if times <= 0 or not matrix.levels:
        return
    if every <= 0:
        draft.cannot(
            "escalation policy", matrix.name, "repeats with no time between cycles: left out"
        )
        return
    matrix.repeat = (every, times)
    if len(matrix.levels) > 1:
        draft.cannot(
            "escalation policy",
            matrix.name,
            f"{vendor} runs every step again {times} time(s); Rungs repeats only the last level: "
            f"written as the last level paged again every {every}m, {times} time(s)",
        )
