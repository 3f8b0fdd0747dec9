"""The dispatcher's pure parts, without a database or a server: rows from effects, hygiene
planning, outcomes, result batching, composing, and the channel registry."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

import pytest

from rungs.core.model import CallWebhook, Notice, Notify
from rungs.notify import CHANNELS
from rungs.notify.channels import Context, DeliveryError, Outgoing, send
from rungs.notify.compose import Composer
from rungs.notify.http import HttpClient
from rungs.notify.limits import Limiter, pages_by_target, plan
from rungs.notify.messages import Message, Renderer
from rungs.notify.results import Results, outcome
from rungs.policy import load_policy_text
from rungs.policy.channels import Channels, RateLimit, Retry, WebhookConfig, channels_of
from rungs.policy.model import Policy
from rungs.store.outbox import Outcome, Row, Stale, new_row

S = 1_000_000
POLICY = """\
version: 1
people:
  - id: ann
    name: Ann
    contacts: {webhook: "https://hooks.x.test/a"}
    notify: [{via: webhook}]
customers: [{id: acme, name: Acme}]
matrices:
  - id: d
    levels: [{name: L1, notify: [person:ann]}]
channels:
  webhook: {}
"""


def page(rid: int, case: str, person: str = "ann", channel: str = "webhook") -> Row:
    payload = {"person": person, "channel": channel, "level": 1, "reason": "opened"}
    return Row(rid, case, "notify", f"{case}:n1", payload, 1, 0)


def test_each_effect_becomes_its_row_once() -> None:
    n = new_row(Notify("C1", "ann", "sms", 2, "escalation", "C1:n2"))
    assert (n.case_id, n.kind, n.key) == ("C1", "notify", "C1:n2")
    assert n.payload == {"person": "ann", "channel": "sms", "level": 2, "reason": "escalation"}
    w = new_row(CallWebhook("C1", "https://h.test/x", {"rule": "r1"}, "C1:w1"))
    assert (w.kind, w.payload) == ("webhook", {"url": "https://h.test/x", "body": {"rule": "r1"}})
    notice = new_row(Notice("C1", "ann", "sms", "resolved", "bob", 2, "Down", "C1:res0:ann"))
    assert (notice.kind, notice.key) == ("notice", "C1:res0:ann")
    assert notice.payload == {"person": "ann", "channel": "sms", "action": "resolved",
                              "by": "bob", "level": 2, "title": "Down"}  # fmt: skip


def test_plan_bundles_limits_and_lets_p1_past() -> None:
    rule = Row(9, "C9", "webhook", "C9:w1", {"url": "u", "body": {}}, 1, 0)
    alone, groups = pages_by_target([page(1, "C1"), rule, page(2, "C2"), page(3, "C3", "bob")])
    assert alone == [[rule]] and list(groups) == [("ann", "webhook"), ("bob", "webhook")]

    settings = Channels(bundle=10 * S, person_limit=RateLimit(2, 3600 * S), declared=True)
    lim = Limiter()
    jobs, held = plan({("ann", "webhook"): [page(1, "C1")]}, {}, settings, lim, 0)
    assert [[r.id for r in j] for j in jobs] == [[1]] and held == {}
    # within the bundle window: both wait for its end, then go as one message
    grp = {("ann", "webhook"): [page(2, "C2"), page(3, "C3"), page(4, "C4")]}
    jobs, held = plan(grp, {"C4": "P1"}, settings, lim, 5 * S)
    assert [[r.id for r in j] for j in jobs] == [[4]]  # P1 goes past both
    assert {at: [r.id for r in rows] for at, rows in held.items()} == {3600 * S: [2, 3]}


def test_outcomes_say_sent_retry_or_dead() -> None:
    retry = Retry(attempts=3, backoff=4 * S, max_backoff=20 * S)
    r = page(1, "C1")
    ok = outcome(r, None, retry, 100)
    assert ok.mark == {"id": 1, "claimed": 1, "status": "sent", "next": 100, "error": None}
    assert ok.result == {"key": "C1:n1", "person": "ann", "channel": "webhook", "level": 1,
                         "ok": True, "error": None, "permanent": False}  # fmt: skip
    again = outcome(r, DeliveryError("HTTP 503", retry_after=30.0), retry, 100)
    assert again.mark["status"] == "pending" and again.mark["next"] == 100 + 30 * S
    assert again.result is not None and not again.result["permanent"]
    soon = outcome(r, DeliveryError("HTTP 500"), retry, 100)
    assert 100 + 2 * S <= soon.mark["next"] <= 100 + 4 * S
    r.attempts = 3
    last = outcome(r, DeliveryError("HTTP 500"), retry, 100)
    assert last.mark["status"] == "dead"
    assert last.mark["error"] == "gave up after 3 attempts: HTTP 500"
    gone = outcome(page(2, "C2"), DeliveryError("HTTP 404", permanent=True), retry, 100)
    assert gone.mark["status"] == "dead" and gone.result is not None and gone.result["permanent"]
    notice = Row(3, "C3", "notice", "C3:ack0:ann", {"person": "ann", "channel": "email"}, 1, 0)
    assert outcome(notice, None, retry, 100).result is None  # the timeline is left alone
    hook = Row(4, "C4", "webhook", "C4:w1", {"url": "https://h", "body": {"level": 2}}, 1, 0)
    assert outcome(hook, None, retry, 100).result == {
        "key": "C4:w1", "person": "https://h", "channel": "webhook", "level": 2, "ok": True,
        "error": None, "permanent": False,
    }  # fmt: skip


def test_results_go_as_one_batch_and_a_failed_batch_again_one_by_one() -> None:
    calls: list[list[str]] = []
    done: list[str] = []

    def record(batch: list[Outcome]) -> Future[Any]:
        calls.append([o.row.key for o in batch])
        f: Future[Any] = Future()
        if len(batch) > 1 or batch[0].row.key == "C2:n1":
            f.set_exception(Stale(batch[0].row.key))  # a batch fails whole, C2 alone too
        else:
            f.set_result(None)
        return f

    async def go() -> None:
        results = Results(record, lambda rows: done.extend(r.key for r in rows), batch=10,
                          flush=60.0)  # fmt: skip
        for rid, case in ((1, "C1"), (2, "C2"), (3, "C3")):
            results.add(outcome(page(rid, case), None, Retry(), 0))
        assert calls == []  # waiting for the flush
        await results.settled()
        assert results.counts.sent == 3

    asyncio.run(go())
    assert calls == [["C1:n1", "C2:n1", "C3:n1"], ["C1:n1"], ["C2:n1"], ["C3:n1"]]
    assert sorted(done) == ["C1:n1", "C2:n1", "C3:n1"]  # each settled once, C2 given up


def test_compose_says_what_goes_where() -> None:
    policy, problems = load_policy_text(POLICY, "p.yaml")
    assert isinstance(policy, Policy), problems

    class One:
        def policy(self, version: int) -> Policy:
            return policy  # type: ignore[return-value]

        def current_version(self) -> int:
            return 1

    composer = Composer(One(), None, Renderer())  # type: ignore[arg-type]  # no link made
    settings = channels_of(policy)
    rule = Row(1, "C1", "webhook", "C1:w1", {"url": "https://h.test", "body": {"rule": "r"}},
               1, 0)  # fmt: skip
    out = composer.compose([rule], policy, settings, 7 * S)
    assert (out.channel, out.address, out.key, out.now) == ("webhook", "https://h.test",
                                                             "C1:w1", 7 * S)  # fmt: skip
    assert out.message.data == {"type": "rule", "key": "C1:w1", "rule": "r"}
    notice = {"person": "ann", "channel": "webhook", "action": "acknowledged", "by": "bob",
              "level": 1, "title": "Down"}  # fmt: skip
    out = composer.compose([Row(2, "C2", "notice", "C2:ack0:ann", notice, 1, 0)], policy,
                           settings, 0)  # fmt: skip
    assert out.address == "https://hooks.x.test/a" and out.message.data is not None
    assert out.message.data["type"] == "notice" and out.message.data["case_id"] == "C2"
    with pytest.raises(DeliveryError, match="'ann' has no sms contact") as err:
        composer.compose([Row(3, "C3", "notice", "k", {**notice, "channel": "sms"}, 1, 0)],
                         policy, settings, 0)  # fmt: skip
    assert err.value.permanent
    with pytest.raises(DeliveryError, match="case C4 is gone"):
        composer.compose([page(4, "C4")], policy, settings, 0)  # its case could not be read


def test_every_channel_is_a_module_behind_one_send() -> None:
    assert set(CHANNELS) == {"email", "sms", "voice", "slack", "webhook", "apprise", "log"}
    assert all(callable(m.send) and name == m.NAME for name, m in CHANNELS.items())

    async def go() -> None:
        async def blocking(fn: Any) -> None:
            fn()

        ctx = Context(HttpClient("ua"), blocking)
        out = Outgoing("pager", "x", WebhookConfig(), Message("", ""), "k", 0)
        with pytest.raises(DeliveryError, match="unknown channel 'pager'") as err:
            await send(ctx, out)
        assert err.value.permanent

    asyncio.run(go())
