"""Notification delivery against real servers started by the tests.

A real SMTP server (aiosmtpd) receives the mail; a real HTTP server on 127.0.0.1 receives
webhooks, Slack payloads and Twilio-style SMS and voice requests. The service runs in this
process on the virtual clock (started at the wall clock's now): the dispatcher runs as
`rungs serve` runs it, and `deliver` moves the clock, returning once every delivery due by then
was attempted and its result recorded. So a test asserts on what has happened, not on what
has not happened yet after a sleep.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import text

from rungs.api.links import twilio_signature
from rungs.bootstrap import build
from rungs.core.model import CallWebhook, Event
from rungs.engine import Engine as Service
from rungs.notify.links import Links
from rungs.store.outbox import new_row, wake_dispatchers, write_new
from rungs.time.clock import SystemClock
from tests import sync

SECRET = "webhook-secret-for-tests"


# real servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {got!r})")
        time.sleep(0.02)


class Request:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.at = time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class Sink:
    """An HTTP server that records every request and answers `status` after `delay` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.requests: list[Request] = []
        self.status, self.delay = status, delay
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with sink.lock:
                    sink.requests.append(Request("POST", self.path, headers, body))
                if sink.delay:
                    time.sleep(sink.delay)
                try:
                    self.send_response(sink.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender is gone (killed): nobody to answer
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, prefix: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd handler: every message received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class Smtp:
    """A real SMTP server on a fixed port that can go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.box = Mailbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    s = Smtp()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


# the service ----------------------------------------------------------------------------------


def policy_yaml(
    *, smtp_port: int, sink: Sink | None = None, people: str, extra: str = "", retry: str = ""
) -> str:
    hook = sink.url("") if sink else "http://127.0.0.1:9"
    return f"""\
version: 1
timezone: UTC
people:
{people}
customers:
  - {{id: acme, name: Acme Corp, tier: gold, value: 250000, sla: std}}
calendars:
  always: {{timezone: UTC, hours: 24x7}}
sla_policies:
  - id: std
    calendar: always
    targets:
      P1: {{first_response: 30m, resolution: 4h}}
      P2: {{first_response: 1h, resolution: 8h}}
      P3: {{first_response: 4h, resolution: 3d}}
matrices:
  - id: default
    levels:
      - {{name: Service desk, notify: [person:ann]}}
      - {{name: Engineering, after: 1h, notify: [person:bob]}}
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, sender: rungs@acme.test, security: none,
          timeout: 2s}}
  webhook: {{secret_env: RUNGS_TEST_WEBHOOK_SECRET, timeout: 2s}}
  sms: {{url: "{hook}/2010-04-01/Accounts/{{account}}/Messages.json",
        account_env: RUNGS_TEST_SMS_ACCOUNT, token_env: RUNGS_TEST_SMS_TOKEN,
        sender: "+4930000000"}}
  voice: {{url: "{hook}/2010-04-01/Accounts/{{account}}/Calls.json",
          account_env: RUNGS_TEST_SMS_ACCOUNT, token_env: RUNGS_TEST_SMS_TOKEN,
        sender: "+4930000000"}}
  retry: {{{retry or "attempts: 5, backoff: 1s, max_backoff: 2s, lease: 10s"}}}
{extra}
links: {{base_url: "http://testserver", ttl: 24h}}
"""


PEOPLE = """\
  - id: ann
    name: Ann Desk
    contacts: {email: ann@acme.test}
  - id: bob
    name: Bob Engineer
    contacts: {email: bob@acme.test}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNGS_TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("RUNGS_TEST_SMS_ACCOUNT", "AC123")
    monkeypatch.setenv("RUNGS_TEST_SMS_TOKEN", "sms-token")
    monkeypatch.delenv("RUNGS_LINK_SECRET", raising=False)
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def run(policy: str, db: str | None = None, *, virtual: bool = True) -> Service:
        path = tmp_path / "policy.yaml"
        path.write_text(policy, encoding="utf-8")
        service, app = build(
            db_url=db or f"sqlite:///{tmp_path / 'rungs.db'}",
            policy_file=path,
            # at the wall clock's now: signatures and links are checked against it
            virtual_start=SystemClock().now() if virtual else None,
        )
        service.app = app  # type: ignore[attr-defined]
        started.append(service)
        return service

    yield run
    for s in started:
        s.stop()
        s.db.dispose()


