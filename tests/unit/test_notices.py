""" "Handled by" notices, decided by the core: who is told, on what channel, with what key.

The rule is the one the live service applied before notices moved into `decide` (reading the
timeline back after each decision); `_told_by_timeline` keeps that reading as the oracle, and
random stories must agree with it notice for notice.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from pathlib import Path
from typing import Any

import pytest

from rungs.core.decide import decide
from rungs.core.model import Event, Notice, Record, Refused
from rungs.core.notices import notice_key
from rungs.policy import Policy, load_policy, load_policy_text
from rungs.sim.runner import Simulation
from rungs.time.instant import MINUTE, parse_instant

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "tests" / "scenarios" / "notices" / "policy.yaml"
NOTICES = load_policy(POLICY_FILE)
START = parse_instant("2026-06-01T10:00:00Z")


def _variant(text: str) -> Policy:
    policy, problems = load_policy_text(text, "variant.yaml", str(POLICY_FILE.parent))
    assert policy is not None, problems
    return policy


def _told_by_timeline(
    policy: Policy, entries: list[dict[str, Any]], case: Any, about: str, by: str | None
) -> list[tuple[str, str]]:
    """The live service's former rule, over the case's timeline after the decision."""
    paged: dict[str, str] = {}
    for e in entries:
        if e["kind"] in ("opened", "reopened"):
            paged = {}
        elif e["kind"] == "notified" and (e["channel"] != "voice" or e["to"] not in paged):
            paged[e["to"]] = e["channel"]
    out = []
    for person, channel in paged.items():
        if person == by:
            continue
        if channel == "voice":
            p = policy.people.get(person)
            if p is None or "sms" not in p.contacts:
                continue
            channel = "sms"
        out.append((person, channel))
    return out


class _Checked(Simulation):
    """A simulation that checks every decision's notices against the timeline's rule."""

    checked: int = 0

    def handle(self, case_id: str, event: Event, now: int) -> None:
        before = len(self.timeline)
        super().handle(case_id, event, now)
        new = self.timeline[before:]
        about = next((e["kind"] for e in new if e["kind"] in ("acknowledged", "resolved")), None)
        told = [e for e in new if e["kind"] == "notice"]
        if about is None:
            assert not told
            return
        case = self.cases[case_id]
        by = next(e.get("by") for e in new if e["kind"] == about)
        mine = [e for e in self.timeline if e["case"] == case_id]
        expected = _told_by_timeline(self.policy, mine, case, about, by)
        assert [(e["to"], e["channel"]) for e in told] == expected
        assert all(e["about"] == about for e in told)
        sent = [n for n in self.outbox[-len(told) :] if isinstance(n, Notice)] if told else []
        assert [(n.person, n.channel, n.about, n.by, n.level, n.title) for n in sent] == [
            (p, c, about, by, case.level, case.title) for p, c in expected
        ]
        assert [n.key for n in sent] == [
            f"{case_id}:{about[:3]}{case.epoch}:{p}" for p, _ in expected
        ]
        self.checked += 1


def _random_story(sim: _Checked, rng: random.Random, cases: int) -> None:
    people = ("ann", "ben", "cat", "dan", "fay", "eve", None)
    t = START
    for _ in range(cases * 20):
        t += rng.randrange(1, 40) * MINUTE
        sim.run_until(t)
        cid = f"C{rng.randrange(cases)}"
        case = sim.cases.get(cid)
        if case is None:
            do, params = "open", {"data": {"customer": "acme", "title": f"case {cid}"}}
        else:
            do = rng.choice(
                ["acknowledge", "resolve", "reopen", "escalate", "assign", "close", "respond"]
            )
            params = {"by": rng.choice(people)}
            if do == "escalate":
                params["reason"] = "x"
            if do == "assign":
                params["to"] = rng.choice(("team:desk", "person:dan", "person:fay"))
        with contextlib.suppress(Refused):
            sim.handle(cid, Event(do, **params), t)


@pytest.mark.parametrize("seed", range(6))
def test_random_stories_notify_as_the_timeline_says(seed: int) -> None:
    sim = _Checked(NOTICES)
    _random_story(sim, random.Random(seed), cases=8)
    assert sim.checked > 8
    assert any(e["kind"] == "notice" for e in sim.timeline)


def _ack_effects(policy: Policy, by: str = "ben") -> list[Any]:
    case, _ = decide(None, Event("open", data={"customer": "acme"}), START, policy, case_id="C1")
    _, effects = decide(case, Event("acknowledge", by=by), START + MINUTE, policy)
    return effects


def test_notices_need_a_channels_section_with_handled_notice_on() -> None:
    text = POLICY_FILE.read_text(encoding="utf-8")
    assert any(isinstance(e, Notice) for e in _ack_effects(NOTICES))
    off = _variant(text.replace("handled_notice: true", "handled_notice: false"))
    absent = _variant(text.replace("channels:\n  handled_notice: true\n", ""))
    for policy in (off, absent):
        effects = _ack_effects(policy)
        assert not [e for e in effects if isinstance(e, Notice)]
        assert not [e for e in effects if isinstance(e, Record) and e.entry["kind"] == "notice"]


def test_a_notice_is_a_timeline_entry_and_an_outbox_effect() -> None:
    effects = _ack_effects(NOTICES)
    entries = [e.entry for e in effects if isinstance(e, Record) and e.entry["kind"] == "notice"]
    notices = [e for e in effects if isinstance(e, Notice)]
    assert [(e["to"], e["channel"], e["about"]) for e in entries] == [
        ("ann", "email", "acknowledged"),
        ("cat", "sms", "acknowledged"),
    ]
    assert notices[0] == Notice("C1", "ann", "email", "acknowledged", "ben", 1, "", "C1:ack0:ann")


def test_a_long_key_is_hashed() -> None:
    person = "p" * 130
    key = notice_key("C1", "resolved", 2, person)
    assert key == "C1:res2:" + hashlib.sha256(person.encode()).hexdigest()[:32]
    assert notice_key("C1", "resolved", 2, "ann") == "C1:res2:ann"
