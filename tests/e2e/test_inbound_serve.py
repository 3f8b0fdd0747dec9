"""`rungs serve --smtp-port` as a real process: a mail answered 250 is a case that survives
SIGKILL right after, and the automatic answer reaches a real SMTP server."""

from __future__ import annotations

import signal
import smtplib
from pathlib import Path

import httpx

from tests.mail import POLICY, Sink, mail, send_over
from tests.procs import Servers, cli_token, free_port, wait_until


def test_serve_takes_mail_by_smtp_and_a_250_survives_sigkill(tmp_path: Path) -> None:
    sink = Sink()
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.replace("port: 1,", f"port: {sink.port},"))
        db = f"sqlite:///{tmp_path / 'rungs.db'}"
        token = cli_token(db, "viewer")
        smtp_port = free_port()
        extra = ["--smtp-port", str(smtp_port), "--blob-dir", str(tmp_path / "blobs")]
        with Servers(tmp_path) as servers:
            first = servers.start("first", db, policy, extra=extra)
            first.wait_healthy()
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
                m = mail("ops@globex.test", "Database down", "It is down.",
                         attachments=[("log.txt", "text/plain", b"error 42\n")])  # fmt: skip
                assert send_over(s, m) == (250, "2.0.0 OK C1")
            first.signal(signal.SIGKILL)  # at once: the case was committed before the 250
            first.proc.wait(timeout=10)
            second = servers.start("second", db, policy, extra=extra)
            second.wait_healthy()
            auth = {"Authorization": f"Bearer {token}"}
            case = httpx.get(f"{second.url}/v1/cases/C1", headers=auth).json()
            assert case["title"] == "Database down" and case["customer"] == "globex"
            files = httpx.get(f"{second.url}/v1/cases/C1/attachments", headers=auth).json()
            assert [f["name"] for f in files] == ["log.txt"]
            # the answer was an outbox row in the same transaction: delivered by either process
            wait_until("the answer", lambda: sink.to("ops@globex.test"), timeout=30)
            assert sink.to("ops@globex.test")[0]["Subject"].startswith("[C1] ")
    finally:
        sink.stop()
