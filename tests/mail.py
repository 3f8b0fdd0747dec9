"""Real mail servers and a service that takes mail, for the inbound mail and survey tests.

`Sink` is an aiosmtpd server that keeps what Rungs sends; `Desk` is the service built as
`rungs serve` builds it, on the virtual clock, with its SMTP listener on a free port; `mail`
writes a customer's message.
"""

from __future__ import annotations

import email
import email.policy
import json
import smtplib
import socket
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import text

from rungs.api.inbound.doors import Doors
from rungs.bootstrap import build
from rungs.engine import Engine
from rungs.time.clock import SystemClock

__all__ = ["POLICY", "Desk", "Sink", "free_port", "mail"]

POLICY = (Path(__file__).parent / "fixtures" / "inbound.yaml").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """What Rungs sends by mail (a real aiosmtpd server)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def stop(self) -> None:
        self.controller.stop()


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    to: str = "support@acme.test",
    headers: dict[str, str] | None = None,
    attachments: Iterable[tuple[str, str, bytes]] = (),
    date: str | None = None,
) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = make_msgid("customer", domain=sender.rpartition("@")[2] or "x.test")
    if date:
        m["Date"] = date
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    for name, ctype, data in attachments:
        main, _, sub = ctype.partition("/")
        m.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return m


def send_over(s: smtplib.SMTP, m: EmailMessage, sender: str | None = None) -> tuple[int, str]:
    s.ehlo()
    code, reply = s.mail(sender if sender is not None else str(m["From"]))
    assert code == 250, reply
    for rcpt in [str(m["To"])]:
        code, reply = s.rcpt(rcpt)
        assert code == 250, reply
    code, reply = s.data(m.as_bytes(policy=email.policy.SMTP))
    return code, reply.decode()


class Desk:
    """The service (virtual clock at the wall clock's now) with its SMTP listener."""

    def __init__(
        self, tmp: Path, sink: Sink, policy: str = POLICY, *, db_url: str | None = None,
        **doors: Any,
    ) -> None:  # fmt: skip
        path = tmp / "policy.yaml"
        path.write_text(policy.replace("port: 1,", f"port: {sink.port},"), encoding="utf-8")
        self.sink = sink
        self.engine, self.app = build(
            db_url=db_url or f"sqlite:///{tmp / 'rungs.db'}",
            policy_file=path,
            virtual_start=SystemClock().now(),
            blob_dir=tmp / "blobs",
        )
        self.smtp_port = free_port()
        self.doors = Doors(self.engine, tmp / "blobs", smtp_port=self.smtp_port, **doors)
        self.doors.start()

    @property
    def service(self) -> Engine:
        return self.engine

    def send(self, m: EmailMessage, *, sender: str | None = None) -> tuple[int, str]:
        """Send `m` into the listener: the DATA answer (`(250, "2.0.0 OK C1")`)."""
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            return send_over(s, m, sender)

    def deliver(self, after: float = 0.0) -> None:
        """Move the virtual clock `after` seconds on: what is due is sent, results recorded."""
        self.engine.advance(self.engine.clock.now() + int(after * 1_000_000))

    def entries(self, case_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        with self.engine.db.connect() as conn:
            rows = conn.execute(
                text("SELECT entry FROM timeline WHERE case_id = :c ORDER BY id"), {"c": case_id}
            ).all()
        out = [json.loads(r.entry) for r in rows]
        return [e for e in out if kind is None or e["kind"] == kind]

    def case(self, case_id: str) -> Any:
        found = self.engine.views.case_state(case_id)
        assert found is not None, case_id
        return found[0]

    def cases(self) -> list[str]:
        with self.engine.db.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT id FROM cases ORDER BY id"))]

    def stop(self) -> None:
        self.doors.stop()
        self.engine.stop()
        self.engine.db.dispose()
