"""The survey page in a real browser (Chromium via Playwright), JavaScript off, on a phone's
screen: the link from the survey mail opens the form with its rating chosen, Send records
once, and the link then answers 410. The survey is sent by a real `rungs serve` whose virtual
clock is moved past `after` through the API."""

from __future__ import annotations

import re
import smtplib
from pathlib import Path

import httpx
import pytest

from tests.mail import POLICY, Sink, mail, send_over
from tests.procs import Servers, cli_token, free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")


def test_the_survey_page_works_without_javascript_on_a_phone(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    sink = Sink()
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.replace("port: 1,", f"port: {sink.port},"))
        db = f"sqlite:///{tmp_path / 'rungs.db'}"
        admin = {"Authorization": f"Bearer {cli_token(db, 'admin', 'admin')}"}
        smtp_port = free_port()
        extra = ["--smtp-port", str(smtp_port), "--virtual-clock", "2026-12-01T09:00:00Z"]
        with Servers(tmp_path) as servers:
            server = servers.start("serve", db, policy, extra=extra,
                                   secrets={"RUNGS_ALLOW_VIRTUAL_CLOCK": "1"})  # fmt: skip
            server.wait_healthy()
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
                assert send_over(s, mail("ops@globex.test", "Slow", "Slow pages."))[0] == 250
            done = httpx.post(f"{server.url}/v1/cases/C1/resolve", json={"by": "alice"},
                              headers=admin)  # fmt: skip
            assert done.status_code == 200, done.text
            moved = httpx.post(f"{server.url}/v1/clock/advance",
                               json={"to": "2026-12-02T10:00:00Z"}, headers=admin)  # fmt: skip
            assert moved.status_code == 200, moved.text

            def survey() -> str | None:
                for m in sink.to("ops@globex.test"):
                    if "How did we do?" in str(m["Subject"]):
                        text = m.get_body(preferencelist=("plain",)).get_content()
                        found = re.search(r"(/s/[\w-]+)\?rating=4", text)
                        return found.group(1) if found else None
                return None

            path = wait_until("the survey mail", survey, timeout=30)
            with sync_api.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                phone = browser.new_context(java_script_enabled=False, is_mobile=True,
                                            has_touch=True, viewport={"width": 390,
                                                                      "height": 844})  # fmt: skip
                page = phone.new_page()
                answer = page.goto(f"{server.url}{path}?rating=4")
                assert answer is not None and answer.status == 200
                assert page.locator("input[name=rating][value='4']").is_checked()
                send = page.get_by_role("button", name="Send")
                box = send.bounding_box()
                assert box is not None and box["x"] + box["width"] <= 390 and box["height"] >= 44
                page.get_by_label("Anything to add? (optional)").fill("Fine, thanks.")
                with page.expect_navigation() as nav:
                    send.click()
                assert nav.value is not None and nav.value.status == 200
                assert page.get_by_role("heading", name="Thank you").is_visible()
                again = page.goto(f"{server.url}{path}?rating=4")
                assert again is not None and again.status == 410
                browser.close()
            timeline = httpx.get(f"{server.url}/v1/cases/C1/timeline", headers=admin).json()
            answered = [e for e in timeline if e["kind"] == "survey_answered"]
            assert [(e["rating"], e["comment"]) for e in answered] == [(4, "Fine, thanks.")]
    finally:
        sink.stop()
