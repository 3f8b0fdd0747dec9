"""Compensation: the policy section's located errors and the suggestions' arithmetic."""

from __future__ import annotations

from pathlib import Path

from rungs.core.compensation import Breach, suggest
from rungs.policy import load_policy_text
from rungs.policy.model import Compensation, CompensationBand, CompensationTable, Customer
from rungs.time.instant import HOUR

ROOT = Path(__file__).resolve().parents[2]
CORE = (ROOT / "tests" / "scenarios" / "core" / "policy.yaml").read_text(encoding="utf-8")
SECTION = (ROOT / "tests" / "fixtures" / "reports" / "compensation.yaml").read_text("utf-8")


def test_the_section_compiles() -> None:
    policy, problems = load_policy_text(CORE + "\n" + SECTION, "p.yaml")
    assert policy is not None, problems
    comp = policy.compensation
    assert comp is not None and comp.version == "2026-06-a" and comp.currency == "EUR"
    gold = comp.tiers["gold"]
    assert (gold.cap_percent, gold.minimum, len(gold.bands)) == (12.0, 10.0, 3)
    assert gold.bands[0] == CompensationBand(10.0, frozenset({"resolution"}), frozenset({"P1"}),
                                             50.0, 1)  # fmt: skip
    assert comp.tiers["standard"].cap_percent == 100.0


def test_bad_bands_are_located_errors() -> None:
    bad = """
compensation:
  version: v1
  tiers:
    gold:
      cap_percent: 150
      bands:
        - {metric: resolutoin, credit_percent: 5}
        - {priority: P9, credit_percent: -1}
        - {credit_percent: 5, breaches_at_least: 0, colour: red}
"""
    policy, problems = load_policy_text(CORE + bad, "p.yaml")
    assert policy is None
    text = [(p.line, p.message) for p in problems if p.severity == "error"]
    base = CORE.count("\n") + 1
    lines = {line - base for line, _ in text}
    messages = " | ".join(m for _, m in text)
    assert "'cap_percent' must be a number from 0 to 100, not 150" in messages
    assert "unknown metric 'resolutoin' (did you mean 'resolution'?)" in messages
    assert "unknown priority 'P9'" in messages
    assert "'credit_percent' must be a number from 0 to 100, not -1" in messages
    assert "'breaches_at_least' must be a whole number from 1" in messages
    assert "unknown field 'colour'" in messages
    assert lines == {5, 7, 8, 9}, text


def test_a_missing_version_is_an_error() -> None:
    policy, problems = load_policy_text(CORE + "\ncompensation: {tiers: {}}\n", "p.yaml")
    assert policy is None
    assert any("is missing 'version'" in p.message for p in problems)


COMP = Compensation(
    "v1",
    {
        "gold": CompensationTable(
            (
                CompensationBand(10.0, frozenset({"resolution"}), frozenset({"P1"}), 50.0),
                CompensationBand(5.0, frozenset({"resolution"})),
                CompensationBand(1.0, breaches_at_least=3),
            ),
            cap_percent=12.0,
            minimum=10.0,
        )
    },
    "EUR",
)
GOLD = Customer("g", "G", "gold", 120_000.0)  # 10,000.00 a month


def _b(case: str, at: int, metric: str = "resolution", prio: str = "P1", over: float = 0) -> Breach:
    target = 4 * HOUR
    return Breach(case, "g", metric, prio, at, target, int(target * (1 + over / 100)))


def test_first_band_wins_and_the_cap_cuts_later_credits() -> None:
    made = suggest([_b("C2", 20, over=10), _b("C1", 10, over=60), _b("C3", 30, "first_response")],
                   COMP, {"g": GOLD})  # fmt: skip
    assert [s.breach.case for s in made] == ["C1", "C2", "C3"]  # by breach instant
    c1, c2, c3 = made
    assert (c1.amount_cents, c1.rationale["band"]) == (100_000, 1)  # 10 % of 10,000.00
    assert c1.rationale["breach"]["overrun_percent"] == 60.0
    # band 2: 5 % = 500.00, but the cap (12 % = 1,200.00) leaves 200.00
    assert (c2.amount_cents, c2.rationale["band"]) == (20_000, 2)
    assert "cap 12 % = 1200.00, 1000.00 already suggested: 200.00" in c2.rationale["arithmetic"]
    # band 3 needs a third breach: it is one; the cap is used up
    assert (c3.amount_cents, c3.rationale["band"]) == (0, 3)


def test_below_the_minimum_is_zero_and_no_table_is_zero() -> None:
    small = Customer("g", "G", "gold", 1_000.0)  # 83.33 a month: 5 % is 4.17 < 10
    (s,) = suggest([_b("C1", 1, prio="P2")], COMP, {"g": small})
    assert s.amount_cents == 0 and "below the minimum 10" in s.rationale["arithmetic"]
    (u,) = suggest([_b("C1", 1, "first_response")], COMP, {"g": small})
    assert u.amount_cents == 0 and u.rationale["arithmetic"] == "no band matches: 0.00"
    bronze = Customer("g", "G", "bronze", 1_000.0)
    (t,) = suggest([_b("C1", 1)], COMP, {"g": bronze})
    assert t.amount_cents == 0 and t.rationale["arithmetic"] == "no table for tier 'bronze'"


def test_the_same_breaches_give_the_same_suggestions() -> None:
    breaches = [_b(f"C{i}", i * 7 % 5, over=i * 20) for i in range(6)]
    one = suggest(breaches, COMP, {"g": GOLD})
    two = suggest(list(reversed(breaches)), COMP, {"g": GOLD})
    assert one == two
