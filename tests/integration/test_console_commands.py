"""The console's commands against real servers, on SQLite and PostgreSQL: a test notification
reaches a real SMTP server and touches no case; a dead-lettered webhook is retried and reaches
a real HTTP server; a person's calendar feed is signed, renewed (old links stop) and turned off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import icalendar
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from rungs.core.model import Refused
from rungs.engine import Engine as Service
from rungs.store.deliveries import MAX_TESTS, TEST_WINDOW
from tests.integration import test_notify as notify
from tests.integration.test_notify import (
    Sink,
    Smtp,
    deliver,
    entries,
    open_case,
    outbox,
    policy_yaml,
)

# the notify tests' fixtures: real SMTP and HTTP servers, the service on a virtual clock and
# (autouse) its secrets
smtp, sink, start, _secrets = notify.smtp, notify.sink, notify.start, notify._secrets

T = TypeVar("T")

SCHEDULE = """
schedules:
  - id: desk
    timezone: UTC
    layers:
      - {name: weekly, members: [ann, bob], shift: 1w, start: "2026-11-02T09:00:00Z"}
"""


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def people(sink: Sink) -> str:
    return f"""\
  - id: ann
    name: Ann Desk
    contacts: {{email: ann@acme.test, webhook: "{sink.url("/ann")}"}}
    notify: [{{via: webhook}}]
  - id: bob
    name: Bob Engineer
    contacts: {{email: bob@acme.test}}
"""


def test_a_test_notification_reaches_the_mailbox_and_no_case(
    start: Callable[..., Service], smtp: Smtp, sink: Sink, db_url: str
) -> None:
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people(sink)), db_url)
    rid = run(service.commands.send_test("bob", "email", "ann"))
    with pytest.raises(Refused) as again:  # one at a time: the first is still on its way
        run(service.commands.send_test("bob", "email", "ann"))
    assert again.value.status == 409 and again.value.field == "channel"
    deliver(service)
    (mail,) = smtp.box.to("bob@acme.test")
    assert "Test notification" in mail["Subject"] and "Bob Engineer" in mail["Subject"]
    assert "asked for by Ann Desk" in mail.get_body(("plain",)).get_content()
    (sent,) = service.views.test_sends("bob")
    assert (sent.id, sent.status, sent.channel, sent.by) == (rid, "sent", "email", "ann")
    assert service.views.test_sends("ann") == []
    with service.db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM timeline")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
    for _ in range(MAX_TESTS - 1):  # delivered one by one: the fifth in ten minutes is the last
        run(service.commands.send_test("bob", "email", "bob"))
        deliver(service)
    with pytest.raises(Refused) as many:
        run(service.commands.send_test("bob", "email", "bob"))
    assert many.value.status == 429 and "wait" in many.value.message
    deliver(service, after=TEST_WINDOW / 1e6 + 1)  # ten minutes on: allowed again
    run(service.commands.send_test("bob", "email", "bob"))
    for who, channel, status in (("nobody", "email", 404), ("bob", "sms", 422)):
        with pytest.raises(Refused) as refused:
            run(service.commands.send_test(who, channel, "ann"))
        assert refused.value.status == status


def test_a_failed_test_says_why_on_the_row(
    start: Callable[..., Service], smtp: Smtp, sink: Sink
) -> None:
    sink.status = 410  # a permanent refusal
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people(sink)))
    run(service.commands.send_test("ann", "webhook", "ann"))
    deliver(service)
    (body,) = [r.json() for r in sink.at("/ann")]
    assert body["type"] == "test" and body["person"] == "ann"
    (failed,) = service.views.test_sends("ann")
    assert failed.status == "dead" and failed.last_error.startswith("HTTP 410")
    letters, total = service.views.dead_letters()
    assert total == 1 and letters[0].kind == "test" and letters[0].person == "ann"


def test_a_dead_letter_retried_is_delivered_and_recorded(
    start: Callable[..., Service], smtp: Smtp, sink: Sink, db_url: str
) -> None:
    sink.status = 404  # ann's webhook refuses for good: dead, and the email fallback pages her
    service = start(policy_yaml(smtp_port=smtp.port, sink=sink, people=people(sink)), db_url)
    cid = open_case(service)
    deliver(service)
    (dead,), total = service.views.dead_letters()
    assert total == 1 and (dead.case_id, dead.person, dead.channel) == (cid, "ann", "webhook")
    assert dead.last_error.startswith("HTTP 404")
    sink.status = 200  # the receiver is fixed
    assert run(service.commands.retry_delivery(dead.id)) is True
    assert run(service.commands.retry_delivery(dead.id)) is False, "not dead any more"
    deliver(service)
    assert len(sink.at("/ann")) == 2, "the first try, then the retry"
    assert sink.at("/ann")[1].json()["case"]["id"] == cid
    row = {r.key: r for r in outbox(service)}[dead.key]
    assert (row.status, row.attempts) == ("sent", 1)
    delivered = [e for e in entries(service, cid, "delivered") if e["channel"] == "webhook"]
    assert delivered and delivered[0]["to"] == "ann"
    assert service.views.dead_letters() == ([], 0)
    assert run(service.commands.retry_delivery(10**9)) is False


def test_a_calendar_feed_is_signed_renewed_and_turned_off(
    start: Callable[..., Service], smtp: Smtp, sink: Sink
) -> None:
    policy = policy_yaml(smtp_port=smtp.port, sink=sink, people=people(sink)) + SCHEDULE
    service = start(policy)
    client = TestClient(service.app)  # type: ignore[attr-defined]
    from rungs.api.feeds import Feeds
    from rungs.notify.links import Links

    feeds = Feeds(Links(service.db), service.views)
    assert feeds.url("ann") is None, "no feed until one is made"
    run(service.commands.renew_feed("ann"))
    url = feeds.url("ann")
    assert url is not None and url.startswith("http://testserver/calendar/")
    got = client.get(url.removeprefix("http://testserver"))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/calendar")
    events = [c for c in icalendar.Calendar.from_ical(got.content).walk("VEVENT")]
    assert events and all("ann" in str(e["summary"]) for e in events)
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    who, _, sig = token.partition(".")
    bob = feeds.token("bob", "guess").split(".")[0]
    assert client.get(f"/calendar/{bob}.{sig}.ics").status_code == 404, "another person's"
    assert client.get(f"/calendar/{who}.{sig[:-2]}AA.ics").status_code == 404, "changed"
    run(service.commands.renew_feed("ann"))
    assert client.get(url.removeprefix("http://testserver")).status_code == 404, "renewed"
    fresh = feeds.url("ann")
    assert fresh != url and client.get(fresh.removeprefix("http://testserver")).status_code == 200
    assert run(service.commands.revoke_feed("ann")) is True
    assert client.get(fresh.removeprefix("http://testserver")).status_code == 404, "off"
    assert feeds.url("ann") is None
    with pytest.raises(Refused):
        run(service.commands.renew_feed("nobody"))
