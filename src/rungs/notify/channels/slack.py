"""Slack: the message's blocks (action links as buttons) to the person's incoming webhook."""

from __future__ import annotations

from rungs.notify.channels._http import body, post
from rungs.notify.channels.base import Context, Outgoing
from rungs.policy.channels import SlackConfig

__all__ = ["NAME", "send"]

NAME = "slack"


async def send(ctx: Context, out: Outgoing) -> None:
    cfg = out.cfg
    assert isinstance(cfg, SlackConfig)
    msg = out.message
    headers = {"Content-Type": "application/json", "Idempotency-Key": out.key}
    await post(ctx, out.address, cfg.timeout, body(msg.data or {"text": msg.text}), headers)
