"""Messages: the handoff context rendered per channel with Jinja2 templates.

Templates live in `rungs/notify/templates/`; a policy overrides any of them by a file of the
same name in `templates/` beside the policy file. Every message template gets `items` (one per
notification: a bundle holds several), `item` (the first), `person`, `channel` and `count`.
An item holds the handoff context (`handoff`, and its parts `case`, `customer`, `sla`, `ladder`,
`escalation`, `summary`), the notification's `level`, `reason` and `why` (the reason in words),
`recent` (the last timeline entries, in words), `links` (`acknowledge`, `resolve`) and `code`
(what an SMS reply names the case by).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from rungs.core.handoff import handoff
from rungs.core.model import Case
from rungs.notify.links import sms_code
from rungs.policy.model import Policy

__all__ = ["Message", "Renderer", "describe", "one_line", "why", "template_folder"]

PACKAGE_TEMPLATES = Path(__file__).with_name("templates")
RECENT = 8  # timeline entries a message shows


@dataclass
class Message:
    subject: str
    text: str
    html: str | None = None
    data: dict[str, Any] | None = None  # a webhook's JSON body, Slack's payload


_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` on one line: CR, LF and every other control character become a space. A subject
    or mail header is one line; a case title with a newline must not break it (nor add a
    header of its own)."""
    return " ".join(_BREAKS.sub(" ", text).split())


def why(reason: str) -> str:
    """The notification's reason in words."""
    if reason == "opened":
        return "a new case for you"
    if reason == "escalation":
        return "the case was escalated to your level"
    if reason == "repeat":
        return "still not acknowledged: paging again"
    if reason == "assigned":
        return "the case was assigned to you"
    if reason == "reopened":
        return "the case was reopened"
    if reason.startswith("rule:"):
        return f"rule {reason[5:]} asked for you"
    if reason.startswith("fallback from "):
        return f"your {reason[14:]} could not be reached"
    return reason


def describe(e: dict[str, Any]) -> str:
    """One timeline entry in words (its `at` already formatted, as the handoff gives it)."""
    kind = e.get("kind", "")
    at = str(e.get("at", ""))[11:16]
    if kind == "opened":
        text = f"opened ({e.get('priority')}, {e.get('category')})"
    elif kind == "notified":
        text = f"{e.get('to')} paged by {e.get('channel')} at level {e.get('level')}"
    elif kind == "delivered":
        text = f"{e.get('channel')} to {e.get('to')} delivered"
    elif kind == "delivery_failed":
        state = "gave up" if e.get("permanent") else "will retry"
        text = f"{e.get('channel')} to {e.get('to')} failed ({state}): {e.get('reason')}"
    elif kind == "escalated":
        text = f"escalated from level {e.get('from')} to level {e.get('level')}"
        if e.get("cause"):
            text += f" ({e['cause']}"
            text += f", {e['reason']})" if e.get("reason") else ")"
    elif kind in ("acknowledged", "resolved", "responded", "pending", "reopened", "closed"):
        text = f"{kind} by {e['by']}" if e.get("by") else kind
    elif kind == "assigned":
        text = f"assigned to {e.get('to')}"
    elif kind.startswith("sla_"):
        text = f"{kind.replace('_', ' ')}: {e.get('metric', '')}".rstrip(": ")
    elif kind == "unreachable":
        text = f"{e.get('to')} unreachable (tried {', '.join(e.get('tried') or [])})"
    else:
        text = kind.replace("_", " ")
    return f"{at} {text}" if at else text


