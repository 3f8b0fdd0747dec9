"""Issue 12 §1 and §2, the pure parts: who did it (`actor`, `by`, `reason` on every action's
entry; the rules for `by`) and what happened to each page (`not_sent`, the `log` channel)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from rungs.api.actors import acting_as
from rungs.api.errors import ApiError
from rungs.core.ctx import NO_CHANNELS_WHY
from rungs.core.decide import decide
from rungs.core.handoff import handoff
from rungs.core.model import Case, Effect, Event, Notify, Record, ScheduleTimer
from rungs.core.timers import due_timer
from rungs.notify import channels
from rungs.notify.channels import Context, Outgoing
from rungs.notify.messages import Message
from rungs.policy import Policy, load_policy_text
from rungs.policy.channels import EmailConfig, LogConfig, WebhookConfig
from rungs.store.tokens import TokenInfo
from rungs.time.instant import MINUTE, parse_instant

T0 = parse_instant("2026-06-01T10:00:00Z")
PEOPLE = """\
people:
  - {id: ann, contacts: {email: ann@x.test, sms: "+15550000001"},
     notify: [{after: 0m, via: email}, {after: 5m, via: sms}]}
  - {id: ben, contacts: {email: ben@x.test}}
"""
REST = """\
customers: [{id: acme, name: Acme}]
matrices:
  - id: m
    levels: [{notify: [person:ann]}, {after: 30m, notify: [person:ben]},
             {after: 1h, unless: resolved, notify: [person:ben]}]
