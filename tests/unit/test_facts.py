"""A case's facts from hand-written timelines: one test per definition and the edge cases
(reopened twice, a breach while paused, an unacknowledged case, A -> B -> A -> B), and the
property that facts kept entry by entry (and stored in between) equal the whole timeline's."""

from __future__ import annotations

import itertools
import json
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

import rungs
from rungs.core.facts import Facts, Terms, derive, outcome, page_window, steps, terms_for
from rungs.policy import load_policy
from rungs.policy.model import SlaTargets
from rungs.time.instant import HOUR, MINUTE, parse_instant

ACME = load_policy(Path(rungs.__file__).parent / "examples" / "acme.yaml")
T0 = parse_instant("2026-11-18T09:00:00Z")  # a Wednesday
WALL = Terms(
    tier="gold",
    targets={
        "P1": SlaTargets(15 * MINUTE, HOUR, 4 * HOUR),
        "P3": SlaTargets(4 * HOUR, None, 5 * 24 * HOUR),
    },
    zones={"night": ZoneInfo("Asia/Tokyo")},
)


class Tl:
    """A timeline written by hand: `tl.at(minutes, kind, **fields)`."""

    def __init__(self, case: str = "C1", priority: str = "P1") -> None:
        self.case = case
        self.entries: list[dict[str, Any]] = []
        self.at(0, "opened", customer="globex", category="network", priority=priority)

    def at(self, minutes: float, kind: str, **fields: Any) -> Tl:
        self.entries.append(
            {"at": T0 + int(minutes * MINUTE), "case": self.case, "kind": kind, **fields}
        )
        return self

    def facts(self, terms: Terms = WALL) -> Facts:
        f = derive(self.entries, terms)
        assert f is not None
        return f


def test_opening_times_and_the_resolving_level() -> None:
    tl = Tl().at(5, "acknowledged", by="alice").at(20, "responded", by="alice")
    tl.at(30, "escalated", level=2, **{"from": 1}, cause="timer")
    f = tl.at(90, "resolved", by="bob").at(100, "closed").facts()
    assert (f.opened_at, f.first_ack_at, f.first_response_at) == (
        T0,
        T0 + 5 * MINUTE,
        T0 + 20 * MINUTE,
    )
    assert (f.resolved_at, f.closed_at, f.status) == (T0 + 90 * MINUTE, T0 + 100 * MINUTE, "closed")
    assert (f.levels, f.resolved_level, f.tier) == ((1, 2), 2, "gold")


def test_escalations_by_cause_and_reason() -> None:
    tl = Tl().at(1, "escalated", level=2, cause="manual", reason="needs-expert")
    tl.at(2, "escalated", level=3, cause="customer", reason="needs-expert")
    f = tl.at(3, "escalated", level=4, cause="rule").facts()
    assert f.escalations == 3
    assert f.causes == {"manual": 1, "customer": 1, "rule": 1}
    assert f.reasons == {"needs-expert": 2}
    assert f.levels == (1, 2, 3, 4)


def test_sla_outcomes_met_breached_running_and_not_applicable() -> None:
    tl = Tl().at(10, "acknowledged", by="a").at(15, "sla_breached", metric="resolution")
    f = tl.facts()
    assert outcome(f, "first_response", WALL) == "met"
    assert outcome(f, "resolution", WALL) == "breached"
    assert outcome(f, "next_response", WALL) == "not_applicable"  # never started
    assert f.metrics["first_response"].business == 10 * MINUTE
    p3 = Tl(priority="P3").at(1, "responded", by="a").at(2, "customer_replied").facts()
    assert outcome(p3, "next_response", WALL) == "not_applicable"  # P3 has no target
    assert outcome(p3, "resolution", WALL) == "running"


def test_an_unacknowledged_case_has_no_acknowledgement_time() -> None:
    f = Tl().at(30, "resolved", by="bob").facts()
    assert f.first_ack_at is None and f.first_response_at is None
    assert f.resolved_at == T0 + 30 * MINUTE
    assert outcome(f, "first_response", WALL) == "met"  # stopped by the resolution, unbreached