def human(seconds: int | None) -> str:
    """A duration for people: `2d4h`, `3h05m`, `12m`, `40s`."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 86400:
        d, h = divmod(seconds // 3600, 24)
        return f"{d}d{h}h" if h else f"{d}d"
    if seconds >= 3600:
        h, m = divmod(seconds // 60, 60)
        return f"{h}h{m:02d}m" if m else f"{h}h"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


_FRACTION = re.compile(r"\b((?:\d+[wdhms])*?)(\d+)s0\.\d+s\b|\b((?:\d+[wdhm])+)0\.\d+s\b")


def tidy(text: str) -> str:
    """Durations in a text to whole seconds (`59m59s0.4856s` -> `59m59s`)."""
    return _FRACTION.sub(lambda m: (m.group(1) or "") + m.group(2) + "s" if m.group(2)
                         else m.group(3), text)  # fmt: skip


def sla_text(s: dict[str, Any]) -> str:
    name = str(s.get("metric", "")).replace("_", " ")
    clock = s.get("target_text")  # "24h business": how the target counts
    target = f"; target {clock}" if clock else ""
    if s.get("breached"):
        late = f", {s['overdue']} overdue" if s.get("overdue") else ""
        return f"{name}: breached{late}" + (f" (target {clock})" if clock else "")
    if s.get("met"):
        return f"{name}: met"
    if s.get("state") == "paused":
        return f"{name}: paused, {human(s.get('remaining_seconds'))} left"
    if s.get("state") == "running":
        return f"{name}: {human(s.get('remaining_seconds'))} left (due {s.get('due')}{target})"
    return f"{name}: not started"


def sla_short(slas: list[dict[str, Any]]) -> str:
    """The most pressing SLA clock in a few words (for SMS and voice)."""
    breached = [s["metric"].replace("_", " ") for s in slas if s.get("breached")]
    if breached:
        return f"SLA breached: {', '.join(breached)}"
    running = [
        s for s in slas if s.get("state") == "running" and s.get("remaining_seconds") is not None
    ]
    if running:
        s = min(running, key=lambda s: s["remaining_seconds"])
        return f"{s['metric'].replace('_', ' ')} due in {human(s['remaining_seconds'])}"
    return "no SLA clock running"


def paged(notified: list[dict[str, Any]]) -> str:
    """`ann (email, sms), bob (email)` from a ladder level's `notified` list."""
    by: dict[str, list[str]] = {}
    for n in notified:
        channels = by.setdefault(str(n.get("to")), [])
        if n.get("channel") not in channels:
            channels.append(str(n.get("channel")))
    return ", ".join(f"{who} ({', '.join(ch)})" for who, ch in by.items())


def template_folder(policy: Policy) -> Path | None:
    """`templates/` beside the policy file, when there is one."""
    folder = Path(policy.folder or ".")
    if str(policy.folder or ".") == "." and policy.source:
        src = Path(policy.source)
        if src.is_file():
            folder = src.resolve().parent
    candidate = folder / "templates"
    return candidate if candidate.is_dir() else None


