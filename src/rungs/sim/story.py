"""Stories: a policy, events at instants, and an `until`; parsed with located errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rungs.core.decide import ACTIONS
from rungs.core.model import Event
from rungs.policy.loader import Problem, load_yaml
from rungs.time.instant import parse_instant, to_us

__all__ = ["Story", "StoryEvent", "StoryError", "load_story", "parse_story", "event_of"]

_PARAMS = ("by", "reason", "to_level", "to", "priority")
_EVENT_KEYS = ("at", "case", "do", "with", *_PARAMS)


class StoryError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class StoryEvent:
    at: int
    case: str
    do: str
    params: dict[str, Any]
    line: int

    def event(self) -> Event:
        return event_of(self.do, self.params)


def event_of(do: str, params: dict[str, Any]) -> Event:
    """The core event for an action and its parameters (as in stories and the API)."""
    if do == "open":
        return Event("open", data=params)
    return Event(
        do,
        by=params.get("by"),
        reason=params.get("reason"),
        to_level=params.get("to_level"),
        to=params.get("to"),
        priority=params.get("priority"),
    )


@dataclass(frozen=True, slots=True)
class Story:
    file: str
    policy: str | None
    until: int | None
    events: tuple[StoryEvent, ...]


def _instant(v: Any) -> int:
    if isinstance(v, datetime):
        return to_us(v)
    return parse_instant(str(v))


def parse_story(text: str, file: str) -> Story:
    loc = load_yaml(text, file)
    data = loc.data
    if loc.problems:
        raise StoryError(loc.problems)
    if not isinstance(data, dict):
        loc.problem((), "a story must be a mapping with 'events'")
        raise StoryError(loc.problems)
    for k in data:
        if k not in ("policy", "until", "events", "name", "description"):
            loc.problem((k,), f"unknown story field '{k}'", key=True)
    until = None
    if "until" in data:
        try:
            until = _instant(data["until"])
        except ValueError as exc:
            loc.problem(("until",), str(exc))
    events: list[StoryEvent] = []
    raw = data.get("events")
    if not isinstance(raw, list):
        loc.problem(("events",), "events must be a list")
        raw = []
    last = None
    for i, e in enumerate(raw):
        p = ("events", i)
        if not isinstance(e, dict):
            loc.problem(p, "each event must be a mapping")
            continue
        bad = False
        for k in e:
            if k not in _EVENT_KEYS:
                loc.problem((*p, k), f"unknown event field '{k}'", key=True)
                bad = True
        for k in ("at", "case", "do"):
            if k not in e:
                loc.problem(p, f"event is missing '{k}'")
                bad = True
        if bad:
            continue
        try:
            at = _instant(e["at"])
        except ValueError as exc:
            loc.problem((*p, "at"), str(exc))
            continue
        if last is not None and at < last:
            loc.problem((*p, "at"), "events must be in time order")
        last = at
        do = e["do"]
        if do != "open" and do not in ACTIONS:
            loc.problem((*p, "do"), f"unknown action '{do}' (use open, {', '.join(ACTIONS)})")
            continue
        if do == "open":
            w = e.get("with")
            if not isinstance(w, dict):
                loc.problem((*p, "with") if "with" in e else p, "open needs 'with' fields")
                continue
            params = dict(w)
        else:
            if "with" in e:
                loc.problem((*p, "with"), "only 'open' takes 'with'; put parameters beside 'do'")
            params = {k: e[k] for k in _PARAMS if k in e}
        line = loc.where(p)[0]
        events.append(StoryEvent(at, str(e["case"]), do, params, line))
    if loc.problems:
        raise StoryError(loc.problems)
    policy = data.get("policy")
    return Story(file, str(policy) if policy else None, until, tuple(events))


def load_story(path: str | Path) -> Story:
    p = Path(path)
    if str(path) == "-":
        import sys

        return parse_story(sys.stdin.read(), "<stdin>")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise StoryError([Problem(str(path), 1, 1, f"cannot read file: {exc}")]) from exc
    return parse_story(text, str(path))
