"""`rungs serve --smtp-port` as real processes and the survey page in a real browser:

- a mail answered `250` is a case (with its attachment) that survives SIGKILL right after;
- once the virtual clock, moved through the API, passes `after`, the survey mail arrives at a
  real SMTP server, and so does the automatic answer the killed process had not sent;
- the survey page in Chromium with JavaScript off, on a phone's screen: the link opens the
  form with its rating chosen, Send records once, and the link then answers 410.
"""

from __future__ import annotations

import re
import signal
import smtplib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mail import POLICY, Sink, mail, send_over
from tests.procs import Servers, cli_token, free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")
START = "2026-12-01T09:00:00Z"


def survey_link(sink: Sink, rating: int) -> str | None:
    for m in sink.to("ops@globex.test"):
        if "How did we do?" in str(m["Subject"]):
            text = m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            found = re.search(rf"(/s/[\w-]+)\?rating={rating}", text)
            return found.group(1) if found else None
    return None


def test_mail_in_survives_sigkill_and_the_survey_page_works_on_a_phone(
    tmp_path: Path, browser: Any
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    sink = Sink()
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.replace("port: 1,", f"port: {sink.port},"))
        db = f"sqlite:///{tmp_path / 'rungs.db'}"
        admin = {"Authorization": f"Bearer {cli_token(db, 'admin', 'admin')}"}
        smtp_port = free_port()
        extra = ["--smtp-port", str(smtp_port), "--virtual-clock", START,
                 "--blob-dir", str(tmp_path / "blobs")]  # fmt: skip
        secrets = {"RUNGS_ALLOW_VIRTUAL_CLOCK": "1"}
        with Servers(tmp_path) as servers:
            first = servers.start("first", db, policy, extra=extra, secrets=secrets)
            first.wait_healthy()
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
                m = mail("ops@globex.test", "Slow", "Slow pages.",
                         attachments=[("log.txt", "text/plain", b"error 42\n")])  # fmt: skip
                assert send_over(s, m) == (250, "2.0.0 OK C1")
            first.signal(signal.SIGKILL)  # at once: the case was committed before the 250
            first.proc.wait(timeout=10)
            server = servers.start("second", db, policy, extra=extra, secrets=secrets)
            server.wait_healthy()
            case = httpx.get(f"{server.url}/v1/cases/C1", headers=admin).json()
            assert (case["title"], case["customer"]) == ("Slow", "globex")
            files = httpx.get(f"{server.url}/v1/cases/C1/attachments", headers=admin).json()
            assert [f["name"] for f in files] == ["log.txt"]
            done = httpx.post(f"{server.url}/v1/cases/C1/resolve", json={"by": "alice"},
                              headers=admin)  # fmt: skip
            assert done.status_code == 200, done.text
            moved = httpx.post(f"{server.url}/v1/clock/advance",
                               json={"to": "2026-12-02T10:00:00Z"}, headers=admin)  # fmt: skip
            assert moved.status_code == 200, moved.text
            path = wait_until("the survey mail", lambda: survey_link(sink, 4), timeout=30)
            answers = [m for m in sink.to("ops@globex.test") if str(m["Subject"]).startswith(
                "[C1] We received")]  # fmt: skip
            assert len(answers) == 1  # the killed process's answer: sent by the second
            # pytest-playwright's browser (tests/e2e/browser/conftest.py: Debian's Chromium)
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
            phone.close()
            timeline = httpx.get(f"{server.url}/v1/cases/C1/timeline", headers=admin).json()
            answered = [e for e in timeline if e["kind"] == "survey_answered"]
            assert [(e["rating"], e["comment"]) for e in answered] == [(4, "Fine, thanks.")]
    finally:
        sink.stop()