def deliver(service: Service, after: float = 0.0) -> None:
    """Move the virtual clock `after` seconds on: every timer and delivery due by then has
    run, and each delivery's result is recorded, when this returns."""
    service.advance(service.clock.now() + int(after * 1_000_000))


def entries(service: Service, case_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    with service.db.connect() as conn:
        rows = conn.execute(
            text("SELECT entry FROM timeline WHERE case_id = :c ORDER BY id"), {"c": case_id}
        ).all()
    out = [json.loads(r.entry) for r in rows]
    return [e for e in out if kind is None or e["kind"] == kind]


def outbox(service: Service) -> list[Any]:
    with service.db.connect() as conn:
        return conn.execute(
            text("SELECT case_id, kind, key, status, attempts, last_error FROM outbox ORDER BY id")
        ).all()


def open_case(service: Service, priority: str = "P2", title: str = "Checkout fails") -> str:
    case, _ = sync.open_case(
        service,
        {"customer": "acme", "priority": priority, "title": title, "description": "HTTP 500"},
    )
    return case.id


def webhook_people(sink: Sink) -> str:
    """ann paged by webhook at the sink's `/ann`; bob by email."""
    return f"""\
  - id: ann
    contacts: {{webhook: "{sink.url("/ann")}"}}
    notify: [{{via: webhook}}]
  - id: bob
    contacts: {{email: bob@acme.test}}
"""


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return part.get_content()


# email, links, notices ------------------------------------------------------------------------


def test_escalation_mail_carries_the_handoff_and_its_link_acknowledges_once(
    start: Callable[..., Service], smtp: Smtp
) -> None:
    service = start(policy_yaml(smtp_port=smtp.port, people=PEOPLE))
    cid = open_case(service)
    deliver(service)
    assert smtp.box.to("ann@acme.test"), "ann's page"
    sync.act(service, cid, Event("escalate", by="ann"))
    deliver(service)
    mail = smtp.box.to("bob@acme.test")[0]  # bob's escalation mail

    # the handoff context, in both parts of a multipart mail
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = body_text(mail), mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"[Rungs] P2 {cid} level 2: Checkout fails (Acme Corp)" == mail["Subject"]
    for needle in (
        "Why you: the case was escalated to your level (level 2, Engineering)",
        "Acme Corp, gold tier, value 250000",  # the customer and its value
        "first response: ",  # SLA state and time left
        "left (due ",
        "level 1 Service desk: reached",  # the ladder so far
        "paged ann (email)",
        "Why it moved: manual escalation by ann",  # the escalation reason
        "escalated from level 1 to level 2 (manual)",  # the last timeline entries
        "HTTP 500",
    ):
        assert needle in plain, f"{needle!r} missing from:\n{plain}"
    assert "Acme Corp" in html and "Engineering" in html and "Acknowledge</a>" in html
    key = mail["X-Rungs-Idempotency-Key"]
    notified = [e for e in entries(service, cid, "notified") if e["to"] == "bob"]
    assert key == f"{cid}:n{2}" and len(notified) == 1
    assert key.replace(":", "-") in mail["Message-ID"]
    assert [e for e in entries(service, cid, "delivered") if e["to"] == "bob"]

    ack = re.search(r"Acknowledge: (\S+)", plain).group(1)  # type: ignore[union-attr]
    path = urlsplit(ack).path
    assert ack.startswith("http://testserver/a/")
    with TestClient(service.app) as client:  # type: ignore[attr-defined]
        page = client.get(path)
        assert page.status_code == 200 and f"Acknowledge {cid}" in page.text
        assert service_status(service, cid) == "open"  # GET changes nothing
        done = client.post(path)
        assert done.status_code == 200, done.text
        assert f"{cid} is acknowledged by bob" in done.text
        assert service_status(service, cid) == "acknowledged"
        assert [e["by"] for e in entries(service, cid, "acknowledged")] == ["bob"]
        again = client.post(path)
        assert again.status_code == 410 and "already used" in again.text
        assert client.get(path).status_code == 410

        # expired, and tampered with
        links = Links(service.db)
        now = service.clock.now()
        old = links.url("", cid, "resolve", "bob", now - 1, "x")
        gone = client.post(old)
        assert gone.status_code == 410 and "expired" in gone.text
        forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        assert client.post(forged).status_code == 404
    assert service_status(service, cid) == "acknowledged"

    # "handled by" goes to ann (paged at level 1), not to bob who acted, and adds no page
    deliver(service)  # every message due is sent and recorded when this returns
    (notice,) = [m for m in smtp.box.to("ann@acme.test") if "acknowledged by" in m["Subject"]]
    assert f"{cid} acknowledged by Bob Engineer" in notice["Subject"]
    assert "Nothing more is needed from you" in body_text(notice)
    assert not [m for m in smtp.box.to("bob@acme.test") if "acknowledged by" in m["Subject"]]
    assert len(entries(service, cid, "notified")) == 2
    assert {r.kind: r.status for r in outbox(service)}["notice"] == "sent"
    notices = [r.key for r in outbox(service) if r.kind == "notice"]
    assert notices == [f"{cid}:ack0:ann"]  # one notice, ann's: none was written for bob
    assert {r.status for r in outbox(service)} == {"sent"}  # nothing left to send


def service_status(service: Service, cid: str) -> str:
    with service.db.connect() as conn:
        return conn.execute(text("SELECT status FROM cases WHERE id = :c"), {"c": cid}).scalar()


# webhook, Slack, SMS, voice -------------------------------------------------------------------


def test_webhook_slack_sms_and_voice_formats(
    start: Callable[..., Service], smtp: Smtp, sink: Sink
) -> None:
    people = f"""\
  - id: ann
    name: Ann Desk
    contacts: {{webhook: "{sink.url("/hook")}", slack: "{sink.url("/slack")}",
               sms: "+49 170 1111111", voice: "+491701111111",
               apprise: "json://127.0.0.1:{sink.port}/apprise"}}
    notify: [{{via: webhook}}, {{via: slack}}, {{via: sms}}, {{via: voice}}, {{via: apprise}}]
  - id: bob
    contacts: {{email: bob@acme.test}}
"""
    rules = f"""\
rules:
  - {{id: p1-hook, when: {{priority: P1}}, then: [{{webhook: "{sink.url("/rule")}"}}]}}
"""
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people) + rules)
    cid = open_case(service, "P1", "Payments down")
    deliver(service)
    assert len(entries(service, cid, "delivered")) == 6
    keys = {e["to"]: e["key"] for e in entries(service, cid, "delivered") if e["to"] != "ann"}
    keys.update({e["channel"]: e["key"] for e in entries(service, cid, "delivered")
                 if e["to"] == "ann"})  # fmt: skip

    # a rule's webhook: signed the same way, its result in the timeline
    (rule,) = sink.at("/rule")
    ts = rule.headers["x-rungs-timestamp"]
    mac = hmac.new(SECRET.encode(), ts.encode() + b"." + rule.body, hashlib.sha256).hexdigest()
    assert rule.headers["x-rungs-signature"] == f"sha256={mac}"
    assert rule.json()["case"] == cid and rule.json()["rule"] == "p1-hook"
    assert rule.headers["idempotency-key"] == keys[sink.url("/rule")] == rule.json()["key"]

    # webhook: HMAC-SHA256 of "<timestamp>.<body>" with the secret
    (hook,) = sink.at("/hook")
    ts, sig = hook.headers["x-rungs-timestamp"], hook.headers["x-rungs-signature"]
    want = hmac.new(SECRET.encode(), ts.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert sig == f"sha256={want}"
    assert abs(int(ts) - time.time()) < 60
    assert hook.headers["idempotency-key"] == keys["webhook"]
    assert hook.headers["content-type"] == "application/json"
    body = hook.json()
    assert body["case"]["id"] == cid and body["case"]["title"] == "Payments down"
    assert body["level"] == 1 and body["person"]["id"] == "ann" and body["reason"] == "opened"
    assert set(body["links"]) == {"acknowledge", "resolve"}
    assert body["links"]["acknowledge"].startswith("http://testserver/a/")
    assert body["handoff"]["customer"]["value"] == 250000
    assert body["handoff"]["case"]["id"] == cid and body["handoff"]["summary"]

    # Slack: blocks with the action links as buttons
    (slack,) = sink.at("/slack")
    payload = slack.json()
    assert "Payments down" in payload["text"]
    actions = [b for b in payload["blocks"] if b["type"] == "actions"]
    urls = {e["url"] for b in actions for e in b["elements"]}
    assert len(urls) == 2 and all(u.startswith("http://testserver/a/") for u in urls)
    assert any("Acme Corp" in b.get("text", {}).get("text", "") for b in payload["blocks"])

    # SMS and voice: Twilio's request format
    (sms,) = sink.at("/2010-04-01/Accounts/AC123/Messages.json")
    (call,) = sink.at("/2010-04-01/Accounts/AC123/Calls.json")
    for req, channel in ((sms, "sms"), (call, "voice")):
        auth = base64.b64decode(req.headers["authorization"].split()[1]).decode()
        assert auth == "AC123:sms-token"
        assert req.headers["idempotency-key"] == keys[channel]
        assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    form = sms.form()
    assert form["To"] == "+491701111111" and form["From"] == "+4930000000"
    code = cid[1:]
    assert f"Reply {code} to acknowledge" in form["Body"] and len(form["Body"]) <= 320
    assert form["Body"].startswith(f"Rungs P1 {cid} L1 Acme Corp: Payments down.")
    twiml = call.form()["Twiml"]
    assert twiml.startswith("<Response><Say") and "Payments down" in twiml

    # Apprise (here its JSON notifier): the subject and the full text
    (note,) = sink.at("/apprise")
    assert note.json()["title"].startswith(f"[Rungs] P1 {cid} level 1: Payments down")
    assert "Acknowledge: http://testserver/a/" in note.json()["message"]

    # an SMS reply with the short code acknowledges, from ann's number only, signed
    with TestClient(service.app) as client:  # type: ignore[attr-defined]

        def reply(frm: str, text_: str, token: str = "sms-token") -> Any:
            form = {"From": frm, "Body": text_, "To": "+4930000000"}
            sig = twilio_signature(token, "http://testserver/inbound/sms", form)
            return client.post("/inbound/sms", data=form, headers={"X-Twilio-Signature": sig})

        assert reply("+491701111111", code, token="wrong").status_code == 403
        assert reply("+491709999999", code).status_code == 403
        r = reply("+491701111111", f"ACK {code}")
        assert r.status_code == 200 and "acknowledged by Ann Desk" in r.text, r.text
        assert r.headers["content-type"].startswith("text/xml")
    assert service_status(service, cid) == "acknowledged"
    assert [e["by"] for e in entries(service, cid, "acknowledged")] == ["ann"]


def test_on_the_real_clock_new_rows_go_at_once_and_other_processes_rows_by_poll(
    start: Callable[..., Service], smtp: Smtp, sink: Sink, db_url: str
) -> None:
    people = webhook_people(sink)
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people), db_url,
                    virtual=False)  # fmt: skip
    cid = open_case(service)  # its page: claimed in the decision, handed over at commit
    wait_for("the page", lambda: entries(service, cid, "delivered"))
    (ann,) = sink.at("/ann")
    assert ann.json()["case"]["id"] == cid and ann.headers["idempotency-key"] == f"{cid}:n1"

    # a row another process wrote (pending): claimed by the poll, or at once after its NOTIFY
    other = new_row(CallWebhook(cid, sink.url("/other"), {"rule": "r1"}, f"{cid}:other"))
    now = service.clock.now()

    def write(conn: Any) -> None:
        write_new(conn, [other], now, None, None)
        wake_dispatchers(conn)

    service.writer.call(write)
    wait_for("the other row's result", lambda: len(entries(service, cid, "delivered")) == 2)
    (hook,) = sink.at("/other")
    assert hook.json() == {"type": "rule", "key": f"{cid}:other", "rule": "r1"}
    assert {(r.key, r.status, r.attempts) for r in outbox(service)} == {
        (f"{cid}:n1", "sent", 1),
        (f"{cid}:other", "sent", 1),
    }