def test_a_breach_while_paused_stays_a_breach_and_pauses_count_no_time() -> None:
    tl = Tl().at(10, "pending").at(10, "paused", metric="resolution")
    tl.at(40, "priority_changed", priority="P1").at(40, "sla_breached", metric="resolution")
    f = tl.facts()
    res = f.metrics["resolution"]
    assert res.state == "paused" and res.breached_at == T0 + 40 * MINUTE
    assert res.business == res.calendar == 10 * MINUTE
    assert outcome(f, "resolution", WALL) == "breached"
    f2 = derive([*tl.entries, _e(70, "customer_replied"), _e(70, "resumed", metric="resolution")],
                WALL)  # fmt: skip
    assert (
        f2 is not None
        and f2.status == "open"
        and f2.metrics["resolution"].since == T0 + 70 * MINUTE
    )


def _e(minutes: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"at": T0 + minutes * MINUTE, "case": "C1", "kind": kind, **fields}


def test_reopened_twice_counts_both_and_keeps_the_resolution_time() -> None:
    tl = (
        Tl()
        .at(10, "resolved", by="a")
        .at(20, "reopened")
        .at(25, "escalated", level=2, cause="timer")
    )
    tl.at(30, "resolved", by="a").at(40, "reopened")
    f = tl.facts()
    assert f.reopens == 2 and f.status == "open" and f.level == 1
    assert f.resolved_at is None  # reopened since its last resolution
    assert f.metrics["resolution"].business == 20 * MINUTE  # 0-10 and 20-30
    assert not f.right_first_time
    done = tl.at(50, "resolved", by="a").facts()
    assert done.resolved_at == T0 + 50 * MINUTE and done.resolved_level == 1


def test_ping_pong_a_b_a_b_with_two_hops() -> None:
    tl = Tl()
    for i, who in enumerate(["team:net", "team:net", "person:bob", "team:net", "person:bob"]):
        tl.at(i + 1, "assigned", to=who)
    f = tl.facts()
    assert f.holders == ("team:net", "person:bob", "team:net", "person:bob")
    assert f.ping_pong and f.hops == 2


def test_moving_on_without_coming_back_is_no_ping_pong() -> None:
    tl = Tl().at(1, "assigned", to="team:a").at(2, "assigned", to="team:b")
    f = tl.at(3, "escalated", level=2, cause="timer").facts()
    assert not f.ping_pong and f.hops == 2


def test_right_first_time() -> None:
    assert Tl().at(1, "assigned", to="team:a").at(9, "resolved", by="x").facts().right_first_time
    assert Tl().at(9, "resolved", by="x").facts().right_first_time
    assert not Tl().at(9, "acknowledged", by="x").facts().right_first_time  # not resolved
    moved = Tl().at(1, "assigned", to="team:a").at(2, "assigned", to="team:b")
    assert not moved.at(9, "resolved", by="x").facts().right_first_time
    escalated = Tl().at(1, "escalated", level=2, cause="manual")
    assert not escalated.at(9, "resolved", by="x").facts().right_first_time


def test_next_response_cycles_and_pending_status() -> None:
    tl = Tl().at(1, "responded", by="a").at(5, "customer_replied").at(20, "responded", by="a")
    tl.at(30, "customer_replied").at(31, "pending").at(31, "paused", metric="next_response")
    f = tl.facts()
    nr = f.metrics["next_response"]
    assert (nr.state, nr.business, f.status) == ("paused", MINUTE, "pending")
    f2 = steps(f, [_e(40, "acknowledged", by="a"), _e(50, "customer_replied")], WALL)
    assert f2 is not None and f2.status == "acknowledged" and f.status == "pending"
    f3 = steps(f, [_e(40, "acknowledged", by="a"), _e(50, "customer_replied")], WALL, in_place=True)
    assert f3 is f and f.to_dict() == f2.to_dict()  # the same facts, continued in place