def _mrkdwn(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Renderer:
    """Jinja2 environments per template folder, and the context of one notification."""

    def __init__(self) -> None:
        self._envs: dict[str | None, jinja2.Environment] = {}
        self._folders: dict[tuple[str, str], Path | None] = {}
        self._lock = threading.Lock()

    def env(self, policy: Policy) -> jinja2.Environment:
        where = (policy.folder, policy.source)
        if where not in self._folders:
            self._folders[where] = template_folder(policy)
        folder = self._folders[where]
        key = str(folder) if folder else None
        found = self._envs.get(key)
        if found is None:
            with self._lock:
                loaders: list[jinja2.BaseLoader] = []
                if folder is not None:
                    loaders.append(jinja2.FileSystemLoader(str(folder)))
                loaders.append(jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES)))
                found = jinja2.Environment(
                    loader=jinja2.ChoiceLoader(loaders),
                    autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
                    trim_blocks=True,
                    lstrip_blocks=True,
                    keep_trailing_newline=False,
                    undefined=jinja2.ChainableUndefined,
                    auto_reload=False,  # read once: no stat() per message
                )
                found.filters["describe"] = describe
                found.filters["sla_text"] = sla_text
                found.filters["sla_short"] = sla_short
                found.filters["paged"] = paged
                found.filters["human"] = human
                found.filters["mrkdwn"] = _mrkdwn
                self._envs[key] = found
        return found

    def render(self, policy: Policy, name: str, **context: Any) -> str:
        return self.env(policy).get_template(name).render(**context).strip()

    def item_context(
        self,
        case: Case,
        policy: Policy,
        now: int,
        timeline: list[dict[str, Any]],
        level: int,
        reason: str,
        links: dict[str, str],
        *,
        words: bool = True,
    ) -> dict[str, Any]:
        """The item; without `words`, only what a webhook's JSON carries (no `recent`,
        `summary` or `code`: the words the templates show)."""
        try:
            h = handoff(case, policy, now, timeline, level)
        except ValueError:  # a level the matrix no longer has
            h = handoff(case, policy, now, timeline)
        item = {
            "handoff": h,
            "case": h["case"],
            "customer": h["customer"],
            "sla": h["sla"],
            "ladder": h["ladder"],
            "escalation": h["escalation"],
            "level": level,
            "level_name": h["for_level"].get("name"),
            "reason": reason,
            "why": why(reason),
            "links": links,
        }
        if words:
            item["summary"] = tidy(h["summary"])
            item["recent"] = [describe(e) for e in h["timeline"][-RECENT:]]
            item["code"] = sms_code(case.id)
        return item

    def message(
        self,
        policy: Policy,
        channel: str,
        person: dict[str, Any],
        items: list[dict[str, Any]],
        webhook_body: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Message:
        """The message for `channel` to `person`: subject, text, HTML or JSON as it needs."""
        ctx = {"items": items, "item": items[0], "person": person, "channel": channel,
               "count": len(items)}  # fmt: skip
        if channel == "webhook":  # JSON only: no template, and no subject to send
            return Message("", "", data=webhook_body(ctx) if webhook_body else {})
        subject = one_line(self.render(policy, "subject.txt", **ctx))
        if channel == "email":
            return Message(
                subject,
                self.render(policy, "email.txt", **ctx),
                self.render(policy, "email.html", **ctx),
            )
        if channel == "sms":
            return Message(subject, self.render(policy, "sms.txt", **ctx))
        if channel == "voice":
            return Message(subject, self.render(policy, "voice.txt", **ctx))
        if channel == "slack":
            text = self.render(policy, "slack.txt", **ctx)
            return Message(subject, text, data=slack_payload(subject, text, items))
        return Message(subject, self.render(policy, "apprise.txt", **ctx))  # apprise

    def notice(self, policy: Policy, channel: str, notice: dict[str, Any]) -> Message:
        """The short "handled by X" message to someone who was paged."""
        return self.short(policy, channel, "notice", notice)

    def test(self, policy: Policy, channel: str, test: dict[str, Any]) -> Message:
        """A test notification: proof that a contact works, asked for from the console."""
        return self.short(policy, channel, "test", test)

    def short(self, policy: Policy, channel: str, kind: str, ctx: dict[str, Any]) -> Message:
        """A message about no case's handoff: `{kind}_subject.txt`, `{kind}.txt` and, for
        email, `{kind}.html`, each given `ctx` as `{kind}`; a webhook's JSON says `type`."""
        subject = one_line(self.render(policy, f"{kind}_subject.txt", **{kind: ctx}))
        text = self.render(policy, f"{kind}.txt", **{kind: ctx})
        if channel == "email":
            return Message(subject, text, self.render(policy, f"{kind}.html", **{kind: ctx}))
        if channel == "slack":
            return Message(subject, text, data={"text": _mrkdwn(text)})
        if channel == "webhook":
            return Message(subject, text, data={"type": kind, "text": text, **ctx})
        return Message(subject, text)


def slack_payload(subject: str, text: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Slack blocks: a header, the message, and the action links as buttons per case."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
    ]
    for it in items[:10]:
        cid = it["case"]["id"]
        blocks.append(
            {
                "type": "actions",
                "block_id": f"rungs-{cid}"[:255],
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": f"Acknowledge {cid}"},
                        "style": "primary",
                        "url": it["links"]["acknowledge"],
                        "action_id": f"acknowledge-{cid}",
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": f"Resolve {cid}"},
                        "url": it["links"]["resolve"],
                        "action_id": f"resolve-{cid}",
                    },
                ],
            }
        )
    return {"text": _mrkdwn(subject), "blocks": blocks}  # the fallback: mrkdwn, like blocks
