"""Voice calls in Twilio's request format: the text said twice (TwiML)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from rungs.notify.channels._twilio import e164, twilio
from rungs.notify.channels.base import Context, Outgoing
from rungs.policy.channels import TwilioConfig

__all__ = ["NAME", "send"]

NAME = "voice"


async def send(ctx: Context, out: Outgoing) -> None:
    cfg = out.cfg
    assert isinstance(cfg, TwilioConfig)
    said = escape(out.message.text)
    twiml = (
        f'<Response><Say voice="alice">{said}</Say><Pause length="1"/>'
        f'<Say voice="alice">{said}</Say></Response>'
    )
    form = {"To": e164(out.address), "From": e164(cfg.sender), "Twiml": twiml}
    await twilio(ctx, cfg, NAME, form, out.key)