# faults ---------------------------------------------------------------------------------------


def test_smtp_down_then_back_every_mail_arrives_exactly_once(
    start: Callable[..., Service], smtp: Smtp
) -> None:
    smtp.stop()
    service = start(policy_yaml(smtp_port=smtp.port, people=PEOPLE))
    ids = [open_case(service, title=f"down {i}") for i in range(3)]
    deliver(service)
    assert all(entries(service, c, "delivery_failed") for c in ids), "a failed attempt each"
    deliver(service, 1.0)  # and a retry (backoff 0.5-1s) while still down
    assert all(len(entries(service, c, "delivery_failed")) == 2 for c in ids)
    smtp.start()
    deliver(service, 2.0)  # the next retry is due within max_backoff
    assert len(smtp.box.messages) >= 3, "every mail"
    assert all(entries(service, c, "delivered") for c in ids), "every delivery recorded"
    deliver(service, 60.0)  # past every lease: a duplicate would have been sent by now
    keys = sorted(m["X-Rungs-Idempotency-Key"] for m in smtp.box.messages)
    assert keys == sorted(f"{c}:n1" for c in ids)  # each exactly once
    for c in ids:
        failed = entries(service, c, "delivery_failed")
        assert failed and all(not e["permanent"] for e in failed)
        assert "Connection" in failed[0]["reason"] or "refused" in failed[0]["reason"]
        assert len(entries(service, c, "delivered")) == 1
        kinds = [e["kind"] for e in entries(service, c)]
        assert kinds.index("delivery_failed") < kinds.index("delivered")
    assert {r.status for r in outbox(service)} == {"sent"}


