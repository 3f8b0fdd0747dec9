"""The server's log as a channel: each message, rendered for the channel it was meant for,
written at info level instead of being sent.

For trying Rungs out (the example policy `make run` serves has `channels: {log: {}}`): a page
by email, SMS or voice that the policy configures no channel for is shown here, so a newcomer
sees paging work without a mail server or an SMS account. Nothing leaves the machine; the
message is "delivered" once it is in the log. The rendered text holds the case's one-click
links, as the message would: a log kept for long is no place for this channel.
"""

from __future__ import annotations

import logging

from rungs.notify.channels.base import Context, Outgoing
from rungs.policy.channels import LogConfig

__all__ = ["NAME", "send"]

NAME = "log"
log = logging.getLogger("rungs.messages")


def _visible() -> logging.Logger:
    """The logger, made to show info lines when nothing configured logging for it: the
    channel is useless unless its lines are seen."""
    if log.level == logging.NOTSET and not log.isEnabledFor(logging.INFO):
        log.setLevel(logging.INFO)
    if not log.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
    return log


async def send(ctx: Context, out: Outgoing) -> None:
    assert isinstance(out.cfg, LogConfig)
    msg = out.message
    body = msg.text.rstrip()
    _visible().info(
        "%s to %s (key %s; written here by channels.log instead of being sent)%s\n%s",
        out.channel,
        out.address,
        out.key,
        f": {msg.subject}" if msg.subject else "",
        body,
    )
