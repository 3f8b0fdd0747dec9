"""Typed timers: each kind's key and payload round-trip through a stored row; the case copy
and its stored form keep every field."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from rungs.core.model import CancelTimers, Case, ScheduleTimer
from rungs.core.timers import (
    LevelTimer,
    RepeatTimer,
    RuleTimer,
    SlaTimer,
    StepTimer,
    cancel_all,
    due_timer,
)
from rungs.policy.model import METRICS


def _stored(eff: ScheduleTimer) -> tuple[str, int, list[object]]:
    """What the shell keeps of a scheduled timer: the key, the due instant, JSON payload."""
    return eff.key, eff.due, json.loads(json.dumps(list(eff.payload)))


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        (LevelTimer.schedule("C1", 5, 3, 1), LevelTimer(3, 1, 5)),
        (RepeatTimer.schedule("C1", 6, 2, 0), RepeatTimer(2, 0, 6)),
        *((SlaTimer.schedule("C1", 7, m), SlaTimer(m, 7)) for m in METRICS),
        (
            StepTimer.schedule("C1", 8, 12, "ann", "sms", 2, 1, "escalation"),
            StepTimer(12, "ann", "sms", 2, 1, "escalation", 8),
        ),
        (RuleTimer.schedule("C1", 9, "aged:out", 4), RuleTimer("aged:out", 4, 9)),
    ],
)
def test_a_stored_timer_reads_back_as_its_type(effect: ScheduleTimer, expected: object) -> None:
    assert effect.case == "C1"
    assert due_timer(*_stored(effect)) == expected


def test_keys_and_payloads_are_those_stored_before() -> None:
    """Rows written by earlier releases still read: the key formats did not change."""
    assert due_timer("level", 1, [2, 0]) == LevelTimer(2, 0, 1)
    assert due_timer("repeat", 1, [1, 3]) == RepeatTimer(1, 3, 1)
    assert due_timer("sla:resolution", 1, ["resolution"]) == SlaTimer("resolution", 1)
    assert due_timer("step:7", 1, ["bob", "email", 1, 0, "opened"]) == StepTimer(
        7, "bob", "email", 1, 0, "opened", 1
    )
    assert due_timer("rule:stale", 1, ["stale", 99]) == RuleTimer("stale", 99, 1)
    assert LevelTimer.schedule("C", 1, 2, 0).key == "level"
    assert SlaTimer.schedule("C", 1, "first_response").key == "sla:first_response"
    assert StepTimer.schedule("C", 1, 7, "bob", "email", 1, 0, "x").key == "step:7"


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown timer key 'later'"):
        due_timer("later", 1, [])


def test_cancel_prefixes_reach_their_own_kind_only() -> None:
    keys = [
        LevelTimer.schedule("C", 1, 2, 0).key,
        RepeatTimer.schedule("C", 1, 1, 0).key,
        *(SlaTimer.schedule("C", 1, m).key for m in METRICS),
        StepTimer.schedule("C", 1, 3, "a", "sms", 1, 0, "x").key,
        StepTimer.schedule("C", 1, 4, "a", "sms", 1, 0, "x").key,
        RuleTimer.schedule("C", 1, "r", 0).key,
    ]

    def hits(c: CancelTimers) -> list[str]:
        return [k for k in keys if k.startswith(c.prefix)]

    assert hits(LevelTimer.cancel("C")) == ["level"]
    assert hits(RepeatTimer.cancel("C")) == ["repeat"]
    assert hits(SlaTimer.cancel("C", "resolution")) == ["sla:resolution"]
    assert hits(StepTimer.cancel("C")) == ["step:3", "step:4"]
    assert hits(cancel_all("C")) == keys


def test_case_copy_copies_every_field() -> None:
    """`Case.copy` is written out field by field: a field added to `Case` must be added there."""
    case = Case("C1", "acme", "general", "P2", "t", "m", 1)
    for f in fields(Case):
        object.__setattr__(case, f.name, object())  # a distinct value per field
    copied = case.copy()
    assert copied is not case
    missing = [f.name for f in fields(Case) if getattr(copied, f.name) is not getattr(case, f.name)]
    assert not missing


def test_a_case_stored_before_paged_existed_reads_with_nobody_paged() -> None:
    case = Case("C1", "acme", "general", "P2", "t", "m", 1, paged={"ann": "sms"})
    stored = case.to_dict()
    assert stored["paged"] == {"ann": "sms"}
    assert Case.from_dict(stored).paged == {"ann": "sms"}
    del stored["paged"], stored["failed"], stored["alerts"]
    old = Case.from_dict(stored)
    assert old.paged == {} and old.failed == {} and old.alerts == 1