def test_smtp_down_for_good_dead_letters_and_pages_the_next_method(
    start: Callable[..., Service], smtp: Smtp, sink: Sink
) -> None:
    smtp.stop()
    people = """\
  - id: ann
    name: Ann Desk
    contacts: {email: ann@acme.test, sms: "+491701111111"}
    notify: [{via: email}]
  - id: bob
    contacts: {email: bob@acme.test}
"""
    policy = policy_yaml(smtp_port=smtp.port, sink=sink, people=people,
                         retry="attempts: 2, backoff: 1s, max_backoff: 1s")  # fmt: skip
    service = start(policy)
    cid = open_case(service)
    deliver(service, 1.0)  # the first attempt, the second after its backoff, the SMS
    sms = sink.at("/2010-04-01/")
    assert len(sms) == 1 and f"{cid}" in sms[0].form()["Body"]
    assert entries(service, cid, "delivered"), "the SMS delivered"
    failed = entries(service, cid, "delivery_failed")
    assert [e["permanent"] for e in failed] == [False, True]
    assert failed[-1]["reason"].startswith("gave up after 2 attempts: ")
    pages = [(e["channel"], e["reason"]) for e in entries(service, cid, "notified")]
    assert pages == [("email", "opened"), ("sms", "fallback from email")]
    rows = {r.key: r for r in outbox(service)}
    assert rows[f"{cid}:n1"].status == "dead" and rows[f"{cid}:n1"].attempts == 2
    assert rows[f"{cid}:n2"].status == "sent"