def test_pages_by_window_in_the_persons_own_zone() -> None:
    # 09:00 UTC Wednesday: business in UTC, 18:00 in Tokyo (off hours); 23:00 UTC: sleep
    tl = Tl().at(0, "notified", to="alice", channel="email", level=1)
    tl.at(0, "notified", to="night", channel="sms", level=1)
    f = tl.at(14 * 60, "notified", to="alice", channel="email", level=1).facts()
    assert f.pages == {"alice": [1, 0, 1], "night": [0, 1, 0]}
    saturday = parse_instant("2026-11-21T12:00:00Z")
    assert page_window(saturday, UTC) == "off_hours"


def test_terms_from_the_policy() -> None:
    t = terms_for(ACME, "globex")
    assert t.tier == "gold" and t.clock == "calendar"
    assert t.target("P1", "first_response") == 15 * MINUTE
    assert terms_for(ACME, "initech").clock == "business"
    assert terms_for(ACME, "globex") is t


def test_business_elapsed_counts_only_business_hours() -> None:
    berlin = terms_for(ACME, "initech")  # berlin-office hours
    start = parse_instant("2026-11-20T16:00:00+01:00")  # Friday 16:00, office till 18:00?
    entries = [
        {"at": start, "case": "C1", "kind": "opened", "customer": "initech", "priority": "P3"},
        {"at": start + 3 * 24 * HOUR, "case": "C1", "kind": "acknowledged", "by": "a"},
    ]
    f = derive(entries, berlin)
    assert f is not None
    m = f.metrics["first_response"]
    assert m.calendar == 3 * 24 * HOUR
    assert m.business == berlin.calendar.elapsed_us(start, start + 3 * 24 * HOUR) < m.calendar


# -- incremental == whole -------------------------------------------------------------------

KINDS = st.sampled_from(
    [
        ("acknowledged", {"by": "a"}),
        ("responded", {"by": "a"}),
        ("customer_replied", {}),
        ("pending", {}),
        ("paused", {"metric": "resolution"}),
        ("paused", {"metric": "next_response"}),
        ("resumed", {"metric": "resolution"}),
        ("resumed", {"metric": "next_response"}),
        ("sla_breached", {"metric": "first_response"}),
        ("sla_breached", {"metric": "resolution"}),
        ("escalated", {"level": 2, "cause": "timer"}),
        ("escalated", {"level": 3, "cause": "manual", "reason": "r1"}),
        ("escalated", {"level": 2, "cause": "customer", "reason": "r2"}),
        ("assigned", {"to": "team:a"}),
        ("assigned", {"to": "team:b"}),
        ("assigned", {"to": "person:night"}),
        ("priority_changed", {"priority": "P3"}),
        ("resolved", {"by": "a"}),
        ("reopened", {}),
        ("closed", {}),
        ("notified", {"to": "night", "channel": "sms", "level": 1}),
        ("notified", {"to": "alice", "channel": "email", "level": 1}),
        ("delivered", {"to": "alice", "channel": "email"}),
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    steps_=st.lists(st.tuples(st.integers(0, 6 * 60), KINDS), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=6),
    terms=st.sampled_from([WALL, terms_for(ACME, "initech")]),
)
def test_facts_kept_incrementally_equal_the_whole_timelines(
    steps_: list[tuple[int, tuple[str, dict[str, Any]]]], cuts: list[int], terms: Terms
) -> None:
    at = T0
    entries = [_e(0, "opened", customer="initech", category="general", priority="P1")]
    for gap, (kind, fields) in steps_:
        at += gap * MINUTE
        entries.append({"at": at, "case": "C1", "kind": kind, **fields})
    whole = derive(entries, terms)
    # decisions of random sizes, the facts stored as JSON between them (as the store does)
    bounds = sorted({0, len(entries), *(c for c in cuts if c < len(entries))})
    kept: Facts | None = None
    for a, b in itertools.pairwise(bounds):
        kept = steps(kept, entries[a:b], terms)
        if kept is not None:
            kept = Facts.from_dict(json.loads(json.dumps(kept.to_dict())))
    assert whole is not None and kept is not None
    assert kept.to_dict() == whole.to_dict()
    one_by_one: Facts | None = None
    for e in entries:
        one_by_one = steps(one_by_one, [e], terms)
    assert one_by_one is not None and one_by_one.to_dict() == whole.to_dict()
