"""Satisfaction surveys end to end: the survey mail arrives once the virtual clock passes
`after`, threaded with the case's mail; its page records once and then answers 410; a
reopen cancels it; a low rating pages the account owner; CSAT reads back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rungs.core.model import Event
from tests import sync
from tests.mail import POLICY, Desk, Sink, mail

HOUR = 3600


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def desk(tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    sink.messages.clear()
    d = Desk(tmp_path, sink, POLICY.replace("per_contact: 30d", "per_contact: 0s"))
    yield d
    d.stop()


def resolved_case(desk: Desk, sender: str = "ops@globex.test", subject: str = "Broken") -> str:
    code, reply = desk.send(mail(sender, subject, "It is broken."))
    assert code == 250
    case_id = reply.rsplit(" ", 1)[1]
    sync.act(desk.engine, case_id, Event("resolve", by="alice"))
    return case_id


def surveys_to(desk: Desk, address: str) -> list[EmailMessage]:
    return [m for m in desk.sink.to(address) if "How did we do?" in str(m["Subject"])]


def link(m: EmailMessage, rating: int) -> str:
    text = m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(rf"http://testserver(/s/[\w-]+)\?rating={rating}", text)
    assert found, text
    return found.group(1)


def test_the_survey_arrives_after_the_delay_threaded_and_records_once(desk: Desk) -> None:
    case_id = resolved_case(desk)
    desk.deliver(24 * HOUR - 60)
    assert surveys_to(desk, "ops@globex.test") == []  # not yet
    desk.deliver(120)
    (survey,) = surveys_to(desk, "ops@globex.test")
    (answer,) = [m for m in desk.sink.to("ops@globex.test") if m not in (survey,)]
    assert survey["Subject"].startswith(f"[{case_id}] How did we do?")
    assert answer["Message-ID"] in survey["References"]  # threaded with the case's mail
    assert [e["to"] for e in desk.entries(case_id, "survey_sent")] == ["ops@globex.test"]
    path = link(survey, 4)
    client = TestClient(desk.app)
    page = client.get(f"{path}?rating=4")  # what a mail scanner does: records nothing
    assert page.status_code == 200
    assert re.search(r'value="4" required checked', page.text)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert desk.entries(case_id, "survey_answered") == []
    for odd in ("\u00b2", "9" * 5000, "6", "0"):  # a superscript digit, huge, off the scale
        page = client.get(path, params={"rating": odd})
        assert page.status_code == 422 and page.json()["field"] == "rating", odd
    for odd in ("\u00b2", "9" * 5000):
        bad = client.post(path, data={"rating": odd})
        assert bad.status_code == 422 and bad.json()["field"] == "rating", odd
    assert desk.entries(case_id, "survey_answered") == []
    sent = client.post(path, data={"rating": "4", "comment": "Quick and kind."})
    assert sent.status_code == 200 and "recorded" in sent.text
    got = desk.entries(case_id, "survey_answered")
    assert [(e["rating"], e["comment"]) for e in got] == [(4, "Quick and kind.")]
    assert client.post(path, data={"rating": "5", "comment": ""}).status_code == 410
    assert client.get(f"{path}?rating=5").status_code == 410
    assert desk.entries(case_id, "survey_followup") == []
    bad = client.post(path, data={"rating": "x"})
    assert bad.status_code == 422 and bad.json()["field"] == "rating"
    csat = desk.engine.views.csat()
    assert csat["overall"] == {"sent": 1, "answered": 1, "good": 1, "csat": 1.0,
                               "response_rate": 1.0, "distribution": {"4": 1}}  # fmt: skip
    assert csat["escalated"]["not_escalated"]["csat"] == 1.0
    assert csat["resolved_by"]["alice"]["answered"] == 1
    assert csat["team"]["desk"]["answered"] == 1 and csat["customer"]["globex"]["sent"] == 1
    assert csat["comments"][0]["comment"] == "Quick and kind."


def test_a_reopen_before_the_delay_cancels_the_survey(desk: Desk) -> None:
    case_id = resolved_case(desk)
    desk.deliver(HOUR)
    sync.act(desk.engine, case_id, Event("reopen"))
    assert len(desk.entries(case_id, "survey_cancelled")) == 1
    sync.act(desk.engine, case_id, Event("resolve", by="alice"))  # never after a reopen
    desk.deliver(3 * 24 * HOUR)
    assert surveys_to(desk, "ops@globex.test") == []
    assert desk.entries(case_id, "survey_sent") == []


def test_a_low_rating_pages_the_owner_with_the_comment_in_the_handoff(desk: Desk) -> None:
    case_id = resolved_case(desk)
    desk.deliver(25 * HOUR)
    path = link(surveys_to(desk, "ops@globex.test")[0], 1)
    client = TestClient(desk.app)
    assert client.post(path, data={"rating": "1", "comment": "Nobody called."}).status_code == 200
    (follow,) = desk.entries(case_id, "survey_followup")
    assert (follow["rating"], follow["comment"]) == (1, "Nobody called.")
    paged = [e for e in desk.entries(case_id, "notified") if e["reason"] == "survey_followup"]
    assert [e["to"] for e in paged] == ["carol"]  # globex's owner
    handoff = desk.engine.views.handoff(case_id)
    assert "Nobody called." in str(handoff)
    desk.deliver()
    assert desk.sink.to("carol@acme.test")  # the page went out


def test_an_unanswered_survey_expires(desk: Desk) -> None:
    case_id = resolved_case(desk)
    desk.deliver(25 * HOUR)
    path = link(surveys_to(desk, "ops@globex.test")[0], 5)
    desk.deliver(29 * 24 * HOUR)
    assert len(desk.entries(case_id, "survey_expired")) == 1
    client = TestClient(desk.app)
    assert client.post(path, data={"rating": "5"}).status_code == 410
    assert desk.engine.views.csat()["overall"]["response_rate"] == 0.0


def test_opted_out_requesters_get_no_more_surveys(desk: Desk) -> None:
    resolved_case(desk)
    desk.deliver(25 * HOUR)
    survey = surveys_to(desk, "ops@globex.test")[0]
    token_path = link(survey, 3)
    client = TestClient(desk.app)
    assert client.get(f"{token_path}/opt_out").status_code == 200  # asks, records nothing
    assert client.post(f"{token_path}/opt_out").status_code == 200
    assert [e["requester"] for e in desk.entries("C1", "survey_opt_out")] == ["ops@globex.test"]
    second = resolved_case(desk, subject="Again")
    desk.deliver(25 * HOUR)
    assert len(surveys_to(desk, "ops@globex.test")) == 1
    assert desk.entries(second, "survey_sent") == []


def test_one_survey_per_contact_within_the_window(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    sink.messages.clear()
    d = Desk(tmp_path, sink)  # per_contact: 30d
    try:
        resolved_case(d, subject="One")
        d.deliver(25 * HOUR)
        resolved_case(d, subject="Two")
        d.deliver(25 * HOUR)
        assert len(surveys_to(d, "ops@globex.test")) == 1
    finally:
        d.stop()


def test_mail_and_surveys_on_each_database(
    tmp_path: Path, sink: Sink, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole way once on SQLite and on PostgreSQL: a mail opens a case, a reply threads,
    an escalation is requested, the survey goes out and records once."""
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    sink.messages.clear()
    d = Desk(tmp_path, sink, db_url=db_url)
    try:
        first = mail("ops@globex.test", "Slow", "The portal is slow.")
        assert d.send(first) == (250, "2.0.0 OK C1")
        reply = mail("ops@globex.test", "Re: Slow", "Still slow.", to="escalations@acme.test",
                     headers={"In-Reply-To": str(first["Message-ID"])})  # fmt: skip
        assert d.send(reply) == (250, "2.0.0 OK C1")
        assert d.send(first) == (250, "2.0.0 OK C1")  # taken once
        assert [e["level"] for e in d.entries("C1", "escalated")] == [2]
        sync.act(d.engine, "C1", Event("resolve", by="bob"))
        d.deliver(25 * HOUR)
        path = link(surveys_to(d, "ops@globex.test")[0], 2)
        client = TestClient(d.app)
        assert client.post(path, data={"rating": "2", "comment": "meh"}).status_code == 200
        assert client.post(path, data={"rating": "2"}).status_code == 410
        csat = d.engine.views.csat()
        assert csat["escalated"]["escalated"]["answered"] == 1
        assert csat["overall"]["csat"] == 0.0
        assert [e["to"] for e in d.entries("C1", "notified") if e["reason"] == "survey_followup"] \
            == ["carol"]  # fmt: skip
    finally:
        d.stop()