def test_permanent_refusal_is_not_retried(
    start: Callable[..., Service], smtp: Smtp, sink: Sink
) -> None:
    sink.status = 404
    people = f"""\
  - id: ann
    contacts: {{webhook: "{sink.url("/gone")}", email: ann@acme.test}}
    notify: [{{via: webhook}}]
  - id: bob
    contacts: {{email: bob@acme.test}}
"""
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people))
    cid = open_case(service)
    deliver(service)
    assert smtp.box.to("ann@acme.test"), "the email fallback"
    (failed,) = entries(service, cid, "delivery_failed")
    assert failed["permanent"] and failed["reason"].startswith("HTTP 404")
    assert len(sink.at("/gone")) == 1


# hygiene --------------------------------------------------------------------------------------


def test_bundles_within_the_window_rate_limits_and_p1_past_them(
    start: Callable[..., Service], smtp: Smtp, sink: Sink
) -> None:
    people = webhook_people(sink)
    extra = "  bundle: 1s\n  rate_limits: {person: 3/1h}\n  handled_notice: false"
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people, extra=extra))
    a = open_case(service, "P3", "A")
    deliver(service)
    assert len(sink.at("/ann")) == 1, "A at once"
    b, c = open_case(service, "P3", "B"), open_case(service, "P3", "C")
    deliver(service)
    assert len(sink.at("/ann")) == 1, "B and C wait for the window's end"
    deliver(service, 1.0)
    bodies = [r.json() for r in sink.at("/ann")]
    assert [x["case"]["id"] for x in bodies] == [a, b]
    assert bodies[1]["type"] == "bundle" and [i["case"]["id"] for i in bodies[1]["items"]] == [b, c]
    assert bodies[1]["key"].startswith("bundle-")
    for cid in (b, c):
        assert entries(service, cid, "delivered"), f"{cid} delivered"
    d = open_case(service, "P3", "D")  # the third message this hour: after the window
    deliver(service, 1.0)
    assert len(sink.at("/ann")) == 3, "D"
    e = open_case(service, "P3", "E")  # over 3 an hour: held
    f = open_case(service, "P1", "F")  # P1 goes past the limit
    deliver(service)
    got = [r.json()["case"]["id"] for r in sink.at("/ann")]
    assert got == [a, b, d, f]
    held = {r.key: r for r in outbox(service)}[f"{e}:n1"]
    assert held.status == "pending" and held.attempts == 0
    assert not entries(service, e, "delivered")
    deliver(service, 3600.0)  # the hour's window moves on: E goes, once
    assert [r.json()["case"]["id"] for r in sink.at("/ann")] == [a, b, d, f, e]
    assert entries(service, e, "delivered")


