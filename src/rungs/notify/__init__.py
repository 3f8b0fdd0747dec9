"""Notification delivery: the dispatcher, the channels, messages and one-click links.

`Dispatcher` (the loop and the engine's calls), `channels/` (one module per channel),
`compose` (a job -> what to send), `messages` (rendering), `limits` (bundling, rate limits,
backoff), `results` (outcomes to the engine's `record`), `deliver` (the delivery event loop).
The SQL is `rungs.store.outbox`'s.
"""

from __future__ import annotations

from rungs.notify.channels import CHANNELS, DeliveryError, Outgoing
from rungs.notify.deliver import NOT_SENT
from rungs.notify.dispatcher import Dispatcher

__all__ = [
    "CHANNELS",
    "NOT_SENT",
    "DeliveryError",
    "Dispatcher",
    "Outgoing",
]
