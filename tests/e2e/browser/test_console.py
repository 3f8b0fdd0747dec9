"""The console in Chromium: sign in, a case opened through the API appears in the queue
without a reload (SSE), acknowledge it, escalate it with a reason, watch the timeline update
live, sign out; at 1440×900 and 375×667, with axe on every page.

`RUNGS_SCREENSHOTS=DIR` also saves the queue and the case page as PNGs there
(`scripts/screenshots.py` runs this test so)."""

from __future__ import annotations

import os
from pathlib import Path
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

SHOTS = os.environ.get("RUNGS_SCREENSHOTS")


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=False)


def _live(page: Any) -> None:
    """Wait until the page's SSE connection is open (htmx:sseOpen)."""
    page.wait_for_selector('body[data-live="1"]', timeout=5000)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_sign_in_see_act_escalate_sign_out(page: Any, console: Console, size: str) -> None:
    page.set_viewport_size(DESKTOP if size == "desktop" else PHONE)
    page.goto(console.url + "/")
    expect(page).to_have_url(console.url + "/login")  # signed out: every page asks
    check_axe(page)
    signed_in(page, console, "alice")
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    _live(page)

    title = f"Router down in Hamburg ({size})"
    opened = console.api_post(
        "/v1/cases", {"customer": "globex", "category": "network", "priority": "P1", "title": title}
    )
    case_id = opened["id"]
    row = page.locator(f'tr[data-case="{case_id}"]')
    expect(row).to_be_visible(timeout=5000)  # no reload: the SSE event refreshed the rows
    expect(row).to_contain_text(title)
    expect(row).to_contain_text("gold")
    expect(row.locator('td[data-label="Next SLA breach"]')).to_contain_text("in 15m")
    check_axe(page)
    assert_no_horizontal_scroll(page)
    console.advance_by(minutes=10)  # the first-response warning (50%) fires on the way
    page.reload()
    expect(row.locator('td[data-label="Next SLA breach"]')).to_contain_text("in 5m")
    _shot(page, f"queue-{size}")

    page.get_by_role("link", name=case_id, exact=True).click()
    expect(page.get_by_role("heading", name=f"{case_id}: {title}")).to_be_visible()
    _live(page)
    _shot(page, f"case-{size}")
    page.get_by_text("why?").first.click()
    expect(page.get_by_text("Counted 10m of 15m").first).to_be_visible()
    check_axe(page)
    assert_no_horizontal_scroll(page)

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#toasts")).to_contain_text(f"{case_id} acknowledged")
    expect(page.locator("#status")).to_have_text("acknowledged")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

    page.get_by_label("Reason").select_option("customer_request")
    page.get_by_role("button", name="Escalate").click()
    expect(page.locator("#toasts")).to_contain_text(f"{case_id} escalated")
    entry = page.locator('#timeline li[data-kind="escalated"]').first
    expect(entry).to_contain_text("by alice")
    expect(entry).to_contain_text("via web")
    expect(entry).to_contain_text("reason: customer_request")
    _live(page)

    # someone else acts through the API: the open page shows it without a reload
    console.api_post(f"/v1/cases/{case_id}/assign", {"to": "person:bob", "by": "carol"})
    expect(page.locator('#timeline li[data-kind="assigned"]').first).to_contain_text(
        "by carol", timeout=5000
    )
    check_axe(page)
    assert_no_horizontal_scroll(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(console.url + "/login")
    page.goto(console.url + f"/cases/{case_id}")
    expect(page).to_have_url(f"{console.url}/login?next=/cases/{case_id}")


def test_the_queue_keys_and_bulk_acknowledge(page: Any, console: Console) -> None:
    page.set_viewport_size(DESKTOP)
    signed_in(page, console, "bob")
    one = console.api_post("/v1/cases", {"customer": "initech", "title": "keys one"})["id"]
    two = console.api_post("/v1/cases", {"customer": "initech", "title": "keys two"})["id"]
    page.goto(console.url + "/?q=keys+one")
    page.keyboard.press("j")  # the first (only) row becomes the current one
    expect(page.locator(f'tr[data-case="{one}"]')).to_have_class("current")
    page.keyboard.press("a")  # acknowledges it
    expect(page.locator("#toasts")).to_contain_text(f"{one} acknowledged")
    expect(page.locator(f'tr[data-case="{one}"] td[data-label="Status"]')).to_have_text(
        "acknowledged"
    )
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()

    page.goto(console.url + "/?q=keys")  # bulk: select both, Resolve selected
    page.get_by_label(f"Select {one}").check()
    page.get_by_label(f"Select {two}").check()
    page.get_by_role("button", name="Resolve selected").click()
    expect(page.locator("#toasts")).to_contain_text("Resolved 2 cases.")
    expect(page.locator("table.cases tbody")).to_contain_text("No case matches.")
    timeline = console.api_get(f"/v1/cases/{two}/timeline")
    [resolved] = [e for e in timeline if e["kind"] == "resolved"]
    assert (resolved["by"], resolved["actor"]) == ("bob", "web")
