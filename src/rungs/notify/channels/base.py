"""What every channel module shares: the message to send, the failure, the send() signature.

A channel module has `NAME` (the policy's word for it: `channels.<NAME>`, a contact's key) and
`async def send(ctx: Context, out: Outgoing) -> None`, returning on success and raising
`DeliveryError` otherwise, saying whether trying again could help (`permanent=False`) or not.
Every message carries its idempotency key, so a receiver can drop a duplicate that
at-least-once delivery may produce.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from rungs.notify.http import HttpClient
from rungs.notify.messages import Message, one_line
from rungs.policy.channels import (
    AppriseConfig,
    EmailConfig,
    LogConfig,
    SlackConfig,
    TwilioConfig,
    WebhookConfig,
)

__all__ = ["Channel", "ChannelConfig", "Context", "DeliveryError", "Outgoing", "safe_error"]

ChannelConfig = EmailConfig | WebhookConfig | TwilioConfig | SlackConfig | AppriseConfig | LogConfig


MAX_ERROR = 300  # characters of an error kept for the timeline
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^\s'\"<>()\[\]{}]*)")
_HOSTS_SHOWN = frozenset(("http", "https", "smtp", "smtps", "ws", "wss"))


def _url(m: re.Match[str]) -> str:
    """A URL as an error may show it: scheme and host. Credentials, path and query go (a
    Slack webhook's path is its secret); so does the host of other schemes (Apprise URLs
    such as `tgram://TOKEN/CHAT` hold a token where a host would be)."""
    scheme, rest = m.group(1), m.group(2)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = authority.rpartition("@")[2] if scheme.lower() in _HOSTS_SHOWN else "…"
    return f"{scheme}://{host}{'/…' if len(rest) > len(authority) else ''}"


def safe_error(text: str) -> str:
    """An error as the timeline keeps it: one line, at most `MAX_ERROR` characters, every URL
    cut to its scheme and host (`_url`)."""
    line = one_line(_URL.sub(_url, text))
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 1] + "…"


class DeliveryError(Exception):
    """A failed delivery. `message` goes to the timeline (through `safe_error`: no URL
    credentials; an HTTP answer only as its status line); `detail` (its body, say) only to the
    server's log."""

    def __init__(
        self,
        message: str,
        permanent: bool = False,
        retry_after: float | None = None,
        *,
        detail: str | None = None,
    ):
        message = safe_error(message)
        super().__init__(message)
        self.message, self.permanent, self.retry_after = message, permanent, retry_after
        self.detail = safe_error(detail) if detail else None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one address, as the policy's channel settings say to send it."""

    channel: str
    address: str  # an email address, a phone number, a URL
    cfg: ChannelConfig
    message: Message
    key: str  # the idempotency key
    now: int  # µs: the instant it goes (a webhook's timestamp)


@dataclass(frozen=True, slots=True)
class Context:
    """What the dispatcher's event loop lends a channel: its keep-alive HTTP client, and a
    way to run a blocking call (smtplib, Apprise) on a thread without holding the loop."""

    http: HttpClient
    blocking: Callable[[Callable[[], None]], Awaitable[None]]


class Channel(Protocol):
    NAME: str

    async def send(self, ctx: Context, out: Outgoing) -> None: ...
