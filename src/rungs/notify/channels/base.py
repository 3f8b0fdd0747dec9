"""What every channel module shares: the message to send, the failure, the send() signature.

A channel module has `NAME` (the policy's word for it: `channels.<NAME>`, a contact's key) and
`async def send(ctx: Context, out: Outgoing) -> None`, returning on success and raising
`DeliveryError` otherwise, saying whether trying again could help (`permanent=False`) or not.
Every message carries its idempotency key, so a receiver can drop a duplicate that
at-least-once delivery may produce.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from rungs.notify.http import HttpClient
from rungs.notify.messages import Message
from rungs.policy.channels import (
    AppriseConfig,
    EmailConfig,
    LogConfig,
    SlackConfig,
    TwilioConfig,
    WebhookConfig,
)

__all__ = ["Channel", "ChannelConfig", "Context", "DeliveryError", "Outgoing"]

ChannelConfig = EmailConfig | WebhookConfig | TwilioConfig | SlackConfig | AppriseConfig | LogConfig


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message, self.permanent, self.retry_after = message, permanent, retry_after


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
