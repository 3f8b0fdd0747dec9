"""The pure parts of inbound mail and surveys: parsing, robots, routing, what the core
records for a customer's mail, and the CSAT figures."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rungs.api.inbound.parse import parse
from rungs.api.inbound.replies import is_automatic
from rungs.api.inbound.route import case_hint, customer_of, inbound
from rungs.core.decide import ACTIONS, decide
from rungs.core.model import Event, Record, Refused
from rungs.notify.survey import survey_message
from rungs.policy import Policy, load_policy_text
from rungs.store.views.inbound import figures
from rungs.time.instant import parse_instant

T0 = parse_instant("2026-06-01T10:00:00Z")
POLICY_TEXT = (Path(__file__).parents[1] / "fixtures" / "inbound.yaml").read_text()


@pytest.fixture(scope="module")
def policy() -> Policy:
    p, problems = load_policy_text(POLICY_TEXT, "p.yaml")
    assert p is not None, problems
    return p


def raw(**headers: str) -> bytes:
    m = EmailMessage()
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content("Hello,\n\nthe printer is on fire.\n\n-- \nOlga\n")
    return bytes(m)


def test_parse_reads_the_headers_and_strips_the_signature() -> None:
    got = parse(
        raw(From="Olga <OPS@Globex.test>", To="Support <support@acme.test>", Cc="x@acme.test",
            Subject="  Fire   in   the hall ", Message_ID="<a1@globex.test>",
            In_Reply_To="<r1@acme.test>", References="<r0@acme.test> <r1@acme.test>"),
        fallback_id="<f@rungs.invalid>",
    )  # fmt: skip
    assert got.sender == "ops@globex.test"
    assert got.recipients == ("support@acme.test", "x@acme.test")
    assert got.subject == "Fire in the hall"
    assert got.message_id == "<a1@globex.test>"
    assert got.ids == ("<r1@acme.test>", "<r0@acme.test>")
    assert got.text == "Hello,\n\nthe printer is on fire."


def test_a_folded_subject_is_one_line() -> None:
    got = parse(
        b"From: a@b.test\r\nSubject: Fire\r\n in the\r\n\thall\r\n\r\nx\r\n", fallback_id="<f@x>"
    )
    assert got.subject == "Fire in the hall"


def test_parse_makes_up_an_id_and_reads_attachments_safely() -> None:
    m = EmailMessage()
    m["From"] = "a@b.test"
    m.set_content("see file")
    m.add_attachment(b"\x00\x01", maintype="application", subtype="zip", filename="../x\t.zip")
    got = parse(bytes(m), fallback_id="<f@rungs.invalid>")
    assert got.message_id == "<f@rungs.invalid>"
    (part,) = got.attachments
    assert (part.filename, part.content_type, part.data) == ("_x_.zip", "application/zip", b"\0\1")


@pytest.mark.parametrize(
    ("headers", "sender", "robot"),
    [
        ({}, "ops@globex.test", False),
        ({"auto-submitted": "no"}, "ops@globex.test", False),
        ({"auto-submitted": "auto-replied"}, "ops@globex.test", True),
        ({"auto-submitted": "auto-generated; owner-email=x"}, "ops@globex.test", True),
        ({"precedence": "Bulk"}, "ops@globex.test", True),
        ({"precedence": "junk"}, "ops@globex.test", True),
        ({"precedence": "list"}, "ops@globex.test", True),
        ({"precedence": "first-class"}, "ops@globex.test", False),
        ({"x-autoreply": "yes"}, "ops@globex.test", True),
        ({"x-autorespond": "x"}, "ops@globex.test", True),
        ({"return-path": "<>"}, "ops@globex.test", True),
        ({"return-path": "<ops@globex.test>"}, "ops@globex.test", False),
        ({}, "MAILER-DAEMON@mx.test".lower(), True),
        ({}, "", True),
    ],
)
def test_robots(headers: dict[str, str], sender: str, robot: bool) -> None:
    assert is_automatic(headers, sender) is robot


def test_customer_of_contact_then_most_specific_domain(policy: Policy) -> None:
    assert customer_of("ops@globex.test", policy) == "globex"
    assert customer_of("cfo@globex.test", policy) == "globex"
    assert customer_of("dev@eu.initech.test", policy) == "initech"  # a subdomain
    assert customer_of("dev@notinitech.test", policy) is None  # not a suffix match
    assert customer_of("x@nowhere.test", policy) is None
    assert case_hint("Re: [C12] disk") == "C12" and case_hint("C12 disk") is None


def test_routing_by_address(policy: Policy) -> None:
    parsed = parse(raw(From="ops@globex.test", To="escalations@acme.test", Subject="x"),
                   fallback_id="<f@x>")  # fmt: skip
    mail = inbound(parsed, [], policy)
    assert (mail.customer, mail.escalate, mail.recipient) == (
        "globex",
        True,
        "escalations@acme.test",
    )
    mail = inbound(parsed, ["support@acme.test"], policy)  # the envelope comes first
    assert (mail.escalate, mail.category, mail.priority) == (False, "general", "P3")
    bounce = inbound(parsed, [], policy, envelope_from="")
    assert bounce.auto  # an empty envelope sender: a bounce


def entries(effects: list[Any]) -> list[dict[str, Any]]:
    return [e.entry for e in effects if isinstance(e, Record)]


def opened(policy: Policy) -> Any:
    return decide(None, Event("open", data={"customer": "globex", "title": "t"}), T0, policy)[0]


def test_a_reply_keeps_its_text_and_an_escalation_request_at_the_top_pages_again(
    policy: Policy,
) -> None:
    case = opened(policy)
    data = {"text": "more", "sender": "ops@globex.test", "message_id": "<m@x>"}
    case, eff = decide(case, Event("customer_reply", data=data, actor="email"), T0 + 1, policy)
    (e,) = entries(eff)
    assert (e["kind"], e["text"], e["sender"], e["actor"]) == (
        "customer_replied", "more", "ops@globex.test", "email")  # fmt: skip
    ask = Event("request_escalation", reason="customer_request", data={**data, "at_top": "page"})
    case, eff = decide(case, ask, T0 + 2, policy)
    assert next(x["kind"] for x in entries(eff)) == "escalated" and case.level == 2
    case, eff = decide(case, ask, T0 + 3, policy)  # the last level: recorded, paged again
    got = entries(eff)
    assert got[0]["kind"] == "escalation_requested" and got[0]["level"] == 2
    assert [x["to"] for x in got if x["kind"] == "notified"] == ["bob"]
    with pytest.raises(Refused, match="last level"):  # without the mail's flag: as before
        decide(case, Event("request_escalation", reason="customer_request"), T0 + 4, policy)


def test_observed_entries_change_nothing_but_a_followup_pages_the_owner(policy: Policy) -> None:
    case = opened(policy)
    case, _ = decide(case, Event("resolve", by="alice"), T0 + 1, policy)
    sent = Event("observed", data={"entry": "survey_sent", "to": "ops@globex.test"})
    after, eff = decide(case, sent, T0 + 2, policy)
    assert [e["kind"] for e in entries(eff)] == ["survey_sent"]
    assert (after.status, after.updated_at) == ("resolved", case.updated_at)
    follow = Event("observed", data={"entry": "survey_followup", "rating": 1, "comment": "bad"})
    _, eff = decide(case, follow, T0 + 3, policy)
    got = entries(eff)
    assert got[0] == {"kind": "survey_followup", "rating": 1, "comment": "bad", "at": T0 + 3,
                      "case": case.id}  # fmt: skip
    assert [(x["to"], x["reason"]) for x in got if x["kind"] == "notified"] == [
        ("carol", "survey_followup")]  # fmt: skip
    with pytest.raises(Refused):
        decide(case, Event("observed", data={"entry": "resolved"}), T0, policy)
    assert "observed" not in ACTIONS  # the API cannot send it


def test_csat_figures() -> None:
    rows = [
        {"status": "answered", "rating": 5, "scale": 5},
        {"status": "answered", "rating": 4, "scale": 5},
        {"status": "answered", "rating": 2, "scale": 5},
        {"status": "expired", "rating": None, "scale": 5},
        {"status": "sent", "rating": None, "scale": 5},
        {"status": "skipped", "rating": None, "scale": 5},
        {"status": "answered", "rating": 2, "scale": 2},
    ]
    got = figures(rows)
    assert got == {"sent": 6, "answered": 4, "good": 3, "csat": 0.75,
                   "response_rate": round(4 / 6, 4),
                   "distribution": {"2": 2, "4": 1, "5": 1}}  # fmt: skip
    assert figures([])["csat"] is None


def test_survey_mail_has_one_link_per_rating_and_an_opt_out() -> None:
    text, html = survey_message("https://r.test", "s", {"token": "tok", "scale": 2, "case": "C1",
                                                        "title": "<b>x</b>"})  # fmt: skip
    assert "https://r.test/s/tok?rating=1" in text and "https://r.test/s/tok?rating=2" in text
    assert "rating=3" not in text and "https://r.test/s/tok/opt_out" in text
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_parse_decodes_transfer_encoding_and_charset() -> None:
    m = EmailMessage()
    m["From"] = "a@b.test"
    m["Subject"] = "=?utf-8?q?Gr=C3=BC=C3=9Fe?="
    m.set_content("Grüße aus Köln\n", charset="iso-8859-1", cte="quoted-printable")
    got = parse(bytes(m), fallback_id="<f@x>")
    assert (got.subject, got.text) == ("Grüße", "Grüße aus Köln")


@pytest.mark.parametrize("charset", ["idna", "base64", "rot13", "hex", "uu", "x-bad", "utf-16"])
def test_a_charset_no_text_decoder_takes_still_gives_a_mail(charset: str) -> None:
    # `idna` raised UnicodeError (not LookupError) on a long or odd line, and the whole mail
    # was refused with a 451: the sender retried a mail that could never be taken
    raw = (
        (
            "From: a@b.test\r\nSubject: hi\r\nMessage-ID: <c@x>\r\n"
            f"Content-Type: text/plain; charset={charset}\r\n\r\n"
        ).encode()
        + b"the printer is on fire " * 8
        + b"\xff\xfe.\r\n"
    )
    got = parse(raw, fallback_id="<f@x>")
    assert got.message_id == "<c@x>" and got.subject == "hi"
    assert got.text  # some text is kept, never an exception


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=600),
    st.sampled_from(
        [
            b"",
            b"From: a@b.test\r\n",
            b"Content-Type: "
            b"multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/html; charset=x-bad\r\n",
            b"Content-Type: text/plain; charset=idna\r\n\r\n",
        ]
    ),
)
def test_parse_takes_any_bytes(tail: bytes, head: bytes) -> None:
    got = parse(head + tail, fallback_id="<f@x>")  # a mail it cannot read is still a mail
    assert got.message_id and len(got.text) <= 100_000


def test_without_an_owner_a_followup_pages_the_highest_level_reached(policy: Policy) -> None:
    open_ = Event("open", data={"customer": "initech", "title": "t"})  # initech has no owner
    case = decide(None, open_, T0, policy)[0]
    case, _ = decide(case, Event("escalate", by="alice", reason="outage"), T0 + 1, policy)
    case, _ = decide(case, Event("resolve", by="bob"), T0 + 2, policy)
    follow = Event("observed", data={"entry": "survey_followup", "rating": 2, "comment": "slow"})
    _, eff = decide(case, follow, T0 + 3, policy)
    assert [x["to"] for x in entries(eff) if x["kind"] == "notified"] == ["bob"]  # level 2


def test_message_ids_are_short_printable_ascii() -> None:
    """Ids are indexed (a PostgreSQL index row is bounded): a long or non-ASCII id is not
    read, the mail gets the fallback id instead."""
    long_id = "<" + "x" * 800 + "@globex.test>"
    m = EmailMessage()
    m["From"] = "ops@globex.test"
    m["Message-ID"] = long_id
    m["In-Reply-To"] = "<caf\u00e9@globex.test> <ok@globex.test>"
    m.set_content("hi")
    p = parse(m.as_bytes(), fallback_id="<fb@rungs.invalid>")
    assert p.message_id == "<fb@rungs.invalid>"
    assert p.in_reply_to == ("<ok@globex.test>",)
