"""`recent_changes`: the changes made within two hours before a case opened, for its customer
or for any, latest first."""

from __future__ import annotations

from rungs.core.handoff import CHANGE_WINDOW, recent_changes
from rungs.core.model import Case
from rungs.time.instant import MINUTE, parse_instant

OPENED = parse_instant("2026-11-24T09:00:00Z")


def _case(customer: str) -> Case:
    return Case.from_dict(
        {"id": "C1", "customer": customer, "category": "general", "priority": "P2",
         "title": "t", "opened_at": OPENED, "status": "open", "level": 1, "matrix": "default",
         "fields": {}, "tags": [], "metrics": {}, "rules_true": [], "happened": []}
    )  # fmt: skip


def test_window_customer_and_order() -> None:
    changes = [
        {"at": OPENED - CHANGE_WINDOW - MINUTE, "customer": None, "summary": "too early"},
        {"at": OPENED - CHANGE_WINDOW, "customer": None, "summary": "edge"},
        {"at": OPENED - 5 * MINUTE, "customer": "globex", "summary": "globex deploy"},
        {"at": OPENED - 10 * MINUTE, "customer": "initech", "summary": "other customer"},
        {"at": OPENED + MINUTE, "customer": None, "summary": "after opening"},
    ]
    got = recent_changes(_case("globex"), changes)
    assert [c["summary"] for c in got] == ["globex deploy", "edge"]
    assert got[0]["at"] == "2026-11-24T08:55:00Z" and got[0]["before_opening"] == "5m"
    assert got[1]["before_opening"] == "2h"
    assert recent_changes(_case("globex"), []) == []
