"""SMS in Twilio's request format: the text, cut at 1,600 characters."""

from __future__ import annotations

from rungs.notify.channels._twilio import e164, twilio
from rungs.notify.channels.base import Context, Outgoing
from rungs.policy.channels import TwilioConfig

__all__ = ["NAME", "send"]

NAME = "sms"


async def send(ctx: Context, out: Outgoing) -> None:
    cfg = out.cfg
    assert isinstance(cfg, TwilioConfig)
    form = {"To": e164(out.address), "From": e164(cfg.sender), "Body": out.message.text[:1600]}
    await twilio(ctx, cfg, NAME, form, out.key)