def test_without_a_channels_section_nothing_is_sent(start: Callable[..., Service]) -> None:
    policy = policy_yaml(smtp_port=9, people=PEOPLE)
    service = start(policy[: policy.index("channels:")])
    cid = open_case(service)
    deliver(service)
    (row,) = outbox(service)
    assert row.status == "skipped"
    assert row.last_error == "not sent: the policy has no channels section"
    assert [e["kind"] for e in entries(service, cid)] == ["opened", "notified", "not_sent"]


def test_live_without_a_channels_section_rows_are_written_skipped_at_once(
    start: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the real clock, with the dispatcher running, a decision under a policy without
    channels writes its outbox rows `skipped` in its own transaction: the claim loop has no
    second transaction to run for them (nor, on PostgreSQL, a NOTIFY to wake it). A test
    notification from the console is still inserted pending (never claimed with the
    reason as its lease) and marked skipped by the claim loop."""
    from rungs.store.outbox import Outbox

    skips: list[int] = []
    real = Outbox.skip
    monkeypatch.setattr(
        Outbox, "skip", lambda self, now, why: skips.append(now) or real(self, now, why)
    )
    policy = policy_yaml(smtp_port=9, people=PEOPLE)
    service = start(policy[: policy.index("channels:")], virtual=False)
    cid = open_case(service)
    (row,) = outbox(service)  # as committed with the case
    assert (row.status, row.last_error) == (
        "skipped",
        "not sent: the policy has no channels section",
    )
    time.sleep(1.2)  # past the claim loop's poll (0.5 s): nothing left for it to mark
    assert skips == []
    assert [e["kind"] for e in entries(service, cid)] == ["opened", "notified", "not_sent"]
    rid = asyncio.run(service.commands.send_test("ann", "email", "ann"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with service.db.connect() as conn:
            test = conn.execute(
                text("SELECT status, next_attempt, last_error FROM outbox WHERE id = :i"),
                {"i": rid},
            ).one()
        if test.status == "skipped":
            break
        time.sleep(0.05)
    assert isinstance(test.next_attempt, int)
    assert (test.status, test.last_error) == ("skipped", row.last_error)


def test_smtp_login_from_the_environment_and_a_refused_recipient(
    start: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"rungs", b"pw")
        return AuthResult(success=ok)

    class Picky(Mailbox):
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                              options: Any) -> str:  # fmt: skip
            if address.startswith("bob@"):
                return "550 5.1.1 no such mailbox"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    box = Picky()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=check, auth_require_tls=False
    )
    controller.start()
    try:
        monkeypatch.setenv("RUNGS_TEST_SMTP_USER", "rungs")
        monkeypatch.setenv("RUNGS_TEST_SMTP_PASSWORD", "pw")
        policy = policy_yaml(smtp_port=port, people=PEOPLE).replace(
            "security: none,",
            "security: none, username_env: RUNGS_TEST_SMTP_USER,\n"
            "          password_env: RUNGS_TEST_SMTP_PASSWORD,",
        )
        service = start(policy)
        cid = open_case(service)
        deliver(service)
        assert box.to("ann@acme.test"), "the mail, sent after logging in"
        sync.act(service, cid, Event("escalate", by="ann"))
        deliver(service)
        failed = [e for e in entries(service, cid, "delivery_failed") if e["to"] == "bob"]
        assert failed[0]["permanent"], failed  # a 5xx answer is not tried again
        assert failed[0]["reason"].startswith("SMTP 550 refused bob@acme.test"), failed
        unreachable = entries(service, cid, "unreachable")
        assert unreachable, "bob unreachable"
        assert unreachable[0]["to"] == "bob" and unreachable[0]["tried"] == ["email"]
    finally:
        controller.stop()


def test_the_virtual_clock_delivers_each_page_at_its_own_instant(
    start: Callable[..., Service], smtp: Smtp, sink: Sink
) -> None:
    """One advance over every timer: each page goes out at the instant it was planned (ann's
    webhook at the opening, her email step 30 minutes later, bob's page at the escalation an
    hour in), not all at the last timer's instant."""
    people = f"""\
  - id: ann
    contacts: {{webhook: "{sink.url("/ann")}", email: ann@acme.test}}
    notify: [{{via: webhook}}, {{after: 30m, via: email}}]
  - id: bob
    contacts: {{email: bob@acme.test}}
"""
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people))
    opened_at = service.clock.now()
    cid = open_case(service)
    deliver(service, after=2 * 3600)
    minute = 60 * 1_000_000
    delivered = sorted((e["at"], e["to"], e["channel"]) for e in entries(service, cid, "delivered"))
    assert delivered == [
        (opened_at, "ann", "webhook"),
        (opened_at + 30 * minute, "ann", "email"),
        (opened_at + 60 * minute, "bob", "email"),
    ]
    assert service.clock.now() == opened_at + 120 * minute
