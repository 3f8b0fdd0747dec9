"""Customers' mail into the SMTP listener of a real service, answers out to a real SMTP
server: cases open and thread, escalations are requested, robots are never answered."""

from __future__ import annotations

import email.policy
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from rungs.core.model import Event
from tests import sync
from tests.mail import Desk, Sink, mail, send_over
from tests.tls import HAVE_OPENSSL, self_signed


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def desk(tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    sink.messages.clear()
    d = Desk(tmp_path, sink)
    yield d
    d.stop()


QUOTED = """Our checkout returns HTTP 500 since 10:00.

Best regards,
Olga Ops
Globex

On Mon, Dec 1, 2026 at 10:00 AM Support <support@acme.test> wrote:
> an old message
> quoted here
"""


def test_a_contact_opens_a_case_and_is_answered_once_committed(desk: Desk) -> None:
    m = mail("Olga Ops <ops@globex.test>", "Checkout is down", QUOTED,
             date="Mon, 01 Jan 2024 00:00:00 +0000")  # fmt: skip
    code, reply = desk.send(m)
    assert (code, reply) == (250, "2.0.0 OK C1")  # the case exists before the 250
    case = desk.case("C1")
    assert (case.customer, case.title, case.category, case.priority) == (
        "globex", "Checkout is down", "general", "P3")  # fmt: skip
    assert case.description == "Our checkout returns HTTP 500 since 10:00."  # no quote, signature
    assert case.fields["requester"] == "ops@globex.test"
    assert case.fields["mail_date"] == "Mon, 01 Jan 2024 00:00:00 +0000"  # recorded ...
    assert case.opened_at == desk.engine.clock.now()  # ... but arrival is what counts
    assert case.metrics["first_response"].since == case.opened_at
    assert [e["actor"] for e in desk.entries("C1", "opened")] == ["email"]
    desk.deliver()
    answers = desk.sink.to("ops@globex.test")
    assert len(answers) == 1
    a = answers[0]
    assert a["Subject"].startswith("[C1] We received your request")
    assert a["In-Reply-To"] == m["Message-ID"]
    assert a["Auto-Submitted"] == "auto-replied"
    with desk.engine.db.connect() as conn:
        kept = conn.execute(
            text("SELECT case_id FROM mail_messages WHERE message_id = :m AND direction = 'out'"),
            {"m": a["Message-ID"]},
        ).scalar()
    assert kept == "C1"  # the Message-ID is remembered: a reply to it threads


def test_replies_thread_by_header_and_by_subject(desk: Desk) -> None:
    desk.send(mail("ops@globex.test", "VPN drops", "It drops every hour."))
    desk.deliver()
    answer = desk.sink.to("ops@globex.test")[0]
    sync.act(desk.engine, "C1", Event("respond", by="alice"))
    quoted = "Still dropping.\n\nOn Mon, Dec 1, 2026 at 10:00 AM Support wrote:\n> It drops."
    reply = mail("ops@globex.test", "Re: VPN drops", quoted,
                 headers={"In-Reply-To": answer["Message-ID"]})  # fmt: skip
    assert desk.send(reply) == (250, "2.0.0 OK C1")
    replied = desk.entries("C1", "customer_replied")
    assert [(e["text"], e["sender"], e["actor"]) for e in replied] == [
        ("Still dropping.", "ops@globex.test", "email")]  # fmt: skip
    assert desk.case("C1").metrics["next_response"].state == "running"  # restarted
    # by subject, from anyone at the customer's domain
    assert desk.send(mail("cfo@globex.test", "Re: [C1] VPN drops", "Any news?"))[0] == 250
    assert len(desk.entries("C1", "customer_replied")) == 2
    # the subject of a case of another customer does not thread: a new case
    assert desk.send(mail("dev@initech.test", "[C1] hello", "Not yours."))[1].endswith("C2")
    assert desk.cases() == ["C1", "C2"]
    desk.deliver()
    assert len(desk.sink.to("ops@globex.test")) == 1  # replies are not answered


@pytest.mark.parametrize(
    "header",
    [{"Auto-Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"X-Autoreply": "yes"},
     {"X-Autorespond": "1"}, {"Precedence": "list"}],
)  # fmt: skip
def test_auto_replies_are_recorded_never_answered(desk: Desk, header: dict[str, str]) -> None:
    desk.send(mail("ops@globex.test", "Printer", "Out of paper."))
    desk.deliver()
    desk.sink.messages.clear()
    ooo = mail("ops@globex.test", "Out of office: [C1] Printer", "I am away.", headers=header)
    assert desk.send(ooo)[0] == 250
    new = mail("other@globex.test", "Automatic: hello", "I am a robot.", headers=header)
    assert desk.send(new)[0] == 250
    desk.deliver(60)
    assert desk.sink.messages == []  # never answered
    assert [e["sender"] for e in desk.entries("C1", "auto_reply")] == ["ops@globex.test"]
    assert desk.cases() == ["C1"]  # and no case for the robot


def test_bounces_are_not_answered(desk: Desk) -> None:
    bounce = mail("MAILER-DAEMON@mx.globex.test", "Undelivered Mail", "failed")
    assert desk.send(bounce, sender="")[0] == 250
    desk.deliver(60)
    assert desk.sink.messages == [] and desk.cases() == []


def test_a_mail_above_the_size_limit_is_refused_with_552(desk: Desk) -> None:
    import smtplib

    big = mail("ops@globex.test", "Logs", "x", attachments=[("big.bin", "application/octet-stream",
               b"\0" * (12 * 1024 * 1024))])  # fmt: skip
    with smtplib.SMTP("127.0.0.1", desk.smtp_port, timeout=60) as s:
        s.ehlo()
        s.mail("ops@globex.test")
        s.rcpt("support@acme.test")
        code, _ = s.data(big.as_bytes(policy=email.policy.SMTP))
    assert code == 552
    assert desk.cases() == []


def test_an_escalation_address_escalates_and_at_the_top_pages_again(desk: Desk) -> None:
    to = "escalations@acme.test"
    assert desk.send(mail("ops@globex.test", "Down!", "Everything is down.", to=to))[0] == 250
    esc = desk.entries("C1", "escalated")
    assert [(e["level"], e["cause"], e["reason"], e["text"]) for e in esc] == [
        (2, "customer", "customer_request", "Everything is down.")]  # fmt: skip
    desk.deliver()
    answer = desk.sink.to("ops@globex.test")[0]
    again = mail("ops@globex.test", "Re: Down!", "Please hurry.", to=to,
                 headers={"In-Reply-To": answer["Message-ID"]})  # fmt: skip
    assert desk.send(again)[0] == 250  # at the last level: not refused
    req = desk.entries("C1", "escalation_requested")
    assert [(e["level"], e["reason"], e["text"]) for e in req] == [
        (2, "customer_request", "Please hurry.")]  # fmt: skip
    bob = [e for e in desk.entries("C1", "notified") if e["to"] == "bob"]
    assert len(bob) == 2  # the top level paged again


def test_a_reply_to_a_resolved_case_reopens_it_and_later_opens_a_linked_case(desk: Desk) -> None:
    desk.send(mail("ops@globex.test", "Disk full", "Disk is full."))
    sync.act(desk.engine, "C1", Event("resolve", by="alice"))
    assert desk.send(mail("ops@globex.test", "Re: [C1] Disk full", "Full again."))[0] == 250
    assert desk.case("C1").status == "open"
    assert len(desk.entries("C1", "reopened")) == 1
    sync.act(desk.engine, "C1", Event("resolve", by="alice"))
    desk.deliver(8 * 86_400)  # past reopen_within (7 days)
    assert desk.send(mail("ops@globex.test", "Re: [C1] Disk full", "And again."))[1].endswith("C2")
    assert desk.case("C1").status == "resolved"
    assert desk.case("C2").fields["linked_to"] == "C1"


def test_answers_are_limited_to_one_per_sender_per_ten_minutes(desk: Desk) -> None:
    for subject in ("One", "Two"):
        desk.send(mail("ops@globex.test", subject, "text"))
    desk.deliver()
    assert len(desk.sink.to("ops@globex.test")) == 1
    desk.deliver(601)
    desk.send(mail("ops@globex.test", "Three", "text"))
    desk.deliver()
    assert len(desk.sink.to("ops@globex.test")) == 2
    assert desk.cases() == ["C1", "C2", "C3"]


def test_unknown_senders_are_kept_unmatched_and_answered_once(desk: Desk) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import api_token

    for subject in ("Hello", "Hello again"):
        assert desk.send(mail("stranger@nowhere.test", subject, "Who are you?"))[0] == 250
    desk.deliver(3600)
    assert len(desk.sink.to("stranger@nowhere.test")) == 1  # once, ever
    assert desk.cases() == []
    client = TestClient(desk.app)
    admin = {"Authorization": f"Bearer {api_token(desk.engine.db, 'admin')}"}
    viewer = {"Authorization": f"Bearer {api_token(desk.engine.db, 'viewer')}"}
    got = client.get("/v1/inbound/unmatched", headers=admin)
    assert got.status_code == 200
    assert [(r["sender"], r["subject"]) for r in got.json()] == [
        ("stranger@nowhere.test", "Hello again"), ("stranger@nowhere.test", "Hello")]  # fmt: skip
    assert client.get("/v1/inbound/unmatched", headers=viewer).status_code == 403
    bad = client.get("/v1/inbound/unmatched?limit=100000", headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "limit"


def test_unknown_senders_open_cases_for_the_default_customer(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.mail import POLICY

    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    policy = POLICY.replace("sla_policies:", "default_customer: {sla: std}\nsla_policies:")
    d = Desk(tmp_path, sink, policy)
    try:
        assert d.send(mail("stranger@nowhere.test", "Hello", "Who are you?"))[0] == 250
        assert d.case("C1").customer == "default"
        fixed = d.entries("C1", "input_corrected")
        assert [(e["field"], e["received"], e["used"]) for e in fixed] == [
            ("customer", "stranger@nowhere.test", "default")]  # fmt: skip
    finally:
        d.stop()


def test_attachments_are_kept_listed_and_never_served_inline(desk: Desk, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import api_token

    page = b"<html><script>alert(1)</script></html>"
    m = mail("ops@globex.test", "Screens", "See attached.",
             attachments=[("../../evil.html", "text/html", page)])  # fmt: skip
    desk.send(m)
    client = TestClient(desk.app)
    viewer = {"Authorization": f"Bearer {api_token(desk.engine.db, 'viewer')}"}
    listed = client.get("/v1/cases/C1/attachments", headers=viewer).json()
    assert [(a["name"], a["size"]) for a in listed] == [("_.._evil.html", len(page))]
    digest = listed[0]["sha256"]
    assert (tmp_path / "blobs" / digest[:2] / digest).read_bytes() == page
    got = client.get(f"/v1/cases/C1/attachments/{digest}", headers=viewer)
    assert got.status_code == 200 and got.content == page
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment")
    assert client.get("/v1/cases/C1/attachments/" + "0" * 64, headers=viewer).status_code == 404
    assert client.get("/v1/cases/C9/attachments", headers=viewer).status_code == 404


def test_a_mail_taken_twice_is_taken_once(desk: Desk) -> None:
    m = mail("ops@globex.test", "Once", "only once")
    desk.send(m)
    assert desk.send(m) == (250, "2.0.0 OK C1")
    assert desk.cases() == ["C1"]


def test_html_only_mail_is_converted_to_text(desk: Desk) -> None:
    m = mail("ops@globex.test", "HTML", "placeholder")
    m.set_content("<p>The <b>portal</b> is slow.</p><script>x()</script>", subtype="html")
    desk.send(m)
    assert "The **portal** is slow." in desk.case("C1").description
    assert "<" not in desk.case("C1").description


@pytest.mark.skipif(not HAVE_OPENSSL, reason="needs the openssl command")
def test_starttls_is_offered_with_a_certificate(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smtplib
    import ssl

    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    cert, key = self_signed(tmp_path)
    d = Desk(tmp_path, sink, tls=(str(cert), str(key)))
    try:
        with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30) as s:
            s.ehlo()
            assert s.has_extn("starttls")
            s.starttls(context=ssl.create_default_context(cafile=str(cert)))
            code, reply = send_over(s, mail("ops@globex.test", "Secure", "over TLS"))
        assert (code, reply) == (250, "2.0.0 OK C1")
    finally:
        d.stop()


def test_an_address_the_policy_does_not_list_is_refused(desk: Desk) -> None:
    import smtplib

    with smtplib.SMTP("127.0.0.1", desk.smtp_port, timeout=30) as s:
        s.ehlo()
        s.mail("ops@globex.test")
        code, _ = s.rcpt("someone-else@elsewhere.test")
    assert code == 550
    assert desk.cases() == []


def test_nul_characters_and_odd_ids_are_taken_on_postgres(
    tmp_path: Path, sink: Sink, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's text holds no NUL: a mail carrying NUL in its decoded sender, subject and
    body is still taken, the NULs dropped."""
    from tests.conftest import reset_database

    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    reset_database(pg_url)
    d = Desk(tmp_path, sink, db_url=pg_url)
    try:
        raw = (
            b"From: =?utf-8?q?Olga=00?= <ops@globex.test>\r\n"
            b"To: support@acme.test\r\n"
            b"Subject: =?utf-8?q?Disk=00_full?=\r\n"
            b"Message-ID: <nul-1@globex.test>\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"The disk=00 is full.\r\n"
        )
        with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30) as s:
            s.ehlo()
            assert s.mail("ops@globex.test")[0] == 250
            assert s.rcpt("support@acme.test")[0] == 250
            code, _ = s.data(raw)
        assert code == 250
        case = d.case("C1")
        assert (case.title, case.description) == ("Disk full", "The disk is full.")
        assert case.fields["requester"] == "ops@globex.test"
    finally:
        d.stop()
