"""Apprise: any of its URLs (it blocks, so it runs on a thread)."""

from __future__ import annotations

from rungs.notify.channels.base import Context, DeliveryError, Outgoing

__all__ = ["NAME", "send"]

NAME = "apprise"


def _notify(out: Outgoing) -> None:
    # Imported on first use, not at the top: it costs every process 0.2-0.4 s at start-up
    # (measured), and few policies use it.
    import apprise

    ap = apprise.Apprise()
    if not ap.add(out.address):
        raise DeliveryError("not a URL Apprise knows", permanent=True)
    ok = ap.notify(title=out.message.subject, body=out.message.text)
    if not ok:
        raise DeliveryError("Apprise could not deliver (see the server log)")


async def send(ctx: Context, out: Outgoing) -> None:
    await ctx.blocking(lambda: _notify(out))
