"""On call, Policy, People and Admin in Chromium: add an override and see it; a broken policy
edit shows its error beside its line as you type; simulate a P1 opened Friday 17:55 and read
its timeline; create a token (shown once) and revoke it. Every page at 1440×900 and 375×667,
no sideways scrolling, no serious or critical axe violation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from rungs.bootstrap import prepare
from tests.e2e.browser.conftest import (
    DESKTOP,
    PHONE,
    START,
    Console,
    assert_no_horizontal_scroll,
    check_axe,
    console_policy,
    set_password,
    signed_in,
)
from tests.procs import Servers, cli_token


@pytest.fixture(scope="module")
def editable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A console whose policy the database manages (served without --policy), so that an
    admin may save it; the shared `console` is file-managed."""
    tmp = tmp_path_factory.mktemp("editable")
    policy = tmp / "policy.yaml"
    policy.write_text(console_policy(), "utf-8")
    db = f"sqlite:///{tmp / 'rungs.db'}"
    prepare(db_url=db, policy_file=policy)  # stored once; from now on the database's
    with Servers(tmp) as servers:
        server = servers.start(
            "editable", db, None, extra=["--virtual-clock", START],
            secrets={"RUNGS_ALLOW_VIRTUAL_CLOCK": "1"},
        )  # fmt: skip
        server.wait_healthy()
        done = set_password(db, "alice")
        assert done.returncode == 0, done.stderr
        yield Console(server, cli_token(db, "admin", "browser-tests"))


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_each_page_fits_and_passes_axe(page: Any, console: Console, size: str) -> None:
    page.set_viewport_size(DESKTOP if size == "desktop" else PHONE)
    signed_in(page, console, "alice", "/oncall")
    for path, heading in (
        ("/oncall", "On call"),
        ("/policy", "Policy"),
        ("/people", "People"),
        ("/people/dave", "Dave Kim"),
        ("/admin", "Admin"),
    ):
        page.goto(console.url + path)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        assert_no_horizontal_scroll(page)
        check_axe(page)


def test_a_responder_adds_an_override_and_sees_it(page: Any, console: Console) -> None:
    page.set_viewport_size(DESKTOP)
    signed_in(page, console, "bob", "/oncall")
    expect(page.get_by_label("Who")).to_have_value("bob")  # a responder: themselves only
    page.get_by_label("From").fill("2026-12-03T08:00")
    page.get_by_label("To").fill("2026-12-03T20:00")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Note").fill("covering for dave")
    page.get_by_role("button", name="Add override").click()
    expect(page.get_by_role("status")).to_contain_text(
        "bob is on call for network-oncall from 2026-12-03T07:00:00Z to 2026-12-03T19:00:00Z"
    )
    shifts = page.locator("ol.shifts li", has_text="Bob Ortiz")
    expect(shifts.first).to_contain_text("override")
    expect(shifts.first.locator("time").first).to_have_attribute("title", "2026-12-03T07:00:00Z")


def test_the_policy_editor_shows_an_error_by_its_line_and_simulates(
    page: Any, editable: Console
) -> None:
    console = editable
    page.set_viewport_size(DESKTOP)
    signed_in(page, console, "alice", "/policy")
    editor = page.get_by_label("Policy YAML")
    text = editor.input_value()
    assert "warn_at: [50, 75, 90]" in text
    broken = text.replace("warn_at: [50, 75, 90]", "warn_at: [50, 75, 190]")
    line = broken.splitlines().index("    warn_at: [50, 75, 190]") + 1
    editor.fill(broken)  # htmx posts it as it changes: no button pressed
    problems = page.locator("#problems")
    expect(problems).to_contain_text(f"Line {line}, column", timeout=5000)
    expect(problems).to_contain_text("warn_at: [50, 75, 190]")
    editor.fill(text)
    expect(problems).to_contain_text("No errors", timeout=5000)

    page.get_by_label("Customer").select_option("globex")
    page.get_by_label("Priority").select_option("P1")
    page.get_by_label("Category").fill("network")
    page.get_by_label("Opens at").fill("2026-11-27T17:55")
    page.get_by_label("Time zone", exact=True).last.fill("Europe/Berlin")
    page.get_by_label("Run for").select_option("1d")
    page.get_by_role("button", name="Simulate").click()
    sim = page.locator("#simulation")
    expect(sim).to_contain_text("Timeline of a P1 case for globex (network)", timeout=5000)
    escalated = sim.locator("li", has_text="escalated").first
    expect(escalated).to_contain_text("level: 2")
    expect(escalated.locator("time")).to_have_attribute("title", "2026-11-27T17:10:00Z")
    expect(sim.locator("li", has_text="sla breached").first).to_contain_text("first_response")
    check_axe(page)
    editor.fill(text.replace("name: Initech", "name: Initech GmbH"))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Stored policy version 2.")
    expect(page.locator("ul.diff")).to_contain_text("~ customer initech")


def test_a_file_managed_policy_is_read_only(page: Any, console: Console) -> None:
    page.set_viewport_size(PHONE)
    signed_in(page, console, "alice", "/policy")
    expect(page.get_by_role("note")).to_contain_text("File-managed")
    expect(page.get_by_label("Policy YAML")).not_to_be_editable()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    assert_no_horizontal_scroll(page)


def test_an_admin_creates_and_revokes_a_token(page: Any, console: Console) -> None:
    page.set_viewport_size(PHONE)
    signed_in(page, console, "alice", "/admin")
    page.get_by_label("Name").fill("browser-made")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token")
    expect(secret).to_contain_text("rungs_")
    token = secret.inner_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(console.url + "/v1/cases", headers=auth, timeout=10).status_code == 200
    page.goto(console.url + "/admin")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    page.get_by_role("button", name="Revoke browser-made").click()
    expect(page.get_by_role("status")).to_contain_text("Token 'browser-made' revoked.")
    expect(page.locator("tr", has_text="browser-made")).to_have_count(0)  # active ones listed
    assert httpx.get(console.url + "/v1/cases", headers=auth, timeout=10).status_code == 401
    assert_no_horizontal_scroll(page)


def test_an_admin_holds_an_integration_for_maintenance_and_ends_it(
    page: Any, console: Console
) -> None:
    page.set_viewport_size(PHONE)
    signed_in(page, console, "alice", "/admin")
    page.get_by_label("Integrations held", exact=True).select_option(["prometheus"])
    page.get_by_label("Customers held", exact=True).select_option(["globex", "initech"])
    page.get_by_label("From", exact=True).fill("2026-12-02T11:00")
    page.get_by_label("To", exact=True).fill("2026-12-02T12:00")
    page.get_by_label("Time zone", exact=True).fill("Europe/Berlin")
    page.get_by_label("Reason", exact=True).fill("core switch swap")
    page.get_by_role("button", name="Add window").click()
    expect(page.get_by_role("status")).to_contain_text("holds prometheus, globex, initech")
    row = page.locator("tr", has_text="core switch swap")
    expect(row).to_contain_text("scheduled")
    [made] = [w for w in console.api_get("/v1/maintenance") if w["reason"] == "core switch swap"]
    assert (made["from"], made["to"], made["created_by"]) == (
        "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z", "alice"
    )  # fmt: skip
    assert_no_horizontal_scroll(page)
    row.get_by_role("button", name=f"End maintenance window {made['id']} now").click()
    expect(page.get_by_role("status")).to_contain_text(f"Maintenance window {made['id']} ended.")
    expect(page.locator("tr", has_text="core switch swap")).to_contain_text("cancelled")