"""


def _policy(text: str) -> Policy:
    policy, problems = load_policy_text("version: 1\ntimezone: UTC\n" + text, "t.yaml")
    assert policy is not None, problems
    return policy


def _entries(effects: list[Effect]) -> list[dict[str, Any]]:
    return [e.entry for e in effects if isinstance(e, Record)]


def _open(policy: Policy, **data: Any) -> tuple[Case, list[Effect]]:
    return decide(None, Event("open", data={"customer": "acme", "title": "t", **data}), T0, policy)


# §1: actor and reason on every action's entry ----------------------------------------------

# (event, the kind of the entry it records), in an order the case allows
ACTS = [
    (Event("assign", to="person:ben"), "assigned"),
    (Event("set_priority", priority="P1"), "priority_changed"),
    (Event("escalate"), "escalated"),
    (Event("acknowledge"), "acknowledged"),
    (Event("respond"), "responded"),
    (Event("pending"), "pending"),
    (Event("customer_reply"), "customer_replied"),
    (Event("request_escalation"), "escalated"),
    (Event("resolve"), "resolved"),
    (Event("reopen"), "reopened"),
    (Event("resolve"), "resolved"),
    (Event("close"), "closed"),
]


def test_every_action_entry_keeps_its_actor_and_reason() -> None:
    policy = _policy(PEOPLE + REST)
    case, effects = _open(policy, actor="opener-bot")
    (opened,) = [e for e in _entries(effects) if e["kind"] == "opened"]
    assert opened["actor"] == "opener-bot"
    now = T0
    for ev, kind in ACTS:
        now += MINUTE
        ev.by, ev.reason, ev.actor = "ben", f"why {ev.kind}", "pager-bot"
        case, effects = decide(case, ev, now, policy)
        (entry,) = [e for e in _entries(effects) if e["kind"] == kind]
        assert entry["actor"] == "pager-bot", (ev.kind, entry)
        assert entry["reason"] == f"why {ev.kind}", (ev.kind, entry)
    assert case.status == "closed"


def test_without_actor_or_reason_the_entries_are_as_before() -> None:
    policy = _policy(PEOPLE + REST)
    case, effects = _open(policy)
    assert "actor" not in _entries(effects)[0]
    case, effects = decide(case, Event("respond", by="ann"), T0 + MINUTE, policy)
    assert _entries(effects) == [
        {"by": "ann", "at": T0 + MINUTE, "case": case.id, "kind": "responded"}
    ]


# §1: the rules for `by` ---------------------------------------------------------------------

PEOPLE_IDS = {"ann": object(), "ben": object()}


def _token(role: str = "responder", person: str | None = None) -> TokenInfo:
    return TokenInfo("tok", role, 0, None, person)


def _refusal(token: TokenInfo | None, by: str | None, action: str = "acknowledge") -> ApiError:
    with pytest.raises(ApiError) as caught:
        acting_as(token, by, action, PEOPLE_IDS)
    assert caught.value.field == "by"
    return caught.value


def test_by_defaults_to_the_tokens_person() -> None:
    assert acting_as(_token(person="ann"), None, "acknowledge", PEOPLE_IDS) == "ann"
    assert acting_as(_token(person="ann"), "ann", "resolve", PEOPLE_IDS) == "ann"


def test_a_token_without_a_person_must_give_by() -> None:
    assert _refusal(_token(), None).status == 422
    assert "'by' is required" in _refusal(_token(), None).message
    assert acting_as(_token(), "ben", "acknowledge", PEOPLE_IDS) == "ben"


def test_by_must_name_a_person_of_the_policy() -> None:
    err = _refusal(_token(), "mallory")
    assert err.status == 422 and "mallory" in err.message
    err = _refusal(_token(person="gone"), None)  # the token's person left the policy
    assert err.status == 422 and "gone" in err.message


def test_only_an_admin_token_acts_as_another_person() -> None:
    err = _refusal(_token("responder", "ann"), "ben")
    assert err.status == 403 and "only an admin" in err.message
    assert acting_as(_token("admin", "ann"), "ben", "resolve", PEOPLE_IDS) == "ben"


def test_the_customers_own_actions_need_no_by() -> None:
    for action in ("customer_reply", "request_escalation"):
        assert acting_as(_token(), None, action, PEOPLE_IDS) is None
        assert acting_as(_token(person="ann"), None, action, PEOPLE_IDS) is None
    assert _refusal(_token(), "mallory", "customer_reply").status == 422


# §2: not_sent -------------------------------------------------------------------------------


def test_without_channels_each_page_says_not_sent_right_after_notified() -> None:
    policy = _policy(PEOPLE + REST)
    _case, effects = _open(policy)
    kinds = [(e["kind"], e.get("to"), e.get("channel")) for e in _entries(effects)]
    i = kinds.index(("notified", "ann", "email"))
    assert kinds[i + 1] == ("not_sent", "ann", "email")
    (not_sent,) = [e for e in _entries(effects) if e["kind"] == "not_sent"]
    assert not_sent["why"] == NO_CHANNELS_WHY
    # the outbox row is still written (and skipped by the dispatcher): what was planned
    assert [(n.person, n.channel) for n in effects if isinstance(n, Notify)] == [("ann", "email")]


def test_with_channels_a_page_goes_out_and_says_nothing_more() -> None:
    policy = _policy("channels: {log: {}}\n" + PEOPLE + REST)
    _case, effects = _open(policy)
    assert "not_sent" not in [e["kind"] for e in _entries(effects)]
    assert [(n.person, n.channel) for n in effects if isinstance(n, Notify)] == [("ann", "email")]


def _step_timer(effects: list[Effect]) -> ScheduleTimer:
    (step,) = [t for t in effects if isinstance(t, ScheduleTimer) and t.due == T0 + 5 * MINUTE]
    return step


def test_a_contact_gone_is_not_sent_and_the_next_method_is_paged_at_once() -> None:
    """Ann's SMS step was planned under a version where she had a number; the case moved
    to one where she has none (adopt_policy): nothing can be sent, the timeline says why,
    and her next method is paged as after a permanent delivery failure."""
    v1 = _policy("channels: {log: {}}\n" + PEOPLE + REST)
    v2 = _policy(
        "channels: {log: {}}\npeople:\n  - {id: ann, contacts: {email: ann@x.test}}\n"
        "  - {id: ben, contacts: {email: ben@x.test}}\n" + REST
    )
    case, effects = _open(v1)
    step = _step_timer(effects)
    timer = Event("timer", timer=due_timer(step.key, step.due, step.payload))
    case, effects = decide(case, timer, step.due, v2)
    got = [
        (e["kind"], e.get("channel"), e.get("why") or e.get("reason")) for e in _entries(effects)
    ]
    assert got == [
        ("notified", "sms", "opened"),
        ("not_sent", "sms", "ann has no sms contact"),
        ("notified", "email", "fallback from sms"),
    ]
    assert [(n.person, n.channel) for n in effects if isinstance(n, Notify)] == [("ann", "email")]
    assert case.failed == {"ann": ["sms"]}


def test_a_person_gone_from_the_policy_is_not_sent() -> None:
    v1 = _policy("channels: {log: {}}\n" + PEOPLE + REST)
    v2 = _policy(
        "channels: {log: {}}\npeople:\n  - {id: ben, contacts: {email: ben@x.test}}\n"
        + REST.replace("person:ann", "person:ben")
    )
    case, effects = _open(v1)
    step = _step_timer(effects)
    timer = Event("timer", timer=due_timer(step.key, step.due, step.payload))
    case, effects = decide(case, timer, step.due, v2)
    got = [(e["kind"], e.get("to"), e.get("why")) for e in _entries(effects)]
    assert got == [("notified", "ann", None), ("not_sent", "ann", "no person 'ann' in the policy")]
    assert not [n for n in effects if isinstance(n, Notify)]


def test_the_handoff_shows_which_pages_were_not_sent() -> None:
    policy = _policy(PEOPLE + REST)
    case, effects = _open(policy)
    h = handoff(case, policy, T0, _entries(effects))
    (page,) = h["ladder"][0]["notified"]
    assert page["to"] == "ann" and page["not_sent"] == NO_CHANNELS_WHY
    assert any(e["kind"] == "not_sent" for e in h["timeline"])
    sent = _policy("channels: {log: {}}\n" + PEOPLE + REST)
    case, effects = _open(sent)
    (page,) = handoff(case, sent, T0, _entries(effects))["ladder"][0]["notified"]
    assert "not_sent" not in page


# §2: the log channel ------------------------------------------------------------------------


def test_log_stands_in_for_the_channels_the_policy_does_not_configure() -> None:
    with_log = _policy("channels: {log: {}}\n" + PEOPLE + REST).channels
    for name in ("email", "sms", "voice"):
        assert name in with_log and isinstance(with_log[name], LogConfig)
    assert isinstance(with_log["webhook"], WebhookConfig)  # needs nothing: not replaced
    both = _policy(
        "channels: {log: {}, email: {host: 127.0.0.1, sender: r@x.test}}\n" + PEOPLE + REST
    ).channels
    assert isinstance(both["email"], EmailConfig) and isinstance(both["sms"], LogConfig)
    without = _policy("channels: {}\n" + PEOPLE + REST).channels
    assert "email" not in without and "sms" not in without
    with pytest.raises(KeyError):
        without["sms"]


def test_log_takes_no_fields() -> None:
    text = "version: 1\ntimezone: UTC\nchannels: {log: {to: stdout}}\n" + PEOPLE + REST
    policy, problems = load_policy_text(text, "t.yaml")
    assert policy is None
    assert any("unknown field 'to' in channels.log" in str(p) for p in problems)


def test_the_log_channel_writes_the_rendered_message(caplog: pytest.LogCaptureFixture) -> None:
    out = Outgoing(
        "sms", "+15550000001", LogConfig(), Message("", "C7 P1 checkout down: reply 7"), "C7:n1", 0
    )

    async def run() -> None:
        await channels.send(Context(None, None), out)  # type: ignore[arg-type]  # unused here

    with caplog.at_level(logging.INFO, logger="rungs.messages"):
        asyncio.run(run())
    (rec,) = [r for r in caplog.records if r.name == "rungs.messages"]
    assert rec.levelno == logging.INFO
    text = rec.getMessage()
    assert "sms to +15550000001" in text and "C7 P1 checkout down: reply 7" in text
