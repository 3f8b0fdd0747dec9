"""The IMAP poller against a real Dovecot: mail APPENDed to the mailbox opens cases, replies
thread, and a message is flagged seen only after its case is committed."""

from __future__ import annotations

import email.policy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rungs.api.inbound.imap import ImapPoller
from rungs.policy.secrets import SecretRefused
from tests.dovecot import Dovecot
from tests.mail import POLICY, Desk, Sink, mail
from tests.procs import wait_until

IMAP = (
    "inbound_email:\n"
    "  imap: {{host: 127.0.0.1, port: {port}, tls: none, user_env: RUNGS_TEST_IMAP_USER,"
    " password_env: RUNGS_TEST_IMAP_PASSWORD}}\n"
)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    d = Dovecot()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def desk(
    tmp_path: Path, sink: Sink, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Desk]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    monkeypatch.setenv("RUNGS_TEST_IMAP_USER", dovecot.user)
    monkeypatch.setenv("RUNGS_TEST_IMAP_PASSWORD", dovecot.password)
    policy = POLICY.replace("inbound_email:\n", IMAP.format(port=dovecot.port))
    d = Desk(tmp_path, sink, policy)
    assert d.doors.imap is not None
    yield d
    d.stop()


def raw(m: email.message.EmailMessage) -> bytes:
    return m.as_bytes(policy=email.policy.SMTP)


def test_appended_mail_opens_a_case_replies_thread_and_both_are_seen(
    desk: Desk, dovecot: Dovecot
) -> None:
    first = mail("ops@globex.test", "Backups failed", "Last night's backup failed.")
    dovecot.append(raw(first))
    wait_until("the case", lambda: desk.cases() == ["C1"], timeout=20)
    wait_until("the message seen", lambda: dovecot.unseen() == [], timeout=20)
    assert desk.case("C1").description == "Last night's backup failed."
    reply = mail("ops@globex.test", "Re: Backups failed", "It failed again.",
                 headers={"In-Reply-To": str(first["Message-ID"])})  # fmt: skip
    dovecot.append(raw(reply))
    wait_until("the reply", lambda: desk.entries("C1", "customer_replied"), timeout=20)
    wait_until("the reply seen", lambda: dovecot.unseen() == [], timeout=20)
    assert desk.cases() == ["C1"]
    desk.deliver()
    assert len(desk.sink.to("ops@globex.test")) == 1  # the new case is answered, the reply not


def test_a_message_not_taken_is_left_unseen(
    desk: Desk, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="imapclient")  # the IMAP commands sent
    desk.doors.intake.max_size = 4096  # this one is too big to take: never flagged seen
    dovecot.append(raw(mail("ops@globex.test", "Huge", "x" * 10_000)))
    dovecot.append(raw(mail("ops@globex.test", "Small", "fits")))
    wait_until("the small one", lambda: desk.cases() == ["C1"], timeout=20)
    wait_until("one left unseen", lambda: len(dovecot.unseen()) == 1, timeout=20)
    assert desk.case("C1").title == "Small"
    with dovecot.client() as c:
        c.select("INBOX", readonly=True)
        big = c.uid("SEARCH", "UNSEEN")[1][0].decode()
    sent = [r.getMessage() for r in caplog.records if r.name.startswith("imapclient")]
    assert any(f"FETCH {big} (RFC822.SIZE)" in m for m in sent)  # its size was asked ...
    assert not any(f"FETCH {big} (BODY.PEEK[])" in m for m in sent)  # ... but never its body
    with dovecot.client() as c:  # clean up for the module's next test
        c.select("INBOX")
        c.store(b"1:*", "+FLAGS", "\\Seen")


def test_a_message_that_cannot_be_taken_does_not_stop_the_poller(
    desk: Desk, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # parsing takes any bytes now, so the failure is made at the intake: an unexpected error
    # while taking this one message
    intake = desk.doors.intake
    real = intake.take

    async def take(raw: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"<odd-1@globex.test>" in raw:
            raise RuntimeError("this message cannot be taken")
        return await real(raw, *args, **kwargs)

    monkeypatch.setattr(intake, "take", take)
    bad = (
        b"From: ops@globex.test\r\nTo: support@acme.test\r\nSubject: Odd\r\n"
        b"Message-ID: <odd-1@globex.test>\r\n"
        b"Content-Type: text/plain; charset=idna\r\n\r\nodd\r\n"
    )
    dovecot.append(bad)
    dovecot.append(raw(mail("ops@globex.test", "After", "still taken")))
    wait_until("the next one", lambda: desk.cases() == ["C1"], timeout=20)
    wait_until("the bad one left unseen", lambda: len(dovecot.unseen()) == 1, timeout=20)
    assert desk.case("C1").title == "After"
    assert desk.doors.imap is not None and desk.doors.imap._thread.is_alive()
    with dovecot.client() as c:  # clean up for the module's next test
        c.select("INBOX")
        c.store(b"1:*", "+FLAGS", "\\Seen")


def test_the_login_is_read_only_from_variables_with_the_secret_prefix(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy stored before the deployment's prefix changed names a variable it may no
    longer read: the poller refuses it rather than log in with it."""
    assert desk.doors.imap is not None
    poller = ImapPoller(desk.doors.intake, desk.doors.imap.settings)
    monkeypatch.setenv("RUNGS_SECRET_PREFIX", "RUNGS_ELSEWHERE_")
    with pytest.raises(SecretRefused, match="RUNGS_TEST_IMAP_USER"):
        poller._connect()
