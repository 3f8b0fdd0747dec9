"""The reports page in a real browser: five charts drawn by the vendored uPlot, each with
its table beneath and a CSV link that downloads the same figures; axe finds nothing serious;
a bad window is said, with the field marked, on desktop and phone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.conftest import (
    DESKTOP,
    PHONE,
    Console,
    assert_no_horizontal_scroll,
    check_axe,
    signed_in,
)

CHARTS = (
    "Escalation rate by week",
    "Escalation reasons by week",
    "SLA achievement by priority",
    "Open cases by age",
    "Out-of-hours pages per person",
)


@pytest.fixture(scope="module")
def cases(console: Console) -> list[str]:
    """Three cases: one escalated by hand with a reason, one resolved, one left to its timers."""
    ids = []
    for cust, prio in (("globex", "P1"), ("initech", "P2"), ("globex", "P3")):
        body = {"customer": cust, "category": "network", "priority": prio, "title": "report"}
        ids.append(console.api_post("/v1/cases", body)["id"])
    console.api_post(
        f"/v1/cases/{ids[0]}/escalate", {"by": "alice", "reason": "technical_complexity"}
    )
    console.api_post(f"/v1/cases/{ids[1]}/resolve", {"by": "bob"})
    console.advance_by(minutes=90)
    return ids


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_reports_page(page: Any, console: Console, cases: list[str], size: str) -> None:
    page.set_viewport_size(DESKTOP if size == "desktop" else PHONE)
    signed_in(page, console, "erin", "/reports")  # a viewer may read reports
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    for title in CHARTS:
        section = page.get_by_role("region", name=title)
        expect(section).to_be_visible()
        expect(section.locator("[data-chart] canvas").first).to_be_attached()  # uPlot drew it
        expect(section.locator("table.figures caption")).to_contain_text(title)
    reasons = page.get_by_role("region", name="Escalation reasons by week")
    expect(reasons.locator("table.figures tbody tr").first).to_contain_text("technical_complexity")
    escalations = page.get_by_role("region", name="Escalation rate by week")
    expect(escalations.locator("table.figures tbody tr").first).to_contain_text(
        "3"
    )  # three cases opened
    check_axe(page)
    assert_no_horizontal_scroll(page)

    link = reasons.get_by_role("link", name="Download escalation reasons by week as CSV")
    answer = page.request.get(console.url + link.get_attribute("href"))
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    lines = answer.text().splitlines()
    assert lines[0] == "reason,count,share,cases"
    assert lines[1].startswith("technical_complexity,1,")

    page.goto(console.url + "/reports?from=2026-12-10&to=2026-12-01")
    expect(page.get_by_role("alert")).to_contain_text("to: must be after from")
    expect(page.get_by_label("to (before)")).to_have_attribute("aria-invalid", "true")
    check_axe(page)
