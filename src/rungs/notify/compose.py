"""What a message says and where it goes: a job (one row, or a bundle of pages to one person
on one channel) becomes an `Outgoing` for its channel. Rendering is `messages.Renderer`'s; a
message that cannot be rendered is a permanent failure."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rungs.notify.channels import DeliveryError, Outgoing
from rungs.notify.links import Links, base_url_of, ttl_of
from rungs.notify.messages import Message, Renderer
from rungs.notify.survey import with_survey
from rungs.policy.channels import Channels
from rungs.policy.model import Person, Policy
from rungs.policy.versions import PolicyVersions
from rungs.store.deliveries import TEST_KIND
from rungs.store.outbox import Row

__all__ = ["Composer"]

log = logging.getLogger("rungs.notify")


class Composer:
    def __init__(self, policies: PolicyVersions, links: Links, renderer: Renderer) -> None:
        self.policies = policies
        self.links = links
        self.renderer = renderer

    def compose(self, job: list[Row], current: Policy, settings: Channels, now: int) -> Outgoing:
        first = job[0]
        if first.kind == "webhook":
            return _rule_webhook(first, settings, now)
        if first.kind == "notice":
            return self._notice(first, current, settings, now)
        if first.kind == TEST_KIND:
            return self._test(first, current, settings, now)
        if first.kind == "mail":
            return _customer_mail(first, current, settings, now)
        return self._page(job, current, settings, now)

    def _notice(self, row: Row, current: Policy, settings: Channels, now: int) -> Outgoing:
        return self._short(row, current, settings, now, "notice", {"case_id": row.case_id})

    def _test(self, row: Row, current: Policy, settings: Channels, now: int) -> Outgoing:
        """A test notification (`rungs.store.deliveries`): to the contact as the policy in
        force has it, sent through the channel as a page would be."""
        return self._short(row, current, settings, now, "test", {"key": row.key})

    def _short(
        self, row: Row, current: Policy, settings: Channels, now: int, kind: str,
        extra: dict[str, Any],
    ) -> Outgoing:  # fmt: skip
        """A notice or a test: to the person's contact on the row's channel, with who it is
        from (`by`) and the person's name."""
        p = row.payload
        channel = p["channel"]
        person = _person(p["person"], current)
        if person is None or not person.contacts.get(channel):
            raise DeliveryError(f"person '{p['person']}' has no {channel} contact", permanent=True)
        if channel not in settings:
            raise DeliveryError(f"channel '{channel}' is not configured", permanent=True)
        by = _person(p.get("by") or "", current)
        ctx = {**p, **extra, "name": person.name, "by_name": by.name if by is not None else None}
        with _building():
            msg = self.renderer.short(current, channel, kind, ctx)
        return Outgoing(channel, person.contacts[channel], settings[channel], msg, row.key, now)

    def _page(self, job: list[Row], current: Policy, settings: Channels, now: int) -> Outgoing:
        pid, channel = job[0].payload["person"], job[0].payload["channel"]
        loaded = {r.case_id: r.snapshot for r in job if r.snapshot is not None}
        case_policies = [self.policies.policy(v) for _, v, _ in loaded.values()]
        person = _person(pid, current, *case_policies)
        if person is None:
            raise DeliveryError(f"no person '{pid}' in the policy", permanent=True)
        address = person.contacts.get(channel)
        if not address:
            raise DeliveryError(f"person '{pid}' has no {channel} contact", permanent=True)
        if channel not in settings:
            raise DeliveryError(
                f"channel '{channel}' is not configured: add channels.{channel} to the policy",
                permanent=True,
            )
        base, expires = base_url_of(current), now + ttl_of(current)
        items = []
        for r in job:
            if r.case_id not in loaded:
                raise DeliveryError(f"case {r.case_id} is gone", permanent=True)
            case, version, entries = loaded[r.case_id]
            links = {
                action: self.links.url(base, case.id, action, pid, expires, r.key)
                for action in ("acknowledge", "resolve")
            }
            case_policy = self.policies.policy(version)
            with _building():
                ctx = self.renderer.item_context(
                    case, case_policy, now, entries,
                    int(r.payload.get("level") or case.level), str(r.payload.get("reason") or ""),
                    links, words=channel != "webhook",
                )  # fmt: skip
            ctx["key"] = r.key
            items.append(ctx)
        key = job[0].key if len(job) == 1 else _bundle_key(job)
        who = {"id": person.id, "name": person.name}
        with _building():
            msg = self.renderer.message(
                current, channel, who, items, webhook_body=lambda c: _webhook_body(c, key, job)
            )
        return Outgoing(channel, address, settings[channel], msg, key, now)


@contextmanager
def _building() -> Iterator[None]:
    """Rendering: a template or value that fails now fails on every later try too, so its
    error is permanent (no retries) and the core pages the next contact method at once."""
    try:
        yield
    except DeliveryError:
        raise
    except Exception as exc:
        log.exception("building a message failed")
        what = f"{type(exc).__name__}: {exc}"
        raise DeliveryError(f"the message could not be built: {what}", permanent=True) from None


def _rule_webhook(row: Row, settings: Channels, now: int) -> Outgoing:
    url = str(row.payload.get("url") or "")
    body = {"type": "rule", "key": row.key, **(row.payload.get("body") or {})}
    return Outgoing("webhook", url, settings["webhook"], Message("", "", data=body), row.key, now)


def _customer_mail(row: Row, current: Policy, settings: Channels, now: int) -> Outgoing:
    """A mail to a customer (an answer, a survey): written whole by the engine, threaded by
    the headers in its payload (see `rungs.engine.mail.outgoing`)."""
    if "email" not in settings:
        raise DeliveryError("channel 'email' is not configured: add channels.email", permanent=True)
    p = row.payload
    headers = {k: p.get(k) for k in ("message_id", "in_reply_to", "references", "auto_submitted")}
    msg = Message(
        str(p["subject"]), str(p["text"]), data={"mail": {**headers, "reply_to": p.get("from")}}
    )
    if p.get("survey"):  # its links carry the base URL in force when it goes out
        msg = with_survey(msg, base_url_of(current), p["survey"])
    return Outgoing("email", str(p["to"]), settings["email"], msg, row.key, now)


def _person(pid: str, *policies: Policy) -> Person | None:
    for p in policies:
        found = p.people.get(pid)
        if found is not None:
            return found
    return None


def _bundle_key(rows: list[Row]) -> str:
    joined = ",".join(sorted(r.key for r in rows))
    return "bundle-" + hashlib.sha256(joined.encode()).hexdigest()[:32]


def _webhook_body(ctx: dict[str, Any], key: str, rows: list[Row]) -> dict[str, Any]:
    def one(it: dict[str, Any]) -> dict[str, Any]:
        c = it["case"]
        return {
            "key": it["key"],
            "case": {
                "id": c["id"],
                "title": c["title"],
                "priority": c["priority"],
                "status": c["status"],
                "customer": c["customer"],
                "level": c["level"],
            },
            "level": it["level"],
            "reason": it["reason"],
            "why": it["why"],
            "links": it["links"],
            "handoff": it["handoff"],
        }

    items = [one(it) for it in ctx["items"]]
    body = {"type": "notification", **items[0], "key": key, "person": ctx["person"]}
    if len(items) > 1:
        body["type"] = "bundle"
        body["items"] = items
    return body
