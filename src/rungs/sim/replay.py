"""Replay: a case's journaled inputs through the pure core again, and what came out.

Two ways, one loop (the simulator's: `Simulation` keeps the timers and fires them):

- `exact` (`rungs verify`): each input under the policy version that decided it, and timers
  fire only where the journal says the engine fired them, at that instant and in that order;
  the re-run must take every input and set every timer the engine fired. What it records is
  then compared entry by entry with the stored timeline (`first_divergence`).
- draft (`rungs replay --policy`): every input under one other policy. A timer fires at the
  instant and in the place the engine fired it when the draft set the same timer (same key,
  same due instant), else at its due instant (before inputs at or after it), up to the
  horizon. An input the draft refuses changes nothing, as it would have been answered 4xx;
  a delivery result counts only for a message the draft sent too (same key, person, channel).

The horizon is the last instant the engine recorded for the case (or `--to`), never the wall
clock: the re-run knows nothing the engine had not seen.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rungs.core.model import Notify, Refused
from rungs.core.timeline import Entry
from rungs.policy.model import Policy
from rungs.sim.inputs import NOT_REPLAYABLE, Input
from rungs.sim.runner import Simulation

__all__ = ["Encode", "Rerun", "compact", "first_divergence", "rerun", "same_entries", "same_entry"]

PolicyOf = Callable[[Input], Policy]


@dataclass(slots=True)
class Rerun:
    """What a case's re-run recorded: its entries, the policy version of each (exact mode),
    the idempotency keys of the messages it sent, and why it stopped, if it could not go on."""

    case: str
    timeline: list[Entry] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    problem: str | None = None  # exact mode: an input the re-run could not take as the engine did
    replayable: bool = True
    refused: int = 0  # draft mode: inputs the draft refuses


def rerun(
    case: str,
    inputs: Sequence[Input],
    policy_of: PolicyOf,
    *,
    horizon: int,
    exact: bool,
) -> Rerun:
    """Re-run one case's inputs (journal order) up to `horizon`."""
    out = Rerun(case)
    if not inputs or inputs[0].kind != "open":
        out.replayable = False
        return out
    sim = Simulation(policy_of(inputs[0]))
    held: Counter[tuple[str, str, int]] = Counter()
    if not exact:
        held.update((case, i.key, i.due) for i in inputs if i.kind == "timer" and i.at <= horizon)  # type: ignore[misc]
    for inp in inputs:
        if inp.at > horizon:
            break
        if inp.kind == NOT_REPLAYABLE:
            out.replayable = False
            return out
        sim.policy = policy_of(inp)
        before = len(sim.timeline)
        if exact:
            out.problem = _exact_step(sim, case, inp)
            if out.problem is not None:
                break
        else:
            _draft_step(sim, case, inp, held, out)
        if exact:
            out.versions.extend([inp.version] * (len(sim.timeline) - before))
    if not exact and out.problem is None:
        sim.run_until(horizon)
    out.timeline = sim.timeline
    out.keys = [o.key for o in sim.outbox]
    return out


def _exact_step(sim: Simulation, case: str, inp: Input) -> str | None:
    """One input as the engine took it; what went wrong, if it did."""
    if inp.kind == "timer":
        assert inp.key is not None and inp.due is not None
        if not sim.fire(case, inp.key, inp.due, inp.at, any_due=True):
            return f"the engine fired timer '{inp.key}' at {inp.at}; the re-run had not set it"
        return None
    assert inp.event is not None
    try:
        sim.handle(case, inp.event, inp.at)
    except Refused as exc:
        return f"the engine took '{inp.kind}' at {inp.at}; the re-run refuses it: {exc.message}"
    return None


def _draft_step(
    sim: Simulation, case: str, inp: Input, held: Counter[tuple[str, str, int]], out: Rerun
) -> None:
    if inp.kind == "timer":
        assert inp.key is not None and inp.due is not None
        mark = (case, inp.key, inp.due)
        sim.run_until(inp.at, held)  # the others due by now; this one is still held
        sim.fire(case, inp.key, inp.due, inp.at)
        if held[mark] <= 1:
            del held[mark]
        else:
            held[mark] -= 1
        return
    sim.run_until(inp.at, held)
    ev = inp.event
    assert ev is not None
    if ev.kind == "delivery" and not _sent(sim, ev.data or {}):
        return
    try:
        sim.handle(case, ev, inp.at)
    except Refused:
        out.refused += 1


def _sent(sim: Simulation, d: Any) -> bool:
    """Whether the draft sent the message a delivery result is about."""
    key = d.get("key")
    for o in sim.outbox:
        if o.key == key:
            if isinstance(o, Notify):
                return o.person == d.get("person") and o.channel == d.get("channel")
            return True
    return False


Encode = Callable[[Entry], str]
"""How the store wrote an entry (its JSON text): a re-run entry encoded the same way is
compared as text, and decoded only when the texts differ."""


def compact(e: Entry) -> str:
    """Compact JSON, the store's format for ordinary values (the default `Encode`)."""
    return json.dumps(e, ensure_ascii=False, separators=(",", ":"))


def _plain(e: Entry) -> Entry:
    """An entry as the store reads it back (JSON: tuples become lists)."""
    return json.loads(json.dumps(e))


def same_entry(stored: str, entry: Entry, encode: Encode = compact) -> bool:
    """Whether a stored entry (its JSON text) is `entry`: as text, else as JSON values."""
    return encode(entry) == stored or json.loads(stored) == _plain(entry)


def same_entries(stored: Sequence[str], again: Sequence[Entry], encode: Encode = compact) -> bool:
    """Whether a stored timeline (JSON texts) holds the re-run's entries, in order."""
    return len(stored) == len(again) and all(
        same_entry(s, e, encode) for s, e in zip(stored, again, strict=True)
    )


def first_divergence(
    stored: Sequence[str],
    versions: Sequence[int],
    outbox: Sequence[str],
    again: Rerun,
    encode: Encode = compact,
) -> str | None:
    """Where the stored timeline (JSON texts) first differs from the exact re-run, in words
    (None: nowhere).

    Every entry is the core's (delivery results and `not_sent` included, since their inputs
    are journaled), so each is compared whole, with its policy version; the shell's own
    writes are checked for consistency: the outbox holds exactly the messages decided.
    """
    for i, (s, r) in enumerate(zip(stored, again.timeline, strict=False)):
        if not same_entry(s, r, encode):
            return f"entry {i + 1}: stored {_show(json.loads(s))}; re-run {_show(_plain(r))}"
        if versions[i] != again.versions[i]:
            kind = json.loads(s).get("kind")
            return (
                f"entry {i + 1} ({kind}): stored with policy version {versions[i]}, "
                f"decided by version {again.versions[i]}"
            )
    if again.problem is not None:
        return again.problem
    n, m = len(stored), len(again.timeline)
    if n > m:
        return (
            f"entry {m + 1}: stored {_show(json.loads(stored[m]))}; the re-run records nothing more"
        )
    if m > n:
        return f"entry {n + 1}: the re-run records {_show(_plain(again.timeline[n]))}; not stored"
    missing = sorted(set(again.keys) - set(outbox))
    extra = sorted(set(outbox) - set(again.keys))
    if missing:
        return f"outbox: message {missing[0]} was decided but has no outbox row"
    if extra:
        return f"outbox: row {extra[0]} was never decided"
    return None


def _show(e: Entry) -> str:
    return json.dumps(e, sort_keys=True, ensure_ascii=False)[:400]
